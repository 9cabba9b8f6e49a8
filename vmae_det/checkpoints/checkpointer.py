"""detectron2's checkpointer with atomic saves.

fvcore's ``Checkpointer.save`` opens ``model_XXXXXXX.pth`` / ``model_final.pth`` for writing in place
(``O_TRUNC``) and ``last_checkpoint`` too: a kill during a save leaves a truncated checkpoint under its
final name (an earlier ``model_final.pth`` lost), and a full disk a truncated ``model_0000009.pth`` that
``last_checkpoint`` then names. :class:`AtomicCheckpointer` writes each to a temporary name in the same
folder and renames it after an fsync (:func:`vmae_det.formats.atomic.atomic_save`): a checkpoint file is
whole or absent, an earlier one of that name is kept until the new one is complete.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from detectron2.checkpoint import DetectionCheckpointer

from ..formats.atomic import atomic_save, atomic_write_text

__all__ = ["AtomicCheckpointer"]


class AtomicCheckpointer(DetectionCheckpointer):
    """``DetectionCheckpointer`` whose ``save`` and ``tag_last_checkpoint`` write atomically (local folders)."""

    def save(self, name: str, **kwargs: Any) -> None:
        if not self.save_dir or not self.save_to_disk:
            return
        data = {"model": self.model.state_dict()}
        for key, obj in self.checkpointables.items():
            data[key] = obj.state_dict()
        data.update(kwargs)
        basename = f"{name}.pth"
        save_file = os.path.join(self.save_dir, basename)
        assert os.path.basename(save_file) == basename, basename
        self.logger.info(f"Saving checkpoint to {save_file}")
        atomic_save(save_file, lambda tmp: torch.save(data, tmp))
        self.tag_last_checkpoint(basename)

    def tag_last_checkpoint(self, last_filename_basename: str) -> None:
        atomic_write_text(os.path.join(self.save_dir, "last_checkpoint"), last_filename_basename)
