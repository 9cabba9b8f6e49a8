"""The streaming demo: decode -> detect people -> classify actions -> render, in bounded memory.

Each decoded frame is used at once and kept only in the form, and for as long as, something needs it
(measurements: docs/performance.md, "Demo"):

* **people** (:class:`~.keyframe_batches.KeyframeFinder`): a keyframe's person boxes are found on its
  full-resolution frame as soon as it is decoded;
* **clips** (:class:`~.clip_buffer.ClipFrameBuffer`, :class:`~.keyframe_batches.KeyframeBatcher`): the
  model sees frames after the evaluation's test transform (AVA: short side 256), so each frame is shrunk
  once, when decoded, with that transform (:class:`~.predictor.FrameTransform`; the same clip and boxes
  bit for bit) and only the small copy is kept, back to ``k + o - tau*T/2`` for the earliest keyframe not
  yet classified. A random test transform cannot be applied frame by frame: then full frames are kept
  for the clips, as they are transformed clip by clip;
* **rendering** (:class:`~.renderer.FrameRenderer`, :mod:`.render_source`): a frame is drawn and encoded
  as soon as the labels of the keyframe it follows are known (labels are held from one keyframe to the
  next); they arrive once the keyframe's clip is complete (frame ``k + o + tau*(T/2 - 1)``) and its batch
  of ``batch_size`` keyframes has been classified. The full-resolution RGB frames waiting for them may
  hold :data:`RENDER_BACKLOG_BYTES`: past it the batch runs with fewer keyframes (results do not change).
  Where even one keyframe's wait would pass it (4K), nothing is kept: a second reader decodes the file
  again, one frame behind the renderer.

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
from typing import Dict, Optional, Union

import numpy as np

from ..constants import AVA_START_SEC
from .arguments import check_demo_arguments
from .clip_buffer import ClipFrameBuffer
from .display_window import ShowingWriter, open_window
from .input_spec import parse_input
from .keyframe_batches import KeyframeBatcher, KeyframeFinder, PendingKeyframe
from .keyframes import KeyframeSchedule
from .live_source import (
    DEFAULT_MAX_LATENCY,
    DEFAULT_STREAM_TIMEOUT,
    LiveStreamReader,
    SkipDroppedKeyframes,
    open_video_input,
)
from .outputs import DetectionWriter, KeyframeDetections, OutputFiles
from .person_boxes import CsvBoxSource, DetectorBoxSource, PersonBoxSource, box_source_from_file
from .predictor import MODEL_FPS, ActionPredictor
from .render_source import RenderSource, open_render_source
from .renderer import FrameRenderer, top_labels
from .tracking import PersonTracker
from .video_stream import VideoStreamError, VideoStreamReader, VideoStreamWriter
from .visualizer import ActionVisualizer

__all__ = ["VideoTooShortError", "run_demo"]

logger = logging.getLogger(__name__)

#: Frames waiting for their keyframe's labels may hold this many bytes: a batch of fewer than
#: ``batch_size`` keyframes is run as soon as they would hold more, and videos whose frames would pass
#: it with a single keyframe's backlog (4K) are decoded a second time for rendering instead.
RENDER_BACKLOG_BYTES = 256 * 2**20

#: AVA's videos are 15-minute crops starting at this second of the movie.
AVA_CROP_START_SEC = AVA_START_SEC  # AVA's 15-minute crops start at this second of the movie


class VideoTooShortError(VideoStreamError):
    """The video has fewer frames than one clip spans."""


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
    track: bool = True,
    track_iou: float = 0.3,
    smooth_window: int = 1,
    preview: bool = True,
    progress: bool = True,
    max_seconds: Optional[float] = None,
    show: bool = False,
    max_latency: float = DEFAULT_MAX_LATENCY,
    stream_timeout: float = DEFAULT_STREAM_TIMEOUT,
    stream_options: Optional[Dict[str, str]] = None,
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
        persons: a :class:`PersonBoxSource`, a path to an AVA-format box CSV or to this demo's own
            ``<name>_actions.json`` (:class:`~.person_boxes.DemoJsonBoxSource`), or a person detector
            callable ``frame_rgb -> (boxes xyxy abs, scores)``.
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
        track: link people across keyframes (:class:`~.tracking.PersonTracker`): ``#<id>`` on the video,
            ``"track_id"`` in the JSON and ``<name>_tracks.csv`` (docs/tracking.md).
        track_iou: a box continues a track when it overlaps the track's last box by this IoU, in (0, 1].
        smooth_window: with ``track``, each person's action scores (drawn and written) are the mean over
            their track's last ``smooth_window`` keyframes; 1 keeps the evaluation's scores.
        preview: also write ``<name>_preview.png``, the first rendered frame with people in it.
        progress: show a tqdm progress bar with ETA.
        max_seconds: stop after this many seconds of input (files and live sources); the outputs end
            there, clips at the end clamped as at a video's end.
        show: also show the rendered frames in a window when one can be opened (else a warning).
        max_latency, stream_timeout, stream_options: for a camera or URL ``video`` (see
            :mod:`.live_source`): seconds of frames queued before the oldest is dropped, seconds without
            data before giving up, FFmpeg input options.

    ``video`` may also be a camera index or a stream URL (:mod:`.input_spec`, docs/live_input.md).

    Returns:
        A summary dict: paths, frame/keyframe/box counts, time axis, timings, skips.

    Raises:
        DemoArgumentError: a setting out of range (a ``ValueError``), before anything is opened.
        VideoStreamError: missing/unreadable file or no decodable frame (names the file; an ``OSError``).
        VideoTooShortError: fewer frames than one clip.
        BoxFileError: malformed box CSV row or off-grid timestamp (names file and line).
        OutputDirError / VideoWriteError: the output folder or the output video cannot be written.
        DemoModelError: the model returned non-finite scores.
        On any error (and on Ctrl-C) the partial outputs are removed and earlier results are untouched;
        for a camera or stream the first Ctrl-C / SIGTERM instead ends the input there and the outputs are
        finished (``stopped_by``), a second one aborts.
    """
    t_start = time.perf_counter()
    if model_fps is None:
        model_fps = getattr(predictor, "model_fps", MODEL_FPS)
    check_demo_arguments(
        keyframe_interval=keyframe_interval,
        time_offset=time_offset,
        top_k=top_k,
        score_threshold=score_threshold,
        draw_threshold=draw_threshold,
        batch_size=batch_size,
        person_score_threshold=person_score_threshold,
        render_min_short_side=render_min_short_side,
        model_fps=model_fps,
        track=track,
        track_iou=track_iou,
        smooth_window=smooth_window,
        boxes_format=boxes_format,
        output_dir=output_dir,
        max_seconds=max_seconds,
        max_latency=max_latency,
        stream_timeout=stream_timeout,
    )
    spec = parse_input(video)
    name = spec.name
    video_id = video_id or name
    if isinstance(persons, (str, os.PathLike)):  # an AVA box CSV, or the demo's own <name>_actions.json
        persons = box_source_from_file(
            str(persons), video_id, score_threshold=person_score_threshold, box_format=boxes_format
        )
    elif not isinstance(persons, PersonBoxSource):
        persons = DetectorBoxSource(persons, score_threshold=person_score_threshold)
    reader = open_video_input(spec, max_latency=max_latency, timeout=stream_timeout, options=stream_options)
    live = isinstance(reader, LiveStreamReader)
    state = None
    outputs = None
    bar = None
    num_frames = 0
    try:
        if time_offset is None:
            time_offset = _auto_time_offset(persons)
        schedule = KeyframeSchedule(
            fps=reader.fps,
            interval=keyframe_interval,
            num_frames=predictor.num_frames,
            stride=predictor.sampling_rate,
            time_offset=time_offset,
            offset=predictor.clip_offset,
            model_fps=model_fps,
        )
        if isinstance(persons, CsvBoxSource):
            persons.bind(schedule)
        if schedule.resampled:
            logger.info(
                "%s runs at %.3f fps, the model was trained at %g fps: each clip takes the video frames "
                "nearest to its %d frames every %d/%g s (%.2f s, as in training)",
                spec.shown,
                reader.fps,
                model_fps,
                schedule.num_frames,
                schedule.stride,
                model_fps,
                schedule.clip_seconds,
            )
        outputs = OutputFiles(
            output_dir,
            name,
            {
                "video": "actions.mp4",
                "csv": "actions.csv",
                "json": "actions.json",
                "preview": "preview.png",
                "tracks": "tracks.csv",
            },
        )
        visualizer = ActionVisualizer(render_min_short_side)
        out_h, out_w = visualizer.output_size(reader.height, reader.width)
        meta = {
            "fps": reader.fps,
            "width": reader.width,
            "height": reader.height,
            "rotation": reader.rotation,
            "time_axis": "presentation timestamps on a constant-rate grid at fps",
            "keyframe_interval": schedule.interval,
            "time_offset": time_offset,
            "num_frames_per_clip": schedule.num_frames,
            "sampling_rate": schedule.stride,
            "clip_offset": schedule.offset,
            "model_fps": schedule.model_fps,
            "clip_seconds": round(schedule.clip_seconds, 6),
            "clips_resampled": schedule.resampled,
        }
        tracker = PersonTracker(track_iou, smooth_window=smooth_window) if track else None
        meta["tracking"] = (
            None
            if tracker is None
            else {
                "iou_threshold": tracker.iou_threshold,
                "max_missed": tracker.max_missed,
                "smooth_window": tracker.smooth_window,
            }
        )
        if live:  # keyframes among dropped frames have no picture of their own (live_source.py)
            persons = SkipDroppedKeyframes(persons, reader)
        state = _DemoStream(
            schedule,
            predictor,
            persons,
            visualizer,
            outputs.tmp,
            video_id,
            batch_size,
            top_k,
            score_threshold,
            max(score_threshold, draw_threshold),
            preview,
            meta,
            reader,
            RENDER_BACKLOG_BYTES,
            tracker,
        )
        # The encoder is opened before decoding, so a size it refuses fails before any model work.
        state.renderer.video_writer = VideoStreamWriter(outputs.tmp["video"], reader.rate, out_w, out_h)
        window = open_window(f"vmae_det demo: {spec.shown}") if show else None
        if window is not None:
            state.renderer.video_writer = ShowingWriter(state.renderer.video_writer, window)
        max_frames = None if max_seconds is None else max(1, int(-(-float(max_seconds) * reader.fps // 1)))
        stopped_by = None
        if progress:
            from tqdm import tqdm

            total = reader.estimated_num_frames
            if max_frames is not None:
                total = min(total, max_frames) if total else max_frames
            bar = tqdm(total=total, unit="frame", desc=name, dynamic_ncols=True)
        for idx, frame in reader:
            num_frames = idx + 1
            state.push(idx, frame)
            if bar is not None:
                bar.update(1)
            if max_frames is not None and num_frames >= max_frames:
                stopped_by = "max_seconds"
                break
            if window is not None and window.closed_by_user:
                stopped_by = "window"
                break
        reader.close()  # stop decoding (a live source's thread) before finishing
        stopped_by = stopped_by or getattr(reader, "stop_reason", None)
        if num_frames < schedule.span:
            at_video_fps = f" = {schedule.span} at {reader.fps:.3f} fps" if schedule.resampled else ""
            raise VideoTooShortError(
                spec.shown,
                f"{num_frames} frames, shorter than one clip ({schedule.span} frames = "
                f"{predictor.num_frames} x {predictor.sampling_rate} at {model_fps:g} fps"
                f"{at_video_fps})",
            )
        state.finish(num_frames)
        num_keyframes = state.finder.num_found
        skips = persons.finish(num_keyframes)
        stats = reader.stats
        elapsed = time.perf_counter() - t_start
        produced = ["video", "csv", "json"] + (["preview"] if state.renderer.preview_written else [])
        produced += ["tracks"] if track else []
        summary = {
            "video": spec.shown,
            "video_id": video_id,
            "outputs": {k: outputs.final[k] for k in produced},
            "num_frames": num_frames,
            "fps": reader.fps,
            "duration_seconds": round(num_frames / reader.fps, 3),
            "decoded_frames": int(stats["decoded"]),
            "repeated_frames": int(stats["repeated"]),
            "dropped_frames": int(stats["dropped"]),
            "corrupt_packets_skipped": int(stats["corrupt_packets_skipped"]),
            "damaged_tail_seconds": stats["damaged_tail_seconds"],
            "rotation": reader.rotation,
            "num_keyframes": num_keyframes,
            "num_boxes": state.num_boxes,
            "num_csv_rows": state.writer.num_rows,
            "num_tracks": tracker.num_tracks if tracker is not None else None,
            "max_frames_in_memory": state.max_alive,
            "max_model_frames_in_memory": state.max_model_frames,
            "render_source": state.source.name,
            "early_batches": state.batcher.num_early_batches,
            "seconds": round(elapsed, 3),
            "frames_per_second": round(num_frames / elapsed, 2) if elapsed > 0 else None,
            "video_codec": state.renderer.video_writer.codec,
            "partial_outputs_removed": outputs.removed_stale,
            **skips,
            "input_kind": spec.kind,
            "max_seconds": max_seconds,
            "stopped_by": stopped_by,
            **(reader.summary() if live else {}),
        }
        if stats["repeated"] or stats["dropped"]:
            logger.info(
                "%s: %d decoded frames on %d grid frames at %.3f fps (%d repeated, %d dropped): "
                "timestamps are not evenly spaced",
                spec.shown,
                stats["decoded"],
                num_frames,
                reader.fps,
                stats["repeated"],
                stats["dropped"],
            )
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
        logger.info(
            "%s: timestamps start at %g s >= %d s: taking frame 0 as second %d (AVA crop); "
            "pass time_offset to override",
            persons.path,
            persons.min_timestamp,
            AVA_CROP_START_SEC,
            AVA_CROP_START_SEC,
        )
        return float(AVA_CROP_START_SEC)
    return 0.0


class _DemoStream:
    """One run's moving parts, wired together; each decoded frame goes through :meth:`push`.

    * :class:`~.clip_buffer.ClipFrameBuffer`: frames in the model's input size, back to the first frame
      the oldest unclassified keyframe's clip reads;
    * :class:`~.keyframe_batches.KeyframeFinder` -> :class:`~.keyframe_batches.KeyframeBatcher`: people on
      each keyframe as it is decoded, then its clip, then a batched model call;
    * :meth:`_scored`: each keyframe's detections go to the CSV/JSON writer and its labels to the renderer;
    * :class:`~.renderer.FrameRenderer`: draws and encodes frames once their labels are known, from a
      :mod:`.render_source` picked on the first frame (frames held, or a second decoding pass at 4K).

    Also tracks the most frames held at once (``max_alive``, ``max_model_frames``) for the summary.
    """

    def __init__(
        self,
        schedule: KeyframeSchedule,
        predictor: ActionPredictor,
        persons: PersonBoxSource,
        visualizer: ActionVisualizer,
        paths: Dict[str, str],
        video_id: str,
        batch_size: int,
        top_k: int,
        score_threshold: float,
        draw_threshold: float,
        preview: bool,
        meta: Dict,
        reader: VideoStreamReader,
        backlog_budget: int,
        tracker: Optional[PersonTracker] = None,
    ) -> None:
        self.schedule = schedule
        self.predictor = predictor
        self.video_path = reader.path
        self.replayable = not isinstance(reader, LiveStreamReader)  # a camera or stream cannot be decoded twice
        self.frame_size = (reader.height, reader.width)
        self.top_k = int(top_k)
        self.draw_threshold = float(draw_threshold)
        self.backlog_budget = backlog_budget
        self.clips = ClipFrameBuffer(predictor.frame_transform(reader.height, reader.width))
        self.batcher = KeyframeBatcher(schedule, predictor, self.clips, video_id, batch_size, self._scored)
        self.finder = KeyframeFinder(schedule, persons, self.batcher.add)
        self.renderer = FrameRenderer(schedule, visualizer, paths["preview"] if preview else None)
        self.source: Optional[RenderSource] = None  # picked on the first frame
        self.keep_from = 0  # keyframe frame the clip buffer was last trimmed for
        self.num_boxes = 0
        self.max_alive = 0
        self.max_model_frames = 0
        self.tracker = tracker  # keyframes reach _scored in order, as the tracker needs
        self.writer = DetectionWriter(
            paths["csv"],
            paths["json"],
            video_id,
            score_threshold,
            meta,
            tracks_path=paths["tracks"] if tracker is not None else None,
        )

    def push(self, idx: int, frame: np.ndarray) -> None:
        """Take RGB grid frame ``idx``, then do everything it allows."""
        if self.source is None:
            self.source = open_render_source(
                frame, self.schedule, self.video_path, self.backlog_budget, replayable=self.replayable
            )
        self.clips.push(frame)
        self.source.push(frame)
        self.finder.push(idx, frame)
        self.advance(idx)

    def advance(self, last: int, num_frames: Optional[int] = None) -> None:
        """Do everything frames ``<= last`` allow; ``num_frames`` is set once the video has ended."""
        # 1. complete clips join the batch; full batches (or partial ones whose frames weigh too much) run
        self.batcher.advance(last, num_frames, self.source.backlog_bytes > self.backlog_budget)
        # 2. draw every frame whose labels are known
        self._count_alive(last)
        self.renderer.render(last, self.source)
        # 3. forget model-size frames no clip will read
        oldest = self.batcher.oldest_frame(self.finder.next_frame)
        if oldest != self.keep_from:
            self.keep_from = oldest
            self.clips.forget_before(self.schedule.first_needed(oldest))

    def _scored(self, p: PendingKeyframe, scores: np.ndarray) -> None:
        h, w = self.frame_size
        norm = np.array([w, h, w, h], np.float32)
        boxes = np.clip(p.boxes / norm, 0.0, 1.0) if len(p.boxes) else np.zeros((0, 4), np.float32)
        track_ids = None
        if self.tracker is not None:
            track_ids, smoothed = self.tracker.update(p.boxes, scores)
            if self.tracker.smooth_window > 1:  # window 1: the model's scores themselves
                scores = smoothed
        self.writer.write(
            KeyframeDetections(p.j, p.frame, self.schedule.time_of(p.j), boxes, p.box_scores, scores, track_ids)
        )
        self.num_boxes += len(p.boxes)
        self.renderer.add_labels(
            p.j, top_labels(p.boxes, scores, self.predictor.class_names, self.top_k, self.draw_threshold, track_ids)
        )

    def _count_alive(self, last: int) -> None:
        """Track the most full-resolution frames (and model-size copies) held at once."""
        if self.clips.transform is None:  # the clip buffer holds full frames too (the same arrays)
            alive = last + 1 - min(self.clips.base, self.renderer.next_frame)
        else:
            alive = self.source.num_alive
            self.max_model_frames = max(self.max_model_frames, len(self.clips))
        self.max_alive = max(self.max_alive, alive)

    def finish(self, num_frames: int) -> None:
        """The video has ended after ``num_frames`` grid frames: classify and draw the rest, close the video."""
        self.advance(num_frames - 1, num_frames=num_frames)
        self.renderer.finish(num_frames)
        self._release()

    def abort(self) -> None:
        """Close the (temporary) output files after an error without finishing them; never raises."""
        self.renderer.abort()
        self.writer.abort()
        self._release()

    def _release(self) -> None:
        self.clips.clear()
        if self.source is not None:
            self.source.close()
