"""The feature-shard folder of ``tools/extract_features.py`` (docs/features.md): ``features_NNNNN.npy`` shards,
``index.csv`` naming each row, ``meta.json``, and ``progress.json``, the commit point a stopped run resumes from.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import List, Optional

import numpy as np

from .atomic import atomic_write, atomic_write_bytes
from .ava import format_ava_row

__all__ = ["FORMAT_VERSION", "INDEX", "INDEX_COLUMNS", "META", "FeatureShardWriter", "open_output", "shard_name"]

logger = logging.getLogger("vmae_det.extract_features")

FORMAT_VERSION = 1
INDEX_COLUMNS = ("shard", "row", "video_id", "timestamp", "x1", "y1", "x2", "y2", "score", "person_id")
INDEX, META, PROGRESS = "index.csv", "meta.json", "progress.json"


def shard_name(index: int) -> str:
    return f"features_{index:05d}.npy"


def _json_bytes(obj) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _float32_text(value) -> str:
    """The shortest decimal that reads back as the same float32 (the value the model used)."""
    return str(np.float32(value))


class FeatureShardWriter:
    """Keyframes' features in, shards out. A shard holds whole keyframes and closes once it has ``shard_size``
    rows or more, so shard borders depend on the data only, never on when a run stopped.

    Per closed shard, in this order: its rows appended to ``index.csv`` (cut back to the recorded length
    first), the shard written under a temporary name and renamed, then ``progress.json`` (the commit point)."""

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
        """Write the last shard and ``meta.json`` (``meta`` plus the counts), remove ``progress.json``."""
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
