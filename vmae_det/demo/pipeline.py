"""The demo's per-frame pipeline: decode -> detect people -> classify actions -> render, in bounded memory.

Each decoded frame is used at once and kept only in the form, and for as long as, something needs it
(measurements: docs/performance.md, "Demo"):

* **people** (:class:`~.keyframe_batches.KeyframeFinder`): found on a keyframe's full frame when it is decoded;
* **clips** (:class:`~.clip_buffer.ClipFrameBuffer`, :class:`~.keyframe_batches.KeyframeBatcher`): each frame
  is shrunk once, when decoded, by the evaluation's test transform (:class:`~.predictor.FrameTransform`: the
  same clips and boxes bit for bit) and only the small copy is kept, back to the first frame the oldest
  unclassified keyframe's clip reads. A random test transform cannot be applied frame by frame: full frames
  are then kept and transformed clip by clip;
* **rendering** (:class:`~.renderer.FrameRenderer`, :mod:`.render_source`): a frame is drawn and encoded once
  the labels of the keyframe it follows are known (its clip complete and its batch of ``batch_size``
  keyframes classified). The full RGB frames waiting for them may hold :data:`RENDER_BACKLOG_BYTES`: past
  it the batch runs with fewer keyframes (same results). Where one keyframe's wait would pass it (4K),
  nothing is kept: a second reader decodes the file again, one frame behind the renderer.

So about ``tau*T`` small copies and ``tau*T/2 + batch_size*interval`` full frames are alive at once, whatever
the video's length. Outputs are streamed under temporary names and renamed into place at the end
(:class:`~.outputs.OutputFiles`).
"""

from __future__ import annotations

from typing import Dict, Optional

import numpy as np

from .clip_buffer import ClipFrameBuffer
from .keyframe_batches import KeyframeBatcher, KeyframeFinder, PendingKeyframe
from .keyframes import KeyframeSchedule
from .live_source import LiveStreamReader
from .outputs import DetectionWriter, KeyframeDetections
from .person_boxes import PersonBoxSource
from .predictor import ActionPredictor
from .render_source import RenderSource, open_render_source
from .renderer import FrameRenderer, top_labels
from .settings import DemoSettings
from .tracking import PersonTracker
from .video_stream import VideoStreamReader
from .visualizer import ActionVisualizer

__all__ = ["FramePipeline", "RENDER_BACKLOG_BYTES"]

#: Frames waiting for their keyframe's labels may hold this many bytes: past it a batch of fewer than
#: ``batch_size`` keyframes is run; a video whose single keyframe's backlog passes it (4K) is decoded twice.
RENDER_BACKLOG_BYTES = 256 * 2**20


class FramePipeline:
    """One run's moving parts, wired together; each decoded frame goes through :meth:`push`.

    * :class:`~.clip_buffer.ClipFrameBuffer`: frames in the model's input size, back to the first frame
      the oldest unclassified keyframe's clip reads;
    * :class:`~.keyframe_batches.KeyframeFinder` -> :class:`~.keyframe_batches.KeyframeBatcher`: people on
      each keyframe as it is decoded, then its clip, then a batched model call;
    * :meth:`_scored`: each keyframe's detections go to the CSV/JSON writer and its labels to the renderer;
    * :class:`~.renderer.FrameRenderer`: draws and encodes frames once their labels are known, from a
      :mod:`.render_source` picked on the first frame (frames held, or a second decoding pass at 4K).

    Also tracks the most frames held at once (``max_alive``, ``max_model_frames``) for the summary.

    Args:
        settings: the run's settings (batch size, thresholds, drawing, tracking, preview).
        schedule: keyframes and clip geometry of this video.
        predictor: the action detector; persons: where each keyframe's people come from.
        reader: the input (its size, and whether it can be decoded a second time).
        paths: the temporary output files (:attr:`~.outputs.OutputFiles.tmp`).
        video_id: first column of the CSVs.
    """

    def __init__(
        self,
        settings: DemoSettings,
        schedule: KeyframeSchedule,
        predictor: ActionPredictor,
        persons: PersonBoxSource,
        reader: VideoStreamReader,
        paths: Dict[str, str],
        video_id: str,
    ) -> None:
        self.schedule = schedule
        self.predictor = predictor
        self.persons = persons
        self.video_path = reader.path
        self.replayable = not isinstance(reader, LiveStreamReader)  # a camera or stream cannot be decoded twice
        self.frame_size = (reader.height, reader.width)
        # a single-label (softmax) model: one label per person, with the track id that makes it a tube
        self.top_k = 1 if getattr(predictor, "single_label", False) else int(settings.top_k)
        self.draw_threshold = float(max(settings.score_threshold, settings.draw_threshold))
        self.backlog_budget = RENDER_BACKLOG_BYTES
        self.clips = ClipFrameBuffer(predictor.frame_transform(reader.height, reader.width))
        self.batcher = KeyframeBatcher(schedule, predictor, self.clips, video_id, settings.batch_size, self._scored)
        self.finder = KeyframeFinder(schedule, persons, self.batcher.add)
        visualizer = ActionVisualizer(settings.render_min_short_side)
        self.renderer = FrameRenderer(schedule, visualizer, paths["preview"] if settings.preview else None)
        self.window = None  # the --show window, if one opened
        self.source: Optional[RenderSource] = None  # picked on the first frame
        self.keep_from = 0  # keyframe frame the clip buffer was last trimmed for
        self.num_boxes = 0
        self.max_alive = 0
        self.max_model_frames = 0
        # keyframes reach _scored in order, as the tracker needs
        self.tracker = (
            PersonTracker(settings.track_iou, smooth_window=settings.smooth_window) if settings.track else None
        )
        self.writer = DetectionWriter(
            paths["csv"],
            paths["json"],
            video_id,
            settings.score_threshold,
            _metadata(reader, schedule, self.tracker),
            tracks_path=paths["tracks"] if self.tracker is not None else None,
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


def _metadata(reader, schedule: KeyframeSchedule, tracker: Optional[PersonTracker]) -> Dict:
    """The time axis and clip geometry written at the top of the JSON."""
    return {
        "fps": reader.fps,
        "width": reader.width,
        "height": reader.height,
        "rotation": reader.rotation,
        "time_axis": "presentation timestamps on a constant-rate grid at fps",
        "keyframe_interval": schedule.interval,
        "time_offset": schedule.time_offset,
        "num_frames_per_clip": schedule.num_frames,
        "sampling_rate": schedule.stride,
        "clip_offset": schedule.offset,
        "model_fps": schedule.model_fps,
        "clip_seconds": round(schedule.clip_seconds, 6),
        "clips_resampled": schedule.resampled,
        "tracking": None
        if tracker is None
        else {
            "iou_threshold": tracker.iou_threshold,
            "max_missed": tracker.max_missed,
            "smooth_window": tracker.smooth_window,
        },
    }
