"""Run the action detector on batches of keyframe clips.

:class:`ActionPredictor` owns the model and the clip geometry from its config (frames per clip,
sampling stride, test short side). It turns full-resolution frames and absolute person boxes into
the model's ``list[dict]`` input (docs/architecture.md) and returns per-box action scores.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

import cv2
import numpy as np
import torch
from torch import nn

__all__ = ["ClipRequest", "ActionPredictor"]

logger = logging.getLogger(__name__)

# Where the clip geometry may live in a config's test data section, by name (first match wins).
_GEOMETRY_KEYS = {
    "num_frames": ("num_frames", "clip_len", "frames_per_clip"),
    "sampling_rate": ("sampling_rate", "frame_stride", "stride"),
    "test_short_side": ("test_short_side", "short_edge", "short_side", "min_size_test"),
}


@dataclass
class ClipRequest:
    """One keyframe to classify.

    Attributes:
        clip: uint8 ``[3, T, h, w]`` clip already resized to the model's test short side.
        boxes: float32 ``[N, 4]`` absolute xyxy boxes in *frame* pixels.
        box_scores: float32 ``[N]`` person scores.
        frame_size: ``(H, W)`` of the original frames.
        video_id, timestamp: passed through to the model.
    """

    clip: torch.Tensor
    boxes: np.ndarray
    box_scores: np.ndarray
    frame_size: tuple
    video_id: str = ""
    timestamp: int = 0


class ActionPredictor:
    """Batched inference of an AVA action detector on keyframe clips.

    Args:
        model: a module taking ``list[dict]`` and returning ``[{"boxes", "scores"}]`` in eval mode.
        num_frames: frames per clip (T); sampling_rate: stride between them (tau).
        test_short_side: clips are resized so their short side has this length (None: keep).
        class_names: ``{action_id: name}`` for ids ``1..C``.
        device: where to run (default: CUDA when available, else CPU).
    """

    def __init__(self, model: nn.Module, num_frames: int, sampling_rate: int,
                 test_short_side: Optional[int] = None, class_names: Optional[Dict[int, str]] = None,
                 device: Optional[str] = None) -> None:
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model = model.to(self.device).eval()
        self.num_frames = int(num_frames)
        self.sampling_rate = int(sampling_rate)
        self.test_short_side = int(test_short_side) if test_short_side else None
        self.class_names = dict(class_names or {})

    # ---- construction from a config + checkpoint -------------------------------------------
    @classmethod
    def from_config(cls, config_file: str, checkpoint: Optional[str], opts: Sequence[str] = (),
                    device: Optional[str] = None, labelmap: Optional[str] = None,
                    dataset: Optional[str] = None) -> "ActionPredictor":
        """Build the model of ``config_file`` (strict keys, ``opts`` as ``key=value``) and load ``checkpoint``.

        Action names come from ``labelmap`` (AVA ``.pbtxt``), else from the metadata of ``dataset``
        (default: the config's first test dataset), else ``"action <id>"``.
        """
        from detectron2.checkpoint import DetectionCheckpointer
        from detectron2.config import instantiate

        from vmae_det.config import load_config

        from .labels import action_names

        cfg = load_config(config_file, list(opts))
        model = instantiate(cfg.model)
        if checkpoint:
            # DetectionCheckpointer reads .pth with torch.load(weights_only=True) semantics in
            # recent torch; a missing file is an error, not silently random weights.
            import os

            if not os.path.isfile(checkpoint):
                raise FileNotFoundError(f"action-model checkpoint '{checkpoint}' does not exist")
            DetectionCheckpointer(model).load(checkpoint)
        else:
            logger.warning("no --checkpoint: the action model has random weights")
        geometry = clip_geometry_from_config(cfg, config_file)
        num_classes = _num_classes(model, cfg)
        if dataset is None:
            dataset = _first_test_dataset(cfg)
        names = action_names(num_classes, label_map=labelmap, dataset=dataset)
        return cls(model, class_names=names, device=device, **geometry)

    # ---- inference -------------------------------------------------------------------------
    def prepare_clip(self, frames: Sequence[np.ndarray]) -> torch.Tensor:
        """Stack RGB ``[H, W, 3]`` frames into uint8 ``[3, T, h, w]`` at the test short side."""
        h, w = frames[0].shape[:2]
        size = self.clip_size(h, w)
        if size != (h, w):
            frames = [cv2.resize(f, (size[1], size[0]), interpolation=cv2.INTER_LINEAR) for f in frames]
        clip = torch.from_numpy(np.stack(frames))  # [T, h, w, 3]
        return clip.permute(3, 0, 1, 2).contiguous()

    def clip_size(self, height: int, width: int) -> tuple:
        if not self.test_short_side:
            return height, width
        scale = self.test_short_side / min(height, width)
        return int(round(height * scale)), int(round(width * scale))

    @torch.no_grad()
    def __call__(self, requests: Sequence[ClipRequest]) -> List[np.ndarray]:
        """Scores float32 ``[N_i, C]`` per request (column ``k`` <-> action id ``k + 1``)."""
        inputs: List[Dict[str, Any]] = []
        for r in requests:
            clip_h, clip_w = r.clip.shape[-2:]
            frame_h, frame_w = r.frame_size
            scale = np.array([clip_w / frame_w, clip_h / frame_h] * 2, dtype=np.float32)
            inputs.append({
                "clip": r.clip.to(self.device),
                "boxes": torch.from_numpy(np.asarray(r.boxes, np.float32) * scale).to(self.device),
                "box_scores": torch.from_numpy(np.asarray(r.box_scores, np.float32)).to(self.device),
                "video_id": r.video_id,
                "timestamp": int(r.timestamp),
                "clip_size": (int(clip_h), int(clip_w)),
            })
        outputs = self.model(inputs)
        results = []
        for r, out in zip(requests, outputs):
            scores = out["scores"].float().cpu().numpy()
            if scores.shape[0] != len(r.boxes):
                raise RuntimeError(f"model returned {scores.shape[0]} score rows for {len(r.boxes)} boxes")
            results.append(scores)
        return results


def _find_key(node: Any, names: Sequence[str]) -> Optional[Any]:
    """Depth-first search of a (Omega)config subtree for the first key in ``names``."""
    from omegaconf import DictConfig

    if isinstance(node, (dict, DictConfig)):
        for name in names:
            if name in node and not isinstance(node[name], (dict, DictConfig)):
                return node[name]
        for key in node.keys():
            found = _find_key(node[key], names)
            if found is not None:
                return found
    return None


def clip_geometry_from_config(cfg: Any, source: str = "config") -> Dict[str, int]:
    """``num_frames``, ``sampling_rate`` and ``test_short_side`` from the config's test data section."""
    test = cfg.get("dataloader", {}).get("test", None) if hasattr(cfg, "get") else None
    geometry: Dict[str, int] = {}
    for field, names in _GEOMETRY_KEYS.items():
        value = _find_key(test, names) if test is not None else None
        if value is None and field != "test_short_side":
            raise KeyError(f"{source}: cannot find {field} (any of {names}) under dataloader.test")
        geometry[field] = value
    return geometry


def _num_classes(model: nn.Module, cfg: Any) -> int:
    for owner in (model, getattr(model, "head", None)):
        if owner is not None and isinstance(getattr(owner, "num_classes", None), int):
            return owner.num_classes
    found = _find_key(cfg.model, ("num_classes",))
    if found is None:
        raise KeyError("cannot find num_classes on the model or in cfg.model")
    return int(found)


def _first_test_dataset(cfg: Any) -> Optional[str]:
    names = _find_key(cfg.get("dataloader", {}).get("test", {}), ("names", "dataset_name", "name"))
    if isinstance(names, str):
        return names
    return None
