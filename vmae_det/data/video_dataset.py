"""Video lists and the clip mapper for VideoMAE pretraining, one module: the lists' checks and the mapper share
the skipped-video counts.

Built-in lists under ``$VMAE_DET_DATASETS``: ``tiny_ava_videos``, ``kinetics400_train`` and ``ssv2_train``
(VideoMAE's ``train.csv``). A missing or undecodable video is skipped and counted (docs/bad_input.md).
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
from .catalog_names import datasets_root
from .transforms import MultiScaleCrop, apply_augmentations_to_clip
from .video_io import VideoDecodeError, open_video

__all__ = [
    "VIDEO_EXTENSIONS",  # re-exported from vmae_det.constants
    "load_video_list",
    "register_video_list",
    "register_video_path",
    "sample_clip_indices",
    "MAEClipMapper",
    "check_video_list",
    "skipped_videos",
    "skip_events",
    "reset_skipped_videos",
]

logger = logging.getLogger(__name__)


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
    """Read a folder of videos (searched recursively) or a list file into dataset dicts.

    Args:
        path_or_dir: a folder, or a text/CSV file with one ``path [label]`` per line (space or comma separated;
            blank lines and ``#`` comments are ignored).
        root: folder that relative paths in a list file are resolved against (default: the list file's folder).

    Returns:
        ``[{"file_name": str, "label": int}]`` in file order (folders: sorted), label ``-1`` when absent.
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
    """Drop listed videos that do not exist (one warning, counted as skipped) and make sure one of the others
    decodes, trying at most ``max_tries`` files spread over the list; returns the existing records."""
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
    """Register ``name`` as ``load_video_list(list_path, root)`` then :func:`check_video_list`, read lazily."""
    DatasetCatalog.register(name, lambda: _load_checked(list_path, root))
    MetadataCatalog.get(name).set(list_path=list_path, root=root)


def _has_video(folder: str) -> bool:
    for _, _, filenames in os.walk(folder, followlinks=True):
        if any(n.lower().endswith(VIDEO_EXTENSIONS) for n in filenames):
            return True
    return False


def register_video_path(path: str) -> str:
    """Register a folder or list file given as a path (``--videos PATH``) as ``videos:<absolute path>``, once;
    returns that name."""
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


# Shared memory, so forked DataLoader workers' skips reach the parent: a set of 64-bit path hashes and two counts.
_SKIP_TABLE_SLOTS = 1 << 16  # 512 KiB; past 90% full, new files are still counted, not stored
_SKIP_TABLE = multiprocessing.Array(ctypes.c_int64, _SKIP_TABLE_SLOTS, lock=True)
_SKIPPED = multiprocessing.Value(ctypes.c_int64, 0, lock=False)  # distinct files (under the table's lock)
_SKIP_EVENTS = multiprocessing.Value(ctypes.c_int64, 0, lock=False)


def skipped_videos() -> int:
    """Distinct video files skipped by this process and its forked workers (a file that fails again counts once)."""
    return int(_SKIPPED.value)


def skip_events() -> int:
    """Failed video reads, repeats included."""
    return int(_SKIP_EVENTS.value)


def reset_skipped_videos() -> None:
    """Reset both counts and forget the skipped files."""
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


def sample_clip_indices(
    video_frames: int, num_frames: int, sampling_rate: int, rng: Optional[np.random.RandomState] = None
) -> np.ndarray:
    """Indices of a random clip of ``num_frames`` frames ``sampling_rate`` apart, fitting the video where it can;
    a shorter video starts at 0 and the reader clamps the tail (VideoMAE repeats the last frame likewise)."""
    rng = rng if rng is not None else np.random
    span = (num_frames - 1) * sampling_rate + 1
    start = rng.randint(0, max(video_frames - span, 0) + 1)
    return start + np.arange(num_frames) * sampling_rate


class MAEClipMapper:
    """Dataset dict ``{"file_name": ...}`` to ``{"clip": uint8 [3, T, H, W]}`` for MAE pretraining: a random clip,
    one multi-scale crop (VideoMAE's ``GroupMultiScaleCrop``) and flip shared by all frames; the model normalises.

    Args:
        sampling_rate: stride between sampled frames (VideoMAE: 4 for K400, 2 for SSV2).
        flip: random horizontal flip (off where left/right matters, e.g. SSV2).
        num_retries: clips tried in a video whose frames fail to decode before it is skipped.
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
        clip = torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2).contiguous()
        return {"clip": clip}

    def __repr__(self) -> str:
        return (
            f"MAEClipMapper(num_frames={self.num_frames}, sampling_rate={self.sampling_rate}, "
            f"input_size={self.input_size}, augmentations={self.augmentations})"
        )
