"""DemoSettings (vmae_det.demo.settings): every bad value refused when built, naming the setting and its flag; the
command line's defaults are its own."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from vmae_det.demo.settings import DemoArgumentError, DemoSettings

BAD = [
    ({"keyframe_interval": float("inf")}, r"keyframe_interval \(--keyframe-interval\) must be a finite"),
    ({"keyframe_interval": 0.5}, "keyframe_interval"),
    ({"time_offset": float("nan")}, r"time_offset \(--time-offset\) must be a finite number of seconds, got nan"),
    ({"batch_size": 0}, r"batch_size \(--batch-size\) must be an integer >= 1, got 0"),
    ({"batch_size": 2.0}, r"batch_size \(--batch-size\) must be an integer >= 1, got 2\.0"),
    ({"top_k": -1}, "top_k"),
    ({"score_threshold": float("nan")}, "score_threshold"),
    ({"draw_threshold": 1.5}, r"draw_threshold \(--draw-threshold\) must be a number in \[0, 1\]"),
    ({"person_score_threshold": 2.0}, "person_score_threshold"),
    ({"render_min_short_side": -1}, "render_min_short_side"),
    ({"model_fps": 0}, r"model_fps \(--model-fps\) must be a finite frame rate > 0, got 0"),
    ({"boxes_format": "yaml"}, r"boxes_format \(--boxes-format\) must be auto, gt or detections, got 'yaml'"),
    ({"track_iou": 0.0}, r"track_iou \(--track-iou\) must be a number in \(0, 1\]"),
    ({"smooth_window": 0}, "smooth_window"),
    ({"smooth_window": 3, "track": False}, r"smooth_window \(--smooth-window\) .* needs tracking.*--no-track"),
    ({"max_seconds": 0}, r"max_seconds \(--max-seconds\) must be a finite number of seconds > 0"),
    ({"max_latency": float("inf")}, "max_latency"),
    ({"stream_timeout": -1.0}, r"stream_timeout \(--stream-timeout\)"),
    ({"top_k": True}, "top_k"),  # a bool is not a count
]


@pytest.mark.parametrize("changes, message", BAD, ids=[next(iter(c)) + "=" + repr(c[next(iter(c))]) for c, _ in BAD])
def test_a_bad_setting_is_refused_when_built(tmp_path, changes, message):
    with pytest.raises(DemoArgumentError, match=message):
        DemoSettings(str(tmp_path / "missing.mp4"), str(tmp_path / "o"), **changes)
    assert not (tmp_path / "o").exists()


def test_an_output_folder_that_is_a_file_is_refused_when_built(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(OSError, match="is an existing file, not a folder"):
        DemoSettings("clip.mp4", str(afile))
    assert afile.read_text() == "x"


def test_settings_are_a_frozen_value_and_defaults_are_valid(tmp_path):
    s = DemoSettings("clip.mp4", str(tmp_path))
    assert (s.top_k, s.batch_size, s.person_score_threshold, s.max_latency, s.stream_timeout) == (3, 4, 0.8, 1.0, 10.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.top_k = 5
    assert dataclasses.replace(s, top_k=5).top_k == 5
    with pytest.raises(DemoArgumentError, match="top_k"):
        dataclasses.replace(s, top_k=-5)


def test_the_command_line_builds_the_same_settings_with_the_same_defaults(tmp_path):
    from vmae_det.tools.demo import build_parser, settings_from_args

    parser = build_parser()
    required = ["--config-file", "c.py", "--checkpoint", "w.pth", "--input", "clip.mp4", "--output", str(tmp_path)]
    args = parser.parse_args(required)
    assert settings_from_args(args, parser) == DemoSettings("clip.mp4", str(tmp_path), stream_options={})
    args = parser.parse_args(
        required + ["--no-track", "--no-progress", "--show", "--top-k", "1", "--stream-option", "rtsp_transport=udp"]
    )
    got = settings_from_args(args, parser)
    assert (got.track, got.progress, got.show, got.top_k, got.preview) == (False, False, True, 1, True)
    assert got.stream_options == {"rtsp_transport": "udp"}


def test_the_settings_are_checked_without_loading_torch():
    code = (
        "import sys\n"
        "from vmae_det.tools.demo import build_parser, settings_from_args\n"
        "from vmae_det.demo.settings import DemoArgumentError\n"
        "p = build_parser()\n"
        "a = p.parse_args(['--config-file', 'c', '--checkpoint', 'w', '--input', 'v', '--output', 'o',\n"
        "                  '--top-k', '-1'])\n"
        "try:\n"
        "    settings_from_args(a, p)\n"
        "except DemoArgumentError:\n"
        "    pass\n"
        "assert 'torch' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
