"""The demo on live input: a stream served on loopback by the test, cameras, --max-seconds, --show, Ctrl-C.

The stream is MPEG-TS over TCP written by PyAV in a thread, paced in real time, each frame carrying its
index in two grey strips at the bottom (read back from the demo's mp4 to check where frames landed).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch
from demo_helpers import CONFIG, make_predictor

import vmae_det  # noqa: F401  (detectron2 shims first)
from vmae_det.demo import DemoSettings, VideoStreamError, run_demo
from vmae_det.demo.input_spec import parse_input, webcam_device
from vmae_det.modeling.tiny_action_model import TinyActionModel

W, H, FPS = 160, 120, 30
BOX = np.array([[8, 8, 60, 70]], np.float32)  # away from the index strips (rows >= 96)
# small probe: the stream starts in ~0.1 s instead of FFmpeg's default few hundred ms of analysis
FAST_PROBE = {"analyzeduration": "100000", "probesize": "32768"}


def frame_with_index(i: int) -> np.ndarray:
    img = np.full((H, W, 3), 90, np.uint8)
    img[96:, : W // 2] = (i // 16) % 8 * 32 + 16
    img[96:, W // 2 :] = (i % 16) * 16 + 8
    x = (3 * i) % (W - 20)
    img[20:50, x : x + 20] = (200, 60, 30)
    return img


def index_of(img: np.ndarray) -> int:
    """The index :func:`frame_with_index` drew (mod 128), read from a decoded frame."""
    coarse = int(round((float(img[100:116, 8 : W // 2 - 8].mean()) - 16) / 32)) % 8
    fine = int(round((float(img[100:116, W // 2 + 8 : W - 8].mean()) - 8) / 16)) % 16
    return coarse * 16 + fine


class LoopbackStream:
    """``num_frames`` frames at ``FPS`` as MPEG-TS to the first client of ``tcp://127.0.0.1:<port>``, in real time."""

    def __init__(self, num_frames: int) -> None:
        self.num_frames = num_frames
        self.sent = 0
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.sock.settimeout(30)
        self.url = f"tcp://127.0.0.1:{self.sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        try:
            with conn, conn.makefile("wb") as f:
                out = av.open(f, "w", format="mpegts")
                stream = out.add_stream("mpeg2video", rate=FPS)
                stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
                stream.codec_context.options = {"g": "15", "bf": "0", "qmin": "2", "qmax": "4"}
                t0 = time.monotonic()
                for i in range(self.num_frames):
                    for packet in stream.encode(av.VideoFrame.from_ndarray(frame_with_index(i), format="rgb24")):
                        out.mux(packet)
                    f.flush()
                    self.sent = i + 1
                    time.sleep(max(0.0, t0 + (i + 1) / FPS - time.monotonic()))
                for packet in stream.encode():
                    out.mux(packet)
                out.close()
        except (OSError, av.error.FFmpegError, ValueError):
            pass  # the client went away

    def close(self) -> None:
        self.sock.close()
        self.thread.join(10)


@pytest.fixture
def stream():
    streams = []

    def make(num_frames: int) -> LoopbackStream:
        streams.append(LoopbackStream(num_frames))
        return streams[-1]

    yield make
    for s in streams:
        s.close()


def detector(frame):
    return BOX.copy(), np.array([0.9], np.float32)


def read_video(path) -> list:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def run(url, out, persons=detector, **kw):
    kw = {"progress": False, "render_min_short_side": 0, "stream_options": FAST_PROBE, "stream_timeout": 5.0, **kw}
    return run_demo(DemoSettings(url, str(out), **kw), make_predictor(), persons)


# --------------------------------------------------------------------------- what --input names
def test_input_kinds_and_output_names(tmp_path):
    f = tmp_path / "0"
    f.write_bytes(b"")
    assert parse_input(str(f)).kind == "file"  # an existing file wins, whatever its name
    cam = parse_input("1", platform="linux")
    assert (cam.kind, cam.location, cam.format, cam.name) == ("webcam", "/dev/video1", "v4l2", "webcam1")
    assert webcam_device(0, "darwin") == ("0", "avfoundation")
    with pytest.raises(ValueError, match="dshow:video="):
        webcam_device(0, "win32")
    dev = parse_input("dshow:video=Integrated Camera", platform="win32")
    assert (dev.kind, dev.format, dev.location) == ("webcam", "dshow", "video=Integrated Camera")
    for url, name in [
        ("rtsp://user:pw@cam.local:554/live/ch1?x=1", "ch1"),
        ("tcp://127.0.0.1:5000", "127.0.0.1_5000"),
        ("http://host/videos/walk.mp4", "walk"),
        ("srt://h:9000?mode=caller", "h_9000"),
    ]:
        spec = parse_input(url)
        assert (spec.kind, spec.location, spec.name, spec.live) == ("url", url, name, True)
    assert parse_input("rtsp://admin:pw@cam/s").shown == "rtsp://admin:***@cam/s"
    missing = parse_input("no/such/clip.mp4")
    assert (missing.kind, missing.name, missing.live) == ("file", "clip", False)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="v4l2 device paths are Linux's")
def test_a_missing_camera_is_a_clear_error(tmp_path):
    index = next(i for i in range(64, 200) if not os.path.exists(f"/dev/video{i}"))
    with pytest.raises(VideoStreamError, match=f"no camera: /dev/video{index} does not exist"):
        run(str(index), tmp_path / "o")
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())


def test_a_url_that_never_answers_fails_within_the_timeout(tmp_path):
    silent = socket.socket()  # accepts connections (the kernel's backlog) but never sends a byte
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    t = time.monotonic()
    try:
        with pytest.raises(VideoStreamError, match=r"no answer within 1 s \(--stream-timeout\)"):
            run(f"tcp://127.0.0.1:{silent.getsockname()[1]}", tmp_path / "o", stream_timeout=1.0)
    finally:
        silent.close()
    assert time.monotonic() - t < 5
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there: refused at once
    with pytest.raises(VideoStreamError, match="cannot open the stream .*refused") as e:
        run(f"tcp://admin:secret@127.0.0.1:{port}", tmp_path / "o")
    assert "secret" not in str(e.value) and "admin:***@127.0.0.1" in str(e.value)  # never a password in messages


# --------------------------------------------------------------------------- a live stream
def test_a_loopback_stream_is_recorded_until_max_seconds_with_frames_at_their_times(stream, tmp_path):
    s = stream(150)
    summary = run(s.url, tmp_path / "o", max_seconds=1.5, keyframe_interval=15)
    assert summary["input_kind"] == "url" and summary["live"] is True
    assert summary["stopped_by"] == "max_seconds"
    assert summary["num_frames"] == 45 and summary["duration_seconds"] == 1.5
    assert summary["live_dropped_frames"] == 0 and summary["live_skipped_keyframes"] == 0
    assert summary["render_source"] == "frames held"
    assert summary["live_max_frame_age_seconds"] <= summary["live_max_latency_seconds"] + 1.0
    assert s.sent < 150  # the demo stopped reading; it did not wait for the stream to end
    name = "127.0.0.1_" + s.url.rsplit(":", 1)[1]
    frames = read_video(tmp_path / "o" / f"{name}_actions.mp4")
    assert [index_of(f) for f in frames] == list(range(45))  # grid frame i is stream frame i
    doc = json.loads((tmp_path / "o" / f"{name}_actions.json").read_text())
    assert [k["frame"] for k in doc["keyframes"]] == [0, 15, 30]
    assert all(len(k["people"]) == 1 for k in doc["keyframes"])
    assert doc["summary"]["live_dropped_frames"] == 0


def test_a_slow_demo_drops_the_oldest_frames_and_keeps_keyframes_at_their_times(stream, tmp_path):
    def slow(frame):  # 0.15 s a keyframe at 10 keyframes a second: 1.5x slower than real time
        time.sleep(0.15)
        return detector(frame)

    s = stream(150)
    summary = run(s.url, tmp_path / "o", max_seconds=2.5, keyframe_interval=3, max_latency=0.2, persons=slow)
    n = summary["num_frames"]
    assert n == 75 and summary["stopped_by"] == "max_seconds"  # the output still lasts 2.5 s
    assert summary["live_queue_frames"] == 6
    assert summary["live_dropped_frames"] > 10
    assert summary["live_skipped_keyframes"] > 0
    # bounded by the queue (0.2 s) plus one frame's work and scheduling slack (2 cores shared with other work)
    assert summary["live_max_frame_age_seconds"] < 0.2 + 1.0
    assert summary["live_max_frame_age_seconds"] <= summary["live_max_lag_seconds"] + 0.05
    name = "127.0.0.1_" + s.url.rsplit(":", 1)[1]
    shown = [index_of(f) for f in read_video(tmp_path / "o" / f"{name}_actions.mp4")]
    assert len(shown) == n and shown[0] == 0
    assert all(a <= b for a, b in zip(shown, shown[1:]))  # time only moves forward
    doc = json.loads((tmp_path / "o" / f"{name}_actions.json").read_text())
    assert [k["frame"] for k in doc["keyframes"]] == list(range(0, n, 3))  # every keyframe written, in time
    with_people = [k["frame"] for k in doc["keyframes"] if k["people"]]
    assert len(doc["keyframes"]) - len(with_people) == summary["live_skipped_keyframes"]
    assert all(shown[k] == k for k in with_people)  # a keyframe that was looked at shows its own frame


def test_ctrl_c_on_a_stream_finishes_the_outputs_up_to_there(stream, tmp_path):
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers need the main thread")
    s = stream(600)
    seen = []

    def interrupt_after_two_keyframes(frame):
        seen.append(1)
        if len(seen) == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return detector(frame)

    previous = signal.getsignal(signal.SIGINT)
    summary = run(s.url, tmp_path / "o", keyframe_interval=10, persons=interrupt_after_two_keyframes)
    assert signal.getsignal(signal.SIGINT) is previous  # restored
    assert summary["stopped_by"] == "SIGINT"
    assert 10 < summary["num_frames"] < 100
    outputs = sorted(p.name for p in (tmp_path / "o").iterdir())
    assert not any(".partial-" in p for p in outputs) and any(p.endswith("_actions.mp4") for p in outputs)
    assert len(read_video(tmp_path / "o" / summary["outputs"]["video"].rsplit("/", 1)[1])) == summary["num_frames"]


# --------------------------------------------------------------------------- files, --show
def _file(tmp_path, num_frames=75) -> Path:
    path = tmp_path / "clip.mp4"
    with av.open(str(path), "w") as out:
        st = out.add_stream("mpeg4", rate=FPS)
        st.width, st.height, st.pix_fmt = W, H, "yuv420p"
        for i in range(num_frames):
            for p in st.encode(av.VideoFrame.from_ndarray(frame_with_index(i), format="rgb24")):
                out.mux(p)
        for p in st.encode():
            out.mux(p)
    return path


def test_max_seconds_on_a_file_keeps_the_results_of_the_whole_file_up_to_there(tmp_path):
    video = _file(tmp_path)
    full = run(str(video), tmp_path / "full")
    cut = run(str(video), tmp_path / "cut", max_seconds=1.5)
    assert full["stopped_by"] is None and full["num_frames"] == 75 and "live" not in full
    assert cut["stopped_by"] == "max_seconds" and cut["num_frames"] == 45 and cut["duration_seconds"] == 1.5
    rows_full = (tmp_path / "full/clip_actions.csv").read_text().splitlines()
    rows_cut = (tmp_path / "cut/clip_actions.csv").read_text().splitlines()
    # keyframes 0 s and 1 s: clips (frames 26..32 at most) inside the first 1.5 s, so the same scores
    assert rows_cut == [r for r in rows_full if r.split(",")[1] in ("0000", "0001")] and rows_cut
    assert len(read_video(tmp_path / "cut/clip_actions.mp4")) == 45


def test_show_without_a_display_warns_and_still_writes_the_file(tmp_path, monkeypatch, caplog):
    video = _file(tmp_path, 40)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    summary = run(str(video), tmp_path / "o", show=True)
    assert "--show" in caplog.text and "writing the output file only" in caplog.text
    assert len(read_video(summary["outputs"]["video"])) == 40
    if sys.platform.startswith("linux") and "GUI:                           NONE" in cv2.getBuildInformation():
        monkeypatch.setenv("DISPLAY", ":0")  # a display is named, but this OpenCV has no imshow
        caplog.clear()
        run(str(video), tmp_path / "o2", show=True)
        assert "OpenCV cannot open a window" in caplog.text
        assert (tmp_path / "o2/clip_actions.mp4").is_file()


def test_show_puts_every_frame_in_the_window_and_q_ends_the_input(tmp_path, monkeypatch):
    video = _file(tmp_path, 60)
    shown = []
    monkeypatch.setenv("DISPLAY", ":0")
    # stand-ins for a GUI OpenCV build: the window calls are OpenCV's, the user presses q at the 20th frame
    monkeypatch.setattr(cv2, "namedWindow", lambda *a: None)
    monkeypatch.setattr(cv2, "imshow", lambda title, img: shown.append(img.copy()))
    monkeypatch.setattr(cv2, "waitKey", lambda ms: ord("q") if len(shown) == 20 else -1)
    monkeypatch.setattr(cv2, "getWindowProperty", lambda *a: 1.0)
    monkeypatch.setattr(cv2, "destroyWindow", lambda *a: None)
    summary = run(str(video), tmp_path / "o", show=True, keyframe_interval=5)
    # frames are drawn once their keyframe's labels are known, so q is seen a few frames after it was shown
    assert summary["stopped_by"] == "window" and 20 <= summary["num_frames"] < 60
    written = read_video(summary["outputs"]["video"])
    assert len(written) == summary["num_frames"] and len(shown) == len(written)
    assert all(index_of(cv2.cvtColor(s, cv2.COLOR_BGR2RGB)) == i for i, s in enumerate(shown))


def test_cli_records_a_stream_and_reports_one_that_never_answers(stream, tmp_path, capsys):
    from vmae_det.tools import demo as demo_tool

    cfg = tmp_path / "tiny_cfg.py"
    cfg.write_text(CONFIG)
    torch.save({"model": TinyActionModel(num_classes=3).state_dict()}, tmp_path / "w.pth")
    boxes = tmp_path / "b.csv"
    boxes.write_text("cam,1,0.05,0.05,0.4,0.6,,0.9\n")
    common = [
        "--config-file",
        str(cfg),
        "--checkpoint",
        str(tmp_path / "w.pth"),
        "--output",
        str(tmp_path / "o"),
        "--device",
        "cpu",
        "--no-progress",
        "--render-min-short-side",
        "0",
        "--stream-option",
        "analyzeduration=100000",
        "--stream-option",
        "probesize=32768",
    ]
    s = stream(150)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        rc = demo_tool.cli(
            common + ["--input", s.url, "--max-seconds", "1.5", "--boxes", str(boxes), "--video-id", "cam"]
        )
        assert rc == 0
        summary = json.loads(capsys.readouterr().out)
        assert summary["stopped_by"] == "max_seconds" and summary["num_frames"] == 45 and summary["live"] is True
        rows = Path(summary["outputs"]["csv"]).read_text().splitlines()
        assert rows and all(r.startswith("cam,0001,") for r in rows)  # the CSV's keyframe at 1 s, frame 30
        silent = socket.socket()
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        with silent:
            rc = demo_tool.cli(
                common
                + [
                    "--input",
                    f"tcp://127.0.0.1:{silent.getsockname()[1]}",
                    "--stream-timeout",
                    "1",
                    "--person-detector",
                    "csv",
                    "--boxes",
                    str(boxes),
                ]
            )
        assert rc == 2
        err = capsys.readouterr().err
        assert "error: cannot decode video 'tcp://127.0.0.1:" in err and "no answer within 1 s" in err
        with pytest.raises(SystemExit) as e:
            demo_tool.main(common + ["--input", s.url, "--stream-option", "novalue", "--boxes", str(boxes)])
        assert e.value.code == 2 and "--stream-option wants KEY=VALUE" in capsys.readouterr().err
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_second_ctrl_c_aborts_and_removes_the_partial_outputs(stream, tmp_path):
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers need the main thread")
    s = stream(600)

    def interrupt_twice(frame):
        os.kill(os.getpid(), signal.SIGINT)  # stop, keeping the outputs...
        os.kill(os.getpid(), signal.SIGINT)  # ...no: abort
        return detector(frame)

    with pytest.raises(KeyboardInterrupt):
        run(s.url, tmp_path / "o", keyframe_interval=10, persons=interrupt_twice)
    assert not [p for p in (tmp_path / "o").iterdir()]


def test_a_recorded_file_over_http_is_read_whole_with_the_results_of_the_file(tmp_path):
    import functools
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    video = _file(tmp_path, 75)

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(tmp_path)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        slow = lambda frame: (time.sleep(0.05), detector(frame))[1]  # noqa: E731  (slower than decoding)
        url = f"http://127.0.0.1:{server.server_address[1]}/clip.mp4"
        summary = run(url, tmp_path / "http", keyframe_interval=5, max_latency=0.1, persons=slow)
    finally:
        server.shutdown()
        server.server_close()
    local = run(str(video), tmp_path / "file", keyframe_interval=5, persons=slow)
    assert summary["input_kind"] == "url" and summary["live"] is False  # the container states a duration
    assert summary["live_dropped_frames"] == 0 and summary["num_frames"] == local["num_frames"] == 75
    assert (tmp_path / "http/clip_actions.csv").read_text() == (tmp_path / "file/clip_actions.csv").read_text()
