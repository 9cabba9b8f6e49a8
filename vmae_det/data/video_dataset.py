"""Video lists and the clip mapper for VideoMAE pretraining.

* :func:`load_video_list` reads a folder of videos (recursively) or a Kinetics/SSV2-style list
  (``path [label]`` per line, space or comma separated, as VideoMAE's ``train.csv``) into
  detectron2 dataset dicts ``{"file_name": str, "label": int}`` (label ``-1`` when absent).
* :func:`register_video_list` puts such a list in ``DatasetCatalog``. Registered on import, under
  ``$VMAE_DET_DATASETS`` (default ``./datasets``): ``tiny_ava_videos`` (``tiny_ava/videos/``, the
  videos of the tiny AVA default), ``kinetics400_train`` (``kinetics400/train.csv``) and
  ``ssv2_train`` (``ssv2/train.csv``). :func:`register_video_path` registers a folder or list given as
  a path (``tools/pretrain_mae.py --videos PATH``).
* :class:`MAEClipMapper` turns a dict into ``{"clip": uint8 [3, T, H, W]}``: a random clip of
  ``num_frames`` frames ``sampling_rate`` apart, one multi-scale crop (VideoMAE's
  ``GroupMultiScaleCrop``, :class:`vmae_det.data.transforms.MultiScaleCrop`) and an optional
  horizontal flip shared by all frames, resized to a square
  ``input_size``. The model normalises, so the mapper keeps 0-255 values.

Bad videos. The registered lists go through :func:`check_video_list` when first read: listed files
that do not exist are dropped with one warning that counts them, and a list whose files all are
missing, or none of whose videos decodes (it tries files spread over the list until one does),
is an error naming the list and the files tried, before training starts (instead of detectron2's
``MapDataset`` running out of candidates: "Sample larger than population"). During training a
video that cannot be decoded makes the mapper return ``None`` (``MapDataset`` then draws another
index) and logs a warning naming the file. :func:`skipped_videos` counts **distinct files**
(the ``skipped_videos`` training metric), :func:`skip_events` every failed read (the same file
fails again each epoch). Both live in shared memory, so the default forked data-loader workers
add to the main process's counts.
"""

from __future__ import annotations

import codecs
import csv
import ctypes
import hashlib
import io
import logging
import multiprocessing
import os
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data import transforms as T

from ..constants import VIDEO_EXTENSIONS
from .transforms import MultiScaleCrop, apply_augmentations_to_clip
from .video_io import VideoDecodeError, open_video

__all__ = [
    "VIDEO_EXTENSIONS",  # re-exported from vmae_det.constants
    "load_video_list",
    "register_video_list",
    "register_video_path",
    "datasets_root",
    "sample_clip_indices",
    "MAEClipMapper",
    "check_video_list",
    "skipped_videos",
    "skip_events",
    "reset_skipped_videos",
]

logger = logging.getLogger(__name__)

# ------------------------------------------------------------------------------------------------
# Video lists
# ------------------------------------------------------------------------------------------------


def datasets_root() -> str:
    """Root of the datasets folder: ``$VMAE_DET_DATASETS``, default ``./datasets``."""
    return os.environ.get("VMAE_DET_DATASETS", "datasets")


def _list_folder(folder: str) -> List[Dict[str, Any]]:
    paths = []
    for dirpath, _, filenames in os.walk(folder, followlinks=True):
        paths += [os.path.join(dirpath, n) for n in filenames if n.lower().endswith(VIDEO_EXTENSIONS)]
    return [{"file_name": p, "label": -1} for p in sorted(paths)]  # same order on every machine


def _parse_list_line(line: str) -> List[str]:
    if "," in line:
        return [f.strip() for f in next(csv.reader(io.StringIO(line)))]
    return line.split()


def _not_text(list_path: str, data: bytes, error: UnicodeDecodeError) -> ValueError:
    """The error for a list file that is not UTF-8 text (a video, by its content): its line and byte."""
    lineno = data.count(b"\n", 0, error.start) + 1
    column = error.start - (data.rfind(b"\n", 0, error.start) + 1)
    return ValueError(
        f"{list_path}:{lineno}: not a text list file (byte {column} of line {lineno} is not UTF-8); a "
        "folder of videos or a list file ('path [label]' per line) is expected: is it a video?"
    )


def _check_text(list_path: str, size: int = 1 << 16) -> None:
    """Refuse a list file whose first ``size`` bytes are not UTF-8 text, when it is registered."""
    with open(list_path, "rb") as f:
        data = f.read(size)
    try:
        codecs.getincrementaldecoder("utf-8")().decode(data, final=False)  # a character cut at the end is fine
    except UnicodeDecodeError as e:
        raise _not_text(list_path, data, e) from None


def _read_list_file(list_path: str, root: str) -> List[Dict[str, Any]]:
    records = []
    with open(list_path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise _not_text(list_path, data, e) from None
    with io.StringIO(text, newline=None) as f:
        for lineno, raw in enumerate(f, start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            fields = _parse_list_line(line)
            if len(fields) not in (1, 2) or not fields[0]:
                raise ValueError(f"{list_path}:{lineno}: expected 'path [label]', got {len(fields)} fields: {line!r}")
            label = -1
            if len(fields) == 2:
                try:
                    label = int(fields[1])
                except ValueError:
                    raise ValueError(
                        f"{list_path}:{lineno}: label must be an integer, got {fields[1]!r} in {line!r}"
                    ) from None
                if label < 0:
                    raise ValueError(f"{list_path}:{lineno}: negative label {label} in {line!r}")
            path = os.path.expanduser(fields[0])
            if not os.path.isabs(path):
                path = os.path.join(root, path)
            records.append({"file_name": path, "label": label})
    return records


def load_video_list(path_or_dir: str, root: Optional[str] = None) -> List[Dict[str, Any]]:
    """Read a folder of videos or a list file into dataset dicts.

    Args:
        path_or_dir: a folder (searched recursively for :data:`VIDEO_EXTENSIONS`) or a text/CSV file
            with one ``path [label]`` per line (space or comma separated; blank lines and ``#``
            comments are ignored).
        root: folder that relative paths in a list file are resolved against (default: the
            list file's folder).

    Returns:
        ``[{"file_name": str, "label": int}]`` in file order (folders: sorted), label ``-1`` when
        the list gives none. Files are not opened here; the mapper skips unreadable ones.

    Raises:
        FileNotFoundError: ``path_or_dir`` does not exist.
        ValueError: a malformed line (the message names the file and line) or an empty result.
    """
    path_or_dir = os.fspath(path_or_dir)
    if os.path.isdir(path_or_dir):
        records = _list_folder(path_or_dir)
    elif os.path.isfile(path_or_dir):
        base = root if root is not None else os.path.dirname(os.path.abspath(path_or_dir))
        records = _read_list_file(path_or_dir, base)
    else:
        raise FileNotFoundError(f"video list or folder '{path_or_dir}' does not exist")
    if not records:
        raise ValueError(f"no videos found in '{path_or_dir}' (extensions: {', '.join(VIDEO_EXTENSIONS)})")
    return records


def check_video_list(records: List[Dict[str, Any]], source: str, max_tries: int = 32) -> List[Dict[str, Any]]:
    """Drop listed videos that do not exist (one warning with the count) and make sure at least one
    of the others decodes.

    Args:
        records: dataset dicts from :func:`load_video_list`.
        source: the list file or folder, for messages.
        max_tries: at most this many files, spread evenly over the list, are opened until one
            decodes (usually the first does: one open).

    Returns:
        the records whose file exists. Dropped files count as skipped videos (:func:`skipped_videos`).

    Raises:
        FileNotFoundError: none of the listed files exists.
        ValueError: none of the files tried decodes (the message names each with its reason).
    """
    existing = [r for r in records if os.path.isfile(r["file_name"])]
    missing = [r["file_name"] for r in records if not os.path.isfile(r["file_name"])]
    if not existing:
        raise FileNotFoundError(
            f"none of the {len(records)} videos listed in '{source}' exists (e.g. {_examples(missing)}); "
            "check the paths and the root they are relative to"
        )
    if missing:
        for path in missing:
            _remember_skip(path)
        logger.warning(
            f"{len(missing)} of the {len(records)} videos listed in '{source}' do not exist and are skipped "
            f"(e.g. {_examples(missing)}); training uses the other {len(existing)}"
        )
    step = max(len(existing) / max_tries, 1.0)
    tried = []
    for k in range(min(max_tries, len(existing))):
        path = existing[int(k * step)]["file_name"]
        try:
            open_video(path).close()
            break
        except VideoDecodeError as e:
            tried.append(f"{path}: {e.reason}")
    else:
        more = len(existing) - len(tried)
        raise ValueError(
            f"none of the {len(tried)} videos tried from '{source}' decodes"
            f"{f' (the other {more} were not tried)' if more else ''}; is every video of this list bad? "
            + "; ".join(tried[:5])
            + (f"; ... (+{len(tried) - 5})" if len(tried) > 5 else "")
        )
    return existing


def _examples(paths: Sequence[str], k: int = 3) -> str:
    return ", ".join(f"'{p}'" for p in paths[:k]) + (f" and {len(paths) - k} more" if len(paths) > k else "")


def _load_checked(list_path: str, root: Optional[str]) -> List[Dict[str, Any]]:
    return check_video_list(load_video_list(list_path, root), list_path)


def register_video_list(name: str, list_path: str, root: Optional[str] = None) -> None:
    """Register ``name`` in ``DatasetCatalog`` as ``load_video_list(list_path, root)`` followed by
    :func:`check_video_list`.

    The list is read lazily, when the dataset is first requested.
    """
    DatasetCatalog.register(name, lambda: _load_checked(list_path, root))
    MetadataCatalog.get(name).set(list_path=list_path, root=root)


def _has_video(folder: str) -> bool:
    for _, _, filenames in os.walk(folder, followlinks=True):
        if any(n.lower().endswith(VIDEO_EXTENSIONS) for n in filenames):
            return True
    return False


def register_video_path(path: str) -> str:
    """Register a folder of videos or a list file given as a path (``tools/pretrain_mae.py --videos PATH``)
    as the dataset ``videos:<absolute path>`` (once); return that name.

    The folder is searched recursively for :data:`VIDEO_EXTENSIONS`; a list file is read as
    :func:`load_video_list` reads it, when the dataset is first loaded (then :func:`check_video_list`).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: ``path`` is a folder without videos.
    """
    path = os.path.abspath(os.path.expanduser(os.fspath(path)))
    if not os.path.exists(path):
        raise FileNotFoundError(f"video folder or list file '{path}' does not exist")
    if os.path.isdir(path) and not _has_video(path):
        raise ValueError(f"folder '{path}' has no videos (searched recursively for {', '.join(VIDEO_EXTENSIONS)})")
    if os.path.isfile(path):
        _check_text(path)
    name = f"videos:{path}"
    if name not in DatasetCatalog.list():
        register_video_list(name, path)
    return name


# name -> (list file or folder, root of relative paths), both under $VMAE_DET_DATASETS.
_BUILTIN_LISTS = {
    "tiny_ava_videos": ("tiny_ava/videos", None),
    # VideoMAE's lists: "path label" per line (see configs/pretrain/).
    "kinetics400_train": ("kinetics400/train.csv", "kinetics400"),
    "ssv2_train": ("ssv2/train.csv", "ssv2"),
}


def _register_builtin() -> None:
    def loader(rel_list: str, rel_root: Optional[str]):
        # Resolve the root when the list is read, so VMAE_DET_DATASETS set after import counts.
        def load() -> List[Dict[str, Any]]:
            root = datasets_root()
            return _load_checked(
                os.path.join(root, rel_list), None if rel_root is None else os.path.join(root, rel_root)
            )

        return load

    for name, (rel_list, rel_root) in _BUILTIN_LISTS.items():
        if name in DatasetCatalog.list():
            continue
        DatasetCatalog.register(name, loader(rel_list, rel_root))
        MetadataCatalog.get(name).set(
            list_path=f"$VMAE_DET_DATASETS/{rel_list}",
            root=None if rel_root is None else f"$VMAE_DET_DATASETS/{rel_root}",
        )


_register_builtin()

# ------------------------------------------------------------------------------------------------
# Skip counter
# ------------------------------------------------------------------------------------------------

# Shared memory, inherited by forked DataLoader workers so their skips reach the parent's counts:
# an open-addressing set of 64-bit path hashes (distinct files), and the two counts.
_SKIP_TABLE_SLOTS = 1 << 16  # 512 KiB; past 90% full, new files are still counted, not stored
_SKIP_TABLE = multiprocessing.Array(ctypes.c_int64, _SKIP_TABLE_SLOTS, lock=True)
_SKIPPED = multiprocessing.Value(ctypes.c_int64, 0, lock=False)  # distinct files (under the table's lock)
_SKIP_EVENTS = multiprocessing.Value(ctypes.c_int64, 0, lock=False)


def skipped_videos() -> int:
    """Number of distinct video files skipped by this process and its forked workers (missing from
    a list, or failing to decode in a mapper). A file that fails again counts once."""
    return int(_SKIPPED.value)


def skip_events() -> int:
    """Number of failed video reads (each time a mapper skipped a video, repeats included)."""
    return int(_SKIP_EVENTS.value)


def reset_skipped_videos() -> None:
    """Set both counts back to zero and forget the skipped files (tests, or one count per run)."""
    with _SKIP_TABLE.get_lock():
        ctypes.memset(ctypes.addressof(_SKIP_TABLE.get_obj()), 0, ctypes.sizeof(_SKIP_TABLE.get_obj()))
        _SKIPPED.value = 0
        _SKIP_EVENTS.value = 0


def _path_hash(path: str) -> int:
    h = int.from_bytes(hashlib.blake2b(os.path.abspath(path).encode(), digest_size=8).digest(), "little", signed=True)
    return h or 1  # 0 marks an empty slot


def _remember_skip(path: str, event: bool = False) -> bool:
    """Record a skip of ``path``; True when the file had not been skipped before."""
    h = _path_hash(path)
    table = _SKIP_TABLE.get_obj()
    with _SKIP_TABLE.get_lock():
        if event:
            _SKIP_EVENTS.value += 1
        slot = h % _SKIP_TABLE_SLOTS
        for _ in range(_SKIP_TABLE_SLOTS):
            if table[slot] == h:
                return False
            if table[slot] == 0:
                if _SKIPPED.value < 0.9 * _SKIP_TABLE_SLOTS:
                    table[slot] = h
                _SKIPPED.value += 1
                return True
            slot = (slot + 1) % _SKIP_TABLE_SLOTS
        _SKIPPED.value += 1  # pragma: no cover - the table never fills (90% cap above)
        return True


def _count_skip(path: str, reason: str) -> None:
    new = _remember_skip(path, event=True)
    files, events = skipped_videos(), skip_events()
    if new:
        logger.warning(
            "Skipping video '%s' (%s); %d distinct video file(s) skipped so far (%d failed reads)",
            path,
            reason,
            files,
            events,
        )
    else:
        logger.info("Skipping video '%s' again (%s); %d distinct file(s), %d failed reads", path, reason, files, events)


# ------------------------------------------------------------------------------------------------
# Clip sampling
# ------------------------------------------------------------------------------------------------


def sample_clip_indices(
    video_frames: int, num_frames: int, sampling_rate: int, rng: Optional[np.random.RandomState] = None
) -> np.ndarray:
    """Indices of a random clip of ``num_frames`` frames ``sampling_rate`` apart.

    The start is uniform over positions where the whole clip fits; a video shorter than the clip
    starts at 0 and the reader clamps the tail to its last frame (VideoMAE repeats it likewise).
    """
    rng = rng if rng is not None else np.random
    span = (num_frames - 1) * sampling_rate + 1
    start = rng.randint(0, max(video_frames - span, 0) + 1)
    return start + np.arange(num_frames) * sampling_rate


# ------------------------------------------------------------------------------------------------
# Mapper
# ------------------------------------------------------------------------------------------------


class MAEClipMapper:
    """Dataset dict ``{"file_name": ...}`` → ``{"clip": uint8 [3, T, H, W]}`` for MAE pretraining.

    Args:
        num_frames: frames per clip (``T``).
        sampling_rate: temporal stride between sampled frames (4 for K400, 2 for SSV2 in VideoMAE).
        input_size: output height and width.
        scales: multi-scale crop scales of the short side.
        flip: random horizontal flip (turn off where left/right matters, e.g. SSV2).
        num_retries: clips tried in a video whose frames fail to decode before it is skipped
            (a video that cannot be opened is skipped at once).
        backend: video backend for :func:`open_video`.
    """

    def __init__(
        self,
        num_frames: int = 16,
        sampling_rate: int = 4,
        input_size: int = 224,
        scales: Sequence[float] = (1.0, 0.875, 0.75, 0.66),
        flip: bool = True,
        num_retries: int = 3,
        backend: str = "auto",
    ):
        if num_frames < 1 or sampling_rate < 1 or input_size < 1:
            raise ValueError(
                f"num_frames, sampling_rate and input_size must be >= 1, "
                f"got {num_frames}, {sampling_rate}, {input_size}"
            )
        self.num_frames = int(num_frames)
        self.sampling_rate = int(sampling_rate)
        self.input_size = int(input_size)
        self.num_retries = max(int(num_retries), 1)
        self.backend = backend
        self.augmentations: List[T.Augmentation] = [MultiScaleCrop(self.input_size, scales)]
        if flip:
            self.augmentations.append(T.RandomFlip(prob=0.5, horizontal=True, vertical=False))

    def _read_clip(self, path: str) -> np.ndarray:
        with open_video(path, backend=self.backend) as reader:
            last_error: Optional[VideoDecodeError] = None
            for _ in range(self.num_retries):
                indices = sample_clip_indices(reader.num_frames, self.num_frames, self.sampling_rate)
                try:
                    return reader.get_frames(indices)
                except VideoDecodeError as e:
                    last_error = e  # maybe only part of the file is broken: try another clip
            assert last_error is not None
            raise last_error

    def __call__(self, dataset_dict: Dict[str, Any]) -> Optional[Dict[str, torch.Tensor]]:
        path = dataset_dict["file_name"]
        try:
            frames = self._read_clip(path)
        except VideoDecodeError as e:
            _count_skip(path, e.reason)
            return None
        frames, _ = apply_augmentations_to_clip(self.augmentations, frames)
        # [T, H, W, 3] -> [3, T, H, W]
        clip = torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2).contiguous()
        return {"clip": clip}

    def __repr__(self) -> str:
        return (
            f"MAEClipMapper(num_frames={self.num_frames}, sampling_rate={self.sampling_rate}, "
            f"input_size={self.input_size}, augmentations={self.augmentations})"
        )
