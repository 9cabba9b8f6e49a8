"""Convert a VideoMAE checkpoint (MCG-NJU pretrain / fine-tune, HF transformers) to this project's format,
or any of them to a Hugging Face transformers folder.

    python tools/convert_checkpoint.py SRC DST [--format auto|mcg-pretrain|mcg-finetune|hf]
    python tools/convert_checkpoint.py SRC OUTDIR --to hf [--image-size 224 --num-frames 16]

SRC is a file, an HF folder or a Hub id ``hf://ORG/NAME[@REVISION][/FILE]`` (fetched into, or found in, the
huggingface_hub cache; docs/weights.md).

DST is a detectron2-Checkpointer-style file ``{"model": state_dict, "format": "vmae_det", ...}`` whose
state dict uses :class:`VideoMAE` names (``encoder.*`` + decoder) when SRC has a decoder, else
:class:`VideoViT` names plus the official classification head ``head.weight`` / ``head.bias`` when SRC has
one (a VMAD AVA checkpoint keeps its 80-class head). Load it with ``vmae_det.checkpoints.load_videomae_weights``,
which puts that head into a detector's ``head.fc`` when the shapes fit.

Refused with ``error: ...`` (exit code 2), DST untouched: a missing, corrupt or non-checkpoint SRC, NaN/inf
weights, a ``--format`` that does not match SRC (the converted names would not be VideoMAE names), and
DST being SRC itself. DST is written to a temporary file first and renamed into place.

``--to hf`` writes OUTDIR/config.json and OUTDIR/model.safetensors, what ``save_pretrained`` writes, for
the transformers class that holds the weights (``vmae_det.checkpoints.hf_export``): ``VideoMAEForPreTraining``
(encoder + decoder), ``VideoMAEForVideoClassification`` (a mean-pooling fine-tune with its head) or
``VideoMAEModel`` (any other backbone; a detector's action head has no transformers class and is dropped,
which the summary lists). The clip size and attention-head counts are not in the weights: give them when
they are not the official 224 px x 16 frames / the standard sizes' heads.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import List, Optional

import torch

import vmae_det  # noqa: F401  (installs detectron2 shims before detectron2 is imported)
from vmae_det.checkpoints import (
    FORMATS,
    CheckpointError,
    detect_format,
    export_state_dict,
    read_checkpoint,
    resolve_weights,
)
from vmae_det.checkpoints.layouts import to_canonical, validate_canonical
from vmae_det.cli import check_output_dir, check_output_file, run_main
from vmae_det.formats.atomic import atomic_save, atomic_write_text


def _same_file(a: str, b: str) -> bool:
    if os.path.exists(a) and os.path.exists(b):
        return os.path.samefile(a, b)
    return os.path.realpath(a) == os.path.realpath(b)


def convert(src: str, dst: str, fmt: str = "auto") -> str:
    """Convert ``src`` to ``dst``; returns a printable summary. Errors name the file
    (``FileNotFoundError`` / :class:`CheckpointError`)."""
    if _same_file(src, dst):
        raise CheckpointError(
            f"{dst}: the output is the input checkpoint {src}; converting would overwrite it. Give another output path."
        )
    if os.path.isdir(dst):
        raise IsADirectoryError(f"{dst}: is a directory; give the output file name")
    check_output_file(dst, "DST")
    sd, extras = read_checkpoint(resolve_weights(src))
    detected = None
    try:
        detected = detect_format(sd, extras)
    except ValueError:
        if fmt == "auto":
            raise
    fmt = detected if fmt == "auto" else fmt
    hint = ""
    if detected and detected != fmt:
        hint = f". It looks like a '{detected}' checkpoint: use --format " + (
            "auto" if detected == "vmae_det" else f"{detected} or auto"
        )
    try:
        cw = to_canonical(sd, fmt)
    except ValueError as e:
        raise CheckpointError(f"{src} read as '{fmt}': {e}{hint}") from e
    try:
        validate_canonical(cw, src)
    except CheckpointError as e:
        raise CheckpointError(f"{e}{hint}; nothing written") from e
    out = export_state_dict(cw, "vmae_det")
    atomic_save(dst, lambda tmp: torch.save({"model": out, "format": "vmae_det", "converted_from": fmt}, tmp))
    kept_head = sorted(k for k in cw.head if k in out)
    kind = "VideoMAE (encoder + decoder)" if cw.mae else "VideoViT backbone"
    if kept_head:
        kind += " + classification head " + ", ".join(f"{k} {tuple(cw.head[k].shape)}" for k in kept_head)
    dropped = sorted(cw.ignored) + sorted(k for k in cw.head if k not in out)
    lines = [f"{src} ({fmt}) -> {dst}: {len(out)} tensors, {kind}"]
    if dropped:
        lines.append(f"  dropped ({len(dropped)}): {', '.join(dropped)}")
    lines += [f"  note: {n}" for n in cw.notes]
    return "\n".join(lines)


def convert_to_hf(src: str, out_dir: str, fmt: str = "auto", **shape) -> str:
    """Convert ``src`` to a transformers folder ``out_dir``; returns a printable summary. ``shape``: the
    clip size and head counts of :func:`vmae_det.checkpoints.hf_export.hf_export`."""
    from safetensors.torch import save_file

    from vmae_det.checkpoints.hf_export import hf_export

    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise NotADirectoryError(f"{out_dir}: is a file; --to hf writes a folder (config.json, model.safetensors)")
    check_output_dir(out_dir, "OUTDIR")
    sd, extras = read_checkpoint(resolve_weights(src))
    src_name = extras["__source__"]
    fmt = detect_format(sd, extras) if fmt == "auto" else fmt
    try:
        cw = to_canonical(sd, fmt)
    except ValueError as e:
        raise CheckpointError(f"{src} read as '{fmt}': {e}") from e
    validate_canonical(cw, src)
    try:
        exp = hf_export(cw, **shape)
    except ValueError as e:
        raise CheckpointError(f"{src} ({fmt}): {e}; nothing written") from e
    if any(
        os.path.samefile(src_name, os.path.join(out_dir, n))
        for n in ("model.safetensors", "config.json")
        if os.path.exists(os.path.join(out_dir, n))
    ):
        raise CheckpointError(
            f"{out_dir}: holds the input checkpoint {src_name}; converting would overwrite it. "
            "Give another output folder."
        )
    # Each file to a temporary name, then renamed: an interrupted run leaves no half-written file.
    atomic_save(
        os.path.join(out_dir, "model.safetensors"),
        lambda tmp: save_file(exp.state_dict, tmp, metadata={"format": "pt"}),
    )
    atomic_write_text(os.path.join(out_dir, "config.json"), json.dumps(exp.config, indent=2, sort_keys=True) + "\n")
    c = exp.config
    lines = [
        f"{src} ({fmt}) -> {out_dir}: {exp.architecture}, {len(exp.state_dict)} tensors "
        f"(width {c['hidden_size']}, depth {c['num_hidden_layers']}, {c['num_attention_heads']} heads, "
        f"{c['image_size']} px x {c['num_frames']} frames)",
        f"  load with: transformers.{exp.architecture}.from_pretrained({out_dir!r})",
    ]
    if exp.dropped:
        lines.append(f"  dropped ({len(exp.dropped)}): {', '.join(exp.dropped)}")
    lines += [f"  note: {n}" for n in [*cw.notes, *exp.notes]]
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "src",
        help="source checkpoint (.pth/.pt/.bin/.safetensors), HF folder, or Hub id hf://ORG/NAME[@REVISION][/FILE]",
    )
    parser.add_argument("dst", help="output file (--to vmae_det) or folder (--to hf)")
    parser.add_argument(
        "--format",
        default="auto",
        choices=("auto",) + tuple(f for f in FORMATS if f != "vmae_det"),
        help="source layout (default: detect from the keys)",
    )
    parser.add_argument(
        "--to",
        default="vmae_det",
        choices=("vmae_det", "hf"),
        help="output: this project's checkpoint file (default) or a transformers folder",
    )
    hf = parser.add_argument_group("--to hf: what the weights do not hold")
    hf.add_argument("--image-size", type=int, default=224, help="clip height = width in pixels (default 224)")
    hf.add_argument("--num-frames", type=int, default=16, help="frames per clip (default 16)")
    hf.add_argument(
        "--num-heads",
        type=int,
        default=None,
        help="encoder attention heads (default: the standard size's for the width and depth)",
    )
    hf.add_argument(
        "--decoder-num-heads",
        type=int,
        default=None,
        help="MAE decoder attention heads (default: the standard size's for the decoder width)",
    )
    args = parser.parse_args(argv)
    for flag in ("image_size", "num_frames", "num_heads", "decoder_num_heads"):
        value = getattr(args, flag)
        if value is not None and value <= 0:
            parser.error(f"--{flag.replace('_', '-')} must be positive, got {value}")
    if args.to == "hf":
        print(
            convert_to_hf(
                args.src,
                args.dst,
                args.format,
                image_size=args.image_size,
                num_frames=args.num_frames,
                num_heads=args.num_heads,
                decoder_num_heads=args.decoder_num_heads,
            )
        )
    else:
        print(convert(args.src, args.dst, args.format))
    return 0


def cli() -> int:
    """Console-script entry point: exit code of :func:`main` (2 with one ``error:`` line on bad input)."""
    return run_main(main, interrupted="nothing written (an earlier output is untouched)")


if __name__ == "__main__":
    sys.exit(cli())
