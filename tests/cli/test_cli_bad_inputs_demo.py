"""Bad inputs to tools/demo.py: each ends in ``error: <message naming the file/setting>``, exit code 2, no
traceback, and no output files (earlier results in the output folder untouched). See docs/bad_input.md#demo."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_table import BadInput, run_both_ways, run_case
from demo_helpers import CONFIG, make_video

from vmae_det.demo.outputs import DetectionWriter, KeyframeDetections
from vmae_det.modeling.tiny_action_model import TinyActionModel

GOOD = [
    "--config-file",
    "{data}/cfg.py",
    "--checkpoint",
    "{data}/w.pth",
    "--input",
    "{data}/clip.mp4",
    "--output",
    "{tmp}/out",
    "--boxes",
    "{data}/boxes.csv",
    "--device",
    "cpu",
    "--no-progress",
]
PREVIOUS = {
    "clip_actions.csv": "clip,0001,0.1,0.1,0.4,0.9,1,0.5\n",
    "clip_actions.json": "{}\n",
    "clip_actions.mp4": "old video",
    "clip_preview.png": "old preview",
}


def args(**changes) -> list:
    """GOOD with ``--flag value`` pairs replaced or added (``None`` removes the flag)."""
    out = list(GOOD)
    for flag, value in changes.items():
        flag = "--" + flag.replace("_", "-")
        if flag in out:
            i = out.index(flag)
            del out[i : i + 2]
        if value is not None:
            out += [flag, value]
    return out


def previous_results(tmp: Path) -> None:
    (tmp / "out").mkdir()
    for name, text in PREVIOUS.items():
        (tmp / "out" / name).write_text(text)


def a_file(tmp: Path) -> None:
    (tmp / "afile").write_text("not a folder")


def demo(id, argv, expect, rc=2, setup=previous_results):
    return BadInput(id, "demo", argv, expect, rc=rc, setup=setup, timeout=120)


def setting(flag, value, message):
    return demo(f"{flag}={value}", args(**{flag: value}), [f"error: {message}"])


CASES = [
    # ---- settings, refused before the model is loaded
    setting(
        "keyframe_interval",
        "inf",
        "keyframe_interval (--keyframe-interval) must be a finite number of frames >= 1, got inf",
    ),
    setting(
        "keyframe_interval",
        "0.5",
        "keyframe_interval (--keyframe-interval) must be a finite number of frames >= 1, got 0.5",
    ),
    setting("time_offset", "nan", "time_offset (--time-offset) must be a finite number of seconds, got nan"),
    demo("batch=0", args() + ["--batch", "0"], ["error: batch_size (--batch-size) must be an integer >= 1, got 0"]),
    setting("top_k", "-1", "top_k (--top-k) must be an integer >= 0, got -1"),
    setting("score_threshold", "nan", "score_threshold (--score-threshold) must be a number in [0, 1], got nan"),
    setting(
        "person_score_threshold",
        "1.5",
        "person_score_threshold (--person-score-threshold) must be a number in [0, 1], got 1.5",
    ),
    setting("model_fps", "0", "model_fps (--model-fps) must be a finite frame rate > 0, got 0.0"),
    demo(
        "output-is-a-file",
        args(output="{tmp}/afile"),
        ["error: output folder '{tmp}/afile' is an existing file, not a folder"],
        setup=a_file,
    ),
    demo(
        "output-under-a-file",
        args(output="{tmp}/afile/sub"),
        ["error: output folder '{tmp}/afile/sub' cannot be created: '{tmp}/afile' is a file"],
        setup=a_file,
    ),
    demo("input-missing", args(input="{tmp}/nope.mp4"), ["error: --input '{tmp}/nope.mp4' does not exist"]),
    demo(
        "checkpoint-missing", args(checkpoint="{tmp}/nope.pth"), ["error: --checkpoint '{tmp}/nope.pth' does not exist"]
    ),
    demo("boxes-missing", args(boxes="{tmp}/nope.csv"), ["error: --boxes '{tmp}/nope.csv' does not exist"]),
    demo("csv-without-boxes", args(boxes=None, person_detector="csv"), ["--person-detector csv needs --boxes CSV"]),
    demo("boxes-format", args(boxes_format="yaml"), ["argument --boxes-format: invalid choice: 'yaml'"]),
    # ---- files, refused once the model is loaded (still before any output exists)
    demo("garbage-video", args(input="{data}/garbage.mp4"), ["error: cannot decode video '{data}/garbage.mp4'"]),
    demo(
        "too-short-video",
        args(input="{data}/short.mp4"),
        ["error: cannot decode video '{data}/short.mp4': 3 frames, shorter than one clip (8 frames"],
    ),
    demo(
        "boxes-nan-score",
        args(boxes="{data}/nan_score.csv"),
        ["error: {data}/nan_score.csv:2: score must be finite, got 'nan'"],
    ),
    demo(
        "boxes-off-grid",
        args(boxes="{data}/off_grid.csv"),
        ["error: {data}/off_grid.csv:1: timestamp 1.5 is not a keyframe time"],
    ),
    demo("boxes-not-utf8", args(boxes="{data}/latin1.csv"), ["error: {data}/latin1.csv:1: not UTF-8 text"]),
    demo(
        "gt-read-as-detections",
        args(boxes="{data}/gt.csv", boxes_format="detections"),
        ["error: {data}/gt.csv:2: person score 5 is outside [0, 1]", "--boxes-format gt"],
    ),
    demo("nan-weights", args(checkpoint="{data}/nan.pth"), ["error: ", "nan.pth"]),
    # the demo's own CSV fed back: column 8 is an action score, not a person score (its JSON is the way)
    demo(
        "boxes-demo-csv",
        args(boxes="{data}/prev/clip_actions.csv"),
        [
            "error: {data}/prev/clip_actions.csv:1: column 8 holds action scores, not person scores",
            "pass the same run's {data}/prev/clip_actions.json as --boxes",
        ],
    ),
    demo("boxes-demo-json", args(boxes="{data}/prev/clip_actions.json"), ['"num_boxes": 4'], rc=0),
    # ---- not an error: a BOM is read correctly (first row kept); outputs replace the earlier ones
    demo("boxes-with-bom", args(boxes="{data}/bom.csv"), ['"num_boxes": 2', '"csv_rows_other_videos": 0'], rc=0),
]
# Covered through the Python API in tests/demo/test_demo_*.py (each CLI row here costs a process that loads torch):
# inf scores, a whole ground-truth file, a config without the test mapper.


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("demo_cli")
    make_video(d / "clip.mp4", 40, size=(64, 48))
    make_video(d / "short.mp4", 3, size=(64, 48))
    (d / "garbage.mp4").write_bytes(np.random.RandomState(0).bytes(4096))
    (d / "cfg.py").write_text(CONFIG)
    torch.manual_seed(0)
    weights = TinyActionModel(num_classes=3).state_dict()
    torch.save({"model": weights}, d / "w.pth")
    torch.save(
        {"model": {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in weights.items()}},
        d / "nan.pth",
    )
    (d / "boxes.csv").write_text("clip,1,0.1,0.1,0.4,0.9,,0.9\n")
    (d / "nan_score.csv").write_text("clip,0,0.1,0.1,0.4,0.9,,0.9\nclip,1,0.1,0.1,0.4,0.9,,nan\n")
    (d / "off_grid.csv").write_text("clip,1.5,0.1,0.1,0.4,0.9,,0.9\n")
    (d / "latin1.csv").write_bytes("clip,1,0.1,0.1,0.4,0.9,,0.9 caf\u00e9\n".encode("latin-1"))
    (d / "bom.csv").write_bytes("\ufeffclip,1,0.1,0.1,0.4,0.9,,0.9\nclip,1,0.5,0.2,0.9,0.8,,0.9\n".encode("utf-8"))
    (d / "gt.csv").write_text("clip,1,0.1,0.1,0.4,0.9,12,0\nclip,1,0.5,0.2,0.9,0.8,12,5\n")
    (d / "prev").mkdir()  # an earlier run's outputs, by the demo's own writer: 2 people on keyframes 0 and 1 s
    writer = DetectionWriter(str(d / "prev/clip_actions.csv"), str(d / "prev/clip_actions.json"), "clip")
    for j in range(2):
        writer.write(
            KeyframeDetections(
                j,
                30 * j,
                float(j),
                np.array([[0.1, 0.1, 0.4, 0.9], [0.5, 0.2, 0.9, 0.8]]),
                np.array([0.95, 0.85]),
                np.array([[0.3, 0.6, 0.9], [0.9, 0.3, 0.6]]),
            )
        )
    writer.close({})
    return d


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_demo_bad_input(case, tmp_path, data):
    run_case(case, tmp_path, data)
    out = tmp_path / "out"
    if case.rc == 0:
        produced = sorted(p.name for p in out.iterdir())
        assert produced == [
            "clip_actions.csv",
            "clip_actions.json",
            "clip_actions.mp4",
            "clip_preview.png",
            "clip_tracks.csv",
        ]
        assert (out / "clip_actions.csv").read_text() != PREVIOUS["clip_actions.csv"]  # replaced on success
    elif out.exists():  # an error never writes, and never touches earlier results
        assert {p.name: p.read_text() for p in out.iterdir()} == PREVIOUS


# ---- the default person detector on a machine without network (issue 20 item 6): inputs, config and checkpoint
# are checked before the detector is built, and a failed download is one error line naming the demo's flags.
def offline_env(tmp: Path) -> dict:
    """Downloads go to empty caches through a proxy nothing listens on (port 9): they fail at once, and no
    real host is ever contacted."""
    proxy = "http://127.0.0.1:9"
    return {
        "TORCH_HOME": str(tmp / "torch_home"),
        "FVCORE_CACHE": str(tmp / "fvcore_cache"),
        "http_proxy": proxy,
        "https_proxy": proxy,
        "HTTP_PROXY": proxy,
        "HTTPS_PROXY": proxy,
        "no_proxy": "",
        "NO_PROXY": "",
    }


OFFLINE = [
    demo(
        "detector-offline",
        args(boxes=None),
        [
            "error: could not get the torchvision fasterrcnn_resnet50_fpn COCO weights (URLError",
            "Download https://download.pytorch.org/models/fasterrcnn_resnet50_fpn_coco-258fb6c6.pth elsewhere",
            "--person-weights PATH",
            "--person-detector hog",
        ],
    ),
    demo(
        "detectron2-detector-offline",
        args(boxes=None, person_detector="detectron2"),
        [
            "error: could not get the detectron2 model-zoo weights for COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml",
            "--person-weights PATH",
            "--person-detector hog",
        ],
    ),
    # checked before the detector would be downloaded
    pytest.param(
        demo(
            "camera-missing-offline",
            args(boxes=None, input="63"),
            ["error: cannot decode video '63': no camera: /dev/video63 does not exist"],
        ),
        marks=pytest.mark.skipif(not sys.platform.startswith("linux"), reason="v4l2 cameras"),
    ),
    demo(
        "garbage-video-offline",
        args(boxes=None, input="{data}/garbage.mp4"),
        ["error: cannot decode video '{data}/garbage.mp4'"],
    ),
    demo("nan-weights-offline", args(boxes=None, checkpoint="{data}/nan.pth"), ["error: ", "nan.pth"]),
]


@pytest.mark.parametrize("case", OFFLINE, ids=lambda c: c.id)
def test_demo_offline_default_detector(case, tmp_path, data):
    proc = run_case(case, tmp_path, data, env=offline_env(tmp_path))
    out = proc.stderr + proc.stdout
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "--weights" not in out, out[-3000:]  # one line, no flag the demo does not have
    if not case.id.startswith(("detector", "detectron2")):
        assert "could not get" not in out and "Downloading" not in out  # the bad input, before any download
    assert not list((tmp_path / "torch_home").rglob("*.pth")) and not list(tmp_path.glob("fvcore_cache/**/*.pkl"))
    assert {p.name: p.read_text() for p in (tmp_path / "out").iterdir()} == PREVIOUS


SAME_IN_A_PROCESS = ("boxes-with-bom", "detector-offline")


@pytest.mark.parametrize(
    "case", [c for c in CASES + OFFLINE if getattr(c, "id", "") in SAME_IN_A_PROCESS], ids=lambda c: c.id
)
def test_in_process_as_in_a_process(case, tmp_path, data):
    """The rows above run in-process (tests/cli_table.py): a sample gives the same exit code and messages as a
    real process (offline: the same failed download)."""
    run_both_ways(case, tmp_path, data, env=offline_env(tmp_path))
