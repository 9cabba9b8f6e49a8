"""Run the action detector on batches of keyframe clips, exactly as the evaluation does (one module: the
clip settings and the model are read from one config together).

:class:`ActionPredictor` owns the model and the evaluation's test-time clip settings: frames per
clip, sampling stride, clip offset and the test augmentations (detectron2 augmentations, for AVA
``build_ava_test_augmentations``: OpenCV short-side resize). ``from_config`` takes all of them from
the config's test mapper (``dataloader.test.mapper``), the object the evaluation builds its clips
with, and frames and person boxes go through the evaluation's own
``vmae_det.data.transforms.apply_augmentations_to_clip``; so on the same frames and boxes the demo's
scores are the evaluation's (``tests/demo/test_demo_predictor.py::test_demo_scores_equal_the_evaluation_scores``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from vmae_det.constants import AVA_FPS, default_device
from vmae_det.data.ava.clip_source import clip_indices
from vmae_det.data.transforms import (
    ShortSideResize,
    apply_augmentations_to_clip,
    build_ava_test_augmentations,
    clip_boxes_to_image,
)

__all__ = [
    "ClipRequest",
    "ActionPredictor",
    "FrameTransform",
    "DemoConfigError",
    "DemoModelError",
    "clip_settings_from_config",
    "TEST_MAPPER_KEY",
    "MODEL_FPS",
]

logger = logging.getLogger(__name__)

#: Where a config keeps the evaluation's clip settings.
TEST_MAPPER_KEY = "dataloader.test.mapper"
#: The frame rate training and evaluation clips are sampled at: AVA's (and the custom datasets', which
#: are converted to it); the evaluation's ``keyframe_index`` assumes it.
MODEL_FPS = float(AVA_FPS)


class DemoConfigError(KeyError):
    """A config lacks what the demo needs; the message names the config file and the key."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


class DemoModelError(ValueError):
    """The action model gave unusable output (non-finite scores); the message names keyframe and weights."""


@dataclass
class ClipRequest:
    """One keyframe to classify, in the model's input space (see :meth:`ActionPredictor.make_request`).

    Attributes:
        clip: uint8 ``[3, T, h, w]`` clip after the test augmentations.
        boxes: float32 ``[N, 4]`` absolute xyxy boxes in *clip* pixels (transformed with the clip).
        box_scores: float32 ``[N]`` person scores.
        video_id, timestamp: passed through to the model.
    """

    clip: torch.Tensor
    boxes: np.ndarray
    box_scores: np.ndarray
    video_id: str = ""
    timestamp: int = 0


class FrameTransform:
    """The test transform of one frame size, applied frame by frame as frames are decoded.

    ``apply_augmentations_to_clip`` samples the augmentations once on a clip's first frame and applies
    the resulting transform to every frame with ``apply_image`` and to the boxes with ``apply_box``
    (then clips them to the output). When that transform does not depend on the frame's content or
    on chance (:meth:`ActionPredictor.frame_transform` decides), it is the same for every clip of a
    video, so the demo can shrink each frame to the model's size once, when it is decoded, and keep
    only that copy for the clips: ``clip(frames) == stack([apply(f) for f in frames])`` and
    ``boxes(b)`` equals the boxes ``apply_augmentations_to_clip`` returns, bit for bit
    (``tests/demo/test_demo_predictor.py::test_demo_scores_equal_the_evaluation_scores``).
    """

    def __init__(self, augmentations: Sequence[Any], height: int, width: int) -> None:
        from detectron2.data import transforms as T

        self.height, self.width = int(height), int(width)
        probe = T.AugInput(np.zeros((self.height, self.width, 3), np.uint8))
        self.transform = T.AugmentationList(list(augmentations))(probe)
        self.out_height, self.out_width = int(probe.image.shape[0]), int(probe.image.shape[1])

    def apply(self, frame: np.ndarray) -> np.ndarray:
        """One RGB ``[H, W, 3]`` frame in the model's input size ``[h, w, 3]``."""
        return self.transform.apply_image(frame)

    def boxes(self, boxes: np.ndarray) -> np.ndarray:
        """Absolute xyxy frame boxes -> float32 ``[N, 4]`` clip boxes, clipped to the clip."""
        boxes = self.transform.apply_box(np.asarray(boxes, np.float32).reshape(-1, 4))
        return clip_boxes_to_image(boxes, self.out_height, self.out_width)


#: Augmentations :meth:`ActionPredictor.frame_transform` knows to be the same for every frame.
def _deterministic(aug: Any) -> bool:
    from fvcore.transforms.transform import Transform

    if isinstance(aug, ShortSideResize):
        return aug.short_edge[0] == aug.short_edge[1]
    return isinstance(aug, Transform)  # a fixed transform (a NoOpTransform, a given resize, ...)


class ActionPredictor:
    """Batched inference of an AVA action detector on keyframe clips.

    Args:
        model: a module taking ``list[dict]`` and returning ``[{"boxes", "scores"}]`` in eval mode.
        num_frames: frames per clip (T); sampling_rate: stride between them (tau).
        clip_offset: frames added to every clip index (``vmae_det.data.ava.clip_source.clip_indices``).
        augmentations: detectron2 test augmentations applied to frames and boxes together (as the
            evaluation's ``AVAClipMapper``). Default: ``build_ava_test_augmentations(test_short_side)``
            when ``test_short_side`` is given, else none (frames kept as they are).
        test_short_side: shortcut for the default augmentations (ignored when ``augmentations`` is given).
        class_names: ``{action_id: name}`` for ids ``1..C``.
        device: where to run (default: CUDA when available, else CPU).
        model_fps: the frame rate the model's training clips were sampled at (``MODEL_FPS`` = 30 for AVA
            and custom datasets); the demo resamples clips of videos at other rates to it.
        checkpoint: the weights file, named in error messages.
        single_label: the model scores one action per person (softmax): the demo draws one label per track.
    """

    def __init__(
        self,
        model: nn.Module,
        num_frames: int,
        sampling_rate: int,
        clip_offset: int = 0,
        augmentations: Optional[Sequence[Any]] = None,
        test_short_side: Optional[int] = None,
        class_names: Optional[Dict[int, str]] = None,
        device: Optional[str] = None,
        model_fps: float = MODEL_FPS,
        checkpoint: Optional[str] = None,
        single_label: bool = False,
    ) -> None:
        import math

        if not math.isfinite(float(model_fps)) or float(model_fps) <= 0:
            raise ValueError(f"model fps must be a finite number > 0, got {model_fps}")
        self.model_fps = float(model_fps)
        self.checkpoint = checkpoint
        self.device = torch.device(device or default_device())
        self.model = model.to(self.device).eval()
        self.num_frames = int(num_frames)
        self.sampling_rate = int(sampling_rate)
        self.clip_offset = int(clip_offset)
        if self.num_frames < 1 or self.sampling_rate < 1:
            raise ValueError(f"bad clip geometry: num_frames={num_frames}, sampling_rate={sampling_rate}")
        if augmentations is None:
            augmentations = build_ava_test_augmentations(int(test_short_side)) if test_short_side else []
        self.augmentations = list(augmentations)
        self.class_names = dict(class_names or {})
        self.single_label = bool(single_label)

    @property
    def test_short_side(self) -> Optional[int]:
        """The fixed short side of a ``ShortSideResize`` among the augmentations, else ``None``.

        Only a nominal size for tools that need one without frames (ONNX export); clips are always
        sized by the augmentations themselves (:meth:`clip_size`).
        """
        for aug in self.augmentations:
            if isinstance(aug, ShortSideResize) and aug.short_edge[0] == aug.short_edge[1]:
                return int(aug.short_edge[0])
        return None

    # ---- construction from a config + checkpoint -------------------------------------------
    @classmethod
    def from_config(
        cls,
        config_file: str,
        checkpoint: str,
        opts: Sequence[str] = (),
        device: Optional[str] = None,
        labelmap: Optional[str] = None,
        dataset: Optional[str] = None,
        model_fps: Optional[float] = None,
    ) -> "ActionPredictor":
        """Build the model of ``config_file`` (strict keys, ``opts`` as ``key=value``) with the trained weights
        of ``checkpoint`` (a file or ``hf://ORG/NAME[@REVISION]/FILE``), as the evaluation loads them
        (:func:`vmae_det.checkpoints.build_trained_model`).

        Clip settings and test augmentations come from the config's ``dataloader.test.mapper``
        (:func:`clip_settings_from_config`). Action names come from ``labelmap`` (AVA ``.pbtxt``), else the
        metadata of ``dataset``, else the checkpoint, else the config's first test dataset
        (:func:`vmae_det.demo.labels.action_names`). ``model_fps`` (default: the rate the checkpoint was
        trained at, else ``MODEL_FPS``) is the rate clips are sampled at.
        """
        from vmae_det.checkpoints import build_trained_model, locate_checkpoint
        from vmae_det.config import load_config
        from vmae_det.data.catalog_names import check_dataset_name
        from vmae_det.resources import check_device

        from .labels import action_names, single_label_model

        if not checkpoint:
            raise ValueError(
                "the demo needs trained action-detector weights: pass a checkpoint "
                "(random weights would give meaningless labels)"
            )
        # Names before anything is built: a wrong device or an unknown dataset is an error, not a fallback.
        check_device(device, "--device")
        if dataset is not None:
            check_dataset_name(dataset, "--dataset")
        checkpoint = locate_checkpoint(checkpoint, "checkpoint")  # hf:// resolved here, once
        cfg = load_config(config_file, list(opts))
        settings = clip_settings_from_config(cfg, config_file)
        model = build_trained_model(cfg, checkpoint)
        if model_fps is None:
            trained_fps = model.weights_clip_fps
            model_fps = trained_fps or MODEL_FPS
            logger.info(f"clips sampled at {model_fps:g} fps ({'the checkpoint' if trained_fps else 'AVA'}'s rate)")
        names = action_names(
            _num_classes(model, cfg, config_file),
            label_map=labelmap,
            dataset=dataset or _first_test_dataset(cfg),
            checkpoint_names=model.weights_class_names,
            checkpoint=checkpoint,
            dataset_first=dataset is not None,
        )
        settings["single_label"] = single_label_model(model, dataset or _first_test_dataset(cfg))
        return cls(model, class_names=names, device=device, model_fps=model_fps, checkpoint=checkpoint, **settings)

    # ---- clips -------------------------------------------------------------------------------
    def clip_indices(self, keyframe_frame: int, video_length: int) -> List[int]:
        """Frame indices of the clip of ``keyframe_frame``: the evaluation's ``clip_indices``."""
        return [
            int(i)
            for i in clip_indices(keyframe_frame, self.num_frames, self.sampling_rate, video_length, self.clip_offset)
        ]

    def prepare_clip(
        self, frames: Sequence[np.ndarray], boxes: Optional[np.ndarray] = None
    ) -> Tuple[torch.Tensor, Optional[np.ndarray]]:
        """The evaluation's test transform of RGB ``[H, W, 3]`` frames and absolute frame boxes.

        Returns uint8 ``[3, T, h, w]`` and the boxes float32 ``[N, 4]`` in clip pixels (clipped to
        the clip; ``None`` when no boxes are given), computed by
        ``apply_augmentations_to_clip(self.augmentations, frames, boxes)`` as in ``AVAClipMapper``.
        """
        frames = np.ascontiguousarray(np.stack(list(frames)))
        if boxes is not None:
            boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        out, out_boxes = apply_augmentations_to_clip(self.augmentations, frames, boxes)
        clip = torch.from_numpy(out).permute(3, 0, 1, 2).contiguous()  # [3, T, h, w]
        return clip, out_boxes

    def make_request(
        self,
        frames: Sequence[np.ndarray],
        boxes: np.ndarray,
        box_scores: np.ndarray,
        video_id: str = "",
        timestamp: int = 0,
    ) -> ClipRequest:
        """A :class:`ClipRequest` from the clip's frames and absolute person boxes in frame pixels."""
        clip, clip_boxes = self.prepare_clip(frames, boxes)
        return ClipRequest(clip, clip_boxes, np.asarray(box_scores, np.float32).reshape(-1), video_id, int(timestamp))

    def frame_transform(self, height: int, width: int) -> Optional[FrameTransform]:
        """The test transform of ``height x width`` frames as a :class:`FrameTransform`, when it can be
        applied to frames one by one as they are decoded with the same result as on whole clips:
        every augmentation is a fixed-size ``ShortSideResize`` (the AVA test transform) or a fixed
        detectron2 ``Transform``. ``None`` otherwise (e.g. a random short side, a random crop): the
        clip must then be transformed as a whole (:meth:`make_request` on full frames)."""
        if not all(_deterministic(a) for a in self.augmentations):
            return None
        return FrameTransform(self.augmentations, height, width)

    def make_request_from_transformed(
        self,
        frames: Sequence[np.ndarray],
        transform: FrameTransform,
        boxes: np.ndarray,
        box_scores: np.ndarray,
        video_id: str = "",
        timestamp: int = 0,
    ) -> ClipRequest:
        """:meth:`make_request` for frames already passed through ``transform`` (:meth:`frame_transform`),
        with the person boxes still in pixels of the full frames. Same clip and boxes, bit for bit."""
        clip = torch.from_numpy(np.ascontiguousarray(np.stack(list(frames)))).permute(3, 0, 1, 2).contiguous()
        return ClipRequest(
            clip, transform.boxes(boxes), np.asarray(box_scores, np.float32).reshape(-1), video_id, int(timestamp)
        )

    def clip_size(self, height: int, width: int) -> Tuple[int, int]:
        """``(h, w)`` of the clips made from ``height x width`` frames."""
        if not self.augmentations:
            return int(height), int(width)
        out, _ = apply_augmentations_to_clip(self.augmentations, np.zeros((1, height, width, 3), np.uint8))
        return int(out.shape[1]), int(out.shape[2])

    # ---- inference -------------------------------------------------------------------------
    @torch.no_grad()
    def __call__(self, requests: Sequence[ClipRequest]) -> List[np.ndarray]:
        """Scores float32 ``[N_i, C]`` per request (column ``k`` <-> action id ``k + 1``)."""
        inputs: List[Dict[str, Any]] = []
        for r in requests:
            clip_h, clip_w = r.clip.shape[-2:]
            inputs.append(
                {
                    "clip": r.clip.to(self.device),
                    "boxes": torch.from_numpy(np.asarray(r.boxes, np.float32).reshape(-1, 4)).to(self.device),
                    "box_scores": torch.from_numpy(np.asarray(r.box_scores, np.float32)).to(self.device),
                    "video_id": r.video_id,
                    "timestamp": int(r.timestamp),
                    "clip_size": (int(clip_h), int(clip_w)),
                }
            )
        try:
            outputs = self.model(inputs)
        except ArithmeticError as e:  # e.g. a model refusing non-finite values with FloatingPointError
            raise DemoModelError(f"the action model failed on {self._where(requests)}: {e}{self._weights()}") from e
        results = []
        for r, out in zip(requests, outputs):
            scores = out["scores"].float().cpu().numpy()
            if scores.shape[0] != len(r.boxes):
                raise RuntimeError(f"model returned {scores.shape[0]} score rows for {len(r.boxes)} boxes")
            if not np.isfinite(scores).all():
                bad = int((~np.isfinite(scores)).sum())
                raise DemoModelError(
                    f"the action model returned {bad} non-finite (NaN/inf) score(s) for "
                    f"{self._where([r])}{self._weights()}"
                )
            results.append(scores)
        return results

    def _where(self, requests: Sequence[ClipRequest]) -> str:
        keys = ", ".join(f"'{r.video_id}' second {r.timestamp}" for r in requests[:3])
        return f"keyframe(s) {keys}{', ...' if len(requests) > 3 else ''}"

    def _weights(self) -> str:
        return (
            f"; are the weights in '{self.checkpoint}' broken (NaN/inf)?"
            if self.checkpoint
            else "; are the model's weights broken (NaN/inf)?"
        )


def clip_settings_from_config(cfg: Any, source: str = "config") -> Dict[str, Any]:
    """The evaluation's clip settings from ``cfg.dataloader.test.mapper``.

    Reads ``num_frames``, ``sampling_rate``, ``clip_offset`` (0 when absent, as ``AVAClipMapper``'s
    default) and instantiates ``augmentations``. Returns the matching :class:`ActionPredictor`
    keyword arguments. Raises :class:`DemoConfigError` (a ``KeyError``) naming ``source`` (the config
    file) and the missing key.
    """
    from detectron2.config import instantiate
    from omegaconf import OmegaConf

    why = (
        "the demo builds its clips with the evaluation's test settings "
        f"({TEST_MAPPER_KEY}.num_frames, .sampling_rate, .clip_offset, .augmentations)"
    )
    mapper = OmegaConf.select(cfg, TEST_MAPPER_KEY, default=None) if OmegaConf.is_config(cfg) else None
    if mapper is None:
        raise DemoConfigError(f"{source}: no '{TEST_MAPPER_KEY}': {why}")
    settings: Dict[str, Any] = {}
    for key in ("num_frames", "sampling_rate", "augmentations"):
        if mapper.get(key, None) is None:
            raise DemoConfigError(f"{source}: missing '{TEST_MAPPER_KEY}.{key}': {why}")
    settings["num_frames"] = int(mapper.num_frames)
    settings["sampling_rate"] = int(mapper.sampling_rate)
    settings["clip_offset"] = int(mapper.get("clip_offset", 0) or 0)
    augs = instantiate(mapper.augmentations)
    # A list of LazyCalls instantiates to a ListConfig of objects; a builder call to a list.
    settings["augmentations"] = list(augs) if hasattr(augs, "__iter__") else [augs]
    return settings


def _num_classes(model: nn.Module, cfg: Any, source: str) -> int:
    for owner in (model, getattr(model, "head", None)):
        if owner is not None and isinstance(getattr(owner, "num_classes", None), int):
            return owner.num_classes
    found = cfg.model.get("num_classes", None)
    if found is None:
        raise DemoConfigError(f"{source}: the model has no num_classes attribute and cfg.model.num_classes is not set")
    return int(found)


def _first_test_dataset(cfg: Any) -> Optional[str]:
    from omegaconf import OmegaConf

    names = OmegaConf.select(cfg, "dataloader.test.dataset.names", default=None)
    if isinstance(names, str):
        return names
    if names is not None and len(names) and isinstance(names[0], str):
        return names[0]
    return None
