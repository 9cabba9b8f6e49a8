"""Detect and render person actions on any video (streaming, bounded memory).

    python tools/demo.py --config-file configs/ava/tiny.py --checkpoint output/quickstart/ava/model_final.pth \
        --input VIDEO --output DIR [--person-detector torchvision|detectron2|hog|csv] \
        [--person-weights PATH] [--boxes CSV] [--keyframe-interval N] [--top-k 3] \
        [--score-threshold 0.0] [--batch-size 4] [--device cpu|cuda] [key=value ...]

Writes DIR/<name>_actions.mp4 (H.264), <name>_actions.csv (AVA detection format),
<name>_actions.json and <name>_preview.png, all at once when the run succeeds (earlier results in DIR
are replaced only then). Trailing key=value pairs override config entries (strict: unknown keys are an
error). Clips are sampled and transformed by the config's test mapper settings, so the scores are the
evaluation's on the same keyframe and boxes. Time is the video's presentation time. See docs/demo.md.
Bad input ends in "error: <message>" and exit code 2 (no traceback); Ctrl-C in exit code 130.
--input may also be a camera index or a stream URL (docs/live_input.md): then Ctrl-C ends the input and
the outputs are finished up to there (exit 0; a second Ctrl-C aborts).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys

import vmae_det  # noqa: F401  (detectron2 shims first)
from vmae_det.cli import run_main
from vmae_det.demo.settings import BOX_FORMATS, DemoSettings


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--config-file",
        required=True,
        help="action-detector LazyConfig (.py); clip sampling and test transforms come from its "
        "dataloader.test.mapper, as in the evaluation",
    )
    p.add_argument(
        "--checkpoint",
        required=True,
        help="action-detector weights (.pth): this model's training output or a VMAD AVA checkpoint; "
        "a file on the Hugging Face Hub as hf://ORG/NAME/FILE (docs/weights.md)",
    )
    p.add_argument(
        "--input",
        required=True,
        dest="video",
        metavar="INPUT",
        help="video file, camera index (0: /dev/video0 on Linux, avfoundation on macOS), device "
        "(v4l2:/dev/video2, dshow:video=NAME) or stream URL (rtsp://, http://, udp://, tcp://, "
        "srt:// ...); see docs/live_input.md",
    )
    p.add_argument(
        "--max-seconds",
        type=float,
        default=DemoSettings.max_seconds,
        help="stop after this many seconds of input (file or stream); the outputs end there",
    )
    p.add_argument(
        "--show",
        action="store_true",
        help="also show the rendered frames in a window (q/Esc stops); without a display: a warning, file output only",
    )
    p.add_argument(
        "--max-latency",
        type=float,
        default=DemoSettings.max_latency,
        help="camera/stream: seconds of frames queued before the oldest is dropped when the demo falls behind",
    )
    p.add_argument(
        "--stream-timeout",
        type=float,
        default=DemoSettings.stream_timeout,
        help="camera/stream: seconds without data after which opening or reading gives up",
    )
    p.add_argument(
        "--stream-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="FFmpeg input option for a camera/stream, repeatable (rtsp_transport=udp, "
        "video_size=1280x720, framerate=30 ...)",
    )
    p.add_argument("--output", required=True, dest="output_dir", metavar="OUTPUT", help="output directory")
    p.add_argument(
        "--person-detector",
        choices=("torchvision", "detectron2", "hog", "csv"),
        default=None,
        help="person boxes: a COCO Faster R-CNN, OpenCV's HOG pedestrian detector (offline, "
        "docs/person_detectors.md), or a CSV (--boxes). Default: csv when --boxes "
        "is given, else torchvision",
    )
    p.add_argument(
        "--person-weights",
        default=None,
        help="local weights for the person detector (default: download and cache if possible)",
    )
    p.add_argument(
        "--person-score-threshold",
        type=float,
        default=DemoSettings.person_score_threshold,
        help="drop person boxes scoring below this, from the detector or the box CSV (GT rows score 1)",
    )
    p.add_argument(
        "--boxes",
        default=None,
        help="person boxes: an AVA-format box CSV, detections video_id,timestamp,"
        "x1,y1,x2,y2[,action,score] or ground truth ...,action_id,person_id; or an earlier run's "
        "<name>_actions.json (its people with their person scores; its _actions.csv holds action scores "
        "and is refused)",
    )
    p.add_argument(
        "--boxes-format",
        choices=BOX_FORMATS,
        default=DemoSettings.boxes_format,
        help="how --boxes' 8th column is read: auto (ground truth when every row has integer action "
        "and person ids in columns 7-8, else detections), gt (person id) or detections (score)",
    )
    p.add_argument(
        "--video-id", default=DemoSettings.video_id, help="video id in the box CSV and output CSV (default: file stem)"
    )
    p.add_argument(
        "--keyframe-interval",
        type=float,
        default=DemoSettings.keyframe_interval,
        help="frames between keyframes, at the video's nominal fps (default: that fps, once a second)",
    )
    p.add_argument(
        "--model-fps",
        type=float,
        default=DemoSettings.model_fps,
        help="frame rate the model was trained at (default: the checkpoint's, 25 for VMAD's AVA "
        "checkpoints, else 30, AVA's): clips of videos at other rates are resampled to it so a "
        "clip spans the training time",
    )
    p.add_argument(
        "--time-offset",
        type=float,
        default=DemoSettings.time_offset,
        help="time of frame 0 in seconds (default: 900 for box CSVs with AVA timestamps >= 900, else 0)",
    )
    p.add_argument("--top-k", type=int, default=DemoSettings.top_k, help="labels drawn per person")
    p.add_argument(
        "--score-threshold",
        type=float,
        default=DemoSettings.score_threshold,
        help="drop (person, action) scores below this from the files and the drawing",
    )
    p.add_argument(
        "--draw-threshold", type=float, default=DemoSettings.draw_threshold, help="also hide drawn labels below this"
    )
    p.add_argument("--batch-size", type=int, default=DemoSettings.batch_size, help="keyframes per model call")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda when available)")
    p.add_argument(
        "--labelmap",
        default=None,
        help="AVA label map .pbtxt for action names (default: --dataset's, else the names the checkpoint "
        "was trained with, else the config's test set's)",
    )
    p.add_argument("--dataset", default=None, help="registered dataset whose metadata names the actions")
    p.add_argument(
        "--no-track",
        action="store_false",
        dest="track",
        help="do not link people across keyframes: no track ids, no <name>_tracks.csv (docs/tracking.md)",
    )
    p.add_argument(
        "--track-iou",
        type=float,
        default=DemoSettings.track_iou,
        help="a person's box continues a track when it overlaps the track's last box by this IoU",
    )
    p.add_argument(
        "--smooth-window",
        type=int,
        default=DemoSettings.smooth_window,
        help="average each person's action scores over their track's last N keyframes (1: the "
        "evaluation's scores, unchanged; the CSV/JSON carry the averaged scores)",
    )
    p.add_argument(
        "--render-min-short-side",
        type=int,
        default=DemoSettings.render_min_short_side,
        help="upscale smaller videos to this short side so labels are legible (0: never)",
    )
    p.add_argument("--no-progress", action="store_false", dest="progress", help="no progress bar")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides key=value")
    return p


def settings_from_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> DemoSettings:
    """The run's :class:`DemoSettings` from the flags of the same names (checked: ``DemoArgumentError``)."""
    stream_options = {}
    for item in args.stream_option:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"--stream-option wants KEY=VALUE, got {item!r}")
        stream_options[key] = value
    names = {f.name for f in dataclasses.fields(DemoSettings)} & set(vars(args))
    return DemoSettings(**{name: getattr(args, name) for name in names}, stream_options=stream_options)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    kind = args.person_detector or ("csv" if args.boxes else "torchvision")
    if kind == "csv" and not args.boxes:
        parser.error("--person-detector csv needs --boxes CSV")
    if kind != "csv" and args.boxes:
        parser.error(f"--boxes is only used with --person-detector csv (got {kind})")
    # Everything that can be checked without the model, before loading it.
    settings = settings_from_args(args, parser)
    from vmae_det.demo.input_spec import parse_input

    spec = parse_input(settings.video)
    from vmae_det.checkpoints.files import refuse_checkpoint_folder
    from vmae_det.checkpoints.hub import resolve_weights

    # Everything that can be wrong with the inputs, config or checkpoint is reported before any download.
    args.checkpoint = resolve_weights(args.checkpoint)
    refuse_checkpoint_folder(args.checkpoint, "--checkpoint")
    for flag, path in (
        ("--input", None if spec.live else settings.video),
        ("--config-file", args.config_file),
        ("--checkpoint", args.checkpoint),
        ("--boxes", args.boxes),
        ("--labelmap", args.labelmap),
        ("--person-weights", args.person_weights),
    ):
        if path is not None and not os.path.isfile(path):
            why = "is not a file" if os.path.exists(path) else "does not exist"
            raise FileNotFoundError(f"{flag} '{path}' {why}")
    from vmae_det.demo.live_source import check_video_input

    check_video_input(spec)  # a file's video stream, a camera's device (a URL is checked when opened)

    from vmae_det.demo import ActionPredictor, build_person_detector, run_demo

    predictor = ActionPredictor.from_config(
        args.config_file,
        args.checkpoint,
        opts=args.opts,
        device=args.device,
        labelmap=args.labelmap,
        dataset=args.dataset,
        model_fps=settings.model_fps,
    )
    if kind == "csv":
        persons = args.boxes
    else:
        persons = build_person_detector(
            kind, weights=args.person_weights, device=args.device, score_threshold=settings.person_score_threshold
        )
    summary = run_demo(settings, predictor, persons)
    print(json.dumps(summary, indent=2))
    return 0


def cli(argv=None) -> int:
    """``main`` through ``vmae_det.cli.run_main``."""
    # run_main turns SIGTERM into Ctrl-C's KeyboardInterrupt: run_demo removes its partial outputs.
    return run_main(
        lambda: main(argv), interrupted="no output written; earlier results in the output folder are untouched"
    )


if __name__ == "__main__":
    sys.exit(cli())
