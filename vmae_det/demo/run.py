"""``run_demo``: open the input, find person boxes, push every frame through the :class:`~.pipeline.FramePipeline`,
then finish the outputs (all at once, :class:`~.outputs.OutputFiles`)."""

from __future__ import annotations

import logging
import os
import time
from typing import Dict, Optional, Tuple

from vmae_det.constants import AVA_START_SEC
from vmae_det.formats.video_writer import VideoWriter

from .box_files import CsvBoxSource, box_source_from_file
from .display_window import ShowingWriter, open_window
from .input_spec import InputSpec, parse_input
from .keyframes import KeyframeSchedule
from .live_source import LiveStreamReader, SkipDroppedKeyframes, open_video_input
from .outputs import OutputFiles
from .person_boxes import DetectorBoxSource, PersonBoxSource
from .pipeline import FramePipeline
from .predictor import MODEL_FPS, ActionPredictor
from .settings import DemoSettings
from .video_stream import VideoStreamError

__all__ = ["VideoTooShortError", "run_demo"]

logger = logging.getLogger(__name__)

#: The files of one run: ``<name>_<suffix>``.
OUTPUT_SUFFIXES = {
    "video": "actions.mp4",
    "csv": "actions.csv",
    "json": "actions.json",
    "preview": "preview.png",
    "tracks": "tracks.csv",
}


class VideoTooShortError(VideoStreamError):
    """The video has fewer frames than one clip spans."""


def run_demo(settings: DemoSettings, predictor: ActionPredictor, persons) -> Dict:
    """Detect and render actions on ``settings.video``; write ``<name>_actions.{mp4,csv,json}`` and a preview.

    Time is the video's presentation time (:mod:`.video_stream`): keyframe second ``s`` is what a player
    shows at ``s``, also for variable-rate or sparse files.

    Args:
        settings: the run's :class:`~.settings.DemoSettings` (checked when built).
        predictor: the action detector (:class:`ActionPredictor`).
        persons: a :class:`PersonBoxSource`, the path of an AVA-format box CSV or of this demo's own
            ``<name>_actions.json``, or a person detector ``frame_rgb -> (boxes xyxy abs, scores)``.

    Returns:
        A summary dict: paths, frame/keyframe/box counts, time axis, timings, skips.

    Raises:
        VideoStreamError: unreadable input (names it; an ``OSError``); :class:`VideoTooShortError`: fewer
            frames than one clip.
        BoxFileError: malformed box CSV row or off-grid timestamp (names file and line).
        OutputDirError / VideoWriteError: the output folder or video cannot be written.
        DemoModelError: the model returned non-finite scores.
        On any error (and on Ctrl-C) the partial outputs are removed and earlier results are untouched; for a
        camera or stream the first Ctrl-C / SIGTERM ends the input and the outputs are finished (``stopped_by``).
    """
    t_start = time.perf_counter()
    spec = parse_input(settings.video)
    video_id = settings.video_id or spec.name
    persons = _person_box_source(persons, video_id, settings)
    reader = open_video_input(
        spec, max_latency=settings.max_latency, timeout=settings.stream_timeout, options=settings.stream_options
    )
    pipeline = outputs = bar = None
    try:
        schedule = _keyframe_schedule(settings, predictor, reader, persons, spec)
        outputs = OutputFiles(settings.output_dir, spec.name, OUTPUT_SUFFIXES)
        if isinstance(reader, LiveStreamReader):  # keyframes among dropped frames have no picture of their own
            persons = SkipDroppedKeyframes(persons, reader)
        pipeline = FramePipeline(settings, schedule, predictor, persons, reader, outputs.tmp, video_id)
        _open_video_output(pipeline, settings, reader, outputs.tmp["video"], spec)
        max_frames = None if settings.max_seconds is None else _frames_in(settings.max_seconds, reader.fps)
        bar = _progress_bar(reader, max_frames, spec.name) if settings.progress else None
        num_frames, stopped_by = _read_frames(reader, pipeline, max_frames, bar)
        _check_long_enough(num_frames, schedule, spec, reader)
        pipeline.finish(num_frames)
        summary = _summary(settings, pipeline, reader, spec, outputs, video_id, num_frames, stopped_by, t_start)
        pipeline.writer.close(summary)
        outputs.commit(_produced(pipeline, settings))
    except BaseException:
        if pipeline is not None:
            pipeline.abort()
        if outputs is not None:
            outputs.discard()
        raise
    finally:
        if bar is not None:
            bar.close()
        reader.close()
    logger.info("demo done: %s", summary)
    return summary


def _person_box_source(persons, video_id: str, settings: DemoSettings) -> PersonBoxSource:
    """``persons`` as a :class:`PersonBoxSource`: a box file is read, a detector callable wrapped."""
    if isinstance(persons, (str, os.PathLike)):  # an AVA box CSV, or the demo's own <name>_actions.json
        return box_source_from_file(
            str(persons), video_id, score_threshold=settings.person_score_threshold, box_format=settings.boxes_format
        )
    if isinstance(persons, PersonBoxSource):
        return persons
    return DetectorBoxSource(persons, score_threshold=settings.person_score_threshold)


def _keyframe_schedule(settings, predictor, reader, persons, spec: InputSpec) -> KeyframeSchedule:
    """The keyframe grid and clip geometry for this video; a box CSV is bound to it."""
    model_fps = getattr(predictor, "model_fps", MODEL_FPS) if settings.model_fps is None else settings.model_fps
    schedule = KeyframeSchedule(
        fps=reader.fps,
        interval=settings.keyframe_interval,
        num_frames=predictor.num_frames,
        stride=predictor.sampling_rate,
        time_offset=_auto_time_offset(persons) if settings.time_offset is None else settings.time_offset,
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
    return schedule


def _auto_time_offset(persons: PersonBoxSource) -> float:
    if isinstance(persons, CsvBoxSource) and (persons.min_timestamp or 0.0) >= AVA_START_SEC:
        logger.info(
            "%s: timestamps start at %g s >= %d s: taking frame 0 as second %d (AVA crop); "
            "pass time_offset to override",
            persons.path,
            persons.min_timestamp,
            AVA_START_SEC,
            AVA_START_SEC,
        )
        return float(AVA_START_SEC)
    return 0.0


def _open_video_output(pipeline: FramePipeline, settings: DemoSettings, reader, path: str, spec: InputSpec) -> None:
    """Open the encoder before decoding, so a frame size it refuses fails before any model work."""
    out_h, out_w = pipeline.renderer.visualizer.output_size(reader.height, reader.width)
    pipeline.renderer.video_writer = VideoWriter(path, reader.rate, out_w, out_h)
    pipeline.window = open_window(f"vmae_det demo: {spec.shown}") if settings.show else None
    if pipeline.window is not None:
        pipeline.renderer.video_writer = ShowingWriter(pipeline.renderer.video_writer, pipeline.window)


def _frames_in(seconds: float, fps: float) -> int:
    """Grid frames in the first ``seconds`` of the input (at least 1)."""
    return max(1, int(-(-float(seconds) * fps // 1)))


def _progress_bar(reader, max_frames: Optional[int], name: str):
    from tqdm import tqdm

    total = reader.estimated_num_frames
    if max_frames is not None:
        total = min(total, max_frames) if total else max_frames
    return tqdm(total=total, unit="frame", desc=name, dynamic_ncols=True)


def _read_frames(reader, pipeline: FramePipeline, max_frames: Optional[int], bar) -> Tuple[int, Optional[str]]:
    """Push every frame through ``pipeline`` until the input ends or is stopped: ``(num_frames, stopped_by)``."""
    num_frames = 0
    stopped_by = None
    for idx, frame in reader:
        num_frames = idx + 1
        pipeline.push(idx, frame)
        if bar is not None:
            bar.update(1)
        if max_frames is not None and num_frames >= max_frames:
            stopped_by = "max_seconds"
            break
        if pipeline.window is not None and pipeline.window.closed_by_user:
            stopped_by = "window"
            break
    reader.close()  # stop decoding (a live source's thread) before finishing
    return num_frames, stopped_by or getattr(reader, "stop_reason", None)


def _check_long_enough(num_frames: int, schedule: KeyframeSchedule, spec: InputSpec, reader) -> None:
    if num_frames < schedule.span:
        at_video_fps = f" = {schedule.span} at {reader.fps:.3f} fps" if schedule.resampled else ""
        raise VideoTooShortError(
            spec.shown,
            f"{num_frames} frames, shorter than one clip ({schedule.span} frames = "
            f"{schedule.num_frames} x {schedule.stride} at {schedule.model_fps:g} fps{at_video_fps})",
        )


def _produced(pipeline: FramePipeline, settings: DemoSettings):
    kinds = ["video", "csv", "json"] + (["preview"] if pipeline.renderer.preview_written else [])
    return kinds + (["tracks"] if settings.track else [])


def _summary(settings, pipeline, reader, spec, outputs, video_id, num_frames, stopped_by, t_start) -> Dict:
    num_keyframes = pipeline.finder.num_found
    skips = pipeline.persons.finish(num_keyframes)
    stats = reader.stats
    elapsed = time.perf_counter() - t_start
    live = isinstance(reader, LiveStreamReader)
    summary = {
        "video": spec.shown,
        "video_id": video_id,
        "outputs": {k: outputs.final[k] for k in _produced(pipeline, settings)},
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
        "num_boxes": pipeline.num_boxes,
        "num_csv_rows": pipeline.writer.num_rows,
        "num_tracks": pipeline.tracker.num_tracks if pipeline.tracker is not None else None,
        "max_frames_in_memory": pipeline.max_alive,
        "max_model_frames_in_memory": pipeline.max_model_frames,
        "render_source": pipeline.source.name,
        "early_batches": pipeline.batcher.num_early_batches,
        "seconds": round(elapsed, 3),
        "frames_per_second": round(num_frames / elapsed, 2) if elapsed > 0 else None,
        "video_codec": pipeline.renderer.video_writer.codec,
        "partial_outputs_removed": outputs.removed_stale,
        **skips,
        "input_kind": spec.kind,
        "max_seconds": settings.max_seconds,
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
    return summary
