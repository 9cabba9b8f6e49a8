"""VideoMAE pretraining step on a GPU: bf16 + flash SDPA against fp16 + explicit-softmax attention (the
official VideoMAE setting), with activation checkpointing and ``torch.compile`` as measured options.

Each variant: ViT-B (default) 16x224, tube mask 0.9, forward + loss + backward + AdamW (fp16 with a
GradScaler, as the official code), median step time over interleaved rounds and peak
``torch.cuda.max_memory_allocated`` of a step in steady state. Prints one line per variant and the
ratios against the fp16/explicit baseline. Write the numbers, naming the card, in benchmarks/README.md.

    python benchmarks/bench_mae_gpu.py [--size base] [--batch 16] [--iters 10] [--variants ...]
    python benchmarks/bench_mae_gpu.py --device cpu --size tiny --batch 2 --iters 2   # smoke run, no GPU

On CPU there is no flash kernel or fp16 autocast worth measuring: the smoke run exercises the code paths
(bf16 autocast, SDPA's default kernel) and prints times that say nothing about GPUs.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time

import torch

import vmae_det  # noqa: F401
from vmae_det.modeling import build_videomae
from vmae_det.modeling.masking import build_masking
from vmae_det.modeling.vit import set_attention_impl

VARIANTS = {
    # name: (autocast dtype, attention impl, SDPA backend, activation checkpointing, torch.compile)
    "fp16+explicit": (torch.float16, "math", None, False, False),
    "bf16+flash": (torch.bfloat16, "sdpa", "flash", False, False),
    "bf16+flash+ckpt": (torch.bfloat16, "sdpa", "flash", True, False),
    "bf16+flash+compile": (torch.bfloat16, "sdpa", "flash", False, True),
}


def sdpa_backend(name, device):
    if name is None or device.type != "cuda":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([{"flash": SDPBackend.FLASH_ATTENTION}[name]])


def build(args, variant, device):
    dtype, impl, backend, ckpt, compile_ = VARIANTS[variant]
    torch.manual_seed(0)
    model = (
        build_videomae(
            args.size, encoder_kwargs=dict(img_size=args.img_size, num_frames=args.frames, use_checkpoint=ckpt)
        )
        .to(device)
        .train()
    )
    set_attention_impl(model, impl)
    opt = torch.optim.AdamW(model.parameters(), lr=1.5e-4, betas=(0.9, 0.95))
    scaler = torch.amp.GradScaler(device.type) if dtype is torch.float16 and device.type == "cuda" else None
    forward = torch.compile(model) if compile_ else model
    clips = torch.randint(0, 256, (args.batch, 3, args.frames, args.img_size, args.img_size), dtype=torch.uint8)
    batch = [{"clip": c.to(device)} for c in clips]
    mask = build_masking("tube", model.encoder.grid_size, 0.9)(args.batch, torch.Generator().manual_seed(0)).to(device)
    use_amp = device.type == "cuda" or dtype is torch.bfloat16

    def step():
        with torch.autocast(device.type, dtype=dtype, enabled=use_amp), sdpa_backend(backend, device):
            loss = forward(batch, mask=mask)["loss_mae"]
        opt.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()

    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--size", default="base")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--frames", type=int, default=16)
    ap.add_argument("--img-size", type=int, default=224)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = ap.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: no CUDA device; use --device cpu --size tiny for a smoke run")
    steps, peaks = {}, {}
    for v in args.variants:
        steps[v] = build(args, v, device)
        for _ in range(args.warmup):
            steps[v]()
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            steps[v]()
            torch.cuda.synchronize()
            peaks[v] = torch.cuda.max_memory_allocated() / 2**30
    times = {v: [] for v in args.variants}
    for _ in range(args.iters):  # interleaved rounds: drifts hit every variant alike
        for v in args.variants:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            steps[v]()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times[v].append(time.perf_counter() - t0)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU (smoke run)"
    print(
        f"{name}: ViT-{args.size} batch {args.batch}, {args.frames}x{args.img_size}^2, mask 0.9, "
        f"torch {torch.__version__}"
    )
    base = args.variants[0]
    for v in args.variants:
        med = statistics.median(times[v])
        mem = f", peak {peaks[v]:.2f} GiB ({peaks[v] / peaks[base]:.2f}x)" if v in peaks else ""
        print(f"  {v:20s} {med * 1e3:8.1f} ms/step ({statistics.median(times[base]) / med:.2f}x speed){mem}")


if __name__ == "__main__":
    main()
