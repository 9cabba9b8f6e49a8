"""The streaming demo: decode -> detect people -> classify actions -> render, in bounded memory.

Each decoded frame is used at once and kept only in the form, and for as long as, something needs it
(measurements: docs/performance.md, "Demo"):

* **people**: a keyframe's person boxes are found on its full-resolution frame as soon as it is decoded;
* **clips**: the model sees frames after the evaluation's test transform (AVA: short side 256), so each
  frame is shrunk once, when decoded, with that transform (:class:`~.predictor.FrameTransform`; the
  same clip and boxes bit for bit) and only the small copy is kept, back to ``k + o - tau*T/2`` for the
  earliest keyframe not yet classified. A random test transform cannot be applied frame by frame:
  then full frames are kept for the clips, as they are transformed clip by clip;
* **rendering**: a frame is drawn and encoded as soon as the labels of the keyframe it follows are known
  (labels are held from one keyframe to the next); they arrive once the keyframe's clip is complete
  (frame ``k + o + tau*(T/2 - 1)``) and its batch of ``batch_size`` keyframes has been classified. The
  full-resolution RGB frames waiting for them may hold :data:`RENDER_BACKLOG_BYTES`: past it the batch
  runs with fewer keyframes (results do not change). Where even one keyframe's wait would pass it (4K),
  nothing is kept: a second reader decodes the file again, one frame behind the renderer.

(``T``, ``tau``, ``o``: the evaluation's ``num_frames``, ``sampling_rate`` and ``clip_offset``, see
:class:`~vmae_det.demo.predictor.ActionPredictor`; clips and boxes go through the evaluation's test
transforms, so the scores are the evaluation's on the same frames and boxes.)

So at most about ``tau*T`` small copies and ``tau*T/2 + batch_size*interval`` full frames (fewer past the
budget, 2 with the second pass) are alive at once, whatever the video's length (frames of the reader's
presentation-time grid; ``tau*T*fps/model_fps`` for the clip when clips are resampled, see
:mod:`.keyframes`), and the work per frame does not depend on how many came before. Detections are
streamed to CSV/JSON and frames to the mp4 as soon as they are final, all under temporary names renamed
into place at the end (:class:`~.outputs.OutputFiles`).
"""
from __future__ import annotations

import logging
import os
import time
from collections import deque
from dataclasses import dataclass
from typing import Deque, Dict, List, Optional, Union

import cv2
import numpy as np

from .arguments import check_demo_arguments
from .keyframes import KeyframeSchedule
from .outputs import DetectionWriter, KeyframeDetections, OutputFiles
from .person_boxes import CsvBoxSource, DetectorBoxSource, PersonBoxSource
from .predictor import MODEL_FPS, ActionPredictor, FrameTransform
from .video_stream import VideoStreamError, VideoStreamReader, VideoStreamWriter
from .visualizer import ActionVisualizer, BoxLabels

__all__ = ["VideoTooShortError", "run_demo"]

logger = logging.getLogger(__name__)

#: Frames waiting for their keyframe's labels may hold this many bytes: a batch of fewer than
#: ``batch_size`` keyframes is run as soon as they would hold more, and videos whose frames would pass
#: it with a single keyframe's backlog (4K) are decoded a second time for rendering instead.
RENDER_BACKLOG_BYTES = 256 * 2 ** 20

#: AVA's videos are 15-minute crops starting at this second of the movie.
AVA_CROP_START_SEC = 900


class VideoTooShortError(VideoStreamError):
    """The video has fewer frames than one clip spans."""


@dataclass
class _Pending:
    """A keyframe whose people are known, waiting for its clip to complete."""

    j: int
    frame: int
    boxes: np.ndarray
    box_scores: np.ndarray
    last_needed: int  # the clip's last frame (before clamping at the end of the video)


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
    boxes_format: str = "auto",
    model_fps: Optional[float] = None,
    video_id: Optional[str] = None,
    render_min_short_side: int = 360,
    preview: bool = True,
    progress: bool = True,
) -> Dict:
    """Detect and render actions on ``video``; write ``<name>_actions.{mp4,csv,json}`` and a preview PNG.

    Time is the video's presentation time (see :mod:`.video_stream`): frames are placed on a grid at
    the stream's nominal rate by their timestamps, so keyframe second ``s`` is what a player shows at
    ``s`` and the output lasts as long as the input, also for variable-rate or sparse files. Clips span
    the model's training time (``model_fps``), resampled when the video runs at another rate.

    Args:
        video: input video file.
        output_dir: created if missing. Outputs are written under temporary names and renamed into
            place only when the whole run succeeded; earlier results are untouched until then.
        predictor: the action detector (:class:`ActionPredictor`).
        persons: a :class:`PersonBoxSource`, a path to an AVA-format box CSV, or a person
            detector callable ``frame_rgb -> (boxes xyxy abs, scores)``.
        keyframe_interval: frames of the video's grid between keyframes (default: its fps, once a second).
        time_offset: time of frame 0 in seconds. ``None`` (auto): 900 when the boxes come from a
            CSV whose timestamps for this video are all >= 900 s (AVA's 15-minute crops and the
            tiny default start at second 900), else 0.
        top_k: labels drawn per person.
        score_threshold: (box, action) pairs below it are neither written nor drawn.
        draw_threshold: labels below it are not drawn (on top of ``score_threshold``).
        batch_size: keyframes per model call.
        person_score_threshold: person boxes scoring below it are dropped, from a detector or a CSV
            (GT rows score 1.0); 0.8 is the evaluation's ``test_proposal_threshold``.
        boxes_format: how a box CSV's 8th column is read: ``"auto"``, ``"gt"`` (person id) or
            ``"detections"`` (score); see :class:`CsvBoxSource`.
        model_fps: frame rate of the model's training clips (default: ``predictor.model_fps``, 30).
        video_id: first CSV column (default: the file name without extension).
        render_min_short_side: small videos are upscaled to this short side for legible labels.
        preview: also write ``<name>_preview.png``, the first rendered frame with people in it.
        progress: show a tqdm progress bar with ETA.

    Returns:
        A summary dict: paths, frame/keyframe/box counts, time axis, timings, skips.

    Raises:
        DemoArgumentError: a setting out of range (a ``ValueError``), before anything is opened.
        VideoStreamError: missing/unreadable file or no decodable frame (names the file; an ``OSError``).
        VideoTooShortError: fewer frames than one clip.
        BoxFileError: malformed box CSV row or off-grid timestamp (names file and line).
        OutputDirError / VideoWriteError: the output folder or the output video cannot be written.
        DemoModelError: the model returned non-finite scores.
        On any error (and on Ctrl-C) the partial outputs are removed and earlier results are untouched.
    """
    t_start = time.perf_counter()
    if model_fps is None:
        model_fps = getattr(predictor, "model_fps", MODEL_FPS)
    check_demo_arguments(keyframe_interval=keyframe_interval, time_offset=time_offset, top_k=top_k,
                         score_threshold=score_threshold, draw_threshold=draw_threshold, batch_size=batch_size,
                         person_score_threshold=person_score_threshold,
                         render_min_short_side=render_min_short_side, model_fps=model_fps,
                         boxes_format=boxes_format, output_dir=output_dir)
    name = os.path.splitext(os.path.basename(video))[0]
    video_id = video_id or name
    if isinstance(persons, (str, os.PathLike)):
        persons = CsvBoxSource(str(persons), video_id, score_threshold=person_score_threshold, box_format=boxes_format)
    elif not isinstance(persons, PersonBoxSource):
        persons = DetectorBoxSource(persons, score_threshold=person_score_threshold)
    reader = VideoStreamReader(video)
    state = None
    outputs = None
    bar = None
    num_frames = 0
    try:
        if time_offset is None:
            time_offset = _auto_time_offset(persons)
        schedule = KeyframeSchedule(fps=reader.fps, interval=keyframe_interval, num_frames=predictor.num_frames,
                                    stride=predictor.sampling_rate, time_offset=time_offset,
                                    offset=predictor.clip_offset, model_fps=model_fps)
        if isinstance(persons, CsvBoxSource):
            persons.bind(schedule)
        if schedule.resampled:
            logger.info("%s runs at %.3f fps, the model was trained at %g fps: each clip takes the video frames "
                        "nearest to its %d frames every %d/%g s (%.2f s, as in training)", video, reader.fps,
                        model_fps, schedule.num_frames, schedule.stride, model_fps, schedule.clip_seconds)
        outputs = OutputFiles(output_dir, name, {"video": "actions.mp4", "csv": "actions.csv",
                                                 "json": "actions.json", "preview": "preview.png"})
        visualizer = ActionVisualizer(render_min_short_side)
        out_h, out_w = visualizer.output_size(reader.height, reader.width)
        meta = {"fps": reader.fps, "width": reader.width, "height": reader.height, "rotation": reader.rotation,
                "time_axis": "presentation timestamps on a constant-rate grid at fps",
                "keyframe_interval": schedule.interval, "time_offset": time_offset,
                "num_frames_per_clip": schedule.num_frames, "sampling_rate": schedule.stride,
                "clip_offset": schedule.offset, "model_fps": schedule.model_fps,
                "clip_seconds": round(schedule.clip_seconds, 6), "clips_resampled": schedule.resampled}
        state = _StreamState(schedule, predictor, persons, visualizer, outputs.tmp, video_id, batch_size,
                             top_k, score_threshold, max(score_threshold, draw_threshold), preview, meta, reader)
        # The encoder is opened before decoding, so a size it refuses fails before any model work.
        state.video_writer = VideoStreamWriter(outputs.tmp["video"], reader.rate, out_w, out_h)
        if progress:
            from tqdm import tqdm

            bar = tqdm(total=reader.estimated_num_frames, unit="frame", desc=name, dynamic_ncols=True)
        for idx, frame in reader:
            num_frames = idx + 1
            state.push(idx, frame)
            if bar is not None:
                bar.update(1)
        if num_frames < schedule.span:
            at_video_fps = f" = {schedule.span} at {reader.fps:.3f} fps" if schedule.resampled else ""
            raise VideoTooShortError(video, f"{num_frames} frames, shorter than one clip ({schedule.span} frames = "
                                            f"{predictor.num_frames} x {predictor.sampling_rate} at {model_fps:g} fps"
                                            f"{at_video_fps})")
        state.finish(num_frames)
        skips = persons.finish(state.num_keyframes)
        stats = reader.stats
        elapsed = time.perf_counter() - t_start
        produced = ["video", "csv", "json"] + (["preview"] if state.preview_written else [])
        summary = {
            "video": str(video), "video_id": video_id,
            "outputs": {k: outputs.final[k] for k in produced},
            "num_frames": num_frames, "fps": reader.fps, "duration_seconds": round(num_frames / reader.fps, 3),
            "decoded_frames": int(stats["decoded"]), "repeated_frames": int(stats["repeated"]),
            "dropped_frames": int(stats["dropped"]), "corrupt_packets_skipped": int(stats["corrupt_packets_skipped"]),
            "damaged_tail_seconds": stats["damaged_tail_seconds"], "rotation": reader.rotation,
            "num_keyframes": state.num_keyframes,
            "num_boxes": state.num_boxes, "num_csv_rows": state.writer.num_rows,
            "max_frames_in_memory": state.max_alive, "max_model_frames_in_memory": state.max_model_frames,
            "render_source": "second decoding pass" if state.second_decode else "frames held",
            "early_batches": state.num_early_batches,
            "seconds": round(elapsed, 3),
            "frames_per_second": round(num_frames / elapsed, 2) if elapsed > 0 else None,
            "video_codec": state.video_writer.codec, "partial_outputs_removed": outputs.removed_stale, **skips,
        }
        if stats["repeated"] or stats["dropped"]:
            logger.info("%s: %d decoded frames on %d grid frames at %.3f fps (%d repeated, %d dropped): "
                        "timestamps are not evenly spaced", video, stats["decoded"], num_frames, reader.fps,
                        stats["repeated"], stats["dropped"])
        state.writer.close(summary)
        outputs.commit(produced)
    except BaseException:
        if state is not None:
            state.abort()
        if outputs is not None:
            outputs.discard()
        raise
    finally:
        if bar is not None:
            bar.close()
        reader.close()
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
    """The moving parts of one demo run (see the module docstring for the memory argument).

    Per grid frame it keeps (indices are contiguous, so buffers are deques with a base index):

    * ``clip_frames``: the frame in the model's input size (:class:`~.predictor.FrameTransform`), from
      the first frame the oldest unclassified keyframe's clip reads; full frames when the test
      transform cannot be applied frame by frame;
    * ``render_frames``: the RGB frames not yet rendered. Unless even one keyframe's backlog of them
      would pass :data:`RENDER_BACKLOG_BYTES` (4K): then nothing is kept and a second, quiet reader
      decodes the file again, one frame behind the renderer (``second_decode``).

    In the first case a batch of fewer than ``batch_size`` keyframes is run early when the frames
    waiting for its labels hold more than :data:`RENDER_BACKLOG_BYTES`.
    """

    def __init__(self, schedule, predictor, persons, visualizer, paths, video_id, batch_size, top_k,
                 score_threshold, draw_threshold, preview, meta, reader) -> None:
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
        self.video_path = reader.path
        self._frame_size = (reader.height, reader.width)
        self.transform: Optional[FrameTransform] = predictor.frame_transform(reader.height, reader.width)
        self.clip_frames: Deque[np.ndarray] = deque()
        self.clip_base = 0                    # grid index of clip_frames[0]
        self.render_frames: Deque[np.ndarray] = deque()  # RGB frames from next_render on
        self.second_decode: Optional[bool] = None  # decided on the first frame
        self.second_reader: Optional[VideoStreamReader] = None
        self._second_frames = None
        self._second_last = None
        self.render_frame_bytes = 0
        self.next_j = 0                       # next keyframe to look for people in
        self.next_keyframe = schedule.frame_of(0)
        self.waiting: Deque[_Pending] = deque()   # people known, clip incomplete
        self.batch: List[tuple] = []          # (pending, ClipRequest or None) in keyframe order
        self.batch_requests = 0
        self.labels: Dict[int, List[BoxLabels]] = {}  # keyframe j -> what to draw
        self.current: List[BoxLabels] = []
        self.next_render = 0
        self.render_j = 0                     # the keyframe whose frame comes next while rendering
        self.render_boundary = schedule.frame_of(0)
        self.keep_from = 0                    # first frame a clip still reads
        self.num_keyframes = 0
        self.num_boxes = 0
        self.num_early_batches = 0
        self.max_alive = 0
        self.max_model_frames = 0
        self.video_writer: Optional[VideoStreamWriter] = None
        self.writer = DetectionWriter(paths["csv"], paths["json"], video_id, score_threshold, meta)
        self._last_rgb = self._last_small = None

    # ---- per frame -------------------------------------------------------------------------
    def push(self, idx: int, frame: np.ndarray) -> None:
        """Take RGB grid frame ``idx``, then do everything it allows."""
        s = self.schedule
        if self.second_decode is None:
            self._choose_render_source(frame)
        if frame is self._last_rgb:  # a repeated grid frame
            small = self._last_small
        else:
            small = self.transform.apply(frame) if self.transform is not None else frame
            self._last_rgb, self._last_small = frame, small
        self.clip_frames.append(small)
        if not self.second_decode:
            self.render_frames.append(frame)
        # People on the keyframe, in the full-resolution frame, as soon as it is decoded.
        while self.next_keyframe <= idx:
            boxes, scores = self.persons.boxes_for(self.next_j, frame)
            self.waiting.append(_Pending(self.next_j, self.next_keyframe, boxes, scores,
                                         s.last_needed(self.next_keyframe)))
            self.next_j += 1
            self.num_keyframes += 1
            self.next_keyframe = s.frame_of(self.next_j)
        self.advance(idx)

    def _choose_render_source(self, frame: np.ndarray) -> None:
        s = self.schedule
        backlog = max(1, s.last_needed(0) + 1)  # frames a keyframe's labels keep waiting, at least
        self.render_frame_bytes = frame.nbytes
        self.second_decode = backlog * frame.nbytes > RENDER_BACKLOG_BYTES
        if self.second_decode:
            logger.info("%dx%d frames: %d frames waiting for their keyframe's labels would hold %.0f MB: "
                        "decoding the video a second time for rendering instead", frame.shape[1], frame.shape[0],
                        backlog, backlog * frame.nbytes / 2 ** 20)
            self.second_reader = VideoStreamReader(self.video_path, quiet=True)
            self._second_frames = self.second_reader.frames()

    def advance(self, last: int, num_frames: Optional[int] = None) -> None:
        """Do everything frames ``<= last`` allow; ``num_frames`` is set once the video has ended."""
        s = self.schedule
        # 1. clips that are complete (or clamped at the end of the video) join the batch
        while self.waiting and (num_frames is not None or self.waiting[0].last_needed <= last):
            p = self.waiting.popleft()
            request = None
            if len(p.boxes):
                base = self.clip_base
                frames = [self.clip_frames[i - base] for i in s.clip_indices(p.frame, num_frames)]
                timestamp = int(round(s.time_of(p.j)))
                if self.transform is not None:
                    request = self.predictor.make_request_from_transformed(
                        frames, self.transform, p.boxes, p.box_scores, self.video_id, timestamp)
                else:
                    request = self.predictor.make_request(frames, p.boxes, p.box_scores, self.video_id, timestamp)
                self.batch_requests += 1
            self.batch.append((p, request))
            if self.batch_requests >= self.batch_size:
                self._run_batch()
        if self.batch:
            if num_frames is not None or self.batch_requests == 0:
                self._run_batch()
            elif len(self.render_frames) * self.render_frame_bytes > RENDER_BACKLOG_BYTES:
                self.num_early_batches += 1  # the frames waiting for these labels hold too much memory
                self._run_batch()
        # 2. render every frame whose labels are final (labels are held from one keyframe to the next)
        self._count_alive(last)
        while self.next_render <= last:
            if self.next_render == self.render_boundary:
                labels = self.labels.pop(self.render_j, None)
                if labels is None:
                    break  # its keyframe is still waiting for a clip or a batch
                self.current = labels
                self.render_j += 1
                self.render_boundary = s.frame_of(self.render_j)
            if self.second_decode:
                self._render(self._second_pass_frame(), owned=True)
            else:
                self._render(self.render_frames.popleft(), owned=False)
            self.next_render += 1
        # 3. forget model-size frames no clip will read
        oldest = self.waiting[0].frame if self.waiting else self.next_keyframe
        if oldest != self.keep_from:
            self.keep_from = oldest
            keep_from = s.first_needed(oldest)
            clip_frames = self.clip_frames
            while self.clip_base < keep_from and clip_frames:
                clip_frames.popleft()
                self.clip_base += 1

    def _second_pass_frame(self) -> np.ndarray:
        """Frame ``next_render`` from the second reader: a new array the renderer may draw on."""
        try:
            idx, frame, decoded = next(self._second_frames)
        except StopIteration:
            idx = frame = decoded = None
        if idx != self.next_render:  # the file changed under us, or a bug; never bad input
            raise VideoStreamError(self.video_path, f"the second decoding pass gave grid frame {idx} where "
                                                    f"{self.next_render} was expected")
        if frame is self._second_last:  # a repeated grid frame: the array was drawn on already
            return self.second_reader.to_rgb(decoded, idx)
        self._second_last = frame
        return frame

    def _count_alive(self, last: int) -> None:
        """Track the most full-resolution frames (and model-size copies) held at once."""
        if self.transform is None:  # the clip buffer holds full frames too (the same arrays)
            alive = last + 1 - min(self.clip_base, self.next_render)
        else:
            # with a second decoding pass: the frame being decoded and the one being rendered
            alive = 2 if self.second_decode else len(self.render_frames)
            self.max_model_frames = max(self.max_model_frames, len(self.clip_frames))
        self.max_alive = max(self.max_alive, alive)

    def _run_batch(self) -> None:
        batch, self.batch, self.batch_requests = self.batch, [], 0
        requests = [r for _, r in batch if r is not None]
        scores = iter(self.predictor(requests) if requests else [])
        for p, r in batch:
            self._emit(p, next(scores) if r is not None else np.zeros((0, 0), np.float32))

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
        self.labels[p.j] = people

    def _render(self, frame: np.ndarray, owned: bool) -> None:
        canvas = self.visualizer.draw(frame, self.current, inplace=owned)
        self.video_writer.write(canvas)
        if self.want_preview and not self.preview_written and any(p.labels for p in self.current):
            if not cv2.imwrite(self.paths["preview"], cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR)):
                raise OSError(f"cannot write the preview image {self.paths['preview']}")
            self.preview_written = True

    # ---- end of stream ---------------------------------------------------------------------
    def finish(self, num_frames: int) -> None:
        self.advance(num_frames - 1, num_frames=num_frames)
        if self.next_render != num_frames:  # a bug, never bad input
            raise RuntimeError(f"rendered {self.next_render} of {num_frames} frames")
        if self.want_preview and not self.preview_written:
            logger.warning("no person with a label was drawn: no preview PNG written")
        self.video_writer.close()
        self._release()

    def abort(self) -> None:
        """Close the (temporary) output files after an error without finishing them; never raises."""
        if self.video_writer is not None:
            self.video_writer.abort()
        self.writer.abort()
        self._release()

    def _release(self) -> None:
        self.clip_frames.clear()
        self.render_frames.clear()
        self._last_rgb = self._last_small = self._second_last = None
        if self.second_reader is not None:
            self._second_frames = None
            self.second_reader.close()
