"""Per-box RoI features of the AVA action detector (the action head's input), for long-term models.

    python tools/extract_features.py --config-file configs/ava/tiny.py \\
        --checkpoint output/ava_tiny/model_final.pth --output output/features_tiny_val --split test

For every keyframe of the split's dataset (sorted by video, then timestamp) and every person box the
evaluation would classify, writes the detector's pooled RoI feature
(``AVAActionDetector.pooled_features``: ViT -> norm -> temporal pool -> RoIAlign over the test-time
enlarged box -> spatial pool; what the action head reads) into ``.npy`` shards, one row per box, with
``index.csv`` naming each row (shard, row, video id, timestamp, box, person score, person id) and
``meta.json`` describing the run. ``--split test`` uses the config's test loader as the evaluation does
(its person proposals above the config's threshold); ``--split train`` the training loader's dataset with
its ground-truth boxes and their AVA person ids, through the same test-time (deterministic) clip mapper.

Shards are written as they fill (memory bounded by ``--shard-size``), each under a temporary name then
renamed; ``progress.json`` records what is complete. A stopped run continues with ``--resume`` and ends
with the same bytes as an uninterrupted one. The format is documented in docs/features.md.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np

import vmae_det  # noqa: F401  (detectron2 shims first)
from vmae_det.cli import run_main
from vmae_det.formats.atomic import atomic_write, atomic_write_bytes
from vmae_det.resources import cap_workers

__all__ = [
    "FEATURE_POINT",
    "INDEX_COLUMNS",
    "FeatureShardWriter",
    "PersonIdMapper",
    "cli",
    "main",
    "match_boxes",
    "shard_name",
]

logger = logging.getLogger("vmae_det.extract_features")

FORMAT_VERSION = 1
INDEX_COLUMNS = ("shard", "row", "video_id", "timestamp", "x1", "y1", "x2", "y2", "score", "person_id")
FEATURE_POINT = (
    "AVAActionDetector.pooled_features: ViT -> final norm -> temporal pool (model.temporal_pool) -> RoIAlign "
    "over the test-time enlarged box (model.test_box_extension) -> spatial pool (model.spatial_pool); the "
    "action head's input, before its dropout and layers: sigmoid(model.head(feature)) x score is the "
    "evaluation's score"
)
INDEX, META, PROGRESS = "index.csv", "meta.json", "progress.json"
SPLITS = {"test": "test", "train": "train"}  # --split -> dataloader.<key>
#: Largest difference (normalised units) between a box the mapper returns and its source box: a test-time
#: resize moves boxes by float rounding only; a crop would move them more and is refused.
BOX_MATCH_TOLERANCE = 1e-3


def shard_name(index: int) -> str:
    return f"features_{index:05d}.npy"


# ----------------------------------------------------------------------------------------- inputs
def match_boxes(boxes: np.ndarray, candidates: np.ndarray, where: str) -> np.ndarray:
    """For each of ``boxes`` (normalised, the mapper's output order) the index of the source box it came
    from: the nearest unused candidate (greedy, in order). A box with none within
    ``BOX_MATCH_TOLERANCE`` is an error naming the keyframe ``where``."""
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
    """The config's test-time clip mapper, plus for each output box its source box (normalised, as in the
    dataset's CSV, float32) and person id (the ground truth's with ``test_box_source="gt"``, else -1).

    A module-level class so data-loader workers can pickle it."""

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
    key = SPLITS[split]
    loaders = cfg.get("dataloader")
    if loaders is None or key not in loaders or "dataset" not in loaders[key]:
        raise KeyError(f"{config_file} has no dataloader.{key}.dataset: --split {split} reads its dataset from there")
    if "test" not in loaders or "mapper" not in loaders.test:
        raise KeyError(f"{config_file} has no dataloader.test.mapper: the test-time clip mapper builds the clips")
    return loaders[key]


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


# --------------------------------------------------------------------------------------- tracking
def _load_tracker_class():
    """``vmae_det.demo.tracking.PersonTracker`` when this installation has it, else None (ids stay -1)."""
    try:
        from vmae_det.demo.tracking import PersonTracker
    except ImportError as e:
        logger.info(f"no person tracker ({e}): person_id is -1 for proposals")
        return None
    return PersonTracker


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


# ---------------------------------------------------------------------------------------- writing
def _json_bytes(obj) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _float32_text(value) -> str:
    """The shortest decimal that reads back as the same float32 (the value the model used)."""
    return str(np.float32(value))


class FeatureShardWriter:
    """Keyframes' features in, shards out: a shard holds whole keyframes and is closed as soon as it holds
    ``shard_size`` rows or more (so shard borders depend on the data only, never on when a run stopped).

    Per closed shard, in this order: its rows appended to ``index.csv`` (after truncating the file to the
    last recorded length), ``features_NNNNN.npy`` written under a temporary name and renamed, then
    ``progress.json`` (the commit point) renamed into place. :meth:`finish` writes the last shard and
    ``meta.json`` and removes ``progress.json``."""

    def __init__(self, out: Path, progress: dict, shard_size: int, dtype: str, feature_dim: int):
        self.out, self.progress, self.shard_size, self.dtype = out, progress, shard_size, np.dtype(dtype)
        self.lines: List[str] = []
        self.features: List[np.ndarray] = []
        self.pending_rows = 0
        self.pending_keyframes = 0
        self.pending_empty = 0
        self.feature_dim = int(feature_dim)

    @property
    def keyframes_done(self) -> int:
        return self.progress["keyframes_done"] + self.pending_keyframes

    def add(
        self,
        video_id: str,
        timestamp: int,
        boxes: np.ndarray,
        scores: np.ndarray,
        person_ids: np.ndarray,
        features: np.ndarray,
    ) -> None:
        from vmae_det.formats.ava import format_ava_row

        if features.ndim != 2 or features.shape[1] != self.feature_dim:
            raise ValueError(
                f"{video_id},{timestamp}: features of shape {tuple(features.shape)}, expected [N, {self.feature_dim}]"
            )
        shard, row = len(self.progress["shards"]), self.pending_rows
        key = format_ava_row(video_id, int(timestamp))  # the video id quoted as CSV needs, 4-digit seconds
        for i, (box, score, pid) in enumerate(zip(boxes.tolist(), scores.tolist(), person_ids.tolist())):
            coords = ",".join(_float32_text(v) for v in box)
            self.lines.append(f"{shard},{row + i},{key},{coords},{_float32_text(score)},{int(pid)}\n")
        if len(features):
            self.features.append(np.asarray(features, self.dtype))
        self.pending_rows += len(features)
        self.pending_keyframes += 1
        self.pending_empty += int(len(features) == 0)
        if self.pending_rows >= self.shard_size:
            self._close_shard()

    def _close_shard(self) -> None:
        p = self.progress
        rows = self.pending_rows
        if rows:
            index = self.out / INDEX
            with open(index, "r+b") as f:
                f.seek(p["index_bytes"])
                f.truncate()
                f.write("".join(self.lines).encode("utf-8"))
                f.flush()
                os.fsync(f.fileno())
                p["index_bytes"] = f.tell()
            with atomic_write(self.out / shard_name(len(p["shards"])), "wb") as f:
                np.save(f, np.concatenate(self.features, 0))
            p["shards"].append(rows)
        p["keyframes_done"] += self.pending_keyframes
        p["keyframes_without_boxes"] += self.pending_empty
        atomic_write_bytes(self.out / PROGRESS, _json_bytes(p))
        self.lines, self.features, self.pending_rows, self.pending_keyframes, self.pending_empty = [], [], 0, 0, 0

    def finish(self, meta: dict) -> dict:
        self._close_shard()
        p = self.progress
        meta = dict(meta)
        meta.update(
            feature_dim=self.feature_dim,
            num_rows=sum(p["shards"]),
            num_keyframes=p["keyframes_done"],
            keyframes_without_boxes=p["keyframes_without_boxes"],
            shards=[{"file": shard_name(i), "rows": n} for i, n in enumerate(p["shards"])],
        )
        atomic_write_bytes(self.out / META, _json_bytes(meta))
        os.remove(self.out / PROGRESS)
        return meta


# ---------------------------------------------------------------------------------------- resume
def _new_progress(settings: dict, header: bytes) -> dict:
    return {
        "format_version": FORMAT_VERSION,
        "settings": settings,
        "shards": [],
        "keyframes_done": 0,
        "keyframes_without_boxes": 0,
        "index_bytes": len(header),
    }


def _differences(saved: dict, settings: dict) -> List[str]:
    keys = sorted(set(saved) | set(settings))
    return [f"{k}: {saved.get(k)!r} then, {settings.get(k)!r} now" for k in keys if saved.get(k) != settings.get(k)]


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path} cannot be read ({e}); delete the --output folder and start again") from None


def open_output(out: Path, settings: dict, resume: bool) -> Optional[dict]:
    """The progress to continue from (``--resume`` of an unfinished run), a fresh one, or None when ``out``
    already holds a finished extraction with these settings (``--resume``). Refuses to mix runs."""
    header = (",".join(INDEX_COLUMNS) + "\n").encode("utf-8")
    progress_path, meta_path = out / PROGRESS, out / META
    if out.exists() and not out.is_dir():
        raise ValueError(f"--output {out} is a file, not a folder")
    if meta_path.is_file() and not progress_path.exists():
        if not resume:
            raise ValueError(
                f"--output {out} already holds extracted features ({META}); choose another folder "
                "(or --resume to check that it is complete)"
            )
        diff = _differences(_read_json(meta_path).get("settings", {}), settings)
        if diff:
            raise ValueError(f"--resume: {out} holds features extracted with other settings: " + "; ".join(diff))
        return None
    if progress_path.is_file():
        if not resume:
            raise ValueError(
                f"--output {out} holds an unfinished extraction ({PROGRESS}): pass --resume to continue "
                "it, or choose another folder"
            )
        progress = _read_json(progress_path)
        if progress.get("format_version") != FORMAT_VERSION:
            raise ValueError(
                f"{progress_path}: format version {progress.get('format_version')!r}, this tool writes "
                f"{FORMAT_VERSION}; start again in another folder"
            )
        diff = _differences(progress.get("settings", {}), settings)
        if diff:
            raise ValueError(
                f"--resume: {out} was started with other settings: "
                + "; ".join(diff)
                + ". Resume with the same ones, or choose another folder"
            )
        index = out / INDEX
        if not progress["shards"]:  # nothing committed yet (the run may have stopped before writing the header)
            atomic_write_bytes(index, header)
        if not index.is_file() or index.stat().st_size < progress["index_bytes"]:
            raise ValueError(
                f"{index} is missing or shorter than {progress_path} records "
                f"({progress['index_bytes']} bytes); start again in another folder"
            )
        for i, rows in enumerate(progress["shards"]):
            path = out / shard_name(i)
            try:
                shape = np.load(path, mmap_mode="r").shape
            except (OSError, ValueError) as e:
                raise ValueError(
                    f"{path}: a shard {progress_path} records as complete cannot be read ({e}); start "
                    "again in another folder"
                ) from None
            if shape[:1] != (rows,):
                raise ValueError(f"{path}: {shape[0]} rows where {progress_path} records {rows}; start again")
        with open(index, "r+b") as f:  # rows of a shard that was not committed
            f.truncate(progress["index_bytes"])
        for stale in out.glob(".*.tmp*"):  # a shard or file being written when the run stopped (atomic_write's)
            stale.unlink()
        logger.info(
            f"Resuming {out}: {len(progress['shards'])} complete shard(s), "
            f"{progress['keyframes_done']} of {settings['num_keyframes']} keyframes done"
        )
        return progress
    ours = [
        p.name
        for p in (out.iterdir() if out.is_dir() else ())
        if p.name == INDEX or (p.name.startswith("features_") and p.name.endswith(".npy"))
    ]
    if ours:
        raise ValueError(
            f"--output {out} holds {ours[0]} but no {PROGRESS} or {META}: not a run this tool can "
            "continue; choose another folder"
        )
    if resume:
        logger.warning(f"--resume: nothing to resume in {out}; starting from the first keyframe")
    out.mkdir(parents=True, exist_ok=True)
    progress = _new_progress(settings, header)
    atomic_write_bytes(progress_path, _json_bytes(progress))  # first: a folder with it is always resumable
    atomic_write_bytes(out / INDEX, header)
    return progress


def _replay_tracks(tracks: _Tracks, out: Path, dicts: List[dict], done: int) -> None:
    """Rebuild the tracker state of the video under way at keyframe ``done`` from the rows already written
    (their boxes read back as the float32 values the tracker saw; keyframes without boxes too), so resumed
    ids equal an uninterrupted run's."""
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


# ------------------------------------------------------------------------------------------- main
def _file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_arguments(args) -> None:
    """Refuse bad values before anything is loaded."""
    for name in ("batch_size", "shard_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be an integer >= 1, got {value}")
    if args.num_workers is not None and args.num_workers < 0:
        raise ValueError(f"--num-workers must be >= 0, got {args.num_workers}")
    from ..checkpoints import refuse_checkpoint_folder

    refuse_checkpoint_folder(args.checkpoint, "--checkpoint")
    if not os.path.isfile(args.checkpoint):
        raise FileNotFoundError(
            f"--checkpoint {args.checkpoint} does not exist (the action detector's weights, "
            "e.g. output/ava_tiny/model_final.pth)"
        )
    if not os.path.isfile(args.config_file):
        raise FileNotFoundError(f"--config-file {args.config_file} does not exist")
    if os.path.exists(args.output) and not os.path.isdir(args.output):
        raise ValueError(f"--output {args.output} is a file, not a folder")


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config-file", required=True, help="the detector's LazyConfig (e.g. configs/ava/vit_b.py)")
    p.add_argument(
        "--checkpoint", required=True, help="the detector's weights (its model_final.pth or a VMAD AVA checkpoint)"
    )
    p.add_argument("--output", required=True, help="folder for features_NNNNN.npy, index.csv, meta.json")
    p.add_argument(
        "--ava-root",
        default=None,
        help="a folder in the AVA layout (tools/prepare_custom_dataset.py's) instead of the config's datasets, "
        "as tools/train_net.py --ava-root",
    )
    p.add_argument(
        "--split",
        choices=sorted(SPLITS),
        default="test",
        help="test: the evaluation's keyframes and person proposals; train: the training keyframes with "
        "their ground-truth boxes and person ids (default: test)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="keyframes per forward pass (default: dataloader.test.batch_size, so clips are padded "
        "together as in the evaluation)",
    )
    p.add_argument("--shard-size", type=int, default=4096, help="rows (boxes) per shard, at least (default 4096)")
    p.add_argument(
        "--dtype",
        choices=("float32", "float16"),
        default="float32",
        help="feature storage type (default float32: exactly the head's input)",
    )
    p.add_argument(
        "--num-workers", type=int, default=None, help="data-loader workers (default: the config's test loader's)"
    )
    p.add_argument("--resume", action="store_true", help="continue an unfinished extraction in --output")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides key=value (e.g. train.device=cpu)")
    args = p.parse_args(argv)
    check_arguments(args)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from detectron2.config import instantiate
    from tqdm import tqdm

    from vmae_det.data.loaders import build_batched_test_loader
    from vmae_det.engine.train_loop import load_init_weights, load_run_config, resolve_device
    from vmae_det.formats.output_lock import output_dir_lock

    cfg = load_run_config(
        argparse.Namespace(
            config_file=args.config_file,
            opts=list(args.opts),
            videos=None,
            ava_root=args.ava_root,
            eval_only=args.split == "test",
        )
    )
    loader_cfg = _split_loader(cfg, args.split, args.config_file)
    mapper = _build_mapper(cfg, args.split)
    batch_size = args.batch_size or int(cfg.dataloader.test.get("batch_size", 1))
    # --num-workers capped at the CPU count (the config's value is, by load_run_config's checks)
    num_workers = (
        cap_workers(args.num_workers, "--num-workers")
        if args.num_workers is not None
        else int(cfg.dataloader.test.get("num_workers", 0))
    )
    device = resolve_device(cfg.train.device)
    dicts = sorted(instantiate(loader_cfg.dataset), key=lambda d: (d["video_id"], int(d["timestamp"])))
    tracker_class = _load_tracker_class() if mapper.test_box_source != "gt" else None
    tracks = _Tracks(tracker_class) if tracker_class else None
    names = loader_cfg.dataset.get("names")
    settings = {
        "config_file": os.path.abspath(args.config_file),
        "config_sha256": _file_sha256(args.config_file),
        "opts": list(args.opts),
        "checkpoint": os.path.abspath(args.checkpoint),
        "checkpoint_bytes": os.path.getsize(args.checkpoint),
        "split": args.split,
        "ava_root": os.path.abspath(args.ava_root) if args.ava_root else None,
        "datasets": [names] if isinstance(names, str) else list(names or []),
        "num_keyframes": len(dicts),
        "batch_size": batch_size,
        "shard_size": args.shard_size,
        "dtype": args.dtype,
        "device": device.type,
        "box_source": "ground truth"
        if mapper.test_box_source == "gt"
        else f"proposals with score >= {mapper.test_proposal_threshold}",
        "person_id": "ground truth person id"
        if mapper.test_box_source == "gt"
        else (tracks.describe() if tracks else "none (-1)"),
    }
    # The weights before the output folder: a refused checkpoint leaves no folder behind.
    model = instantiate(cfg.model)
    if not hasattr(model, "roi_features"):
        raise ValueError(
            f"{args.config_file}: the model is a {type(model).__name__}; feature extraction needs an "
            "AVAActionDetector (roi_features)"
        )
    load_init_weights(model, args.checkpoint, full_model=True)
    model.to(device).eval()
    out = Path(args.output)
    # One run per folder, as the training tools: two extractions into one --output would mix their shards.
    with output_dir_lock(str(out), "--output"):
        progress = open_output(out, settings, args.resume)
        if progress is None:
            print(f"{out} is complete: nothing to do")
            return 0

        done = progress["keyframes_done"]
        start = (done // batch_size) * batch_size  # the uninterrupted run's batch (clips are padded per batch)
        skip = done - start
        writer = FeatureShardWriter(out, progress, args.shard_size, args.dtype, model.backbone.embed_dim)
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
        meta = writer.finish(
            {
                "format_version": FORMAT_VERSION,
                "settings": settings,
                "feature": FEATURE_POINT,
                "dtype": args.dtype,
                "index_columns": list(INDEX_COLUMNS),
                "test_box_extension": list(model.test_box_extension) if model.test_box_extension else None,
            }
        )
        print(
            f"wrote {meta['num_rows']} features of dim {meta['feature_dim']} ({args.dtype}) "
            f"for {meta['num_keyframes']} "
            f"keyframes ({meta['keyframes_without_boxes']} without boxes) in {len(meta['shards'])} shard(s) to {out}"
        )
        return 0


def cli() -> int:
    """Console-script entry point: exit code of :func:`main` (2 with one ``error:`` line on bad input)."""
    return run_main(main, interrupted="the shards written so far are whole; --resume continues from the last one")


if __name__ == "__main__":
    sys.exit(cli())
