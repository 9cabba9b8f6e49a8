"""Decoding on the presentation-time grid (vmae_det.demo.video_stream): sparse and VFR files, rotation, damaged tails,
size changes."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from demo_helpers import (
    REPO,
    SPARSE_PTS,
    VFR_PTS,
    fixed_detector,
    make_predictor,
    make_timed_video,
    nearest,
    which_frame,
)

import vmae_det  # noqa: F401  (detectron2 shims first)
from vmae_det.demo import DemoSettings, VideoDecodeError, VideoStreamReader, run_demo


@pytest.mark.parametrize("name, pts, rate", [("sparse.avi", SPARSE_PTS, 15), ("vfr.mp4", VFR_PTS, 30)])
def test_frames_are_placed_by_presentation_time(tmp_path, name, pts, rate):
    """A sparse AVI (as the cinepak file: 444-frame header, 68 real frames over ~29.6 s) and a VFR mp4: the grid
    frame at time t is the decoded frame nearest to t, so keyframe second s is what a player shows at s."""
    path = make_timed_video(tmp_path / name, pts, rate)
    reader = VideoStreamReader(str(path))
    grid = [which_frame(f) for _, f in reader]
    step = rate / reader.fps  # grid period in 1/rate ticks
    assert grid == [nearest(pts, i * step) for i in range(len(grid))]
    assert len(grid) * step == pytest.approx(pts[-1] + 1, abs=step)  # as long as the file
    assert reader.stats["decoded"] == len(pts) and reader.stats["damaged_tail_seconds"] == 0

    seen = {}

    def detector(frame):
        seen[len(seen)] = which_frame(frame)
        return fixed_detector(frame)

    summary = run_demo(
        DemoSettings(str(path), str(tmp_path / "o"), progress=False, render_min_short_side=0, preview=False),
        make_predictor(),
        detector,
    )
    duration = (pts[-1] + 1) / rate
    assert summary["duration_seconds"] == pytest.approx(duration, abs=1.5 / reader.fps)
    assert summary["decoded_frames"] == len(pts) and summary["num_keyframes"] == len(seen)
    for j, k in seen.items():  # keyframe j (second j) shows the frame on screen at second j
        assert k == nearest(pts, j * rate), j
    if name == "sparse.avi":  # the case: keyframe "1 s" used to be decoded frame 15, i.e. 6.5 s
        assert pts[15] / rate > 5 and seen[1] != 15
    out = VideoStreamReader(summary["outputs"]["video"])
    assert sum(1 for _ in out) == summary["num_frames"]
    assert out.stats["decoded_seconds"] == pytest.approx(duration, abs=1.5 / reader.fps)  # not 68 frames / 15 fps


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_display_rotation_is_applied_as_players_do(tmp_path, rotation):
    path = make_timed_video(tmp_path / "r.mp4", range(10), 30, size=(64, 32), codec="libx264", rotation=rotation)
    reader = VideoStreamReader(str(path))
    frames = [f for _, f in reader]
    assert reader.rotation == rotation
    assert (reader.height, reader.width) == ((64, 32) if rotation % 180 else (32, 64)) == frames[0].shape[:2]
    cap = cv2.VideoCapture(str(path))  # OpenCV applies the display matrix too (CAP_PROP_ORIENTATION_AUTO)
    ok, ref = cap.read()
    cap.release()
    assert ok and ref.shape == frames[0].shape
    assert np.abs(ref[:, :, ::-1].astype(int) - frames[0]).mean() < 3
    summary = run_demo(
        DemoSettings(str(path), str(tmp_path / "o"), progress=False, render_min_short_side=0, preview=False),
        make_predictor(),
        fixed_detector,
    )
    out = VideoStreamReader(summary["outputs"]["video"])
    assert (out.height, out.width) == frames[0].shape[:2] and out.rotation == 0
    assert json.loads(Path(summary["outputs"]["json"]).read_text())["rotation"] == rotation


def test_damaged_tail_is_a_warning_and_counted(tmp_path, caplog):
    full = make_timed_video(tmp_path / "full.mkv", range(90), 30)
    data = full.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 2])
    summary = run_demo(
        DemoSettings(str(cut), str(tmp_path / "o"), progress=False, render_min_short_side=0, preview=False),
        make_predictor(),
        fixed_detector,
    )
    assert "cut.mkv: damaged tail" in caplog.text and "header promises 3.00 s" in caplog.text
    assert 0.5 < summary["damaged_tail_seconds"] < 3 and summary["num_frames"] < 90
    caplog.clear()
    assert (
        run_demo(
            DemoSettings(str(full), str(tmp_path / "o"), progress=False, render_min_short_side=0, preview=False),
            make_predictor(),
            fixed_detector,
        )["damaged_tail_seconds"]
        == 0
    )
    assert "damaged tail" not in caplog.text


def test_frame_size_changing_mid_stream_is_a_clear_error(tmp_path):
    import av

    parts = []
    for w, h in ((64, 48), (96, 64)):  # two MPEG-TS files back to back: a size change inside one stream
        part = tmp_path / f"{w}.ts"
        with av.open(str(part), "w", format="mpegts") as container:
            stream = container.add_stream("mpeg2video", rate=30)
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            for i in range(12):
                frame = av.VideoFrame.from_ndarray(np.full((h, w, 3), 100, np.uint8), format="rgb24")
                frame.pts = i
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)
        parts.append(part.read_bytes())
    joined = tmp_path / "joined.ts"
    joined.write_bytes(b"".join(parts))
    with pytest.raises(VideoDecodeError, match=r"joined\.ts': frame size changes mid-stream .* 96x64, the first 64x48"):
        run_demo(DemoSettings(str(joined), str(tmp_path / "o"), progress=False), make_predictor(), fixed_detector)
    assert not any((tmp_path / "o").iterdir())


SHARED_VIDEOS = REPO.parent / "shared" / "videos"


@pytest.mark.skipif(not (SHARED_VIDEOS / "vtest.avi").is_file(), reason="../shared/videos is absent")
def test_real_10fps_avi_and_its_truncated_copy(tmp_path, caplog):
    reader = VideoStreamReader(str(SHARED_VIDEOS / "vtest.avi"))
    assert reader.fps == 10 and (reader.width, reader.height) == (768, 576)
    assert sum(1 for _ in reader) == 795 and reader.stats["repeated"] == reader.stats["dropped"] == 0
    data = (SHARED_VIDEOS / "vtest.avi").read_bytes()
    cut = tmp_path / "vtest_cut.avi"
    cut.write_bytes(data[: len(data) * 6 // 10])
    reader = VideoStreamReader(str(cut))
    n = sum(1 for _ in reader)
    assert 400 < n < 795 and reader.stats["damaged_tail_seconds"] > 20
    assert "vtest_cut.avi: damaged tail" in caplog.text
