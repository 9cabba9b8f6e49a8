"""Per-box RoI features of the AVA action detector (the action head's input), for long-term models.

Every person box the evaluation would classify, keyframe by keyframe, goes into the shard folder of
:mod:`vmae_det.formats.feature_shards`; the train split uses its ground-truth boxes and person ids through the
same deterministic test-time mapper.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from ..formats.feature_shards import FORMAT_VERSION, INDEX, INDEX_COLUMNS, FeatureShardWriter, open_output
from ..formats.output_lock import output_dir_lock

__all__ = ["FEATURE_POINT", "SPLITS", "PersonIdMapper", "extract_features", "match_boxes"]

logger = logging.getLogger("vmae_det.extract_features")

FEATURE_POINT = (
    "AVAActionDetector.pooled_features: ViT -> final norm -> temporal pool (model.temporal_pool) -> RoIAlign "
    "over the test-time enlarged box (model.test_box_extension) -> spatial pool (model.spatial_pool); the "
    "action head's input, before its dropout and layers: model.probabilities(model.head(feature)) x score is the "
    "evaluation's score"
)
SPLITS = ("test", "train")  # dataloader.<split>
#: Largest difference (normalised units) between a box the mapper returns and its source box: a test-time
#: resize moves boxes by float rounding only; a crop would move them more and is refused.
BOX_MATCH_TOLERANCE = 1e-3


def match_boxes(boxes: np.ndarray, candidates: np.ndarray, where: str) -> np.ndarray:
    """For each of ``boxes`` (the mapper's output) the index of its source box: the nearest unused candidate within
    ``BOX_MATCH_TOLERANCE``, else an error naming the keyframe ``where``."""
    out = np.zeros(len(boxes), np.int64)
    used = np.zeros(len(candidates), bool)
    for i, box in enumerate(boxes):
        dist = np.abs(candidates - box).max(1) if len(candidates) else np.zeros(0)
        dist[used] = np.inf
        j = int(np.argmin(dist)) if len(dist) else -1
        if j < 0 or not dist[j] <= BOX_MATCH_TOLERANCE:
            raise ValueError(
                f"{where}: the clip mapper returned box {np.round(box, 4).tolist()} that is none of the keyframe's "
                f"source boxes (nearest differs by {float(dist[j]) if j >= 0 else float('inf'):.4f}): the test "
                "augmentations move boxes (a crop?); feature extraction needs resize-only test augmentations "
                "(dataloader.test.mapper.augmentations) to name each box"
            )
        used[j] = True
        out[i] = j
    return out


class PersonIdMapper:
    """The config's test-time clip mapper, plus each output box's source box and person id (-1 for proposals).
    Module-level, so data-loader workers can pickle it."""

    def __init__(self, mapper):
        self.mapper = mapper

    def __call__(self, dataset_dict: dict) -> dict:
        out = self.mapper(dataset_dict)
        if self.mapper.test_box_source == "gt":
            anns = dataset_dict.get("annotations") or []
            candidates = np.array([a["bbox"] for a in anns], np.float32).reshape(-1, 4)
            ids = np.array([int(a.get("person_id", -1)) for a in anns], np.int64)
        else:
            props = dataset_dict.get("proposals") or {}
            candidates = np.asarray(props.get("boxes", np.zeros((0, 4))), np.float32).reshape(-1, 4)
            ids = np.full(len(candidates), -1, np.int64)
        h, w = out["clip_size"]
        norm = out["boxes"].numpy().reshape(-1, 4) / np.array([w, h, w, h], np.float32)
        idx = match_boxes(norm, candidates, f"{dataset_dict['video_id']},{dataset_dict['timestamp']}")
        out["source_boxes"], out["person_ids"] = candidates[idx], ids[idx]
        return out


def _split_loader(cfg, split: str, config_file: str):
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    loaders = cfg.get("dataloader")
    if loaders is None or split not in loaders or "dataset" not in loaders[split]:
        raise KeyError(f"{config_file} has no dataloader.{split}.dataset: --split {split} reads its dataset from there")
    if "test" not in loaders or "mapper" not in loaders.test:
        raise KeyError(f"{config_file} has no dataloader.test.mapper: the test-time clip mapper builds the clips")
    return loaders[split]


def _build_mapper(cfg, split: str):
    """The evaluation's clip mapper (deterministic test augmentations); ground-truth boxes for the train split."""
    from detectron2.config import instantiate

    node = cfg.dataloader.test.mapper
    mapper = instantiate(node)
    if split == "train":
        mapper.test_box_source = "gt"  # the training set's people, with their AVA person ids
    if getattr(mapper, "is_train", False) or not hasattr(mapper, "test_box_source"):
        raise ValueError(
            f"dataloader.test.mapper builds a {type(mapper).__name__} that is not a test-time AVAClipMapper"
        )
    return mapper


class _Tracks:
    """Track ids for proposal boxes: one tracker per video, fed its keyframes in time order (normalised boxes)."""

    def __init__(self, tracker_class):
        self.tracker_class, self.video, self.tracker = tracker_class, None, None

    def update(self, video_id: str, boxes: np.ndarray) -> np.ndarray:
        if video_id != self.video:
            self.video, self.tracker = video_id, self.tracker_class()
        ids, _ = self.tracker.update(np.asarray(boxes, np.float32).reshape(-1, 4))
        return np.asarray(ids, np.int64).reshape(-1)

    def describe(self) -> str:
        t = self.tracker_class()
        settings = ", ".join(
            f"{k}={getattr(t, k)!r}" for k in ("iou_threshold", "max_missed", "motion") if hasattr(t, k)
        )
        return f"{self.tracker_class.__module__}.{self.tracker_class.__name__}({settings}) track id, per video"


def _replay_tracks(tracks: _Tracks, out: Path, dicts: List[dict], done: int) -> None:
    """Rebuild the tracker state of the video under way at keyframe ``done`` from the rows already written, so
    resumed ids equal an uninterrupted run's."""
    if done == 0 or done >= len(dicts) or dicts[done - 1]["video_id"] != dicts[done]["video_id"]:
        return
    video = dicts[done]["video_id"]
    first = done
    while first > 0 and dicts[first - 1]["video_id"] == video:
        first -= 1
    rows: Dict[int, list] = {}
    with open(out / INDEX, newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            if r["video_id"] == video:
                rows.setdefault(int(r["timestamp"]), []).append(r)
    for d in dicts[first:done]:
        got = rows.get(int(d["timestamp"]), [])
        boxes = np.array([[float(r[k]) for k in ("x1", "y1", "x2", "y2")] for r in got], np.float32).reshape(-1, 4)
        tracks.update(video, boxes)


def _file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _load_detector(cfg, checkpoint: str, config_file: str, device):
    """The trained detector of ``cfg.model`` on ``device``, in eval mode."""
    from ..checkpoints import build_trained_model

    model = build_trained_model(cfg, checkpoint)
    if not hasattr(model, "roi_features"):
        raise ValueError(
            f"{config_file}: the model is a {type(model).__name__}; feature extraction needs an "
            "AVAActionDetector (roi_features)"
        )
    return model.to(device).eval()


def extract_features(
    cfg,
    *,
    config_file: str,
    checkpoint: str,
    output: str,
    opts: Sequence[str] = (),
    ava_root: Optional[str] = None,
    split: str = "test",
    batch_size: Optional[int] = None,
    shard_size: int = 4096,
    dtype: str = "float32",
    num_workers: Optional[int] = None,
    resume: bool = False,
    load_tracker: Optional[Callable[[], Optional[type]]] = None,
) -> Optional[dict]:
    """Write the features of ``cfg``'s detector with the weights ``checkpoint`` into the folder ``output``.

    Args:
        cfg: the loaded run config; ``config_file``, ``opts`` and ``ava_root`` are recorded in the settings.
        split: ``"test"`` or ``"train"``.
        batch_size, num_workers: default to ``dataloader.test``'s (clips are padded as in the evaluation).
        shard_size, dtype: rows per shard (at least) and the storage type.
        resume: continue an unfinished run in ``output`` (its settings must match).
        load_tracker: returns the tracker class that links proposals into person ids, or None.

    Returns:
        The ``meta.json`` written, or None when ``output`` already holds this extraction complete.
    """
    from detectron2.config import instantiate
    from tqdm import tqdm

    from ..data.loaders import build_batched_test_loader
    from .train_loop import resolve_device

    loader_cfg = _split_loader(cfg, split, config_file)
    mapper = _build_mapper(cfg, split)
    batch_size = batch_size or int(cfg.dataloader.test.get("batch_size", 1))
    if num_workers is None:
        num_workers = int(cfg.dataloader.test.get("num_workers", 0))
    device = resolve_device(cfg.train.device)
    dicts = sorted(instantiate(loader_cfg.dataset), key=lambda d: (d["video_id"], int(d["timestamp"])))
    tracker_class = load_tracker() if load_tracker is not None and mapper.test_box_source != "gt" else None
    tracks = _Tracks(tracker_class) if tracker_class else None
    names = loader_cfg.dataset.get("names")
    settings = {
        "config_file": os.path.abspath(config_file),
        "config_sha256": _file_sha256(config_file),
        "opts": list(opts),
        "checkpoint": os.path.abspath(checkpoint),
        "checkpoint_bytes": os.path.getsize(checkpoint),
        "split": split,
        "ava_root": os.path.abspath(ava_root) if ava_root else None,
        "datasets": [names] if isinstance(names, str) else list(names or []),
        "num_keyframes": len(dicts),
        "batch_size": batch_size,
        "shard_size": shard_size,
        "dtype": dtype,
        "device": device.type,
        "box_source": "ground truth"
        if mapper.test_box_source == "gt"
        else f"proposals with score >= {mapper.test_proposal_threshold}",
        "person_id": "ground truth person id"
        if mapper.test_box_source == "gt"
        else (tracks.describe() if tracks else "none (-1)"),
    }
    # The weights before the output folder: a refused checkpoint leaves no folder behind.
    model = _load_detector(cfg, checkpoint, config_file, device)
    out = Path(output)
    # Two extractions into one folder would mix their shards.
    with output_dir_lock(str(out), "--output"):
        progress = open_output(out, settings, resume)
        if progress is None:
            return None
        done = progress["keyframes_done"]
        start = (done // batch_size) * batch_size  # the uninterrupted run's batch (clips are padded per batch)
        skip = done - start
        writer = FeatureShardWriter(out, progress, shard_size, dtype, model.backbone.embed_dim)
        if tracks:
            _replay_tracks(tracks, out, dicts, done)
        loader = build_batched_test_loader(
            dicts[start:], mapper=PersonIdMapper(mapper), batch_size=batch_size, num_workers=num_workers
        )
        with tqdm(total=len(dicts), initial=done, desc="keyframes", unit="keyframe", dynamic_ncols=True) as bar:
            for batch in loader:
                features = model.roi_features(batch)
                for d, f in zip(batch, features):
                    if skip:
                        skip -= 1
                        continue
                    scores = d["box_scores"].numpy().reshape(-1)
                    ids = d["person_ids"]
                    if tracks is not None:
                        ids = tracks.update(d["video_id"], d["source_boxes"])
                    writer.add(d["video_id"], d["timestamp"], d["source_boxes"], scores, ids, f.float().cpu().numpy())
                    bar.update(1)
        return writer.finish(
            {
                "format_version": FORMAT_VERSION,
                "settings": settings,
                "feature": FEATURE_POINT,
                "dtype": dtype,
                "index_columns": list(INDEX_COLUMNS),
                "test_box_extension": list(model.test_box_extension) if model.test_box_extension else None,
            }
        )
