"""Convert a VideoMAE checkpoint (MCG-NJU pretrain / fine-tune, HF transformers) to this project's format.

    python tools/convert_checkpoint.py SRC DST [--format auto|mcg-pretrain|mcg-finetune|hf]

DST is a detectron2-Checkpointer-style file ``{"model": state_dict, "format": "vmae_det", ...}`` whose
state dict uses :class:`VideoMAE` names (``encoder.*`` + decoder) when SRC has a decoder, else
:class:`VideoViT` names plus the official classification head ``head.weight`` / ``head.bias`` when SRC has
one (a VMAD AVA checkpoint keeps its 80-class head). Load it with ``vmae_det.modeling.load_videomae_weights``,
which puts that head into a detector's ``head.fc`` when the shapes fit.

Refused with ``error: ...`` (exit code 2), DST untouched: a missing, corrupt or non-checkpoint SRC, NaN/inf
weights, a ``--format`` that does not match SRC (the converted names would not be VideoMAE names), and
DST being SRC itself. DST is written to a temporary file first and renamed into place.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

import torch

import vmae_det  # noqa: F401  (installs detectron2 shims before detectron2 is imported)
from vmae_det.cli import run_main
from vmae_det.modeling.weight_loading import (
    FORMATS,
    CheckpointError,
    detect_format,
    export_state_dict,
    read_checkpoint,
    to_canonical,
    validate_canonical,
)


def _same_file(a: str, b: str) -> bool:
    if os.path.exists(a) and os.path.exists(b):
        return os.path.samefile(a, b)
    return os.path.realpath(a) == os.path.realpath(b)


def convert(src: str, dst: str, fmt: str = "auto") -> str:
    """Convert ``src`` to ``dst``; returns a printable summary.

    Raises ``FileNotFoundError`` / :class:`CheckpointError` (a ``ValueError``) naming the file for a missing,
    corrupt or non-finite ``src``, a ``fmt`` that does not fit it, or ``dst`` being ``src``.
    """
    if _same_file(src, dst):
        raise CheckpointError(f"{dst}: the output is the input checkpoint {src}; converting would overwrite it. "
                              "Give another output path.")
    if os.path.isdir(dst):
        raise IsADirectoryError(f"{dst}: is a directory; give the output file name")
    sd, extras = read_checkpoint(src)
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
            "auto" if detected == "vmae_det" else f"{detected} or auto")
    try:
        cw = to_canonical(sd, fmt)
    except ValueError as e:
        raise CheckpointError(f"{src} read as '{fmt}': {e}{hint}") from e
    try:
        validate_canonical(cw, src)
    except CheckpointError as e:
        raise CheckpointError(f"{e}{hint}; nothing written") from e
    out = export_state_dict(cw, "vmae_det")
    tmp = f"{dst}.tmp{os.getpid()}"
    try:
        torch.save({"model": out, "format": "vmae_det", "converted_from": fmt}, tmp)
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
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


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", help="source checkpoint (.pth/.pt/.bin)")
    parser.add_argument("dst", help="output file")
    parser.add_argument("--format", default="auto", choices=("auto",) + tuple(f for f in FORMATS if f != "vmae_det"),
                        help="source layout (default: detect from the keys)")
    args = parser.parse_args(argv)
    print(convert(args.src, args.dst, args.format))
    return 0


def cli() -> int:
    """Console-script entry point: exit code of :func:`main` (2 with one ``error:`` line on bad input)."""
    return run_main(main)


if __name__ == "__main__":
    sys.exit(cli())
