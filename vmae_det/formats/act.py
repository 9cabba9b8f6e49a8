"""The ACT-format ground truth of spatio-temporal action tubes (UCF101-24, JHMDB-21, MultiSports): its one
reader and checker.

The pickle holds ``labels``, ``gttubes[video][label_index] = [(n, 5) frame x1 y1 x2 y2]`` (1-based frames,
pixels), ``nframes``, ``train_videos`` / ``test_videos`` (lists of splits) and ``resolution[video] = (h, w)``.
"""

from __future__ import annotations

from typing import Any, Dict, Sequence, Tuple

import numpy as np

from .safe_pickle import load_pickle

__all__ = ["TubeFormatError", "load_groundtruth"]


class TubeFormatError(ValueError):
    """A ground-truth or detection pickle that is not in the ACT / MultiSports layout."""


# ----------------------------------------------------------------------------------------------- input checks
def _check_tube_shape(tube: Any, where: str, min_cols: int) -> None:
    if not isinstance(tube, np.ndarray) or tube.ndim != 2 or tube.shape[1] < min_cols or tube.shape[0] == 0:
        shape = getattr(tube, "shape", type(tube).__name__)
        raise TubeFormatError(
            f"{where}: a tube must be a non-empty (n, {min_cols}) array of frame x1 y1 x2 y2, got {shape}"
        )
    if not (np.issubdtype(tube.dtype, np.floating) or np.issubdtype(tube.dtype, np.integer)):
        raise TubeFormatError(f"{where}: a tube must hold numbers, got dtype {tube.dtype}")


def _check_tube_values(tube: np.ndarray, where: str) -> None:
    if not np.all(np.isfinite(tube[:, :5])):
        raise TubeFormatError(f"{where}: a tube holds a non-finite frame or box value")
    frames = tube[:, 0]
    if np.any(frames != np.round(frames)):
        raise TubeFormatError(f"{where}: a tube's frame numbers must be integers")
    steps = np.diff(frames)
    if np.any(steps <= 0):
        raise TubeFormatError(
            f"{where}: the tube's frames are not sorted (frame {frames[np.argmax(steps <= 0) + 1]:g} "
            "follows a later or equal one)"
        )
    if np.any(steps != 1):
        raise TubeFormatError(
            f"{where}: the tube has a gap (frame {frames[np.argmax(steps != 1)]:g} is followed by "
            f"{frames[np.argmax(steps != 1) + 1]:g}); tubes must hold every frame of their span"
        )


def _check_tubes(tubes: Sequence[Tuple[Any, str]], min_cols: int = 5) -> None:
    """Check ``[(tube, where)]``: shapes one by one, values all at once (the failing tube named)."""
    for tube, where in tubes:
        _check_tube_shape(tube, where, min_cols)
    if not tubes:
        return
    rows = np.concatenate([t[:, :5].astype(np.float64) for t, _ in tubes])
    lengths = np.array([t.shape[0] for t, _ in tubes])
    ends = np.cumsum(lengths)
    frames = rows[:, 0]
    steps = np.diff(frames)
    inside = np.ones(len(steps), dtype=bool)
    inside[ends[:-1] - 1] = False  # a step from one tube's last frame to the next tube's first
    bad_rows = ~np.all(np.isfinite(rows), axis=1) | (frames != np.round(frames))
    bad_steps = inside & (steps != 1)
    if not (np.any(bad_rows) or np.any(bad_steps)):
        return
    first = min(
        int(np.argmax(bad_rows)) if np.any(bad_rows) else len(rows),
        int(np.argmax(bad_steps)) if np.any(bad_steps) else len(rows),
    )
    i = int(np.searchsorted(ends, first, "right"))
    _check_tube_values(tubes[i][0], tubes[i][1])
    raise AssertionError("unreachable: the failing tube passed its own check")  # pragma: no cover


def load_groundtruth(path: str) -> Dict[str, Any]:
    """The ACT-format ground truth, checked: ``labels``, ``gttubes`` of every test video, ``test_videos``."""
    gt = load_pickle(path)
    if not isinstance(gt, dict):
        raise TubeFormatError(
            f"{path}: not an ACT ground-truth pickle (a dict with labels, gttubes, test_videos, ...),"
            f" got {type(gt).__name__}"
        )
    missing = [k for k in ("labels", "gttubes", "test_videos") if k not in gt]
    if missing:
        raise TubeFormatError(
            f"{path}: not an ACT ground-truth pickle: missing key(s) {', '.join(missing)} "
            f"(has {', '.join(map(str, gt))})"
        )
    labels, gttubes, test_videos = gt["labels"], gt["gttubes"], gt["test_videos"]
    if not isinstance(labels, (list, tuple)) or not all(isinstance(x, str) for x in labels):
        raise TubeFormatError(f"{path}: 'labels' must be a list of class names")
    if not isinstance(test_videos, (list, tuple)) or not test_videos or not isinstance(test_videos[0], (list, tuple)):
        raise TubeFormatError(f"{path}: 'test_videos' must be a list whose first entry is the list of test videos")
    if not isinstance(gttubes, dict):
        raise TubeFormatError(f"{path}: 'gttubes' must be a dict video -> {{label: [tubes]}}")
    checks = []
    for v in test_videos[0]:
        if v not in gttubes:
            raise TubeFormatError(f"{path}: test video {v!r} has no entry in 'gttubes'")
        tubes = gttubes[v]
        if not isinstance(tubes, dict):
            raise TubeFormatError(f"{path}: gttubes[{v!r}] must be a dict label -> list of tubes")
        for label, tube_list in tubes.items():
            if not isinstance(tube_list, (list, tuple)):
                raise TubeFormatError(f"{path}: gttubes[{v!r}][{label!r}] must be a list of tubes")
            checks.extend((tube, f"{path}: gttubes[{v!r}][{label!r}][{i}]") for i, tube in enumerate(tube_list))
    _check_tubes(checks)
    return gt
