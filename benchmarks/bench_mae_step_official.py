"""One VideoMAE pretraining step, ours against the official MCG-NJU model, each built as its recipe builds it.

The official side is what ``run_mae_pretraining.py`` builds when run by the ViT-S script
``scripts/kinetics/videomae_vit_small_patch16_224_tubemasking_ratio_0.9_epoch_1600/pretrain.sh``
(``--model pretrain_videomae_small_patch16_224 --decoder_depth 4 --mask_type tube --mask_ratio 0.9
--opt adamw --opt_betas 0.9 0.95``, the rest argparse defaults: ``--drop_path 0.0``, ``--normlize_target True``,
``--weight_decay 0.05``, ``--opt_eps 1e-8``, ``--lr 1.5e-4`` scaled by batch/256, ``--clip_grad None``):
``get_model(args)`` (``decoder_depth=4``, ``drop_path_rate=0.0``, ``drop_block_rate=None``,
``use_checkpoint=False``), ``optim_factory.create_optimizer(args, model)`` (AdamW over its no-decay/decay
groups, ``model.no_weight_decay()`` skipped) and one iteration of ``engine_for_pretraining.train_one_epoch``:
normalised targets (einops, unbiased std + 1e-6), forward, ``nn.MSELoss``, ``loss.item()``,
``zero_grad()``, and ``NativeScalerWithGradNormCount`` with ``clip_grad=None``: backward, the gradient norm
(``utils.get_grad_norm_``), ``step``. Its ``torch.cuda.amp.autocast`` and ``GradScaler`` are inactive on a
CPU, so the official step runs in fp32 there; ``utils`` itself is not importable on torch 2 (``torch._six``),
so ``get_grad_norm_`` is reproduced here line for line.

Ours is ``configs/pretrain/videomae_vit_s_k400_1600ep.py`` (the same script's recipe) instantiated:
``build_videomae(size="small", decoder_depth=4, mask_type="tube", mask_ratio=0.9, norm_pix_loss=True, ...)``
and its ``build_adamw`` optimizer, one step as ``vmae_det.engine.trainer`` runs it with ``clip_grad=0`` and
AMP off (fp32, like the official side on a CPU): forward + loss, backward, step.

Both see the same clips and the same tube mask. Timings are interleaved (official, ours, official, ...) and
the medians compared, so a busy machine slows both alike. Prints what each side mirrors, both medians and
the speed-up; asserts nothing. Options add contenders to the same interleaving, each its own copy of our model:
``--bf16``: ours under ``torch.autocast("cpu", bfloat16)``, as the trainer runs with ``train.amp.enabled=True``;
``--fused-adamw``: ours with ``torch.optim.AdamW(fused=True)`` over the same parameter groups (torch >= 2.4).

The official code is not part of this project: pass a checkout of https://github.com/MCG-NJU/VideoMAE
and a folder with ``timm==0.4.12`` and ``einops`` (``pip install --no-deps -t DIR timm==0.4.12 einops``):

    python benchmarks/bench_mae_step_official.py --official /path/to/VideoMAE --deps DIR \
        [--batch 2] [--iters 5] [--bf16] [--fused-adamw]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import os
import statistics
import sys
import time
import types
import warnings

import torch

import vmae_det  # noqa: F401
from vmae_det.modeling.masking import build_masking

SCRIPT = "scripts/kinetics/videomae_vit_small_patch16_224_tubemasking_ratio_0.9_epoch_1600/pretrain.sh"
OUR_CONFIG = "configs/pretrain/videomae_vit_s_k400_1600ep.py"
FRAMES, IMG = 16, 224


def _official_args(batch: int) -> types.SimpleNamespace:
    """run_mae_pretraining.py's argparse defaults overridden by SCRIPT's arguments (one process, ``batch`` clips)."""
    a = types.SimpleNamespace(
        # SCRIPT
        mask_type="tube",
        mask_ratio=0.9,
        model="pretrain_videomae_small_patch16_224",
        decoder_depth=4,
        batch_size=batch,
        num_frames=FRAMES,
        sampling_rate=4,
        opt="adamw",
        opt_betas=[0.9, 0.95],
        # argparse defaults
        input_size=IMG,
        drop_path=0.0,
        normlize_target=True,
        opt_eps=1e-8,
        clip_grad=None,
        momentum=0.9,
        weight_decay=0.05,
        lr=1.5e-4,
        use_checkpoint=False,
    )
    a.lr = a.lr * batch / 256  # main(): args.lr * total_batch_size / 256
    return a


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--official", required=True, help="MCG-NJU/VideoMAE checkout")
    ap.add_argument("--deps", required=True, help="folder holding timm 0.4.12 and einops")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--bf16", action="store_true", help="also time ours under CPU bf16 autocast")
    ap.add_argument("--fused-adamw", action="store_true", help="also time ours with AdamW(fused=True)")
    args = ap.parse_args()
    sys.path[:0] = [args.official, args.deps]
    warnings.filterwarnings("ignore")  # torch.cuda.amp.* on a CPU-only machine
    import modeling_pretrain  # noqa: E402,F401  (official; registers the timm models)
    from detectron2.config import LazyConfig, instantiate  # noqa: E402
    from einops import rearrange  # noqa: E402
    from optim_factory import create_optimizer  # noqa: E402  (official)
    from timm.models import create_model  # noqa: E402

    oa = _official_args(args.batch)
    torch.manual_seed(0)
    # run_mae_pretraining.get_model(args)
    official = create_model(
        oa.model,
        pretrained=False,
        drop_path_rate=oa.drop_path,
        drop_block_rate=None,
        decoder_depth=oa.decoder_depth,
        use_checkpoint=oa.use_checkpoint,
    )
    with contextlib.redirect_stdout(io.StringIO()):  # it prints every parameter's name
        opt_off = create_optimizer(oa, official)
    scaler = torch.cuda.amp.GradScaler()  # NativeScalerWithGradNormCount's; disabled without CUDA
    loss_func = torch.nn.MSELoss()

    cfg = LazyConfig.load(os.path.join(os.path.dirname(__file__), "..", OUR_CONFIG))
    ours = instantiate(cfg.model)
    cfg.optimizer.model = ours
    opt_ours = instantiate(cfg.optimizer)
    official.train()
    ours.train()
    assert len(official.decoder.blocks) == len(ours.decoder.blocks) == 4, "decoder depths differ"

    grid = ours.encoder.grid_size
    clips = torch.randint(0, 256, (args.batch, 3, FRAMES, IMG, IMG), dtype=torch.uint8)
    mask = build_masking("tube", grid, oa.mask_ratio)(args.batch, torch.Generator().manual_seed(0))
    batch = [{"clip": c} for c in clips]
    mean = torch.tensor([0.485, 0.456, 0.406])[None, :, None, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[None, :, None, None, None]
    videos = (clips.float() / 255 - mean) / std  # the official loader's input
    p = 16

    def get_grad_norm_(parameters, norm_type: float = 2.0) -> torch.Tensor:  # official utils.get_grad_norm_
        parameters = [p for p in parameters if p.grad is not None]
        device = parameters[0].grad.device
        return torch.norm(
            torch.stack([torch.norm(p.grad.detach(), norm_type).to(device) for p in parameters]), norm_type
        )

    def official_step() -> None:  # engine_for_pretraining.train_one_epoch, one iteration
        bool_masked_pos = mask.flatten(1).to(torch.bool)
        with torch.no_grad():
            unnorm = videos * std + mean
            squeeze = rearrange(unnorm, "b c (t p0) (h p1) (w p2) -> b (t h w) (p0 p1 p2) c", p0=2, p1=p, p2=p)
            norm = (squeeze - squeeze.mean(dim=-2, keepdim=True)) / (
                squeeze.var(dim=-2, unbiased=True, keepdim=True).sqrt() + 1e-6
            )
            patches = rearrange(norm, "b n p c -> b n (p c)")
            B, _, C = patches.shape
            labels = patches[bool_masked_pos].reshape(B, -1, C)
        with torch.cuda.amp.autocast():
            outputs = official(videos, bool_masked_pos)
            loss = loss_func(input=outputs, target=labels)
        loss.item()
        opt_off.zero_grad()
        scaler.scale(loss).backward()  # NativeScalerWithGradNormCount.__call__, clip_grad None
        scaler.unscale_(opt_off)
        get_grad_norm_(official.parameters())
        scaler.step(opt_off)
        scaler.update()

    def our_step_fn(model, opt, amp: bool = False):
        def step() -> None:  # vmae_det.engine.trainer, clip_grad 0
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
                loss = model(batch, mask=mask)["loss_mae"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        return step

    def copy_of_ours(fused: bool = False):
        model = copy.deepcopy(ours)
        cfg.optimizer.model = model
        opt = instantiate(cfg.optimizer)
        if fused:
            keep = ("params", "lr", "weight_decay", "lr_scale")
            groups = [{k: v for k, v in g.items() if k in keep} for g in opt.param_groups]
            d = opt.defaults
            opt = torch.optim.AdamW(groups, betas=d["betas"], eps=d["eps"], fused=True)
        return model, opt

    print(
        f"official: run_mae_pretraining.py as {SCRIPT} runs it: --model {oa.model} --decoder_depth "
        f"{oa.decoder_depth} --mask_type {oa.mask_type} --mask_ratio {oa.mask_ratio} --drop_path {oa.drop_path} "
        f"--normlize_target {oa.normlize_target} --opt {oa.opt} --opt_betas {' '.join(map(str, oa.opt_betas))} "
        f"--weight_decay {oa.weight_decay} --clip_grad {oa.clip_grad}; lr {oa.lr:.3g} (batch {args.batch}); "
        f"fp32 (its CUDA autocast/GradScaler are off on a CPU); {len(opt_off.param_groups)} param groups"
    )
    print(
        f"ours: {OUR_CONFIG}: decoder depth {len(ours.decoder.blocks)}, mask tube 0.9, norm_pix_loss, "
        f"build_adamw betas {tuple(cfg.optimizer.betas)}, weight decay {cfg.optimizer.weight_decay}, fp32"
    )
    fns = {"official": official_step, "ours": our_step_fn(ours, opt_ours)}
    if args.bf16:
        bf16_ok = torch.ops.mkldnn._is_mkldnn_bf16_supported()
        print(f"ours bf16: CPU capability {torch.backends.cpu.get_cpu_capability()}, oneDNN bf16 {bf16_ok}")
        fns["ours bf16"] = our_step_fn(*copy_of_ours(), amp=True)
    if args.fused_adamw:
        fns["ours fused AdamW"] = our_step_fn(*copy_of_ours(fused=True))
    load0 = os.getloadavg()[0]
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
    print(
        f"ViT-S batch {args.batch}, {FRAMES}x{IMG}^2, mask 0.9 tube, decoder depth 4 both, fp32, "
        f"CPU threads {torch.get_num_threads()}, load average {load0:.2f} at the start, "
        f"{os.getloadavg()[0]:.2f} at the end"
    )
    print(
        f"official {med['official'] * 1e3:.0f} ms, ours {med['ours'] * 1e3:.0f} ms, "
        f"speed-up {med['official'] / med['ours']:.2f}x"
    )
    for name in fns:
        if name not in ("official", "ours"):
            print(
                f"{name} {med[name] * 1e3:.0f} ms: {med['official'] / med[name]:.2f}x the official, "
                f"{med['ours'] / med[name]:.2f}x ours fp32"
            )


if __name__ == "__main__":
    main()
