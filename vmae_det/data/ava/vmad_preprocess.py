"""Raw AVA movies -> VMAD's processed AVA (:mod:`vmae_det.formats.vmad_layout`), as AlphAction's
``tools/ava/process_ava_videos.py`` and ``csv2COCO.py`` make it; one module, as one resumable pipeline whose clips
and annotations must agree.

The clips reproduce AlphAction's ffmpeg command with FFmpeg's own filters (:class:`FilteredFrames`); the filter
chain, the resume protocol and the annotation files are described in ``docs/ava_preprocessing.md``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import multiprocessing
import os
import signal
import time
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

from ...formats.atomic import atomic_write_bytes, atomic_write_text, commit_file
from ...formats.ava import (
    LABEL_MAP_FILES,
    AVAFormatError,
    annotation_file_names,
    read_ava_csv,
    read_exclusions,
    read_labelmap,
    row_timestamps,
)
from ...formats.ava_boxes import read_proposals
from ...formats.output_lock import output_dir_lock
from ...formats.video_writer import VideoWriter, h264_available
from ...formats.vmad_layout import (
    CLIP_SECONDS,
    CLIPS_DIR,
    KEYFRAME_SECONDS,
    PERSON_BOX_FILES,
    VMAD_FPS,
    VMAD_SHORT_SIDE,
    image_info_file,
    read_image_info,
    write_image_info,
    write_person_boxes,
)

__all__ = [
    "MOVIE_LIST_FILE",
    "COMPLETE_MARKER",
    "SETTINGS_FILE",
    "SPLITS",
    "VMADPrepareError",
    "MovieError",
    "SliceSettings",
    "MovieResult",
    "AVAInputs",
    "PrepareSummary",
    "clip_size",
    "find_movies",
    "read_ava_inputs",
    "FilteredFrames",
    "slice_movie",
    "completed_movies",
    "write_annotations",
    "prepare_ava_vmad",
]

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]

#: AVA's movie list: its line index numbers the image ids (``index * 10000 + second``).
MOVIE_LIST_FILE = "ava_file_names_trainval_v2.1.txt"
#: Per-movie files in ``clips/trainval/<movie>/``: the completion marker (written last) and the clips'
#: settings (written first: an interrupted run's clips are kept only under the same settings).
COMPLETE_MARKER = ".complete.json"
SETTINGS_FILE = ".settings.json"
SPLITS = ("train", "val")
VERSION = "v2.2"
#: Packets that fail to decode before a movie with no decoded frame is given up.
_MAX_DECODE_ERRORS_BEFORE_FIRST_FRAME = 200


class VMADPrepareError(ValueError):
    """A bad input of the preprocessing (a folder, a file, an option); the message names it."""


class MovieError(VMADPrepareError):
    """One movie cannot be sliced (cannot be opened or decoded, shorter than the first second)."""


# ---------------------------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class SliceSettings:
    """What the clips of a movie are made with (recorded in its marker: a rerun with other settings redoes it).

    ``time_offset`` is the AVA second at the file's time 0: 0 for the raw movies, 900 for 15-minute crops.
    """

    start_sec: int = CLIP_SECONDS[0]
    end_sec: int = CLIP_SECONDS[1]
    time_offset: float = 0.0
    fps: int = VMAD_FPS
    short_side: int = VMAD_SHORT_SIDE
    crf: int = 23
    preset: str = "medium"

    def __post_init__(self) -> None:
        if self.end_sec < self.start_sec:
            raise VMADPrepareError(f"--end-sec {self.end_sec} is before --start-sec {self.start_sec}")
        if self.start_sec - self.time_offset < 0:
            raise VMADPrepareError(
                f"--start-sec {self.start_sec} is before the file's start (--time-offset {self.time_offset:g})"
            )
        if self.fps < 1 or self.short_side < 2:
            raise VMADPrepareError(f"fps {self.fps} and short side {self.short_side} must be positive")
        if not 0 <= self.crf <= 51:
            raise VMADPrepareError(f"--crf {self.crf} is outside libx264's 0..51")

    @property
    def num_clips(self) -> int:
        return self.end_sec - self.start_sec + 1

    def as_dict(self) -> dict:
        return asdict(self)


def clip_size(width: int, height: int, short_side: int = VMAD_SHORT_SIDE) -> Tuple[int, int]:
    """``(width, height)`` of the clips of a movie, as AlphAction computes it: short side ``short_side``
    (never upscaled), the other side rounded to even with Python's ``round``."""
    if min(width, height) <= short_side:
        return int(width), int(height)
    if height > width:
        return short_side, int(round(short_side * height / width / 2) * 2)
    return int(round(short_side * width / height / 2) * 2), short_side


# ---------------------------------------------------------------------------------------------- inputs
def find_movies(folder: PathLike) -> Dict[str, Path]:
    """``{movie id: file}`` of the raw movies in ``folder`` (the id is the name before its first ``.``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"movie folder {folder} {'is not a folder' if folder.exists() else 'does not exist'}")
    out: Dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.name.startswith(".") or not p.is_file():
            continue
        movie = p.name.split(".", 1)[0]
        if movie in out:
            raise VMADPrepareError(
                f"two files for movie {movie} in {folder}: {out[movie].name} and {p.name} (keep one)"
            )
        out[movie] = p
    if not out:
        raise VMADPrepareError(f"no movie files in {folder} (expected AVA's raw movies, e.g. <movie id>.mkv)")
    return out


@dataclass
class AVAInputs:
    """The official annotation files of ``--annotations``, read and checked."""

    folder: Path
    #: split -> ``(movie, second, (x1, y1, x2, y2), action id, person id)`` rows in file order.
    groundtruth: Dict[str, List[Tuple[str, int, Tuple[float, float, float, float], int, int]]]
    #: split -> its movies in order of first appearance.
    movies: Dict[str, List[str]]
    movie_index: Dict[str, int]
    #: files copied to ``<out>/annotations``: name -> source (the label map, each split's CSVs, the movie list).
    files: Dict[str, Path]
    #: files filtered to the prepared movies when a split is not complete: name -> split (ground truth, exclusions).
    per_movie_files: Dict[str, str]
    movie_list: Optional[Path] = None
    missing_exclusions: List[str] = field(default_factory=list)

    @property
    def all_movies(self) -> List[str]:
        return sorted(set(self.movies["train"]) | set(self.movies["val"]))


def _read_groundtruth(path: Path):
    rows = read_ava_csv(path, columns=(8,))
    seconds = row_timestamps(rows)
    first, last = KEYFRAME_SECONDS
    videos = rows.str_column("video_ids")
    out, movies, seen = [], [], set()
    for i, (movie, second) in enumerate(zip(videos, seconds)):
        if not first <= second <= last:
            raise rows.error(i, f"timestamp {second} is outside AVA's keyframe seconds {first}-{last}")
        box = rows.boxes[i]
        if not ((box >= 0) & (box <= 1)).all() or box[2] < box[0] or box[3] < box[1]:
            raise rows.error(i, f"box {box.tolist()} is not a normalised x1,y1,x2,y2 box inside [0, 1]")
        person = float(rows.scores[i])
        if not math.isfinite(person) or person != int(person):
            raise rows.error(i, f"person id (column 8) must be an integer, got {person!r}")
        if int(rows.action_ids[i]) < 1:
            raise rows.error(i, f"action id must be >= 1, got {int(rows.action_ids[i])}")
        out.append((movie, int(second), tuple(float(v) for v in box), int(rows.action_ids[i]), int(person)))
        if movie not in seen:
            seen.add(movie)
            movies.append(movie)
    return out, movies


def _read_movie_list(path: Path) -> Dict[str, int]:
    """``movie -> line index`` of AVA's movie list (AlphAction: the name before the first ``.``)."""
    index: Dict[str, int] = {}
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            name = line.strip().split(".", 1)[0]
            if not name:
                continue
            if name in index:
                raise AVAFormatError(path, i + 1, f"movie {name} is listed twice (also line {index[name] + 1})")
            index[name] = i
    if not index:
        raise AVAFormatError(path, None, "no movie names (expected one file name per line, e.g. 053oq2xB3oU.mkv)")
    return index


def read_ava_inputs(folder: PathLike) -> AVAInputs:
    """Read and check the official AVA v2.2 files of ``folder``: both ground-truth CSVs and the label map
    (required), the excluded timestamps (warned about when absent) and the movie list (optional)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"annotation folder {folder} {'is not a folder' if folder.exists() else 'does not exist'}"
        )
    label_map = folder / LABEL_MAP_FILES[VERSION]
    if not label_map.is_file():
        raise FileNotFoundError(f"label map {label_map} not found (ava_v2.2.zip from the AVA site has it)")
    read_labelmap(label_map)
    files = {label_map.name: label_map}
    gt, movies, per_movie, missing_excl = {}, {}, {}, []
    for split in SPLITS:
        names = annotation_file_names(split, VERSION)
        path = folder / names["groundtruth"]
        if not path.is_file():
            raise FileNotFoundError(f"ground truth {path} not found (ava_v2.2.zip from the AVA site has it)")
        gt[split], movies[split] = _read_groundtruth(path)
        files[path.name] = path
        per_movie[path.name] = split
        excl = folder / names["exclusions"]
        if excl.is_file():
            read_exclusions(excl)
            files[excl.name] = excl
            per_movie[excl.name] = split
        else:
            missing_excl.append(str(excl))
    union = sorted(set(movies["train"]) | set(movies["val"]))
    movie_list = folder / MOVIE_LIST_FILE
    if movie_list.is_file():
        index = _read_movie_list(movie_list)
        absent = [m for m in union if m not in index]
        if absent:
            raise VMADPrepareError(
                f"{movie_list} does not list {len(absent)} movie(s) of the CSVs, e.g. "
                f"{', '.join(absent[:3])} (the image ids need each movie's line)"
            )
        files[movie_list.name] = movie_list
    else:
        movie_list = None
        index = {m: i for i, m in enumerate(union)}
    return AVAInputs(folder, gt, movies, index, files, per_movie, movie_list, missing_excl)


# ---------------------------------------------------------------------------------------------- decoding
def _rescale(value: Fraction) -> int:
    """``round`` half away from zero (FFmpeg's ``AV_ROUND_NEAR_INF``)."""
    return int(math.floor(value + Fraction(1, 2))) if value >= 0 else -int(math.floor(-value + Fraction(1, 2)))


class FilteredFrames:
    """The frames of one movie that AlphAction's ffmpeg command outputs, decoded once, streamed.

    ``iter(self)`` yields yuv420p ``av.VideoFrame`` s; frame ``i`` belongs to the clip of second
    ``start_sec + i // fps``. Raises :class:`MovieError` when the file cannot be opened, has no video stream, or
    ends before the first second.
    """

    def __init__(self, path: PathLike, settings: SliceSettings, threads: int = 1) -> None:
        import av

        self.path, self.settings = Path(path), settings
        try:
            self.container = av.open(str(self.path))
        except (av.error.FFmpegError, OSError, ValueError) as e:
            raise MovieError(f"{self.path}: PyAV cannot open it ({e})") from e
        try:
            if not self.container.streams.video:
                raise MovieError(f"{self.path}: no video stream")
            self.stream = self.container.streams.video[0]
            cc = self.stream.codec_context
            if not cc.width or not cc.height:
                raise MovieError(f"{self.path}: the video stream has no frame size")
            if threads > 1:
                cc.thread_type, cc.thread_count = "AUTO", int(threads)
            self.threads = max(1, int(threads))
            self.source_size = (int(cc.width), int(cc.height))
            self.size = clip_size(cc.width, cc.height, settings.short_side)
            self.encoded_size = (self.size[0] + self.size[0] % 2, self.size[1] + self.size[1] % 2)
            self.start = Fraction(settings.start_sec) - Fraction(settings.time_offset).limit_denominator(1000)
            duration = self.container.duration
            if duration is not None and self.start >= Fraction(duration, av.time_base):
                raise MovieError(self._too_short(f"is {duration / av.time_base:.1f} s long"))
        except BaseException:
            self.container.close()
            raise
        self.decode_errors = 0
        self.seek_failed = False

    def _too_short(self, what: str) -> str:
        s = self.settings
        return (
            f"{self.path}: {what}: its clips start at second {s.start_sec} "
            f"(file time {float(self.start):g} s{'' if s.time_offset == 0 else f', time offset {s.time_offset:g}'})"
        )

    def close(self) -> None:
        self.container.close()

    def _graph(self, frame):
        import av

        g = av.filter.Graph()
        g.threads = self.threads
        src = g.add_buffer(width=frame.width, height=frame.height, format=frame.format, time_base=self.stream.time_base)
        chain = [src, g.add("trim", f"start=0:duration={self.settings.num_clips}")]
        if self.size != self.source_size:
            chain.append(g.add("scale", f"{self.size[0]}:{self.size[1]}"))
        chain += [g.add("fps", f"fps={self.settings.fps}"), g.add("format", "yuv420p"), g.add("buffersink")]
        for a, b in zip(chain, chain[1:]):
            a.link_to(b)
        g.configure()
        return g, (frame.width, frame.height, frame.format.name)

    def __iter__(self) -> Iterator:
        import av

        tb = self.stream.time_base
        first_ts = self.container.start_time or 0  # AV_TIME_BASE units
        seek_us = _rescale(self.start * av.time_base) + first_ts
        try:
            self.container.seek(seek_us)
        except av.error.FFmpegError:
            self.seek_failed = True
        # ffmpeg shifts an input's timestamps by its -ss position (plus the container's start time).
        offset = _rescale(Fraction(seek_us, av.time_base) / tb)
        limit = _rescale(Fraction(self.settings.num_clips) / tb)
        graph, fmt = None, None
        first = last_pts = step = None
        decoded = 0
        done = False
        for packet in self.container.demux(self.stream):
            try:
                frames = packet.decode()
            except av.error.FFmpegError:
                self.decode_errors += 1
                if decoded == 0 and self.decode_errors > _MAX_DECODE_ERRORS_BEFORE_FIRST_FRAME:
                    raise MovieError(
                        f"{self.path}: FFmpeg cannot decode it ({self.decode_errors} packets failed, no frame decoded)"
                    ) from None
                continue
            for frame in frames:
                decoded += 1
                pts = frame.pts
                if pts is None:  # no timestamp: one frame after the previous one
                    if last_pts is None:
                        continue
                    pts = last_pts + (step or 1)
                if last_pts is not None and pts > last_pts:
                    step = pts - last_pts
                last_pts = pts
                t = pts - offset
                if t < 0:  # before the position: what trim drops
                    continue
                if graph is None:
                    graph, fmt = self._graph(frame)
                if (frame.width, frame.height, frame.format.name) != fmt:
                    frame = frame.reformat(width=fmt[0], height=fmt[1], format=fmt[2])
                frame.pts = t
                graph.push(frame)
                yield from self._drain(graph)
                first = t if first is None else first
                if t - first >= limit:  # trim has stopped (911 s after its first frame)
                    done = True
                    break
            if done:
                break
        if graph is None:
            raise MovieError(
                self._too_short(
                    f"has no frame at or after {float(self.start):g} s"
                    + (f" ({self.decode_errors} packets failed to decode)" if self.decode_errors else "")
                )
            )
        graph.push(None)
        yield from self._drain(graph)

    @staticmethod
    def _drain(graph) -> Iterator:
        import av

        while True:
            try:
                yield graph.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                return


def _to_rgb(frame):
    """RGB of a yuv420p frame that the writer's conversion back (BT.601, limited range) turns into the same
    luma and chroma within 3 levels (swscale's exact-rounding path for odd sizes: its default is one level darker)."""
    if frame.width % 2 == 0 and frame.height % 2 == 0:
        import cv2

        return cv2.cvtColor(frame.to_ndarray(), cv2.COLOR_YUV2RGB_I420)
    from av.video.reformatter import Interpolation

    flags = Interpolation.POINT | Interpolation.ACCURATE_RND | Interpolation.FULL_CHR_H_INT
    return frame.reformat(
        format="rgb24", src_colorspace="ITU601", dst_colorspace="ITU601", interpolation=flags
    ).to_ndarray()


# ---------------------------------------------------------------------------------------------- one movie
@dataclass
class MovieResult:
    """What happened to one movie: ``status`` ``"done"`` (sliced now), ``"complete"`` (skipped: its marker
    has the same settings) or ``"failed"`` (``error`` says why)."""

    movie: str
    path: str
    status: str
    size: Optional[Tuple[int, int]] = None
    seconds_written: int = 0
    seconds_kept: int = 0
    num_clips: int = 0
    frames: int = 0
    warnings: List[str] = field(default_factory=list)
    error: Optional[str] = None
    elapsed: float = 0.0

    def describe(self) -> str:
        if self.status == "failed":
            return f"{self.movie}: FAILED: {self.error}"
        if self.status == "complete":
            return f"{self.movie}: already complete ({self.num_clips} clips, {self.size[0]}x{self.size[1]})"
        kept = f", {self.seconds_kept} kept from an earlier run" if self.seconds_kept else ""
        warn = f"; warnings: {'; '.join(self.warnings)}" if self.warnings else ""
        return (
            f"{self.movie}: {self.seconds_written} seconds written{kept}, {self.size[0]}x{self.size[1]}, "
            f"{self.frames} frames, {self.elapsed:.1f} s{warn}"
        )


def _read_json(path: Path) -> Optional[dict]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _complete_marker(folder: Path, settings: SliceSettings) -> Optional[dict]:
    """The marker of a movie folder when it is complete with ``settings``, else ``None``."""
    marker = _read_json(folder / COMPLETE_MARKER)
    if marker is None or marker.get("settings") != settings.as_dict():
        return None
    size = marker.get("size")
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
        return None
    return marker


class _ClipWriter:
    """One clip, encoded under a temporary name in its folder and renamed when complete."""

    def __init__(self, path: Path, size: Tuple[int, int], settings: SliceSettings) -> None:
        self.path = path
        self.tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        self.writer = VideoWriter(
            str(self.tmp), settings.fps, size[0], size[1], crf=settings.crf, preset=settings.preset, codec="libx264"
        )

    def write(self, frame) -> None:
        self.writer.write(_to_rgb(frame))

    def commit(self) -> None:
        try:
            self.writer.close()
            commit_file(self.tmp, self.path)
        except BaseException:
            self.abort()
            raise

    def abort(self) -> None:
        self.writer.abort()
        with contextlib.suppress(OSError):
            os.unlink(self.tmp)


def slice_movie(
    movie: str, path: PathLike, clips_root: PathLike, settings: SliceSettings = SliceSettings(), threads: int = 1
) -> MovieResult:
    """Write the clips of one movie into ``clips_root/<movie>/<second>.mp4`` and its marker.

    A movie complete with ``settings`` is skipped; clips of an interrupted run with the same settings are kept.
    Raises :class:`MovieError` or ``OSError``; nothing is marked complete then.
    """
    t0 = time.time()
    folder = Path(clips_root) / movie
    marker = _complete_marker(folder, settings)
    if marker is not None:
        return MovieResult(
            movie,
            str(path),
            "complete",
            tuple(marker["size"]),
            num_clips=int(marker.get("num_clips", 0)),
            frames=int(marker.get("frames", 0)),
            warnings=list(marker.get("warnings", [])),
        )
    frames = FilteredFrames(path, settings, threads)  # opens and checks the movie before anything is written
    writer: Optional[_ClipWriter] = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob(".*.mp4.*.tmp"):  # clips a killed run was writing
            with contextlib.suppress(OSError):
                stale.unlink()
        with contextlib.suppress(FileNotFoundError):
            (folder / COMPLETE_MARKER).unlink()  # another settings' marker
        keep = _read_json(folder / SETTINGS_FILE) == settings.as_dict()
        if not keep:
            atomic_write_text(folder / SETTINGS_FILE, json.dumps(settings.as_dict()))
        per_clip, counts, extra, written, kept = settings.fps, [], 0, 0, 0
        for i, frame in enumerate(frames):
            k = i // per_clip
            if k >= settings.num_clips:
                extra += 1
                continue
            if i % per_clip == 0:
                if writer is not None:
                    writer.commit()
                    writer, written = None, written + 1
                target = folder / f"{settings.start_sec + k}.mp4"
                counts.append(0)
                if keep and target.is_file():
                    kept += 1
                else:
                    writer = _ClipWriter(target, frames.size, settings)
            counts[-1] += 1
            if writer is not None:
                writer.write(frame)
        if writer is not None:
            writer.commit()
            writer, written = None, written + 1
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        frames.close()
    if not counts:
        raise MovieError(frames._too_short("gives no frame in the range"))
    warnings = [f"second {settings.start_sec + k} has only {n} frames" for k, n in enumerate(counts) if n < per_clip]
    if len(counts) < settings.num_clips:
        missing = settings.num_clips - len(counts)
        warnings.append(
            f"no frames after second {settings.start_sec + len(counts) - 1} "
            f"({missing} second{'s' if missing > 1 else ''} missing)"
        )
    if extra:
        warnings.append(f"{extra} frames left over after second {settings.end_sec} (dropped)")
    if frames.decode_errors:
        warnings.append(f"{frames.decode_errors} packets could not be decoded (skipped)")
    if frames.seek_failed:
        warnings.append("the container could not seek: decoded from its start")
    result = MovieResult(
        movie,
        str(path),
        "done",
        frames.encoded_size,
        written,
        kept,
        len(counts),
        sum(counts),
        warnings,
        elapsed=time.time() - t0,
    )
    atomic_write_text(
        folder / COMPLETE_MARKER,
        json.dumps(
            {
                "movie": movie,
                "source": str(path),
                "source_size": list(frames.source_size),
                "size": list(frames.encoded_size),
                "settings": settings.as_dict(),
                "num_clips": len(counts),
                "frames": sum(counts),
                "warnings": warnings,
                "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
            },
            indent=1,
        ),
    )
    return result


def _slice_task(task) -> MovieResult:
    """Pool task: :func:`slice_movie`, a bad movie returned as a ``"failed"`` result."""
    movie, path, clips_root, settings, threads = task
    t0 = time.time()
    try:
        return slice_movie(movie, path, clips_root, settings, threads)
    except (ValueError, OSError, EOFError) as e:  # MovieError, VideoWriteError, a full disk, av.error.*
        return MovieResult(movie, str(path), "failed", error=str(e), elapsed=time.time() - t0)
    except Exception as e:  # noqa: BLE001 - any other PyAV error of one movie must not stop the others
        import av

        if isinstance(e, av.error.FFmpegError):
            return MovieResult(movie, str(path), "failed", error=f"{path}: {e}", elapsed=time.time() - t0)
        raise


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops the pool on Ctrl-C


def _run_movies(tasks: Sequence[tuple], workers: int, progress: bool) -> List[MovieResult]:
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    results: List[MovieResult] = []

    def report(bar, r: MovieResult) -> None:
        results.append(r)
        (logger.warning if r.status == "failed" or r.warnings else logger.info)(r.describe())
        bar.update(1)

    if workers <= 1:
        with logging_redirect_tqdm(), tqdm(total=len(tasks), desc="movies", unit="movie", disable=not progress) as bar:
            for task in tasks:
                report(bar, _slice_task(task))
        return results
    start = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    # The pool is created before the progress bar: its monitor thread must not be running at a fork.
    with multiprocessing.get_context(start).Pool(workers, initializer=_ignore_sigint) as pool:
        with logging_redirect_tqdm(), tqdm(total=len(tasks), desc="movies", unit="movie", disable=not progress) as bar:
            for r in pool.imap_unordered(_slice_task, tasks):
                report(bar, r)
    return results


# ---------------------------------------------------------------------------------------------- annotations
def completed_movies(out: PathLike, movies: Sequence[str], settings: SliceSettings) -> Dict[str, Tuple[int, int]]:
    """``{movie: clip (width, height)}`` of the ``movies`` complete under ``out`` with ``settings``."""
    root = Path(out) / CLIPS_DIR
    sizes = {}
    for movie in movies:
        marker = _complete_marker(root / movie, settings)
        if marker is not None:
            sizes[movie] = tuple(marker["size"])
    return sizes


def _filtered_copy(src: Path, dst: Path, movies: set) -> int:
    """Copy the lines of an AVA CSV whose first field is one of ``movies``; return how many."""
    kept = []
    with open(src, "rb") as f:
        for line in f:
            movie = line.split(b",", 1)[0].strip().strip(b'"').decode("utf-8", "replace")
            if movie in movies:
                kept.append(line)
    atomic_write_bytes(dst, b"".join(kept))
    return len(kept)


@dataclass
class AnnotationReport:
    images: Dict[str, int] = field(default_factory=dict)  # split -> images written
    movies: Dict[str, int] = field(default_factory=dict)  # split -> movies in the image info
    missing: Dict[str, int] = field(default_factory=dict)  # split -> movies of the CSV not prepared
    boxes: Optional[int] = None
    box_keyframes: int = 0
    boxes_left_out: int = 0
    filtered: List[str] = field(default_factory=list)


def write_annotations(
    out: PathLike, inputs: AVAInputs, sizes: Mapping[str, Tuple[int, int]], person_boxes: Optional[Mapping] = None
) -> AnnotationReport:
    """Write ``<out>/annotations`` (and ``<out>/boxes`` given ``person_boxes``).

    Ground truth and exclusions are copied whole when every movie of a split is prepared, else filtered to the
    prepared movies."""
    out = Path(out)
    ann = out / "annotations"
    ann.mkdir(parents=True, exist_ok=True)
    prepared = set(sizes)
    report = AnnotationReport()
    for name, src in inputs.files.items():
        split = inputs.per_movie_files.get(name)
        if split is not None and not set(inputs.movies[split]) <= prepared:
            _filtered_copy(src, ann / name, prepared)
            report.filtered.append(name)
        else:
            atomic_write_bytes(ann / name, src.read_bytes())
    for split in SPLITS:
        rows = [r for r in inputs.groundtruth[split] if r[0] in prepared]
        report.images[split] = write_image_info(out / image_info_file(split, VERSION), rows, inputs.movie_index, sizes)
        report.movies[split] = len({r[0] for r in rows})
        report.missing[split] = len(set(inputs.movies[split]) - prepared)
    if person_boxes is not None:
        images = read_image_info(out / image_info_file("val", VERSION))
        keys = {(img.movie, img.timestamp) for img in images.values()}
        boxes = []
        for key, (xyxy, scores) in person_boxes.items():
            if key not in keys:
                report.boxes_left_out += len(scores)
                continue
            report.box_keyframes += 1
            boxes += [(key[0], key[1], b, s) for b, s in zip(xyxy.tolist(), scores.tolist())]
        report.boxes = write_person_boxes(out / PERSON_BOX_FILES["val"], boxes, images)
    return report


# ---------------------------------------------------------------------------------------------- all steps
@dataclass
class PrepareSummary:
    out: Path
    results: List[MovieResult]
    annotations: AnnotationReport
    elapsed: float

    @property
    def failed(self) -> List[MovieResult]:
        return [r for r in self.results if r.status == "failed"]

    def format(self) -> str:
        done = [r for r in self.results if r.status == "done"]
        complete = [r for r in self.results if r.status == "complete"]
        warned = [r for r in done if r.warnings]
        a = self.annotations
        lines = [
            f"VMAD layout in {self.out}: {len(done)} movies sliced now ({sum(r.seconds_written for r in done)} clips "
            f"written, {sum(r.seconds_kept for r in done)} kept from an interrupted run), {len(complete)} already "
            f"complete, {len(self.failed)} failed, {len(warned)} with warnings ({self.elapsed:.1f} s)",
        ]
        lines += [f"  failed: {r.movie}: {r.error}" for r in self.failed]
        lines += [f"  warning: {r.movie}: {'; '.join(r.warnings)}" for r in warned]
        for split in SPLITS:
            missing = f", {a.missing[split]} movies of the CSV not prepared" if a.missing.get(split) else ""
            lines.append(
                f"  {image_info_file(split, VERSION)}: {a.images[split]} images of {a.movies[split]} movies{missing}"
            )
        if a.filtered:
            lines.append(f"  {', '.join(a.filtered)}: the lines of the prepared movies only")
        if a.boxes is not None:
            lines.append(
                f"  {PERSON_BOX_FILES['val']}: {a.boxes} person boxes on {a.box_keyframes} keyframes"
                + (
                    f" ({a.boxes_left_out} boxes of movies/seconds not in the val image info left out)"
                    if a.boxes_left_out
                    else ""
                )
            )
        elif not (self.out / PERSON_BOX_FILES["val"]).is_file():
            lines.append(f"  no {PERSON_BOX_FILES['val']}: pass --person-boxes (val is evaluated on those boxes)")
        if self.failed:
            lines.append("  rerun the same command to retry the failed movies (complete ones are skipped)")
        lines.append(
            f"  use it: tools/train_net.py ... --ava-root {self.out}  (vmae_det.data.ava.catalog.register_ava_root)"
        )
        return "\n".join(lines)


def prepare_ava_vmad(
    movies_dir: PathLike,
    annotations_dir: PathLike,
    out: PathLike,
    *,
    person_boxes: Optional[PathLike] = None,
    movie_ids: Optional[Sequence[str]] = None,
    workers: int = 1,
    settings: SliceSettings = SliceSettings(),
    progress: bool = True,
) -> PrepareSummary:
    """All steps: check the inputs, slice the movies (``workers`` processes), write the annotations.

    Every input is checked before a movie is decoded. A movie that cannot be sliced is a ``"failed"`` result
    and the others go on; the annotations then cover the movies complete on disk.
    """
    t0 = time.time()
    files = find_movies(movies_dir)
    inputs = read_ava_inputs(annotations_dir)
    boxes = read_proposals(person_boxes) if person_boxes is not None else None
    if movie_ids:
        movies = list(dict.fromkeys(movie_ids))
        absent = [m for m in movies if m not in files]
        if absent:
            raise VMADPrepareError(
                f"--movie-ids: no file for {len(absent)} movie(s) in {movies_dir}: "
                f"{', '.join(absent[:5])}{' ...' if len(absent) > 5 else ''}"
            )
        extra = [m for m in movies if m not in inputs.movie_index]
        if extra:
            logger.warning(
                f"{len(extra)} movie(s) of --movie-ids are in neither CSV (clips only): {', '.join(extra[:5])}"
            )
    else:
        movies = inputs.all_movies
        absent = [m for m in movies if m not in files]
        if absent:
            raise VMADPrepareError(
                f"{len(absent)} of the {len(movies)} movies of the CSVs in {inputs.folder} "
                f"have no file in {movies_dir}, "
                f"e.g. {', '.join(absent[:5])} (pass --movie-ids with the movies you have to prepare those)"
            )
        unused = sorted(set(files) - set(movies))
        if unused:
            logger.info(
                f"{len(unused)} file(s) of {movies_dir} are not movies of the CSVs and are not sliced, "
                f"e.g. {', '.join(files[m].name for m in unused[:3])}"
            )
    for path in inputs.missing_exclusions:
        logger.warning(f"{path} not found: the evaluation will not exclude AVA's excluded timestamps")
    if not h264_available():
        raise VMADPrepareError("PyAV's FFmpeg has no libx264 encoder (VMAD's clips are H.264)")
    if workers < 1:
        raise VMADPrepareError(f"--workers must be at least 1, got {workers}")
    if workers > (os.cpu_count() or 1):
        logger.warning(
            f"--workers {workers}: more than the {os.cpu_count() or 1} CPU(s) here; using {os.cpu_count() or 1}"
        )
    workers = min(workers, os.cpu_count() or 1, len(movies))
    threads = max(1, (os.cpu_count() or 1) // workers)
    out = Path(out)
    (out / CLIPS_DIR).mkdir(parents=True, exist_ok=True)
    with output_dir_lock(str(out), "--out"):  # a second run would write the same clips
        tasks = [(m, str(files[m]), str(out / CLIPS_DIR), settings, threads) for m in movies]
        logger.info(
            f"Slicing {len(tasks)} movies into {out / CLIPS_DIR} (seconds {settings.start_sec}-{settings.end_sec}, "
            f"{settings.fps} fps, short side {settings.short_side}; {workers} worker(s))"
        )
        results = _run_movies(tasks, workers, progress)
        sizes = completed_movies(out, inputs.all_movies, settings)
        report = write_annotations(out, inputs, sizes, boxes)
    return PrepareSummary(out, sorted(results, key=lambda r: r.movie), report, time.time() - t0)
