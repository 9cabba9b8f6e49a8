"""The ACT-format files of spatio-temporal action tubes (UCF101-24, JHMDB-21, MultiSports): the one reader and
checker of the ground-truth pickle, the reader of MultiSports' person-box pickles, and a Python-2-style writer.

The ground truth holds ``labels``, ``gttubes[video][label_index] = [(n, 5) frame x1 y1 x2 y2]`` (1-based frames,
pixels), ``nframes``, ``train_videos`` / ``test_videos`` (lists of splits) and ``resolution[video] = (h, w)``.
UCF101v2-GT.pkl and JHMDB-GT.pkl are Python-2 pickles: :func:`~vmae_det.formats.safe_pickle.load_pickle` reads
their ``str`` as latin-1.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from .atomic import atomic_write_bytes
from .safe_pickle import load_pickle

__all__ = [
    "ACT_KEYS",
    "SPLIT_KINDS",
    "TubeFormatError",
    "check_frame_detections",
    "check_groundtruth_file",
    "check_tubes",
    "load_groundtruth",
    "split_videos",
    "load_person_box_pickle",
    "dumps_python2_pickle",
    "write_python2_pickle",
]

ACT_KEYS = ("labels", "gttubes", "nframes", "train_videos", "test_videos", "resolution")
SPLIT_KINDS = ("train", "test")


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


def check_tubes(tubes: Sequence[Tuple[Any, str]], min_cols: int = 5) -> None:
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


def check_frame_detections(
    dets: Any,
    videos: Sequence[str],
    where: str,
    nframes: Optional[Mapping[str, int]] = None,
    num_labels: Optional[int] = None,
) -> None:
    """Raise :class:`TubeFormatError` naming ``where`` and the row unless ``dets`` is an ``(N, 8)`` array of finite
    numbers ``video_index, frame, label_index, score, x1, y1, x2, y2`` with integer video indices into ``videos``;
    with ``num_labels``, label indices ``0..num_labels-1``; with ``nframes``, also frames ``1..nframes[video]``,
    label indices ``>= 0`` and a float32 / float64 array (what linking needs: its arithmetic follows the dtype)."""
    if not isinstance(dets, np.ndarray) or dets.ndim != 2 or dets.shape[1] != 8:
        shape = getattr(dets, "shape", type(dets).__name__)
        raise TubeFormatError(
            f"{where}: frame detections must be an (N, 8) array of [video_index, frame, label_index, score, "
            f"x1, y1, x2, y2], got {shape}"
        )
    if not (np.issubdtype(dets.dtype, np.floating) or np.issubdtype(dets.dtype, np.integer)):
        raise TubeFormatError(f"{where}: frame detections must hold numbers, got dtype {dets.dtype}")
    bad = ~np.all(np.isfinite(dets), axis=1)
    if np.any(bad):
        raise TubeFormatError(f"{where}: row {int(np.argmax(bad))}: a non-finite value")
    vid = dets[:, 0]
    bad = (vid < 0) | (vid >= len(videos)) | (vid != np.round(vid))
    if np.any(bad):
        row = int(np.argmax(bad))
        raise TubeFormatError(
            f"{where}: row {row}: video index {vid[row]:g} is not an integer 0..{len(videos) - 1} (out of range of "
            "the scored test videos)"
        )
    if nframes is not None:
        if dets.dtype not in (np.float32, np.float64):
            raise TubeFormatError(
                f"{where}: frame detections must be float32 or float64 (linking computes in their dtype), "
                f"got {dets.dtype}"
            )
        missing = [v for v in videos if v not in nframes]
        if missing:
            raise TubeFormatError(f"{where}: video {missing[0]!r} has no frame count (nframes)")
        frame = dets[:, 1]
        counts = np.array([int(nframes[v]) for v in videos], dtype=np.int64)
        bad = (frame < 1) | (frame > counts[vid.astype(np.int64)]) | (frame != np.round(frame))
        if np.any(bad):
            row = int(np.argmax(bad))
            v = videos[int(vid[row])]
            raise TubeFormatError(
                f"{where}: row {row}: frame {frame[row]:g} is not an integer 1..{nframes[v]} of {v!r}"
            )
    if nframes is None and num_labels is None:
        return
    label = dets[:, 2]
    bad = (label < 0) | (label != np.round(label))
    if num_labels is not None:
        bad |= label >= num_labels
    if np.any(bad):
        row = int(np.argmax(bad))
        valid = f"0..{num_labels - 1} ({num_labels} labels)" if num_labels is not None else ">= 0"
        raise TubeFormatError(f"{where}: row {row}: label index {label[row]:g} is not an integer {valid}")


def check_groundtruth_file(path: Union[str, os.PathLike]) -> None:
    """Raise ``FileNotFoundError`` naming ``path`` unless it is a file (every reader's one message)."""
    if not os.path.isfile(path):
        folder = " (a folder; give the pickle)" if os.path.isdir(path) else ""
        raise FileNotFoundError(f"ACT ground-truth file not found: {os.fspath(path)}{folder}")


def load_groundtruth(path: str, split: int = 0) -> Dict[str, Any]:
    """The ACT-format ground truth, checked: ``labels`` and the ``gttubes`` of ``test_videos[split]``, which is
    returned as ``test_videos[0]`` (the list the evaluators score, as ACT's ``Dataset(split)`` reads it)."""
    check_groundtruth_file(path)
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
    if not isinstance(test_videos, (list, tuple)) or not all(isinstance(s, (list, tuple)) for s in test_videos):
        raise TubeFormatError(f"{path}: 'test_videos' must be a list of splits, each a list of test videos")
    if isinstance(split, bool) or not isinstance(split, (int, np.integer)) or not 0 <= split < len(test_videos):
        raise TubeFormatError(f"{path}: split {split!r} out of range: 'test_videos' has {len(test_videos)} split(s)")
    if not isinstance(gttubes, dict):
        raise TubeFormatError(f"{path}: 'gttubes' must be a dict video -> {{label: [tubes]}}")
    checks = []
    for v in test_videos[split]:
        if v not in gttubes:
            raise TubeFormatError(f"{path}: test video {v!r} has no entry in 'gttubes'")
        tubes = gttubes[v]
        if not isinstance(tubes, dict):
            raise TubeFormatError(f"{path}: gttubes[{v!r}] must be a dict label -> list of tubes")
        for label, tube_list in tubes.items():
            if not isinstance(tube_list, (list, tuple)):
                raise TubeFormatError(f"{path}: gttubes[{v!r}][{label!r}] must be a list of tubes")
            checks.extend((tube, f"{path}: gttubes[{v!r}][{label!r}][{i}]") for i, tube in enumerate(tube_list))
    check_tubes(checks)
    return dict(gt, test_videos=[test_videos[split]]) if split else gt


def _positive_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)) and value > 0


def split_videos(gt: Mapping[str, Any], path: str, split_kind: str, split: int = 0) -> List[str]:
    """The videos of ``train_videos[split]`` or ``test_videos[split]`` of a ground truth read by
    :func:`load_groundtruth`, each checked as the data path needs: ``nframes`` and ``resolution`` present and
    positive, ``gttubes`` label indices in ``0..len(labels)-1``, tubes sorted, without gaps and inside
    ``1..nframes``.

    Args:
        gt, path: the ground truth and its file (named in errors).
        split_kind: ``"train"`` or ``"test"``.
        split: index into the list of splits (JHMDB has 3, UCF101-24 and MultiSports 1).
    """
    if split_kind not in SPLIT_KINDS:
        raise ValueError(f"split_kind must be one of {SPLIT_KINDS}, got {split_kind!r}")
    missing = [k for k in ACT_KEYS if k not in gt]
    if missing:
        raise TubeFormatError(f"{path}: not an ACT ground-truth pickle: missing key(s) {', '.join(missing)}")
    key = f"{split_kind}_videos"
    splits = gt[key]
    if not isinstance(splits, (list, tuple)) or not all(isinstance(v, (list, tuple)) for v in splits):
        raise TubeFormatError(f"{path}: {key!r} must be a list of splits, each a list of video names")
    if isinstance(split, bool) or not isinstance(split, (int, np.integer)) or not 0 <= split < len(splits):
        raise TubeFormatError(f"{path}: split {split!r} out of range: {key!r} has {len(splits)} split(s)")
    videos = list(splits[split])
    for name in ("nframes", "resolution", "gttubes"):
        if not isinstance(gt[name], dict):
            raise TubeFormatError(f"{path}: {name!r} must be a dict keyed by video, got {type(gt[name]).__name__}")
    nframes, resolution, gttubes = gt["nframes"], gt["resolution"], gt["gttubes"]
    num_labels = len(gt["labels"])
    checks, spans = [], []
    for v in videos:
        where = f"{path}: {key}[{split}] video {v!r}"
        if not _positive_int(nframes.get(v)):
            raise TubeFormatError(f"{where}: nframes must be a positive integer, got {nframes.get(v)!r}")
        res = resolution.get(v)
        if not isinstance(res, (list, tuple)) or len(res) != 2 or not all(_positive_int(x) for x in res):
            raise TubeFormatError(f"{where}: resolution must be (height, width) in pixels, got {res!r}")
        if v not in gttubes:
            if split_kind == "train":
                raise TubeFormatError(f"{where}: no entry in 'gttubes'")
            continue
        if not isinstance(gttubes[v], dict):
            raise TubeFormatError(f"{path}: gttubes[{v!r}] must be a dict label -> list of tubes")
        for label, tube_list in gttubes[v].items():
            if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or not 0 <= label < num_labels:
                raise TubeFormatError(
                    f"{path}: gttubes[{v!r}]: label index {label!r} outside 0..{num_labels - 1} "
                    f"('labels' has {num_labels} classes)"
                )
            if not isinstance(tube_list, (list, tuple)):
                raise TubeFormatError(f"{path}: gttubes[{v!r}][{label!r}] must be a list of tubes")
            for i, tube in enumerate(tube_list):
                checks.append((tube, f"{path}: gttubes[{v!r}][{label!r}][{i}]"))
                spans.append(int(nframes[v]))
    check_tubes(checks)
    for (tube, where), n in zip(checks, spans):
        if tube[0, 0] < 1 or tube[-1, 0] > n:
            raise TubeFormatError(
                f"{where}: the tube spans frames {tube[0, 0]:g}..{tube[-1, 0]:g}, outside the video's 1..{n} (nframes)"
            )
    return videos


def load_person_box_pickle(
    path: Union[str, os.PathLike], videos: Optional[Sequence[str]] = None
) -> Dict[Tuple[str, int], np.ndarray]:
    """MultiSports' person boxes ``{"video,frame": (n, 5) x1 y1 x2 y2 score}`` (normalised, 1-based frames) as
    ``{(video, frame): float32 (n, 5)}``.

    The official files name a video without its sport folder (``v_-6Os86HzwCs_c001``), mmaction2's converted
    ones with it and ``.mp4`` (``basketball/v_-6Os86HzwCs_c001.mp4``); with ``videos`` (the ACT names), both
    are mapped to the ACT name and keys of other videos are dropped (a box file covers a whole split).
    """
    where = os.fspath(path)
    boxes = load_pickle(where)
    if not isinstance(boxes, dict):
        raise TubeFormatError(
            f"{where}: not a person-box pickle (a dict 'video,frame' -> (n, 5) boxes), got {type(boxes).__name__}"
        )
    names: Dict[str, str] = {}
    if videos is not None:
        base_count: Dict[str, int] = {}
        for v in videos:
            base = v.rsplit("/", 1)[-1]
            base_count[base] = base_count.get(base, 0) + 1
        for v in videos:
            names[v] = v
            base = v.rsplit("/", 1)[-1]
            if base_count[base] == 1:
                names.setdefault(base, v)
    out: Dict[Tuple[str, int], np.ndarray] = {}
    for key, value in boxes.items():
        video, sep, frame = key.rpartition(",") if isinstance(key, str) else ("", "", "")
        if not sep or not frame.strip().isdigit() or int(frame) < 1:
            raise TubeFormatError(f"{where}: key {key!r} is not 'video,frame' with a 1-based frame number")
        video = video[:-4] if video.endswith(".mp4") else video
        if videos is not None:
            if video not in names:
                continue
            video = names[video]
        arr = np.asarray(value)
        if arr.ndim != 2 or arr.shape[1] != 5 or not np.issubdtype(arr.dtype, np.number):
            raise TubeFormatError(
                f"{where}: entry {key!r}: boxes must be an (n, 5) array of x1 y1 x2 y2 score, got shape {arr.shape}"
            )
        arr = arr.astype(np.float32)
        if not np.all(np.isfinite(arr)):
            raise TubeFormatError(f"{where}: entry {key!r}: a box holds a non-finite value")
        if arr.size and (arr[:, :4].min() < -0.01 or arr[:, :4].max() > 1.01):
            raise TubeFormatError(
                f"{where}: entry {key!r}: box coordinates must be normalised to [0, 1] (pixels given?)"
            )
        out[(video, int(frame))] = arr
    return out


class _Python2Pickler(pickle._Pickler):
    """Protocol 2 as Python 2 wrote it: ``str`` and ``bytes`` (numpy's raw data) as Python 2 ``str``
    (``BINSTRING``), numpy's globals under ``numpy.core``."""

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj: Union[str, bytes]) -> None:
        data = obj.encode("latin-1") if isinstance(obj, str) else bytes(obj)
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[str] = save_py2_str
    dispatch[bytes] = save_py2_str

    def save_global(self, obj: Any, name: Optional[str] = None) -> None:
        name = name or obj.__qualname__
        module = obj.__module__.replace("numpy._core", "numpy.core")
        module = "__builtin__" if module == "builtins" else module
        self.write(pickle.GLOBAL + f"{module}\n{name}\n".encode("ascii"))
        self.memoize(obj)

    dispatch[type] = save_global


def dumps_python2_pickle(obj: Any) -> bytes:
    """``obj`` (dicts, lists, tuples, str, numbers, numpy arrays) pickled as Python 2's ``cPickle`` at protocol 2
    writes it: the layout of ACT's UCF101v2-GT.pkl and JHMDB-GT.pkl, read only with ``encoding="latin1"``."""
    buf = io.BytesIO()
    _Python2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def write_python2_pickle(path: Union[str, os.PathLike], obj: Any) -> None:
    """Write :func:`dumps_python2_pickle` of ``obj`` to ``path`` atomically."""
    atomic_write_bytes(path, dumps_python2_pickle(obj))
