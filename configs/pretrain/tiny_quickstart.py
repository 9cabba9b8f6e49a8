"""The quick start's MAE pretraining: configs/pretrain/tiny.py on an unlabelled set, with the paper's loss.

    python datasets/make_tiny_ava.py --root datasets/tiny_ava_unlabelled --videos-only --seed 1 --num-train-videos 48
    python tools/pretrain_mae.py --config-file configs/pretrain/tiny_quickstart.py --videos datasets/tiny_ava_unlabelled/videos

Same tiny ViT, clips and tube masking (90 %) as tiny.py, so its checkpoint loads into configs/ava/tiny.py.
Differs from tiny.py where the measurements of docs/quickstart.md say it matters:
  * per-cube normalised targets (``norm_pix_loss=True``, the paper's loss). With raw [0, 1] targets the
    loss is dominated by where the figures are, which 90 % tube masking mostly hides: the model learns
    to paint the background, its encoder keeps colour and little else, and fine-tuning from it was worse
    than from a random initialisation (0.52-0.57 vs 0.64-0.68 frame-mAP, docs/quickstart.md);
  * longer and at a higher lr (the tiny model, batch 8, CPU minutes).
The reconstruction pictures draw the predicted (normalised) cubes with the original cube's mean and std,
as the official visualisation does (vmae_det/modeling/mae_reconstruction.py).
"""
from vmae_det.engine import scaled_lr

from .tiny import dataloader, lr_multiplier, model, optimizer, train

model.norm_pix_loss = True
optimizer.lr = scaled_lr(base_lr=0.15, batch_size=8)
train.update(
    output_dir="./output/pretrain_tiny_quickstart",
    max_iter=2000,
    checkpointer=dict(period=500, max_to_keep=2),
)
