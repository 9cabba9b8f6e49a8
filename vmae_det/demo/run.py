"""The streaming demo: decode -> detect people -> classify actions -> render, in bounded memory.

Frames are decoded in order and kept only while something still needs them:

* the clip of the earliest keyframe not yet classified needs frames back to ``k + o - tau*T/2``;
* frames not yet rendered wait for the labels of the keyframe they follow (labels are held from
  one keyframe to the next), which arrive once the keyframe's clip is complete
  (frame ``k + o + tau*(T/2 - 1)``) and its batch of ``batch_size`` keyframes has been classified.

(``T``, ``tau``, ``o``: the evaluation's ``num_frames``, ``sampling_rate`` and ``clip_offset``, see
:class:`~vmae_det.demo.predictor.ActionPredictor`; clips and boxes go through the evaluation's test
transforms, so the scores are the evaluation's on the same frames and boxes.)

So at most about ``tau*T + batch_size*interval`` frames are alive at once, whatever the video's
length. Detections are streamed to CSV/JSON and frames to the mp4 as soon as they are final.
"""
from __future__ import annotations

import logging
import os
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Deque, Dict, List, Optional, Union

import cv2
import numpy as np

from .keyframes import KeyframeSchedule
from .outputs import DetectionWriter, KeyframeDetections
from .person_boxes import CsvBoxSource, DetectorBoxSource, PersonBoxSource
from .predictor import ActionPredictor
from .video_stream import VideoDecodeError, VideoStreamReader, VideoStreamWriter
from .visualizer import ActionVisualizer, BoxLabels

__all__ = ["VideoTooShortError", "run_demo"]

logger = logging.getLogger(__name__)

#: AVA's videos are 15-minute crops starting at this second of the movie.
AVA_CROP_START_SEC = 900


class VideoTooShortError(VideoDecodeError):
    """The video has fewer frames than one clip spans."""


@dataclass
class _Pending:
    """A keyframe whose people are known, waiting for its clip to complete."""

    j: int
    frame: int
    boxes: np.ndarray
    box_scores: np.ndarray


def run_demo(
    video: str,
    output_dir: str,
    predictor: ActionPredictor,
    persons: Union[PersonBoxSource, str, "callable"],
    *,
    keyframe_interval: Optional[float] = None,
    time_offset: Optional[float] = None,
    top_k: int = 3,
    score_threshold: float = 0.0,
    draw_threshold: float = 0.0,
    batch_size: int = 4,
    person_score_threshold: float = 0.8,
    video_id: Optional[str] = None,
    render_min_short_side: int = 360,
    preview: bool = True,
    progress: bool = True,
) -> Dict:
    """Detect and render actions on ``video``; write ``<name>_actions.{mp4,csv,json}`` and a preview PNG.

    Args:
        video: input video file.
        output_dir: created if missing.
        predictor: the action detector (:class:`ActionPredictor`).
        persons: a :class:`PersonBoxSource`, a path to an AVA-format box CSV, or a person
            detector callable ``frame_rgb -> (boxes xyxy abs, scores)``.
        keyframe_interval: frames between keyframes (default: the video's fps, once a second).
        time_offset: time of frame 0 in seconds. ``None`` (auto): 900 when the boxes come from a
            CSV whose timestamps for this video are all >= 900 s (AVA's 15-minute crops and the
            tiny default start at second 900), else 0.
        top_k: labels drawn per person.
        score_threshold: (box, action) pairs below it are neither written nor drawn.
        draw_threshold: labels below it are not drawn (on top of ``score_threshold``).
        batch_size: keyframes per model call.
        person_score_threshold: detector boxes below it are dropped (detector sources only).
        video_id: first CSV column (default: the file name without extension).
        render_min_short_side: small videos are upscaled to this short side for legible labels.
        preview: also write ``<name>_preview.png``, the first rendered frame with people in it.
        progress: show a tqdm progress bar with ETA.

    Returns:
        A summary dict: paths, frame/keyframe/box counts, timings, skips.

    Raises:
        VideoDecodeError: unreadable file or no decodable frame (message names the file).
        VideoTooShortError: fewer frames than one clip (nothing is written).
        BoxFileError: malformed box CSV row or off-grid timestamp (names file and line).
    """
    t_start = time.perf_counter()
    reader = VideoStreamReader(video)
    name = os.path.splitext(os.path.basename(video))[0]
    video_id = video_id or name
    if isinstance(persons, (str, os.PathLike)):
        persons = CsvBoxSource(str(persons), video_id)
    elif not isinstance(persons, PersonBoxSource):
        persons = DetectorBoxSource(persons, score_threshold=person_score_threshold)
    if time_offset is None:
        time_offset = _auto_time_offset(persons)
    schedule = KeyframeSchedule(fps=reader.fps, interval=keyframe_interval, num_frames=predictor.num_frames,
                                stride=predictor.sampling_rate, time_offset=time_offset,
                                offset=predictor.clip_offset)
    if isinstance(persons, CsvBoxSource):
        persons.bind(schedule)

    os.makedirs(output_dir, exist_ok=True)
    paths = {k: os.path.join(output_dir, f"{name}_{suffix}") for k, suffix in
             (("video", "actions.mp4"), ("csv", "actions.csv"), ("json", "actions.json"), ("preview", "preview.png"))}
    visualizer = ActionVisualizer(render_min_short_side)
    state = _StreamState(schedule, predictor, persons, visualizer, paths, video_id, batch_size,
                         top_k, score_threshold, max(score_threshold, draw_threshold), preview,
                         meta={"fps": reader.fps, "width": reader.width, "height": reader.height,
                               "keyframe_interval": schedule.interval, "time_offset": time_offset,
                               "num_frames_per_clip": schedule.num_frames, "sampling_rate": schedule.stride,
                               "clip_offset": schedule.offset})
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=reader.estimated_num_frames, unit="frame", desc=name, dynamic_ncols=True)
    num_frames = 0
    try:
        for idx, frame in reader:
            num_frames = idx + 1
            state.push(idx, frame)
            # Nothing is processed until one clip span has been seen, so a too-short video fails
            # before any output is written.
            if num_frames >= schedule.span:
                state.advance(idx)
            if bar is not None:
                bar.update(1)
        if num_frames == 0:
            raise VideoDecodeError(video, "the video has zero frames")
        if num_frames < schedule.span:
            raise VideoTooShortError(video, f"{num_frames} frames, shorter than one clip "
                                            f"({schedule.span} frames = {predictor.num_frames} x {predictor.sampling_rate})")
        state.finish(num_frames)
    except BaseException:
        state.abort()
        raise
    finally:
        if bar is not None:
            bar.close()
        reader.close()
    skips = persons.finish(state.num_keyframes)
    elapsed = time.perf_counter() - t_start
    summary = {
        "video": str(video), "video_id": video_id, "outputs": paths if state.preview_written else
        {k: v for k, v in paths.items() if k != "preview"},
        "num_frames": num_frames, "fps": reader.fps, "num_keyframes": state.num_keyframes,
        "num_boxes": state.num_boxes, "num_csv_rows": state.writer.num_rows,
        "max_frames_in_memory": state.max_alive, "seconds": round(elapsed, 3),
        "frames_per_second": round(num_frames / elapsed, 2) if elapsed > 0 else None,
        "video_codec": state.video_writer.codec if state.video_writer else None, **skips,
    }
    state.writer.close(summary)
    logger.info("demo done: %s", summary)
    return summary


def _auto_time_offset(persons: PersonBoxSource) -> float:
    if isinstance(persons, CsvBoxSource) and (persons.min_timestamp or 0.0) >= AVA_CROP_START_SEC:
        logger.info("%s: timestamps start at %g s >= %d s: taking frame 0 as second %d (AVA crop); "
                    "pass time_offset to override", persons.path, persons.min_timestamp,
                    AVA_CROP_START_SEC, AVA_CROP_START_SEC)
        return float(AVA_CROP_START_SEC)
    return 0.0


class _StreamState:
    """The moving parts of one demo run (see the module docstring for the memory argument)."""

    def __init__(self, schedule, predictor, persons, visualizer, paths, video_id, batch_size, top_k,
                 score_threshold, draw_threshold, preview, meta) -> None:
        self.schedule: KeyframeSchedule = schedule
        self.predictor: ActionPredictor = predictor
        self.persons: PersonBoxSource = persons
        self.visualizer: ActionVisualizer = visualizer
        self.paths = paths
        self.video_id = video_id
        self.batch_size = max(1, int(batch_size))
        self.top_k = int(top_k)
        self.draw_threshold = float(draw_threshold)
        self.want_preview = preview
        self.preview_written = False
        self.frames: "OrderedDict[int, np.ndarray]" = OrderedDict()
        self.next_j = 0                       # next keyframe to look for people in
        self.waiting: Deque[_Pending] = deque()   # people known, clip incomplete
        self.batch: List[tuple] = []          # (pending, ClipRequest) ready for the model
        self.labels: Dict[int, List[BoxLabels]] = {}  # keyframe frame -> what to draw
        self.current: List[BoxLabels] = []
        self.next_render = 0
        self.num_keyframes = 0
        self.num_boxes = 0
        self.max_alive = 0
        self.video_writer: Optional[VideoStreamWriter] = None
        self.writer = DetectionWriter(paths["csv"], paths["json"], video_id, score_threshold, meta)
        self._frame_size = None

    # ---- per frame -------------------------------------------------------------------------
    def push(self, idx: int, frame: np.ndarray) -> None:
        self.frames[idx] = frame
        self._frame_size = frame.shape[:2]
        self.max_alive = max(self.max_alive, len(self.frames))

    def advance(self, last: int, num_frames: Optional[int] = None) -> None:
        """Do everything frames ``<= last`` allow; ``num_frames`` is set once the video has ended."""
        s = self.schedule
        # 1. people on every keyframe decoded so far
        while s.frame_of(self.next_j) <= last:
            k = s.frame_of(self.next_j)
            boxes, scores = self.persons.boxes_for(self.next_j, self.frames[k])
            self.waiting.append(_Pending(self.next_j, k, boxes, scores))
            self.next_j += 1
            self.num_keyframes += 1
        # 2. clips that are complete (or clamped at the end of the video)
        while self.waiting and (num_frames is not None or s.last_needed(self.waiting[0].frame) <= last):
            p = self.waiting.popleft()
            if len(p.boxes) == 0:
                self._emit(p, np.zeros((0, 0), np.float32))  # nobody to classify
                continue
            frames = [self.frames[i] for i in s.clip_indices(p.frame, num_frames)]
            request = self.predictor.make_request(frames, p.boxes, p.box_scores, self.video_id,
                                                  int(round(s.time_of(p.j))))
            self.batch.append((p, request))
            if len(self.batch) >= self.batch_size:
                self._run_batch()
        if num_frames is not None and self.batch:
            self._run_batch()
        # 3. render every frame whose labels are final
        while self.next_render <= last:
            f = self.next_render
            if f == s.frame_of(self._keyframe_at_or_before(f)):
                if f not in self.labels:
                    break  # its keyframe is still waiting for a clip or a batch
                self.current = self.labels.pop(f)
            self._render(f, self.frames[f])
            self.next_render += 1
        # 4. forget frames nobody needs any more
        oldest_clip = s.first_needed(self.waiting[0].frame if self.waiting else s.frame_of(self.next_j))
        keep_from = min(self.next_render, oldest_clip)
        while self.frames and next(iter(self.frames)) < keep_from:
            self.frames.popitem(last=False)

    def _keyframe_at_or_before(self, f: int) -> int:
        j = int(f // self.schedule.interval)
        while self.schedule.frame_of(j + 1) <= f:
            j += 1
        while j > 0 and self.schedule.frame_of(j) > f:
            j -= 1
        return j

    def _run_batch(self) -> None:
        batch, self.batch = self.batch, []
        scores = self.predictor([r for _, r in batch])
        for (p, _), s in zip(batch, scores):
            self._emit(p, s)

    def _emit(self, p: _Pending, scores: np.ndarray) -> None:
        h, w = self._frame_size
        norm = np.array([w, h, w, h], np.float32)
        boxes = np.clip(p.boxes / norm, 0.0, 1.0) if len(p.boxes) else np.zeros((0, 4), np.float32)
        self.writer.write(KeyframeDetections(p.j, p.frame, self.schedule.time_of(p.j), boxes, p.box_scores, scores))
        self.num_boxes += len(p.boxes)
        names = self.predictor.class_names
        people = []
        for box, row in zip(p.boxes, scores):
            order = np.argsort(-row)[: self.top_k]
            labels = [(names.get(int(k) + 1, f"action {int(k) + 1}"), float(row[k]))
                      for k in order if row[k] >= self.draw_threshold]
            people.append(BoxLabels(tuple(float(v) for v in box), labels))
        self.labels[p.frame] = people

    def _render(self, idx: int, frame: np.ndarray) -> None:
        canvas = self.visualizer.draw(frame, self.current)
        if self.video_writer is None:
            self.video_writer = VideoStreamWriter(self.paths["video"], self.schedule.fps, canvas.shape[1], canvas.shape[0])
        self.video_writer.write(canvas)
        if self.want_preview and not self.preview_written and any(p.labels for p in self.current):
            cv2.imwrite(self.paths["preview"], cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR))
            self.preview_written = True

    # ---- end of stream ---------------------------------------------------------------------
    def finish(self, num_frames: int) -> None:
        self.advance(num_frames - 1, num_frames=num_frames)
        if self.next_render != num_frames:  # a bug, never bad input
            raise RuntimeError(f"rendered {self.next_render} of {num_frames} frames")
        if self.want_preview and not self.preview_written and self.video_writer is not None:
            logger.warning("no person with a label was drawn: no preview PNG written")
        if self.video_writer is not None:
            self.video_writer.close()
        self.frames.clear()

    def abort(self) -> None:
        """Close files after an error and remove the partial outputs."""
        if self.video_writer is not None:
            self.video_writer.close()
        self.writer.close()
        for path in self.paths.values():
            if os.path.exists(path):
                os.remove(path)
