#!/usr/bin/env python
"""Keyframe-centric token dropout (EVAD): detector inference at keep rate 1.0 vs lower, side by side.

All detectors come from one config (default: the ViT-S AVA recipe, configs/ava/vit_s.py) with the same weights;
they differ only in ``model.backbone.token_keep_rate`` and ``token_keyframe_weight`` (EVAD's 1: every query
ranks the tokens; ``inf``: the keyframe's queries alone, cheaper), dropping at the config's blocks (EVAD's).
One clip of 16 x 256 x 341 (padded to 352 by the detector) with a few person boxes goes through the full
inference path (``model([inputs])``); timings alternate between the settings. GFLOPs are
fvcore's ``FlopCountAnalysis`` of ``forward_tensors`` (one multiply-add = one FLOP, as EVAD and VideoMAE
count), with explicit-softmax attention on every side: fvcore skips SDPA.
Benchmark, not a test: it prints numbers.

    python benchmarks/bench_token_dropout.py [--keep-rate 0.7] [--keyframe-weights 1,inf] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch
from fvcore.nn import FlopCountAnalysis

import vmae_det  # noqa: F401
from vmae_det.config import load_config
from vmae_det.modeling.vit import set_attention_impl

REPO = Path(__file__).resolve().parents[1]


def build(config_file: str, device: torch.device, *overrides: str):
    from detectron2.config import instantiate

    cfg = load_config(config_file, list(overrides))
    return instantiate(cfg.model).to(device).eval()


class TensorPath(torch.nn.Module):
    """The detector's tensor path (``forward_tensors``), which fvcore can trace."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, clip, rois):
        return self.model.forward_tensors(clip, rois)


def gflops(model, clip: torch.Tensor, rois: torch.Tensor) -> float:
    set_attention_impl(model, "math")
    try:
        count = FlopCountAnalysis(TensorPath(model), (clip, rois))
        count.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
        return count.total() / 1e9
    finally:
        set_attention_impl(model, "sdpa")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", default=str(REPO / "configs/ava/vit_s.py"))
    parser.add_argument("--keep-rate", type=float, default=0.7)
    parser.add_argument(
        "--keyframe-weights",
        default="1,inf",
        help="comma-separated: one dropout setting each (EVAD's ENHANCED_WEIGHT; inf: keyframe queries alone)",
    )
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=341)
    parser.add_argument("--boxes", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    device = torch.device(args.device)
    models = {"keep 1.0": build(args.config_file, device, "model.backbone.token_keep_rate=1.0")}
    for weight in args.keyframe_weights.split(","):
        overrides = (
            f"model.backbone.token_keep_rate={args.keep_rate}",
            f"model.backbone.token_keyframe_weight={weight}",
        )
        models[f"keep {args.keep_rate}, keyframe weight {weight}"] = build(args.config_file, device, *overrides)
    base = models["keep 1.0"]
    for m in models.values():
        m.load_state_dict(base.state_dict())

    g = torch.Generator().manual_seed(0)
    h, w = args.height, args.width
    boxes = torch.tensor([[20.0, 30.0, 120.0, 250.0], [150.0, 10.0, 260.0, 240.0], [250.0, 40.0, 340.0, 255.0]])
    boxes = boxes[: args.boxes]
    inputs = [
        {
            "clip": torch.randint(0, 256, (3, args.frames, h, w), dtype=torch.uint8, generator=g),
            "boxes": boxes,
            "box_scores": torch.ones(len(boxes)),
            "clip_size": (h, w),
        }
    ]
    dropout = list(models.values())[1].backbone.token_dropout
    vit = base.backbone
    grid = (args.frames // vit.tubelet_size, -(-h // vit.patch_size), -(-w // vit.patch_size))
    print(
        f"config {args.config_file} | device {device} | threads {torch.get_num_threads()} | load average "
        f"{os.getloadavg()[0]:.1f} | clip {args.frames}x{h}x{w} fp32, batch 1, {len(boxes)} boxes | keep rate "
        f"{args.keep_rate} at blocks {dropout.drop_blocks}: tokens per block (MLP) "
        f"{dropout.token_counts(grid, vit.num_layers)}"
    )

    clip = base._batch_clips(inputs)
    rois = base._rois(inputs, extend=True)
    flops = {name: gflops(m, clip, rois) for name, m in models.items()}

    def run(model):
        with torch.no_grad():
            model(inputs)

    for m in models.values():
        run(m)  # warm-up
    times = {name: [] for name in models}
    order = list(models.items())
    for r in range(args.rounds):
        for name, model in order if r % 2 == 0 else order[::-1]:
            t = time.perf_counter()
            run(model)
            times[name].append(time.perf_counter() - t)
    # On a shared machine: the best run is the least disturbed one, and each round's ratio compares two
    # neighbouring runs; both are printed with the medians.
    base_t = times["keep 1.0"]
    for name in models:
        t = times[name]
        paired = statistics.median(b / x for b, x in zip(base_t, t))
        print(
            f"{name}: {1 / statistics.median(t):.3f} clips/s median, {1 / min(t):.3f} best "
            f"(runs {', '.join(f'{x:.2f}' for x in t)} s) | {flops[name]:.1f} GFLOPs | vs keep 1.0: "
            f"{statistics.median(base_t) / statistics.median(t):.2f}x median, {min(base_t) / min(t):.2f}x best, "
            f"{paired:.2f}x median of paired rounds, {100 * (flops[name] / flops['keep 1.0'] - 1):+.0f} % GFLOPs"
        )


if __name__ == "__main__":
    main()
