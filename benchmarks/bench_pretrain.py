#!/usr/bin/env python
"""VideoMAE pretraining step time at a small config, with two side-by-side ratios from the same run:

(a) encoder forward+backward time at mask ratio 0.9 vs 0.0 (the encoder only sees visible tokens, so
    this should approach the token ratio 0.1 once attention dominates);
(b) full pretraining step time with SDPA attention vs the explicit-softmax path.

Timings are interleaved (A, B, A, B, ...) and the median is reported, so slow drifts of a shared machine
affect both sides alike. This is a benchmark, not a test: it prints numbers and asserts nothing.

    python benchmarks/bench_pretrain.py [--size tiny|small|base] [--frames 16] [--img-size 112] [--batch 2]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable, Dict, List

import torch

import vmae_det  # noqa: F401  (detectron2 shims)
from vmae_det.modeling import build_videomae
from vmae_det.modeling.masking import build_masking
from vmae_det.modeling.vit import set_attention_impl


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved_medians(
    fns: Dict[str, Callable[[], None]], iters: int, warmup: int, device: torch.device
) -> Dict[str, float]:
    """Median seconds per call of each function, measured in alternation."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: Dict[str, List[float]] = {k: [] for k in fns}
    for _ in range(iters):
        for name, fn in fns.items():
            _sync(device)
            t0 = time.perf_counter()
            fn()
            _sync(device)
            times[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="small", help="ViT size (tiny/small/base/large/huge)")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--img-size", type=int, default=112)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--amp", action="store_true", help="bf16 autocast (CUDA, or a CPU with AVX-512)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()

    device = torch.device(args.device)
    torch.manual_seed(0)
    model = build_videomae(args.size, encoder_kwargs=dict(img_size=args.img_size, num_frames=args.frames)).to(device)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    clips = torch.randint(0, 256, (args.batch, 3, args.frames, args.img_size, args.img_size), dtype=torch.uint8)
    batch = [{"clip": c} for c in clips]
    grid = model.encoder.grid_size
    x = ((clips.float() - model.pixel_mean.cpu()) / model.pixel_std.cpu()).to(device)
    masks = {
        r: build_masking("tube", grid, r)(args.batch, torch.Generator().manual_seed(0)).to(device) for r in (0.9, 0.0)
    }
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.amp)

    def step() -> None:
        with autocast:
            loss = model(batch, mask=masks[0.9])["loss_mae"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def encoder_step(ratio: float) -> Callable[[], None]:
        def run() -> None:
            with autocast:
                out = model.encoder.forward_tokens(x, masks[ratio])
            out.float().square().mean().backward()

        return run

    print(
        f"device={device} size={args.size} clip={args.frames}x{args.img_size}^2 batch={args.batch} "
        f"tokens={grid[0] * grid[1] * grid[2]} amp={args.amp} threads={torch.get_num_threads()}"
    )

    enc = interleaved_medians(
        {"mask 0.9": encoder_step(0.9), "mask 0.0": encoder_step(0.0)}, args.iters, args.warmup, device
    )
    print(
        f"encoder fwd+bwd: mask 0.9 {enc['mask 0.9'] * 1e3:.1f} ms, mask 0.0 {enc['mask 0.0'] * 1e3:.1f} ms, "
        f"ratio 0.9/0.0 = {enc['mask 0.9'] / enc['mask 0.0']:.3f}"
    )

    def with_impl(impl: str) -> Callable[[], None]:
        def run() -> None:
            set_attention_impl(model, impl)
            step()

        return run

    att = interleaved_medians({"sdpa": with_impl("sdpa"), "math": with_impl("math")}, args.iters, args.warmup, device)
    set_attention_impl(model, "sdpa")
    print(
        f"pretrain step (mask 0.9): sdpa {att['sdpa'] * 1e3:.1f} ms, explicit softmax {att['math'] * 1e3:.1f} ms, "
        f"ratio sdpa/explicit = {att['sdpa'] / att['math']:.3f}"
    )


if __name__ == "__main__":
    main()
