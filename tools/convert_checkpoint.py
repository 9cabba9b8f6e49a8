#!/usr/bin/env python
"""Convert a VideoMAE checkpoint (MCG-NJU pretrain / fine-tune, HF transformers) to this project's format.

    python tools/convert_checkpoint.py SRC DST [--format auto|mcg-pretrain|mcg-finetune|hf]

DST is a detectron2-Checkpointer-style file ``{"model": state_dict, "format": "vmae_det", ...}`` whose
state dict uses :class:`VideoMAE` names (``encoder.*`` + decoder) when SRC has a decoder, else
:class:`VideoViT` names. Load it with ``vmae_det.modeling.load_videomae_weights``.
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
    kind = "VideoMAE (encoder + decoder)" if cw.mae else "VideoViT backbone"
    lines = [f"{src} ({fmt}) -> {dst}: {len(out)} tensors, {kind}"]
    if cw.ignored:
        lines.append(f"  dropped ({len(cw.ignored)}): {', '.join(sorted(cw.ignored))}")
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
