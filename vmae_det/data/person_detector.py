"""Off-the-shelf COCO person detectors for proposals and the demo, one module: one interface, one weights check.

``build_person_detector(name, weights=None, ...)`` returns a callable
``detector(frame_rgb uint8 [H, W, 3]) -> (boxes float32 [K, 4] absolute xyxy, scores float32 [K])``
keeping only the COCO "person" class above ``score_threshold``.

Detectors: ``"torchvision"`` and ``"detectron2"`` Faster R-CNN R50-FPN, and ``"hog"`` (OpenCV's, no download;
when to prefer which: docs/person_detectors.md). Weights that do not fit the detector are refused rather than
used half-random, and no file is read with ``pickle.load`` (docs/bad_input.md).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Callable, Optional, Tuple

import numpy as np
import torch

__all__ = [
    "build_person_detector",
    "TorchvisionPersonDetector",
    "Detectron2PersonDetector",
    "HOGPersonDetector",
    "HOGUnavailableError",
    "DetectorWeightsError",
    "DetectorDownloadError",
    "DETECTORS",
]

logger = logging.getLogger(__name__)

DETECTORS = ("torchvision", "detectron2", "hog")
Detector = Callable[[np.ndarray], Tuple[np.ndarray, np.ndarray]]


class DetectorDownloadError(OSError):
    """The detector's weights could not be downloaded or read from the library's cache; the message names the
    URL, the tool's flag for a local weights file and the ``hog`` detector."""

    def __init__(
        self, what: str, url: str, reason: str, weights_flag: str = "--weights", detector_flag: str = "--detector"
    ) -> None:
        self.what, self.url, self.reason = what, url, reason
        self.weights_flag, self.detector_flag = weights_flag, detector_flag
        super().__init__(
            f"could not get the {what} ({reason}); is this machine offline? Download {url} elsewhere and pass "
            f"{weights_flag} PATH, or use {detector_flag} hog (nothing to download; docs/person_detectors.md)"
        )

    def for_flags(self, weights_flag: str, detector_flag: str) -> "DetectorDownloadError":
        """The same error naming another tool's flags (the demo's ``--person-weights``, ``--person-detector``)."""
        return DetectorDownloadError(self.what, self.url, self.reason, weights_flag, detector_flag)


def _offline_error(what: str, url: str, err: Exception) -> DetectorDownloadError:
    reason = " ".join(f"{type(err).__name__}: {err}".split())  # one line, whatever the library said
    return DetectorDownloadError(what, url, reason[:300])


class DetectorWeightsError(ValueError):
    """Person-detector weights that cannot be used (corrupt, unrelated, NaN/inf); the message names the file."""


def _check_weights_file(path: str) -> None:
    if not Path(path).is_file():
        raise FileNotFoundError(f"detector weights not found: {path}")
    if Path(path).stat().st_size == 0:
        raise DetectorWeightsError(f"{path}: the detector weights file is empty (0 bytes)")
    from vmae_det.checkpoints.files import verify_file_checksums

    try:
        verify_file_checksums(path)
    except ValueError as e:
        raise DetectorWeightsError(str(e)) from e


def _unreadable(path: str, err: Exception) -> DetectorWeightsError:
    text = str(err)
    if "Weights only load failed" in text:  # keep torch's reason, not its advice to load with weights_only=False
        m = re.search(r"WeightsUnpickler error:\s*(.+?)(?:\n\n|$)", text, re.S) or re.search(
            r"(Trying to load unsupported GLOBAL[^\n]*)", text
        )
        text = "refused by torch.load(weights_only=True): " + (
            m.group(1).split(". Please use")[0] if m else "not a weights-only checkpoint"
        )
    detail = " ".join(text.split())[:300]
    return DetectorWeightsError(
        f"{path}: cannot read the person-detector weights ({type(err).__name__}: {detail}); "
        "the file is corrupt or not a detector checkpoint"
    )


def _check_finite(model: torch.nn.Module, path: str) -> None:
    from vmae_det.checkpoints.files import CheckpointError, check_finite_weights

    try:
        check_finite_weights(model.state_dict(), f"{path}: person-detector weights")
    except CheckpointError as e:
        raise DetectorWeightsError(str(e)) from e


def _load_state_dict(path: str) -> dict:
    _check_weights_file(path)
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise _unreadable(path, e) from e
    if isinstance(sd, dict) and "model" in sd and isinstance(sd["model"], dict):
        sd = sd["model"]  # a training checkpoint {"model": ..., ...}
    if not isinstance(sd, dict):
        raise DetectorWeightsError(f"{path}: expected a state dict, got {type(sd).__name__}")
    return sd


def _read_detectron2_checkpoint(path: str) -> dict:
    """The dict ``DetectionCheckpointer._load_file`` would return for ``path`` (same conversions), read without
    ``pickle.load``: ``.pkl`` through :func:`vmae_det.formats.safe_pickle.load_pickle`, the rest with
    ``torch.load(weights_only=True)``."""
    _check_weights_file(path)
    if path.endswith(".pkl"):
        from vmae_det.formats.safe_pickle import UnsafePickleError, load_pickle

        try:
            data = load_pickle(path)
        except UnsafePickleError as e:
            raise DetectorWeightsError(" ".join(str(e).split())) from e
        except Exception as e:
            raise _unreadable(path, e) from e
        if not isinstance(data, dict):
            raise DetectorWeightsError(
                f"{path}: not a detectron2 checkpoint (the pickle holds a {type(data).__name__}, not a dict of weights)"
            )
        if "model" in data and "__author__" in data:  # detectron2 model-zoo format
            logger.info("Reading a file from '%s'", data["__author__"])
            return data
        if "blobs" in data:  # Caffe2 / Detectron1: detection models keep their weights under "blobs"
            data = data["blobs"]
        if not isinstance(data, dict):
            raise DetectorWeightsError(f"{path}: not a detectron2 checkpoint ('blobs' is a {type(data).__name__})")
        data = {k: v for k, v in data.items() if not str(k).endswith("_momentum")}
        return {"model": data, "__author__": "Caffe2", "matching_heuristics": True}
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise _unreadable(path, e) from e
    if path.endswith(".pyth"):  # pycls
        if not isinstance(loaded, dict) or not isinstance(loaded.get("model_state"), dict):
            raise DetectorWeightsError(f"{path}: a pycls .pyth checkpoint must hold 'model_state'")
        state = {k: v for k, v in loaded["model_state"].items() if not k.endswith("num_batches_tracked")}
        return {"model": state, "__author__": "pycls", "matching_heuristics": True}
    if isinstance(loaded, dict) and "model" not in loaded:
        loaded = {"model": loaded}
    return loaded


def _load_detectron2_weights(model: torch.nn.Module, path: str, checkpoint: Optional[dict] = None) -> None:
    """Load ``path`` (or its read ``checkpoint``) as ``DetectionCheckpointer`` does, but refuse what detectron2
    only warns about: missing or misshaped tensors (they would stay random) and NaN/inf weights."""
    from detectron2.checkpoint import DetectionCheckpointer

    if checkpoint is None:
        checkpoint = _read_detectron2_checkpoint(path)
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("model"), dict):
        raise DetectorWeightsError(f"{path}: not a detectron2 checkpoint (no 'model' state dict)")
    state = checkpoint["model"]
    for k, v in list(state.items()):  # in place: a state dict's _metadata stays
        if isinstance(v, np.ndarray) and not v.flags.writeable:  # a view of a pickle's bytes: torch would warn
            state[k] = np.array(v)
    checkpointer = DetectionCheckpointer(model)
    try:
        incompatible = checkpointer._load_model(checkpoint)  # the dict, not the file: no _load_file
    except (RuntimeError, ValueError, TypeError, KeyError) as e:
        raise _unreadable(path, e) from e
    from vmae_det.checkpoints.fit import StateMismatch

    if incompatible is not None:
        # detectron2 matched the names (its heuristics for model-zoo files): only its verdict is ours to word
        reshaped = {k for k, _, _ in incompatible.incorrect_shapes}
        found = StateMismatch(
            missing=[k for k in incompatible.missing_keys if k not in reshaped],
            shapes=[f"{k}: checkpoint {tuple(a)} vs model {tuple(b)}" for k, a, b in incompatible.incorrect_shapes],
        )
        if found:
            raise DetectorWeightsError(f"{path}: not weights of this detectron2 detector ({found})")
        if incompatible.unexpected_keys:
            unused = StateMismatch(unexpected=list(incompatible.unexpected_keys))
            logger.warning("%s: the detector does not use %s", path, unused)
    _check_finite(model, path)


class TorchvisionPersonDetector:
    """torchvision ``fasterrcnn_resnet50_fpn`` (COCO) restricted to people (COCO label 1)."""

    PERSON_LABEL = 1  # torchvision's COCO category ids: 0 background, 1 person

    def __init__(
        self, weights: Optional[str] = None, device: str = "cpu", score_threshold: float = 0.7, min_size: int = 800
    ):
        from torchvision.models.detection import FasterRCNN_ResNet50_FPN_Weights, fasterrcnn_resnet50_fpn

        self.score_threshold = score_threshold
        if weights:
            model = fasterrcnn_resnet50_fpn(
                weights=None, weights_backbone=None, box_score_thresh=score_threshold, min_size=min_size
            )
            from vmae_det.checkpoints.fit import compare_state

            sd = _load_state_dict(weights)
            found = compare_state(model.state_dict(), sd)
            if found:
                raise DetectorWeightsError(f"{weights}: not a fasterrcnn_resnet50_fpn state dict ({found})")
            model.load_state_dict(sd)
            _check_finite(model, weights)
        else:
            try:
                model = fasterrcnn_resnet50_fpn(
                    weights=FasterRCNN_ResNet50_FPN_Weights.COCO_V1,
                    box_score_thresh=score_threshold,
                    min_size=min_size,
                )
            except (OSError, RuntimeError) as e:  # URLError is an OSError; a damaged cached file a RuntimeError
                raise _offline_error(
                    "torchvision fasterrcnn_resnet50_fpn COCO weights", FasterRCNN_ResNet50_FPN_Weights.COCO_V1.url, e
                ) from e
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)

    @torch.no_grad()
    def __call__(self, frame_rgb: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        x = torch.from_numpy(np.ascontiguousarray(frame_rgb)).to(self.device).permute(2, 0, 1).float() / 255.0
        out = self.model([x])[0]
        keep = (out["labels"] == self.PERSON_LABEL) & (out["scores"] >= self.score_threshold)
        return (
            out["boxes"][keep].cpu().numpy().astype(np.float32).reshape(-1, 4),
            out["scores"][keep].cpu().numpy().astype(np.float32),
        )


class Detectron2PersonDetector:
    """A detectron2 model-zoo detector restricted to people (class 0 of COCO's contiguous ids)."""

    PERSON_CLASS = 0

    def __init__(
        self,
        weights: Optional[str] = None,
        device: str = "cpu",
        score_threshold: float = 0.7,
        config: str = "COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml",
    ):
        from detectron2 import model_zoo
        from detectron2.engine import DefaultPredictor

        import vmae_det  # noqa: F401  (shims)

        cfg = model_zoo.get_config(config)
        cfg.MODEL.DEVICE = device
        cfg.MODEL.ROI_HEADS.SCORE_THRESH_TEST = score_threshold
        if weights:
            # The file is read (safely) before the model is built: a bad file is refused in a moment.
            checkpoint = _read_detectron2_checkpoint(str(weights))
            cfg.MODEL.WEIGHTS = ""  # the model is built here, the weights loaded and checked below
            self.predictor = DefaultPredictor(cfg)
            _load_detectron2_weights(self.predictor.model, str(weights), checkpoint)
        else:
            cfg.MODEL.WEIGHTS = model_zoo.get_checkpoint_url(config)
            try:
                self.predictor = DefaultPredictor(cfg)
            except (OSError, RuntimeError) as e:
                raise _offline_error(f"detectron2 model-zoo weights for {config}", cfg.MODEL.WEIGHTS, e) from e
        self.input_format = cfg.INPUT.FORMAT
        self.score_threshold = score_threshold

    @torch.no_grad()
    def __call__(self, frame_rgb: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        img = frame_rgb[..., ::-1] if self.input_format == "BGR" else frame_rgb
        inst = self.predictor(np.ascontiguousarray(img))["instances"].to("cpu")
        keep = (inst.pred_classes == self.PERSON_CLASS) & (inst.scores >= self.score_threshold)
        return (
            inst.pred_boxes.tensor[keep].numpy().astype(np.float32).reshape(-1, 4),
            inst.scores[keep].numpy().astype(np.float32),
        )


class HOGUnavailableError(ValueError):
    """The installed OpenCV wheel has no ``HOGDescriptor``; the message names the package to install."""


class HOGPersonDetector:
    """OpenCV's HOG people detector (a linear SVM on 64x128 INRIA windows), shipped inside the OpenCV wheel.

    Args:
        min_person_height: smallest person found, as a fraction of the frame height; the frame is resized so
            such a person is 96 px tall, so the cost per frame is about the same at every resolution.
        win_stride, padding, scale, group_threshold: ``detectMultiScale``'s settings.
        score_threshold: on ``1 / (1 + exp(-margin))`` of the SVM margin (0.5 on the decision boundary).
        nms_iou: NMS over the boxes OpenCV's grouping leaves.
        tighten: shrink each window to the person inside it (the margins of OpenCV's peopledetect sample).
    """

    WINDOW_PERSON_HEIGHT = 96  # pixels of a person inside the 64x128 detection window (INRIA crops)

    def __init__(
        self,
        score_threshold: float = 0.8,
        min_person_height: float = 1 / 8,
        win_stride: int = 8,
        padding: int = 8,
        scale: float = 1.05,
        group_threshold: int = 2,
        nms_iou: float = 0.4,
        tighten: bool = True,
    ):
        import cv2

        if not hasattr(cv2, "HOGDescriptor"):
            raise HOGUnavailableError(
                f"the installed OpenCV {cv2.__version__} has no HOGDescriptor (OpenCV 5 moved it out of the main "
                "opencv-python(-headless) wheels); install the contrib wheel, which has it: pip uninstall -y "
                "opencv-python-headless opencv-python && pip install opencv-contrib-python-headless"
            )
        if not 0 < min_person_height <= 1:
            raise ValueError(f"min_person_height is a fraction of the frame height in (0, 1], got {min_person_height}")
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.score_threshold = float(score_threshold)
        self.min_person_height = float(min_person_height)
        self.win_stride = (int(win_stride),) * 2
        self.padding = (int(padding),) * 2
        self.scale = float(scale)
        self.group_threshold = int(group_threshold)
        self.nms_iou = float(nms_iou)
        self.tighten = bool(tighten)

    def __call__(self, frame_rgb: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        import cv2
        from torchvision.ops import nms

        h, w = frame_rgb.shape[:2]
        empty = np.zeros((0, 4), np.float32), np.zeros((0,), np.float32)
        factor = self.WINDOW_PERSON_HEIGHT / (self.min_person_height * h)
        size = (round(w * factor), round(h * factor))
        if min(size) < 1:
            return empty
        img = np.ascontiguousarray(frame_rgb)  # RGB as is: HOG takes each pixel's largest channel gradient
        if size != (w, h):
            img = cv2.resize(img, size, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR)
        if size[0] < 64 or size[1] < 128:  # smaller than the detection window
            return empty
        rects, margins = self.hog.detectMultiScale(
            img,
            winStride=self.win_stride,
            padding=self.padding,
            scale=self.scale,
            groupThreshold=self.group_threshold,
        )
        if len(rects) == 0:
            return empty
        xywh = np.asarray(rects, np.float32).reshape(-1, 4) / np.float32(factor)
        scores = (1.0 / (1.0 + np.exp(-np.asarray(margins, np.float64).reshape(-1)))).astype(np.float32)
        boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
        keep = scores >= self.score_threshold
        boxes, scores = boxes[keep], scores[keep]
        if len(boxes) > 1:
            order = nms(torch.from_numpy(boxes), torch.from_numpy(scores), self.nms_iou).numpy()
            boxes, scores = boxes[order], scores[order]
        if self.tighten and len(boxes):
            bw, bh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
            boxes = np.stack(
                [boxes[:, 0] + 0.1 * bw, boxes[:, 1] + 0.07 * bh, boxes[:, 2] - 0.1 * bw, boxes[:, 3] - 0.13 * bh],
                axis=1,
            )
        boxes = np.clip(boxes, 0, np.array([w, h, w, h], np.float32)).astype(np.float32)
        return boxes.reshape(-1, 4), scores.astype(np.float32)


def build_person_detector(
    name: str,
    weights: Optional[str] = None,
    device: str = "cpu",
    score_threshold: float = 0.7,
    weights_flag: str = "--weights",
    detector_flag: str = "--detector",
) -> Detector:
    """Build a person detector ``name`` (:data:`DETECTORS`); ``weights`` a local file or None (the library's
    download). ``weights_flag`` / ``detector_flag``: the calling tool's flags, for error messages."""
    if name == "hog":
        if weights:
            raise ValueError(
                f"the hog person detector takes no weights file (its SVM ships with OpenCV), got {weights}"
            )
        return HOGPersonDetector(score_threshold=score_threshold)
    try:
        if name == "torchvision":
            return TorchvisionPersonDetector(weights, device=device, score_threshold=score_threshold)
        if name == "detectron2":
            return Detectron2PersonDetector(weights, device=device, score_threshold=score_threshold)
    except DetectorDownloadError as e:
        raise e.for_flags(weights_flag, detector_flag) from e.__cause__
    raise ValueError(f"unknown person detector {name!r}, expected one of {DETECTORS}")
