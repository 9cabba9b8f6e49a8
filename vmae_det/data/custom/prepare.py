"""``prepare_custom_dataset``: check the CSV, probe the videos, check boxes and times, convert, write, summarise."""

from __future__ import annotations

import contextlib
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Union

from ...constants import AVA_FPS
from .annotations import AnnotationFacts, CustomDatasetError, action_ids, index_videos, read_annotation_rows
from .ava_layout import to_ava_rows, write_annotation_files
from .spill import RowSpill
from .summary import CustomDatasetSummary, VideoInfo
from .video import SourceVideo, convert_video, probe_video

__all__ = ["prepare_custom_dataset"]

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]


def prepare_custom_dataset(
    videos_dir: PathLike,
    annotations_csv: PathLike,
    output_root: PathLike,
    *,
    normalized: bool = False,
    extract_frames: bool = False,
    labels: Optional[PathLike] = None,
    progress: bool = True,
    chunk_rows: int = 200_000,
) -> CustomDatasetSummary:
    """Convert ``videos_dir`` + ``annotations_csv`` into an AVA-layout dataset under ``output_root``.

    Everything in the CSV is checked before any video is converted, so a mistake costs no encoding time.
    Rerunning overwrites only what this function writes. ``chunk_rows``: rows sorted in memory at once.

    Raises:
        CustomDatasetError: naming the file (and line) of the first problem found.
    """
    videos_dir, annotations_csv, root = Path(videos_dir), Path(annotations_csv), Path(output_root)
    made_root = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(prefix=".prepare_custom_dataset.", dir=root) as tmp:
            return _prepare(
                videos_dir, annotations_csv, root, Path(tmp), normalized, extract_frames, labels, progress, chunk_rows
            )
    except BaseException:
        if made_root:
            with contextlib.suppress(OSError):
                root.rmdir()  # only when still empty: a run stopped by a bad CSV leaves no folder behind
        raise


def _prepare(
    videos_dir: Path,
    annotations_csv: Path,
    root: Path,
    tmp: Path,
    normalized: bool,
    extract_frames: bool,
    labels: Optional[PathLike],
    progress: bool,
    chunk_rows: int,
) -> CustomDatasetSummary:
    facts = AnnotationFacts()
    with RowSpill(tmp / "rows.csv") as spill:
        for r in read_annotation_rows(annotations_csv, videos_dir, facts):
            spill.write(r)
    classes = action_ids(facts.actions, annotations_csv, labels)
    videos = _probe_all(facts.sources)
    ava_rows = to_ava_rows(spill, videos, classes, annotations_csv, normalized, tmp, chunk_rows)
    spill.path.unlink()
    _check_times(ava_rows.times, videos, annotations_csv)
    info = {vid: _video_info(vid, src, facts) for vid, src in videos.items()}
    _convert_all(videos, info, ava_rows.times, root, extract_frames, progress, annotations_csv)
    write_annotation_files(root / "annotations", ava_rows, classes)
    return CustomDatasetSummary(
        output_root=root,
        classes=classes,
        num_classes=max(classes),
        videos=info,
        keyframes=dict(ava_rows.keyframes),
        boxes=dict(ava_rows.boxes),
        rows=dict(ava_rows.rows),
        clipped_boxes=ava_rows.clipped_boxes,
        duplicate_rows=ava_rows.duplicate_rows,
        unused_videos=_unused_videos(videos_dir, facts.sources),
        frames_extracted=extract_frames,
    )


def _probe_all(sources: Mapping[str, Path]) -> Dict[str, SourceVideo]:
    videos = {}
    for vid, path in sorted(sources.items()):
        src = videos[vid] = probe_video(path)
        if src.padded_size != (src.width, src.height):
            w, h = src.padded_size
            logger.info(f"{path}: {src.width}x{src.height} padded to {w}x{h} (H.264 needs even sizes)")
    return videos


def _video_info(vid: str, src: SourceVideo, facts: AnnotationFacts) -> VideoInfo:
    width, height = src.padded_size
    return VideoInfo(vid, str(src.path), width, height, src.fps, 0, list(facts.splits_of_video.get(vid, [])))


def _first_late(times: Mapping[int, int], end: float) -> Optional[tuple]:
    """``(line, second)`` of the first line naming a second at or past ``end``, or None."""
    return min(((line, t) for t, line in times.items() if t >= end), default=None)


def _check_times(times: Mapping[str, Mapping[int, int]], videos: Mapping[str, SourceVideo], csv_path: Path) -> None:
    """Raise for keyframes past the end of their video by its container's duration.

    Args:
        times: per video, ``{second: first line naming it}``.
    """
    late = []
    for vid, seconds in times.items():
        duration = videos[vid].duration
        if duration is not None and (first := _first_late(seconds, duration)) is not None:
            late.append((*first, vid))
    if late:
        line, t, vid = min(late)
        duration = videos[vid].duration
        raise CustomDatasetError(csv_path, line, f"time {t} s is past the end of {videos[vid].path} ({duration:.2f} s)")


def _convert_all(
    videos: Mapping[str, SourceVideo],
    info: Mapping[str, VideoInfo],
    times: Mapping[str, Mapping[int, int]],
    root: Path,
    extract_frames: bool,
    progress: bool,
    csv_path: Path,
) -> None:
    """Write ``videos/<id>.mp4`` (and ``frames/<id>/``) of every annotated video; set ``num_frames``."""
    (root / "videos").mkdir(parents=True, exist_ok=True)
    from tqdm import tqdm

    with (
        tqdm(total=len(info), desc="videos", unit="video", disable=not progress) as vbar,
        tqdm(desc="frames", unit="frame", disable=not progress, leave=False) as fbar,
    ):
        for vid, vi in info.items():
            vbar.set_postfix_str(vid)
            fdir = root / "frames" / vid
            if fdir.exists():  # stale frames would shadow the new video (the loader prefers frames)
                shutil.rmtree(fdir)
            if extract_frames:
                fdir.mkdir(parents=True)
            vi.num_frames = convert_video(
                videos[vid], vid, root / "videos" / f"{vid}.mp4", fdir if extract_frames else None, fbar
            )
            late = _first_late(times.get(vid, {}), vi.num_frames / AVA_FPS)
            if late is not None:
                raise CustomDatasetError(
                    csv_path,
                    late[0],
                    f"time {late[1]} s is past the end of {vi.source} ({vi.num_frames / AVA_FPS:.2f} s)",
                )
            vbar.update(1)


def _unused_videos(videos_dir: Path, sources: Mapping[str, Path]) -> List[str]:
    used = {p.resolve() for p in sources.values()}
    by_stem, _ = index_videos(videos_dir)
    unused = sorted(p.name for ps in by_stem.values() for p in ps if p.resolve() not in used)
    if unused:
        logger.info(f"{len(unused)} file(s) in {videos_dir} have no annotations and were not converted")
    return unused
