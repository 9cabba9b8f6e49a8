"""``prepare_custom_dataset``: the steps, in order — check the CSV, probe the videos, check the boxes and
times against them, convert the videos, write the annotation files, summarise."""

from __future__ import annotations

import logging
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Union

from ...constants import AVA_FPS
from .annotations import SPLITS, AnnotationRow, CustomDatasetError, action_ids, index_videos, read_annotation_rows
from .ava_layout import AVARowSet, to_ava_rows, write_annotation_files
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
) -> CustomDatasetSummary:
    """Convert ``videos_dir`` + ``annotations_csv`` into an AVA-layout dataset under ``output_root``.

    See :mod:`vmae_det.data.custom` for the formats. Everything in the CSV is checked before any video is
    converted, so a mistake costs no encoding time. Rerunning overwrites what this function writes
    (``videos/<id>.mp4``, ``frames/<id>/``, the annotation files); other files are left alone.

    Raises:
        CustomDatasetError: naming the file (and line) of the first problem found.
    """
    videos_dir, annotations_csv, root = Path(videos_dir), Path(annotations_csv), Path(output_root)
    rows, sources = read_annotation_rows(annotations_csv, videos_dir)
    classes = action_ids(rows, annotations_csv, labels)
    videos = _probe_all(sources)
    ava_rows = to_ava_rows(rows, videos, classes, annotations_csv, normalized)
    _check_times(rows, videos, annotations_csv)
    info = {vid: _video_info(vid, src, ava_rows) for vid, src in videos.items()}
    _convert_all(videos, info, rows, root, extract_frames, progress, annotations_csv)
    write_annotation_files(root / "annotations", ava_rows, classes)
    return CustomDatasetSummary(
        output_root=root,
        classes=classes,
        num_classes=max(classes),
        videos=info,
        keyframes={s: ava_rows.keyframes(s) for s in SPLITS},
        boxes={s: ava_rows.boxes(s) for s in SPLITS},
        rows={s: len(ava_rows.rows[s]) for s in SPLITS},
        clipped_boxes=ava_rows.clipped_boxes,
        duplicate_rows=ava_rows.duplicate_rows,
        unused_videos=_unused_videos(videos_dir, sources),
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


def _video_info(vid: str, src: SourceVideo, ava_rows: AVARowSet) -> VideoInfo:
    width, height = src.padded_size
    return VideoInfo(vid, str(src.path), width, height, src.fps, 0, list(ava_rows.splits_of_video.get(vid, [])))


def _check_times(rows: List[AnnotationRow], videos: Mapping[str, SourceVideo], csv_path: Path) -> None:
    """Keyframes past the end of their video, by its container's duration (checked exactly after decoding)."""
    for r in rows:
        duration = videos[r.video_id].duration
        if duration is not None and r.time >= duration:
            raise CustomDatasetError(
                csv_path, r.line, f"time {r.time} s is past the end of {videos[r.video_id].path} ({duration:.2f} s)"
            )


def _convert_all(
    videos: Mapping[str, SourceVideo],
    info: Mapping[str, VideoInfo],
    rows: List[AnnotationRow],
    root: Path,
    extract_frames: bool,
    progress: bool,
    csv_path: Path,
) -> None:
    """Write ``videos/<id>.mp4`` (and ``frames/<id>/``) of every annotated video; set ``num_frames``."""
    (root / "videos").mkdir(parents=True, exist_ok=True)
    by_video: Dict[str, List[AnnotationRow]] = defaultdict(list)
    for r in rows:
        by_video[r.video_id].append(r)
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
            for r in by_video[vid]:
                if r.time * AVA_FPS >= vi.num_frames:
                    raise CustomDatasetError(
                        csv_path,
                        r.line,
                        f"time {r.time} s is past the end of {vi.source} ({vi.num_frames / AVA_FPS:.2f} s)",
                    )
            vbar.update(1)


def _unused_videos(videos_dir: Path, sources: Mapping[str, Path]) -> List[str]:
    used = {p.resolve() for p in sources.values()}
    by_stem, _ = index_videos(videos_dir)
    unused = sorted(p.name for ps in by_stem.values() for p in ps if p.resolve() not in used)
    if unused:
        logger.info(f"{len(unused)} file(s) in {videos_dir} have no annotations and were not converted")
    return unused
