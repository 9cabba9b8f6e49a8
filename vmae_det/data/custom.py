"""Turn your own videos plus a simple annotation CSV into the AVA layout the rest of the project reads.

Input annotation CSV (with a header; column order free, extra columns ignored)::

    video,split,time,x1,y1,x2,y2,action,person
    kitchen01,train,3,120,40,260,400,stand,0
    kitchen01,train,3,120,40,260,400,talk,0      # second action of the same person: same box
    hall.mp4,val,5,10,20,90,200,walk,1

* ``video``: a file in the videos folder, by stem (``kitchen01``) or by name (``hall.mp4``); its
  stem becomes the AVA ``video_id`` (no commas, whitespace or slashes).
* ``split``: ``train`` or ``val``.
* ``time``: the keyframe, seconds from the video's first frame. AVA keyframes are whole seconds,
  so ``time`` must be an integer (``3`` or ``3.0``); ``3.5`` is an error rather than being rounded,
  because a box drawn at 3.5 s would be attached to the frame at 3 or 4 s.
* ``x1,y1,x2,y2``: the person box in pixels of the source video (``normalized=True``: in [0, 1]).
  A box partly outside the frame is clipped to it (counted in the summary); a box entirely outside,
  or with ``x2 <= x1`` / ``y2 <= y1``, is an error.
* ``action``: an action name. Ids ``1..K`` are the sorted names, or the order of ``labels``
  (a text file with one name per line, or an AVA ``.pbtxt`` label map with explicit ids).
* ``person``: an integer id of the person, stable within a video (AVA's ``person_id``).

Output (``output_root``), exactly what :func:`vmae_det.data.register_ava` reads::

    videos/<id>.mp4                        H.264, 30 fps: frame i is the source frame nearest to i/30 s
    frames/<id>/<id>_<nnnnnn>.jpg          only with extract_frames (1-based, as ffmpeg's %06d)
    annotations/ava_{train,val}_v2.2.csv   time t -> AVA timestamp 900 + t (frame t * 30)
    annotations/ava_action_list_v2.2_for_activitynet_2019.pbtxt
    annotations/ava_{train,val}_excluded_timestamps_v2.2.csv   (empty)

Every problem in the CSV raises :class:`CustomDatasetError` naming the file and the 1-based line.
Exact duplicate rows are skipped and counted; clipped boxes are counted; nothing is dropped silently.
Videos of odd width/height are padded by one edge pixel (H.264 4:2:0 needs even sizes); boxes are
normalised by the padded size, so they keep their pixel position.
"""
from __future__ import annotations

import csv
import logging
import math
import re
import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple, Union

import numpy as np

from .ava.clip_source import AVA_FPS, AVA_START_SEC

__all__ = [
    "ANNOTATION_COLUMNS",
    "CustomDatasetError",
    "CustomDatasetSummary",
    "VideoInfo",
    "prepare_custom_dataset",
    "read_label_names",
    "resample_to_fps",
]

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]
ANNOTATION_COLUMNS = ("video", "split", "time", "x1", "y1", "x2", "y2", "action", "person")
SPLITS = ("train", "val")
LABEL_MAP_NAME = "ava_action_list_v2.2_for_activitynet_2019.pbtxt"
_VIDEO_ID_RE = re.compile(r"^[^,\s/\\]+$")
_H264_OPTIONS = {"crf": "18", "preset": "veryfast", "g": str(AVA_FPS)}  # 1 s GOP: fast random access


class CustomDatasetError(ValueError):
    """A problem in the user's input; ``file:line: reason`` when it comes from a line of a file."""

    def __init__(self, path: PathLike, line: Optional[int], reason: str):
        self.path, self.line, self.reason = str(path), line, reason
        super().__init__(f"{path}:{line}: {reason}" if line is not None else f"{path}: {reason}")


@dataclass
class VideoInfo:
    """One converted video."""

    video_id: str
    source: str
    width: int  # of the written video (source size, padded to even)
    height: int
    source_fps: float
    num_frames: int  # written at 30 fps
    splits: List[str] = field(default_factory=list)


@dataclass
class CustomDatasetSummary:
    """What :func:`prepare_custom_dataset` wrote."""

    output_root: Path
    classes: Dict[int, str]  # action id -> name (the label map)
    num_classes: int  # largest action id: the model's / mapper's num_classes
    videos: Dict[str, VideoInfo]
    keyframes: Dict[str, int]  # per split
    boxes: Dict[str, int]  # per split: (video, keyframe, person) boxes
    rows: Dict[str, int]  # per split: AVA rows written (one per person and action)
    clipped_boxes: int = 0
    duplicate_rows: int = 0
    unused_videos: List[str] = field(default_factory=list)
    frames_extracted: bool = False

    def registration_code(self, prefix: Optional[str] = None) -> str:
        """Python lines registering both splits (``<prefix>_train`` / ``<prefix>_val``)."""
        prefix = prefix or self.output_root.name
        return "\n".join(
            [
                "from detectron2.data import DatasetCatalog",
                "from vmae_det.data import register_ava",
                "",
                'for _split in ("train", "val"):',
                f'    if f"{prefix}_{{_split}}" not in DatasetCatalog.list():',
                f'        register_ava(f"{prefix}_{{_split}}", "{self.output_root}", _split, '
                f"num_classes={self.num_classes})",
            ]
        )

    def config_code(self, prefix: Optional[str] = None, base: str = "vit_b") -> str:
        """A LazyConfig file (to save as ``configs/ava/<prefix>.py``) training on this dataset."""
        prefix = prefix or self.output_root.name
        k = self.num_classes
        return "\n".join(
            [
                f'"""Fine-tune on {self.output_root} (written by tools/prepare_custom_dataset.py)."""',
                self.registration_code(prefix),
                "",
                f"from .{base} import dataloader, lr_multiplier, model, optimizer, train",
                "",
                f"model.num_classes = {k}",
                f'dataloader.train.dataset.names = "{prefix}_train"',
                f'dataloader.test.dataset.names = "{prefix}_val"',
                f"dataloader.train.mapper.num_classes = {k}",
                f"dataloader.test.mapper.num_classes = {k}",
                'dataloader.test.mapper.test_box_source = "gt"  # until you make proposals (tools/make_proposals.py)',
                f'dataloader.evaluator.dataset_name = "{prefix}_val"',
                f'train.output_dir = "./output/{prefix}"',
            ]
        )

    def format(self, prefix: Optional[str] = None) -> str:
        """Human-readable summary plus the lines to register and train."""
        prefix = prefix or self.output_root.name
        lines = [
            f"Custom AVA dataset written to {self.output_root}",
            f"  videos:    {len(self.videos)} (30 fps H.264 mp4{', JPEG frames' if self.frames_extracted else ''})",
        ]
        for s in SPLITS:
            lines.append(f"  {s + ':':<10} {self.keyframes[s]} keyframes, {self.boxes[s]} person boxes, "
                         f"{self.rows[s]} (person, action) rows")
        lines.append(f"  classes:   {len(self.classes)} (num_classes={self.num_classes}): "
                     + ", ".join(f"{i}={n}" for i, n in self.classes.items()))
        if self.clipped_boxes:
            lines.append(f"  clipped:   {self.clipped_boxes} boxes partly outside the frame were clipped to it")
        if self.duplicate_rows:
            lines.append(f"  skipped:   {self.duplicate_rows} exact duplicate rows")
        if self.unused_videos:
            lines.append(f"  unused:    {len(self.unused_videos)} videos without annotations were not converted: "
                         + ", ".join(self.unused_videos[:5]) + (" ..." if len(self.unused_videos) > 5 else ""))
        for s in SPLITS:
            if not self.keyframes[s]:
                lines.append(f"  note:      the {s} split is empty")
        lines += [
            "",
            "Register it (Python; e.g. at the top of a config file):",
            "",
            self.registration_code(prefix),
            "",
            f"and train with a config, e.g. configs/ava/{prefix}.py:",
            "",
            self.config_code(prefix),
            "",
            f"    python tools/train_net.py --config-file configs/ava/{prefix}.py "
            "train.init_checkpoint=/path/to/videomae_pretrain.pth",
        ]
        return "\n".join(lines)


# --------------------------------------------------------------------------------------- inputs
@dataclass
class _Row:
    line: int
    video_id: str
    split: str
    time: int
    box: Tuple[float, float, float, float]
    action: str
    person: int


def read_label_names(path: PathLike) -> Dict[int, str]:
    """``{action id: name}`` from a ``.pbtxt`` label map or a text file with one name per line.

    In the text file, blank lines and lines starting with ``#`` are ignored and ids are ``1..K``
    in file order.
    """
    path = Path(path)
    if path.suffix == ".pbtxt":
        from ...evaluation.ava_io import read_labelmap

        names = read_labelmap(str(path))
    else:
        names = {}
        with open(path, encoding="utf-8-sig") as f:
            for lineno, raw in enumerate(f, start=1):
                name = raw.strip()
                if not name or name.startswith("#"):
                    continue
                if '"' in name:
                    raise CustomDatasetError(path, lineno, f"action name {name!r} contains a double quote")
                names[len(names) + 1] = name
        if not names:
            raise CustomDatasetError(path, None, "no action names")
    seen: Dict[str, int] = {}
    for i, n in names.items():
        if n in seen:
            raise CustomDatasetError(path, None, f"action name {n!r} appears twice (ids {seen[n]} and {i})")
        seen[n] = i
    return names


def _index_videos(videos_dir: Path) -> Tuple[Dict[str, List[Path]], Dict[str, Path]]:
    if not videos_dir.is_dir():
        raise CustomDatasetError(videos_dir, None, "videos folder not found")
    by_stem: Dict[str, List[Path]] = defaultdict(list)
    by_name: Dict[str, Path] = {}
    for p in sorted(videos_dir.iterdir()):
        if p.is_file() and not p.name.startswith("."):
            by_stem[p.stem].append(p)
            by_name[p.name] = p
    return by_stem, by_name


def _parse_number(path: Path, lineno: int, value: str, what: str) -> float:
    try:
        v = float(value)
    except ValueError:
        raise CustomDatasetError(path, lineno, f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise CustomDatasetError(path, lineno, f"{what} must be finite, got {value!r}")
    return v


def _read_rows(path: Path, videos_dir: Path) -> Tuple[List[_Row], Dict[str, Path]]:
    """Parse and check every row that does not need the video itself."""
    if not path.is_file():
        raise CustomDatasetError(path, None, "annotation CSV not found")
    by_stem, by_name = _index_videos(videos_dir)
    rows: List[_Row] = []
    sources: Dict[str, Path] = {}
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header: Optional[List[str]] = None
        for lineno, raw in enumerate(reader, start=1):
            if not raw or all(not c.strip() for c in raw):
                continue
            if header is None:
                header = [c.strip().lower() for c in raw]
                missing = [c for c in ANNOTATION_COLUMNS if c not in header]
                if missing:
                    raise CustomDatasetError(
                        path, lineno, f"header lacks column(s) {missing}; expected {','.join(ANNOTATION_COLUMNS)}"
                    )
                col = {c: header.index(c) for c in ANNOTATION_COLUMNS}
                continue
            if len(raw) != len(header):
                raise CustomDatasetError(path, lineno, f"expected {len(header)} columns as the header, got {len(raw)}")
            v = {c: raw[i].strip() for c, i in col.items()}
            name = v["video"]
            if name in by_name:
                src = by_name[name]
            elif len(by_stem.get(name, [])) == 1:
                src = by_stem[name][0]
            elif name in by_stem:
                raise CustomDatasetError(
                    path, lineno, f"video {name!r} is ambiguous in {videos_dir}: "
                    f"{[p.name for p in by_stem[name]]}; give the file name"
                )
            else:
                raise CustomDatasetError(path, lineno, f"unknown video {name!r}: no such file in {videos_dir}")
            vid = src.stem
            if not _VIDEO_ID_RE.match(vid):
                raise CustomDatasetError(path, lineno, f"video id {vid!r} must not contain commas, spaces or slashes")
            if sources.setdefault(vid, src) != src:
                raise CustomDatasetError(
                    path, lineno, f"video id {vid!r} refers to both {sources[vid].name} and {src.name}"
                )
            split = v["split"].lower()
            if split not in SPLITS:
                raise CustomDatasetError(path, lineno, f"unknown split {v['split']!r} (expected train or val)")
            t = _parse_number(path, lineno, v["time"], "time")
            if t < 0 or abs(t - round(t)) > 1e-6:
                raise CustomDatasetError(
                    path, lineno, f"time {v['time']!r} must be a whole, non-negative number of seconds "
                    "(AVA keyframes are at integer seconds)"
                )
            box = tuple(_parse_number(path, lineno, v[c], c) for c in ("x1", "y1", "x2", "y2"))
            if box[2] <= box[0] or box[3] <= box[1]:
                raise CustomDatasetError(path, lineno, f"box {list(box)} needs x2 > x1 and y2 > y1")
            if not v["action"]:
                raise CustomDatasetError(path, lineno, "empty action")
            if '"' in v["action"]:
                raise CustomDatasetError(path, lineno, f"action {v['action']!r} contains a double quote")
            try:
                person = int(v["person"])
            except ValueError:
                raise CustomDatasetError(path, lineno, f"person must be an integer id, got {v['person']!r}") from None
            if person < 0:
                raise CustomDatasetError(path, lineno, f"person must be >= 0, got {person}")
            rows.append(_Row(lineno, vid, split, int(round(t)), box, v["action"], person))
    if header is None:
        raise CustomDatasetError(path, None, "empty annotation CSV (no header)")
    if not rows:
        raise CustomDatasetError(path, None, "no annotation rows")
    return rows, sources


# ---------------------------------------------------------------------------------------- video
def _probe(path: Path) -> Tuple[int, int, float, Optional[float]]:
    """Width, height, average fps and duration in seconds (``None`` if unknown) of the first video stream."""
    import av

    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                raise CustomDatasetError(path, None, "no video stream")
            s = c.streams.video[0]
            w, h = s.codec_context.width, s.codec_context.height
            fps = float(s.average_rate) if s.average_rate else 0.0
            if s.duration is not None and s.time_base is not None:
                duration = float(s.duration * s.time_base)
            elif c.duration is not None:
                duration = c.duration / av.time_base
            else:
                duration = None
    except CustomDatasetError:
        raise
    except Exception as e:  # av.error.* and friends
        raise CustomDatasetError(path, None, f"PyAV cannot open the video: {e}") from e
    if not w or not h:
        raise CustomDatasetError(path, None, "video stream without a frame size")
    return w, h, fps, duration


def resample_to_fps(frames: Iterator[Tuple[Fraction, object]], fps: int = AVA_FPS,
                    last_duration: Optional[Fraction] = None) -> Iterator[Tuple[int, object]]:
    """Nearest-frame resampling of a time-ordered ``(time, frame)`` stream to ``fps``.

    Output frame ``i`` is the input frame whose time (relative to the first frame) is nearest to
    ``i / fps`` (ties go to the earlier frame). Output covers the input's duration: the last input
    frame lasts ``last_duration`` (default: the previous frame gap, or ``1 / fps``). Inputs whose
    time does not increase are dropped. Yields ``(i, frame)``.
    """
    i = 0
    prev_t, prev = None, None
    t0 = None
    gap = None
    for t, frame in frames:
        if t0 is None:
            t0 = t
        t = t - t0
        if prev_t is not None:
            if t <= prev_t:
                continue
            gap = t - prev_t
            mid = (prev_t + t) / 2
            while Fraction(i, fps) <= mid:
                yield i, prev
                i += 1
        prev_t, prev = t, frame
    if prev is None:
        return
    end = prev_t + (last_duration if last_duration else gap if gap else Fraction(1, fps))
    while Fraction(i, fps) < end:
        yield i, prev
        i += 1


def _convert_video(src: Path, vid: str, out_video: Path, frames_dir: Optional[Path], pad: Tuple[int, int],
                   size: Tuple[int, int], pbar=None) -> int:
    """Decode ``src``, resample to 30 fps, write H.264 ``out_video`` (and JPEGs). Returns frame count."""
    import av
    import cv2

    w, h = size
    pad_w, pad_h = pad

    def decoded():
        with av.open(str(src)) as c:
            s = c.streams.video[0]
            s.thread_type = "AUTO"
            rate = s.average_rate
            for k, fr in enumerate(c.decode(s)):
                if fr.pts is not None and s.time_base is not None:
                    t = Fraction(fr.pts) * s.time_base
                else:
                    t = Fraction(k) / (rate or AVA_FPS)
                yield t, fr

    tmp = out_video.with_name(out_video.stem + ".tmp.mp4")
    n = 0
    try:
        with av.open(str(tmp), mode="w") as out:
            stream = out.add_stream("libx264", rate=AVA_FPS, options=dict(_H264_OPTIONS))
            stream.width, stream.height, stream.pix_fmt = w + pad_w, h + pad_h, "yuv420p"
            cache_fr, cache = None, None  # hold the frame: an id() could be reused once it is freed
            for i, fr in resample_to_fps(decoded()):
                if fr is not cache_fr:  # convert each source frame once, however often it repeats
                    img = fr.to_ndarray(format="rgb24")
                    if img.shape[:2] != (h, w):
                        raise CustomDatasetError(
                            src, None, f"frame size changes mid-stream ({img.shape[1]}x{img.shape[0]} after {w}x{h})"
                        )
                    if pad_w or pad_h:
                        img = np.pad(img, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
                    cache_fr, cache = fr, img
                    bgr = None
                vf = av.VideoFrame.from_ndarray(cache, format="rgb24")
                vf.pts = i
                for packet in stream.encode(vf):
                    out.mux(packet)
                if frames_dir is not None:
                    if bgr is None:
                        bgr = np.ascontiguousarray(cache[..., ::-1])
                    cv2.imwrite(str(frames_dir / f"{vid}_{i + 1:06d}.jpg"), bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
                n = i + 1
                if pbar is not None:
                    pbar.update(1)
            for packet in stream.encode(None):
                out.mux(packet)
    except CustomDatasetError:
        tmp.unlink(missing_ok=True)
        raise
    except Exception as e:
        tmp.unlink(missing_ok=True)
        raise CustomDatasetError(src, None, f"cannot convert the video: {e}") from e
    if n == 0:
        tmp.unlink(missing_ok=True)
        raise CustomDatasetError(src, None, "no decodable frame")
    tmp.replace(out_video)
    return n


# ------------------------------------------------------------------------------------------ main
def _fmt(v: float) -> str:
    return f"{v:.4f}"


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

    See the module docstring for the formats. Everything in the CSV is checked before any video is
    converted, so a mistake costs no encoding time. Rerunning overwrites what this function writes
    (``videos/<id>.mp4``, ``frames/<id>/``, the annotation files); other files are left alone.

    Raises:
        CustomDatasetError: naming the file (and line) of the first problem found.
    """
    videos_dir, annotations_csv, root = Path(videos_dir), Path(annotations_csv), Path(output_root)
    rows, sources = _read_rows(annotations_csv, videos_dir)

    # Action ids.
    if labels is not None:
        classes = read_label_names(labels)
        ids = {n: i for i, n in classes.items()}
        for r in rows:
            if r.action not in ids:
                raise CustomDatasetError(annotations_csv, r.line, f"action {r.action!r} is not in {labels}")
    else:
        classes = {i + 1: n for i, n in enumerate(sorted({r.action for r in rows}))}
        ids = {n: i for i, n in classes.items()}

    # Probe the videos, then check every box and time against its frame.
    info: Dict[str, VideoInfo] = {}
    pads: Dict[str, Tuple[int, int]] = {}
    durations: Dict[str, Optional[float]] = {}
    for vid, src in sorted(sources.items()):
        w, h, fps, durations[vid] = _probe(src)
        pads[vid] = (w % 2, h % 2)
        if any(pads[vid]):
            logger.info(f"{src}: {w}x{h} padded to {w + w % 2}x{h + h % 2} (H.264 needs even sizes)")
        info[vid] = VideoInfo(vid, str(src), w + w % 2, h + h % 2, fps, 0)
    clipped = 0
    clipped_examples: List[int] = []
    seen: Dict[Tuple, Tuple[int, Tuple[float, ...]]] = {}
    duplicates = 0
    out_rows: Dict[str, set] = {s: set() for s in SPLITS}
    for r in rows:
        vi = info[r.video_id]
        w0, h0 = vi.width - pads[r.video_id][0], vi.height - pads[r.video_id][1]
        fw, fh = (1.0, 1.0) if normalized else (float(w0), float(h0))
        x1, y1, x2, y2 = r.box
        if x2 <= 0 or y2 <= 0 or x1 >= fw or y1 >= fh:
            unit = "normalised [0, 1]" if normalized else f"{w0}x{h0} px"
            raise CustomDatasetError(annotations_csv, r.line,
                                     f"box {list(r.box)} is entirely outside the frame ({unit})")
        c = (max(x1, 0.0), max(y1, 0.0), min(x2, fw), min(y2, fh))
        if c != r.box:
            clipped += 1
            if len(clipped_examples) < 5:
                clipped_examples.append(r.line)
        # Normalise by the written (padded) frame size so the box keeps its pixel position.
        sx = (w0 if normalized else 1.0) / vi.width
        sy = (h0 if normalized else 1.0) / vi.height
        nb = tuple(min(max(v, 0.0), 1.0) for v in (c[0] * sx, c[1] * sy, c[2] * sx, c[3] * sy))
        key_box = tuple(_fmt(v) for v in nb)
        person_key = (r.split, r.video_id, r.time, r.person)
        if person_key in seen and seen[person_key][1] != key_box:
            raise CustomDatasetError(
                annotations_csv, r.line, f"person {r.person} of {r.video_id} at {r.time} s already has a different "
                f"box on line {seen[person_key][0]}; one box per person and keyframe"
            )
        seen.setdefault(person_key, (r.line, key_box))
        row = (r.video_id, AVA_START_SEC + r.time, key_box, ids[r.action], r.person)
        if row in out_rows[r.split]:
            duplicates += 1
            logger.info(f"{annotations_csv}:{r.line}: duplicate row skipped")
            continue
        out_rows[r.split].add(row)
        if r.split not in vi.splits:
            vi.splits.append(r.split)
    if clipped:
        logger.warning(f"{annotations_csv}: {clipped} boxes partly outside the frame clipped to it "
                       f"(lines {', '.join(map(str, clipped_examples))}{', ...' if clipped > 5 else ''})")

    # Keyframes past the end: checked from container metadata now, exactly after decoding.
    by_video_rows: Dict[str, List[_Row]] = defaultdict(list)
    for r in rows:
        by_video_rows[r.video_id].append(r)
        if durations[r.video_id] is not None and r.time >= durations[r.video_id]:
            raise CustomDatasetError(annotations_csv, r.line, f"time {r.time} s is past the end of "
                                     f"{sources[r.video_id]} ({durations[r.video_id]:.2f} s)")

    # Convert.
    root.mkdir(parents=True, exist_ok=True)
    (root / "videos").mkdir(exist_ok=True)
    ann = root / "annotations"
    ann.mkdir(exist_ok=True)
    from tqdm import tqdm

    with tqdm(total=len(info), desc="videos", unit="video", disable=not progress) as vbar, \
            tqdm(desc="frames", unit="frame", disable=not progress, leave=False) as fbar:
        for vid, vi in info.items():
            vbar.set_postfix_str(vid)
            fdir = root / "frames" / vid
            if fdir.exists():  # stale frames would shadow the new video (the loader prefers frames)
                shutil.rmtree(fdir)
            if extract_frames:
                fdir.mkdir(parents=True)
            w0, h0 = vi.width - pads[vid][0], vi.height - pads[vid][1]
            vi.num_frames = _convert_video(Path(vi.source), vid, root / "videos" / f"{vid}.mp4",
                                           fdir if extract_frames else None, pads[vid], (w0, h0), fbar)
            for r in by_video_rows[vid]:
                if r.time * AVA_FPS >= vi.num_frames:
                    raise CustomDatasetError(
                        annotations_csv, r.line, f"time {r.time} s is past the end of {vi.source} "
                        f"({vi.num_frames / AVA_FPS:.2f} s)"
                    )
            vbar.update(1)

    # Annotation files.
    for s in SPLITS:
        lines = [f"{v},{ts:04d},{','.join(b)},{a},{p}\n" for v, ts, b, a, p in
                 sorted(out_rows[s], key=lambda x: (x[0], x[1], x[4], x[3], x[2]))]
        (ann / f"ava_{s}_v2.2.csv").write_text("".join(lines))
        (ann / f"ava_{s}_excluded_timestamps_v2.2.csv").write_text("")
        if (ann / f"ava_{s}_predicted_boxes.csv").exists():
            logger.warning(f"{ann}/ava_{s}_predicted_boxes.csv is from an earlier run: remake it if the videos changed")
    pb = []
    for i, n in classes.items():
        pb += ["label {", f'  name: "{n}"', f"  label_id: {i}", "  label_type: PERSON_MOVEMENT", "}"]
    (ann / LABEL_MAP_NAME).write_text("\n".join(pb) + "\n")

    used = {p.resolve() for p in sources.values()}
    by_stem, _ = _index_videos(videos_dir)
    unused = sorted(p.name for ps in by_stem.values() for p in ps if p.resolve() not in used)
    if unused:
        logger.info(f"{len(unused)} file(s) in {videos_dir} have no annotations and were not converted")
    return CustomDatasetSummary(
        output_root=root,
        classes=classes,
        num_classes=max(classes),
        videos=info,
        keyframes={s: len({(v, ts) for v, ts, *_ in out_rows[s]}) for s in SPLITS},
        boxes={s: len({(v, ts, p) for v, ts, _, _, p in out_rows[s]}) for s in SPLITS},
        rows={s: len(out_rows[s]) for s in SPLITS},
        clipped_boxes=clipped,
        duplicate_rows=duplicates,
        unused_videos=unused,
        frames_extracted=extract_frames,
    )
