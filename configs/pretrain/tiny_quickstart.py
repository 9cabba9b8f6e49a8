"""The quick start's MAE pretraining: configs/pretrain/tiny.py on an unlabelled set, with the paper's loss.

    python datasets/make_tiny_ava.py --root datasets/tiny_ava_unlabelled --videos-only --seed 1 --num-train-videos 48
    python tools/pretrain_mae.py --config-file configs/pretrain/tiny_quickstart.py --videos datasets/tiny_ava_unlabelled/videos

Same tiny ViT, clips, tube masking (90 %), optimizer and lr as tiny.py, so its checkpoint loads into
configs/ava/tiny.py. Differs from tiny.py where the measurements of docs/quickstart.md say it matters:
  * per-cube normalised targets (``norm_pix_loss=True``, the paper's loss). With tiny.py's raw [0, 1]
    targets the model learns to paint the background (90 % tube masking hides most figures entirely)
    and fine-tuning from its encoder was clearly worse than from a random initialisation;
  * 1200 iterations (~2 min on 2 CPU cores): longer pretraining (2400) or a 3-block decoder made the
    fine-tuned detector worse, not better, at this scale (docs/quickstart.md, "What was measured").
Its reconstruction pictures draw the predicted (normalised) cubes with the original cube's mean and std,
as the official visualisation does (vmae_det/engine/mae_visualization.py).
"""
from .tiny import dataloader, lr_multiplier, model, optimizer, train

model.norm_pix_loss = True
train.update(
    output_dir="./output/pretrain_tiny_quickstart",
    max_iter=1200,
    checkpointer=dict(period=600, max_to_keep=2),
)
