"""One VideoMAE pretraining step, ours against the official MCG-NJU model, same shapes, one run.

Step = per-cube-normalised targets of the masked cubes + encoder/decoder forward + MSE + backward +
AdamW, in fp32: ours is ``VideoMAE`` (``model(batch, mask=...)``); the official one is
``modeling_pretrain.pretrain_videomae_<size>_patch16_224`` with the target/loss code of its
``engine_for_pretraining.train_one_epoch``, reproduced here (einops ``rearrange``, unbiased std + 1e-6).
Timings are interleaved (official, ours, official, ...) and the medians compared, so a busy machine
slows both alike. Prints both medians and the speed-up; asserts nothing.

The official code is not part of this project: pass a checkout of https://github.com/MCG-NJU/VideoMAE
and a folder with ``timm==0.4.12`` and ``einops`` (``pip install --no-deps -t DIR timm==0.4.12 einops``):

    python benchmarks/bench_mae_step_official.py --official /path/to/VideoMAE --deps DIR \
        [--size small] [--batch 2] [--frames 16] [--img-size 224] [--iters 7]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

import vmae_det  # noqa: F401
from vmae_det.modeling import build_videomae
from vmae_det.modeling.masking import build_masking


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--official", required=True, help="MCG-NJU/VideoMAE checkout")
    ap.add_argument("--deps", required=True, help="folder holding timm 0.4.12 and einops")
    ap.add_argument("--size", default="small", choices=["small", "base"])
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--frames", type=int, default=16, choices=[16], help="the official builders fix 16")
    ap.add_argument("--img-size", type=int, default=224, choices=[224], help="the official builders fix 224")
    ap.add_argument("--iters", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=2)
    args = ap.parse_args()
    sys.path[:0] = [args.official, args.deps]
    import modeling_pretrain  # noqa: E402  (official)
    from einops import rearrange  # noqa: E402

    torch.manual_seed(0)
    official = getattr(modeling_pretrain, f"pretrain_videomae_{args.size}_patch16_224")(
        tubelet_size=2, drop_path_rate=0.0)
    ours = build_videomae(args.size, encoder_kwargs=dict(img_size=args.img_size, num_frames=args.frames))
    official.train()
    ours.train()
    opt_off = torch.optim.AdamW(official.parameters(), lr=1e-4)
    opt_ours = torch.optim.AdamW(ours.parameters(), lr=1e-4)
    grid = ours.encoder.grid_size
    clips = torch.randint(0, 256, (args.batch, 3, args.frames, args.img_size, args.img_size), dtype=torch.uint8)
    mask = build_masking("tube", grid, 0.9)(args.batch, torch.Generator().manual_seed(0))
    batch = [{"clip": c} for c in clips]
    mean = torch.tensor([0.485, 0.456, 0.406])[None, :, None, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[None, :, None, None, None]
    videos = (clips.float() / 255 - mean) / std  # the official loader's input
    p = 16

    def official_step() -> None:
        with torch.no_grad():
            unnorm = videos * std + mean
            squeeze = rearrange(unnorm, "b c (t p0) (h p1) (w p2) -> b (t h w) (p0 p1 p2) c", p0=2, p1=p, p2=p)
            norm = (squeeze - squeeze.mean(dim=-2, keepdim=True)) / (
                squeeze.var(dim=-2, unbiased=True, keepdim=True).sqrt() + 1e-6)
            patches = rearrange(norm, "b n p c -> b n (p c)")
            labels = patches[mask].reshape(args.batch, -1, patches.shape[-1])
        loss = torch.nn.functional.mse_loss(official(videos, mask), labels)
        opt_off.zero_grad()
        loss.backward()
        opt_off.step()

    def our_step() -> None:
        loss = ours(batch, mask=mask)["loss_mae"]
        opt_ours.zero_grad(set_to_none=True)
        loss.backward()
        opt_ours.step()

    fns = {"official": official_step, "ours": our_step}
    for fn in fns.values():
        for _ in range(args.warmup):
            fn()
    times = {k: [] for k in fns}
    for _ in range(args.iters):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"ViT-{args.size[0].upper()} batch {args.batch}, {args.frames}x{args.img_size}^2, mask 0.9 tube, fp32, "
          f"CPU threads {torch.get_num_threads()}")
    print(f"official {med['official'] * 1e3:.0f} ms, ours {med['ours'] * 1e3:.0f} ms, "
          f"speed-up {med['official'] / med['ours']:.2f}x")


if __name__ == "__main__":
    main()
