#!/usr/bin/env python
"""Draw an MAE checkpoint's reconstruction of one clip of a video: original / masked / reconstruction.

The quick starts' picture (scripts/quickstart.sh, scripts/quickstart_compare.sh; docs/quickstart.md).
Unlike the pictures the pretraining hook writes (the first training batch: a random crop, a random mask),
this one is reproducible: a fixed clip (``--start``, the config's frames and stride), the whole frame
centre-cropped to a square and resized to the model's input (no random crop), and a mask drawn with
``--seed``. The masked cubes are 90 % of the tokens with the quick-start configs; with ``norm_pix_loss``
their predictions are drawn with the original cube's mean and std, as the official VideoMAE visualisation
does (vmae_det/modeling/mae_reconstruction.py)::

    python scripts/quickstart_reconstruction.py --config-file configs/pretrain/tiny.py \\
        --checkpoint output/quickstart/pretrain/model_final.pth \\
        --video datasets/tiny_ava/videos/tinyval002.mp4 --output output/quickstart/reconstruction.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional, Sequence

REPO = Path(__file__).resolve().parents[1]


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    p.add_argument("--config-file", required=True, help="the pretraining config the checkpoint was trained with")
    p.add_argument("--checkpoint", required=True, help="MAE checkpoint (model_final.pth of tools/pretrain_mae.py)")
    p.add_argument("--video", required=True, help="video to draw a clip of")
    p.add_argument("--output", required=True, help="PNG to write")
    p.add_argument("--start", type=int, default=60, help="first frame of the clip (default 60)")
    p.add_argument("--seed", type=int, default=0, help="seed of the mask")
    p.add_argument(
        "--clips",
        type=int,
        default=1,
        help="draw this many clips, --start, --start+30, ... (one PNG each: NAME_<i>.png when > 1)",
    )
    args = p.parse_args(argv)
    for what in ("checkpoint", "video", "config_file"):
        if not Path(getattr(args, what)).is_file():
            p.error(f"--{what.replace('_', '-')}: '{getattr(args, what)}' does not exist")
    if args.start < 0 or args.clips < 1:
        p.error("--start must be >= 0 and --clips >= 1")
    return args


def center_square_clip(frames, size: int):
    """uint8 ``[T, H, W, 3]`` frames -> uint8 tensor ``[1, 3, T, size, size]``: the centre square, resized."""
    import cv2
    import numpy as np
    import torch

    h, w = frames.shape[1:3]
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2
    out = np.stack(
        [cv2.resize(f[y0 : y0 + s, x0 : x0 + s], (size, size), interpolation=cv2.INTER_LINEAR) for f in frames]
    )
    return torch.from_numpy(out).permute(3, 0, 1, 2)[None].contiguous()


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    from detectron2.config import instantiate

    import vmae_det  # noqa: F401  (detectron2 shims first)
    from vmae_det.checkpoints import load_videomae_weights
    from vmae_det.config import load_config
    from vmae_det.data.video_io import open_video
    from vmae_det.engine.mae_visualization import save_reconstruction_figure

    cfg = load_config(args.config_file)
    model = instantiate(cfg.model)
    load_videomae_weights(model, args.checkpoint)
    mapper = cfg.dataloader.train.mapper
    num_frames, stride, size = int(mapper.num_frames), int(mapper.sampling_rate), int(mapper.input_size)
    out = Path(args.output)
    with open_video(args.video) as reader:
        for i in range(args.clips):
            start = args.start + 30 * i
            frames = reader.get_frames(range(start, start + num_frames * stride, stride))
            clip = center_square_clip(frames, size)
            path = out if args.clips == 1 else out.with_name(f"{out.stem}_{i}{out.suffix}")
            title = (
                f"{Path(args.video).name}, frames {start}-{start + (num_frames - 1) * stride}: "
                f"{model.mask_ratio:.0%} of the cubes masked"
            )
            save_reconstruction_figure(model, clip, str(path), title=title, mask_seed=args.seed + i)
            print(f"reconstruction picture: {path}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    from vmae_det.cli import run_main

    sys.exit(run_main(lambda: main()))
