"""Reconstruction pictures for VideoMAE pretraining: original, masked input and reconstruction of one clip.

With ``norm_pix_loss`` the model predicts only the pattern inside each cube, so masked cubes are drawn with the
original cube's mean and std, as the official ``run_videomae_vis.py`` does, and the row's label says so.
"""

from __future__ import annotations

import logging
import os
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from detectron2.engine import HookBase
from detectron2.utils import comm

from ..formats.atomic import atomic_save

__all__ = [
    "reconstruction_rows",
    "reconstruction_caption",
    "save_reconstruction_figure",
    "MAEReconstructionHook",
    "mae_reconstruction_hook",
]

logger = logging.getLogger(__name__)

MASK_GREY = 64.0  # masked cubes in the "masked" row: dark grey, distinct from typical mid-grey scenes
NORMALIZED_RECONSTRUCTION_LABEL = "reconstruction\n(masked cubes: predicted\nshape, original\nmean & std)"


def _as_clip_batch(batch: Union[torch.Tensor, Sequence[Dict]]) -> torch.Tensor:
    """A detectron2 batch (``list[dict]`` with ``"clip"``) or a tensor -> uint8 ``[B, 3, T, H, W]``."""
    if isinstance(batch, torch.Tensor):
        clips = batch if batch.dim() == 5 else batch[None]
    else:
        if len(batch) == 0:
            raise ValueError("cannot draw a reconstruction of an empty batch")
        clips = torch.stack([d["clip"] for d in batch])
    if clips.dim() != 5 or clips.shape[1] != 3:
        raise ValueError(f"clips must be [B, 3, T, H, W], got {list(clips.shape)}")
    return clips


@torch.no_grad()
def reconstruction_rows(model, batch, sample: int = 0, mask_seed: int = 0) -> Dict[str, np.ndarray]:
    """Float ``[T, H, W, 3]`` 0-255 ``"original"``, ``"masked"`` and ``"reconstruction"`` of clip ``sample``.

    The mask comes from a generator seeded with ``mask_seed``, not torch's global stream, so drawing a picture
    does not change the masks (and weights) of the training.
    """
    from ..modeling.mae_reconstruction import expand_token_mask, reconstruct_clips

    clips = _as_clip_batch(batch)[sample : sample + 1]
    was_training = model.training
    model.eval()
    try:
        video, mask, recon = reconstruct_clips(model, clips, generator=torch.Generator().manual_seed(mask_seed))
    finally:
        model.train(was_training)
    grid = model.token_grid(video)
    pixel_mask = expand_token_mask(mask, grid, model.tubelet_size, model.patch_size).bool()
    video, recon = video.float().cpu(), recon.float().cpu()
    pixel_mask = pixel_mask.cpu()
    masked = torch.where(pixel_mask, torch.full_like(video, MASK_GREY), video)
    # Visible cubes come from the input, whatever the model returned there.
    recon = torch.where(pixel_mask, recon, video)

    def to_frames(x: torch.Tensor) -> np.ndarray:
        return x[0].permute(1, 2, 3, 0).clamp(0, 255).numpy()  # [T, H, W, 3]

    return {"original": to_frames(video), "masked": to_frames(masked), "reconstruction": to_frames(recon)}


def reconstruction_caption(rows: Dict[str, np.ndarray]) -> str:
    """The caption printed on the picture: the share of the clip hidden and where each row's pixels come from."""
    hidden = float((rows["masked"] != rows["original"]).any(-1).mean())
    return (
        f"masked: the {100 * hidden:.0f} % of the clip the encoder never sees, in grey; reconstruction: "
        "the model's prediction in those cubes, the visible cubes copied from the input"
    )


def save_reconstruction_figure(
    model, batch, path: str, num_frames: int = 4, sample: int = 0, title: Optional[str] = None, mask_seed: int = 0
) -> str:
    """Write a PNG of original / masked / reconstructed frames of one clip of ``batch``.

    Args:
        batch: ``list[dict]`` with uint8 ``"clip"`` ``[3, T, H, W]``, or a uint8 ``[B, 3, T, H, W]`` tensor.
        num_frames: columns, spread evenly over the clip.
        mask_seed: the same seed gives the same mask, so pictures of successive checkpoints compare.
    """
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    rows = reconstruction_rows(model, batch, sample, mask_seed)
    labels = {
        "original": "original",
        "masked": "masked",
        "reconstruction": NORMALIZED_RECONSTRUCTION_LABEL
        if getattr(model, "norm_pix_loss", False)
        else "reconstruction",
    }
    t = rows["original"].shape[0]
    cols = np.unique(np.linspace(0, t - 1, max(1, min(num_frames, t))).round().astype(int))
    fig, axes = plt.subplots(3, len(cols), figsize=(2.0 * len(cols), 6.2), squeeze=False)
    for r, name in enumerate(("original", "masked", "reconstruction")):
        for c, frame_idx in enumerate(cols):
            ax = axes[r][c]
            ax.imshow(rows[name][frame_idx].astype(np.uint8))
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"frame {frame_idx}", fontsize=8)
            if c == 0:
                ax.set_ylabel(labels[name], fontsize=9 if name != "reconstruction" else 7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.text(0.5, 0.01, reconstruction_caption(rows), ha="center", va="bottom", fontsize=7, wrap=True)
    atomic_save(path, lambda tmp: fig.savefig(tmp, dpi=100))
    plt.close(fig)
    return path


class MAEReconstructionHook(HookBase):
    """Write ``reconstruction_<iter>.png`` into ``output_dir`` every ``period`` iterations and after the last.

    Args:
        period: iterations between pictures (``<= 0``: only at the end).
        dataset_batch: the batch drawn every time; None: the first batch of the trainer's data loader.
    """

    def __init__(self, period: int, dataset_batch: Optional[Union[torch.Tensor, List[Dict]]], output_dir: str):
        self._period = int(period)
        # Keep only the clip we draw, on the CPU, so the hook holds no loader/GPU memory.
        self._batch = None if dataset_batch is None else _as_clip_batch(dataset_batch)[:1].cpu()
        self._output_dir = output_dir
        self._last_written: Optional[int] = None
        self.written: List[str] = []

    def before_train(self) -> None:
        if self._batch is None:
            # Drawn on every process, not only the main one, so the processes' random streams stay alike.
            self._batch = _as_clip_batch(next(iter(self.trainer.data_loader)))[:1].cpu()

    def _model(self):
        model = self.trainer.model
        return getattr(model, "module", model)

    def _write(self, iteration: int) -> None:
        if not comm.is_main_process() or iteration == self._last_written or self._batch is None:
            return
        path = os.path.join(self._output_dir, f"reconstruction_{iteration:07d}.png")
        try:
            save_reconstruction_figure(self._model(), self._batch, path, title=f"iteration {iteration + 1}")
        except Exception:  # a picture must not stop a long pretraining run, but it must be visible
            logger.exception("MAEReconstructionHook: could not write %s", path)
            return
        self._last_written = iteration
        self.written.append(path)
        logger.info("Wrote reconstruction picture %s", path)

    def after_step(self) -> None:
        # Same iteration numbering as detectron2's PeriodicCheckpointer (model_<iter>.pth).
        it = self.trainer.iter
        if self._period > 0 and (it + 1) % self._period == 0 and it + 1 < self.trainer.max_iter:
            self._write(it)

    def after_train(self) -> None:
        # detectron2 leaves trainer.iter == max_iter only when training finished without an error.
        if self.trainer.iter >= self.trainer.max_iter:
            self._write(self.trainer.max_iter - 1)


def mae_reconstruction_hook(output_dir: str, vis_period: int = 0, checkpoint_period: int = 0) -> MAEReconstructionHook:
    """The hook as pretraining configs declare it in ``train.hooks``: a picture every ``vis_period`` iterations,
    else at every checkpoint, and at the end."""
    for name, value in (("vis_period", vis_period), ("checkpoint_period", checkpoint_period)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"mae_reconstruction_hook({name}={value!r}): expected an integer >= 0")
    return MAEReconstructionHook(vis_period or checkpoint_period, None, output_dir)
