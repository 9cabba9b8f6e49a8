#!/usr/bin/env python
"""Convert a VideoMAE checkpoint (MCG-NJU pretrain / fine-tune, HF transformers) to this project's format.

    python tools/convert_checkpoint.py SRC DST [--format auto|mcg-pretrain|mcg-finetune|hf]

DST is a detectron2-Checkpointer-style file ``{"model": state_dict, "format": "vmae_det", ...}`` whose
state dict uses :class:`VideoMAE` names (``encoder.*`` + decoder) when SRC has a decoder, else
:class:`VideoViT` names plus the official classification head ``head.weight`` / ``head.bias`` when SRC has
one (a VMAD AVA checkpoint keeps its 80-class head). Load it with ``vmae_det.modeling.load_videomae_weights``,
which puts that head into a detector's ``head.fc`` when the shapes fit.
"""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional

import torch

import vmae_det  # noqa: F401  (installs detectron2 shims before detectron2 is imported)
from vmae_det.modeling.weight_loading import (
    FORMATS,
    detect_format,
    export_state_dict,
    read_checkpoint,
    to_canonical,
)


def convert(src: str, dst: str, fmt: str = "auto") -> str:
    """Convert ``src`` to ``dst``; returns a printable summary."""
    sd, extras = read_checkpoint(src)
    fmt = detect_format(sd, extras) if fmt == "auto" else fmt
    cw = to_canonical(sd, fmt)
    out = export_state_dict(cw, "vmae_det")
    torch.save({"model": out, "format": "vmae_det", "converted_from": fmt}, dst)
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


if __name__ == "__main__":
    sys.exit(main())
