"""run_demo end to end (vmae_det.demo.run, .pipeline): consistent outputs, scores of a direct model call, bounded
memory, bad videos, all-or-nothing outputs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from demo_helpers import (
    BOXES,
    REPO,
    SPARSE_PTS,
    fixed_detector,
    make_predictor,
    make_timed_video,
    make_video,
    read_rows,
    read_video,
)

import vmae_det  # noqa: F401  (detectron2 shims first)
from vmae_det.demo import (
    ActionVisualizer,
    DemoSettings,
    KeyframeSchedule,
    VideoDecodeError,
    VideoStreamReader,
    VideoTooShortError,
    run_demo,
)


def test_run_demo_writes_consistent_video_csv_json_and_preview(video, tmp_path):
    out = tmp_path / "out"
    summary = run_demo(
        DemoSettings(str(video), str(out), batch_size=2, render_min_short_side=128, progress=False),
        make_predictor(),
        fixed_detector,
    )
    stem = "clip one"
    assert summary["num_frames"] == 75 and summary["num_keyframes"] == 3  # frames 0, 30, 60
    assert summary["num_boxes"] == 6 and summary["video_codec"] == "libx264"

    # mp4: every frame, upscaled to a 128-pixel short side, decodable by PyAV
    reader = VideoStreamReader(str(out / f"{stem}_actions.mp4"))
    assert (reader.height, reader.width) == (128, 192)
    assert sum(1 for _ in reader) == 75

    # CSV: official AVA detection rows, 3 keyframes x 2 boxes x 3 actions
    rows = read_rows(out / f"{stem}_actions.csv")
    assert len(rows) == 18 == summary["num_csv_rows"]
    assert {r[0] for r in rows} == {stem} and sorted({int(r[1]) for r in rows}) == [0, 1, 2]
    assert {int(r[6]) for r in rows} == {1, 2, 3}
    first = [float(v) for v in rows[0][2:6]]
    assert first == pytest.approx([4 / 96, 6 / 64, 30 / 96, 44 / 64], abs=1e-3)
    assert all(0.0 <= float(r[7]) <= 0.9 for r in rows)  # sigmoid x person score

    # JSON: the same (box, action, score) triples, plus exact times and frames
    data = json.loads((out / f"{stem}_actions.json").read_text())
    assert [k["frame"] for k in data["keyframes"]] == [0, 30, 60]
    triples = [
        (k["timestamp"], a, round(s, 6))
        for k in data["keyframes"]
        for p in k["people"]
        for a, s in p["actions"].items()
    ]
    assert triples == [(int(r[1]), r[6], round(float(r[7]), 6)) for r in rows]
    assert data["summary"]["num_frames"] == 75

    # preview: a rendered frame with the first box's colour on it
    png = cv2.imread(str(out / f"{stem}_preview.png"))[:, :, ::-1]
    assert png.shape == (128, 192, 3)
    color = np.array(ActionVisualizer().color(0))
    assert (np.abs(png.astype(int) - color).sum(-1) < 10).sum() > 100


def test_scores_equal_a_direct_model_call_on_the_centred_clip(video, tmp_path):
    predictor = make_predictor()
    run_demo(
        DemoSettings(str(video), str(tmp_path), keyframe_interval=20, batch_size=3, progress=False),
        predictor,
        fixed_detector,
    )
    rows = read_rows(tmp_path / "clip one_actions.csv")
    frames = [f for _, f in VideoStreamReader(str(video))]
    schedule = KeyframeSchedule(fps=30, interval=20, num_frames=4, stride=2)
    for j, keyframe in enumerate([0, 20, 40, 60]):
        clip, boxes = predictor.prepare_clip([frames[i] for i in schedule.clip_indices(keyframe, 75)], BOXES)
        assert clip.shape[-2:] == (32, 48) == predictor.clip_size(64, 96)
        np.testing.assert_allclose(boxes, BOXES / 2)
        model_in = {
            "clip": clip,
            "boxes": torch.from_numpy(boxes),
            "box_scores": torch.tensor([0.9, 0.8]),
            "clip_size": tuple(clip.shape[-2:]),
        }
        expected = predictor.model([model_in])[0]["scores"].detach().numpy().ravel()
        got = np.array([float(r[7]) for r in rows[6 * j : 6 * (j + 1)]])
        np.testing.assert_allclose(got, expected, atol=2e-6)


def test_batch_size_does_not_change_results(video, tmp_path):
    for b in (1, 4):
        run_demo(
            DemoSettings(
                str(video), str(tmp_path / f"b{b}"), batch_size=b, keyframe_interval=10, progress=False, preview=False
            ),
            make_predictor(),
            fixed_detector,
        )
    assert read_rows(tmp_path / "b1/clip one_actions.csv") == read_rows(tmp_path / "b4/clip one_actions.csv")


def test_frames_held_in_memory_do_not_grow_with_video_length(tmp_path):
    held = []
    for n in (60, 240):
        path = make_video(tmp_path / f"v{n}.mp4", n, size=(32, 32))
        summary = run_demo(
            DemoSettings(
                str(path),
                str(tmp_path / f"o{n}"),
                keyframe_interval=5,
                batch_size=2,
                render_min_short_side=0,
                progress=False,
                preview=False,
            ),
            make_predictor(num_frames=4, stride=3),
            fixed_detector,
        )
        assert summary["num_frames"] == n
        held.append(summary["max_frames_in_memory"])
    assert held[0] == held[1]
    assert held[1] <= 4 * 3 + 2 * 5 + 1  # clip span + batch x interval (+ the frame being decoded)


def test_large_backlogs_run_smaller_batches_with_the_same_results(video, tmp_path, monkeypatch):
    """Frames waiting for a batch's labels may hold RENDER_BACKLOG_BYTES: past it the batch runs early.
    Scores, CSV and the rendered video do not change (the model sees the same clips)."""
    import vmae_det.demo.pipeline as pipeline

    kwargs = dict(batch_size=4, keyframe_interval=10, progress=False, preview=False, render_min_short_side=0)
    ref = run_demo(DemoSettings(str(video), str(tmp_path / "ref"), **kwargs), make_predictor(), fixed_detector)
    frame_bytes = 96 * 64 * 3
    monkeypatch.setattr(pipeline, "RENDER_BACKLOG_BYTES", 12 * frame_bytes)
    small = run_demo(DemoSettings(str(video), str(tmp_path / "small"), **kwargs), make_predictor(), fixed_detector)
    assert ref["early_batches"] == 0 and small["early_batches"] > 0
    assert small["render_source"] == ref["render_source"] == "frames held"
    assert small["max_frames_in_memory"] < ref["max_frames_in_memory"]
    assert small["max_frames_in_memory"] <= 12 + 10 + 1  # the budget, plus one keyframe interval
    assert read_rows(small["outputs"]["csv"]) == read_rows(ref["outputs"]["csv"])
    for a, b in zip(read_video(small["outputs"]["video"]), read_video(ref["outputs"]["video"]), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("case", ["constant rate", "repeated frames"])
def test_huge_frames_are_decoded_again_for_rendering_with_the_same_output(video, tmp_path, monkeypatch, case):
    """When one keyframe's backlog of RGB frames would pass RENDER_BACKLOG_BYTES (4K), no frame is kept for
    rendering: a second reader decodes the file again behind the renderer. Same CSV, same video, frame by
    frame, also when grid frames repeat (a sparse file: the repeat must not carry the drawing twice)."""
    import vmae_det.demo.pipeline as pipeline

    if case == "repeated frames":
        video = make_timed_video(tmp_path / "gaps.mp4", SPARSE_PTS[:30], 15)

    def moving_people():  # boxes move from keyframe to keyframe, so a drawing left on a frame shows
        calls = []

        def detector(frame):
            calls.append(1)
            return BOXES + 3 * len(calls), np.array([0.9, 0.8], np.float32)

        return detector

    kwargs = dict(batch_size=2, keyframe_interval=3, progress=False, preview=False, render_min_short_side=0)
    ref = run_demo(DemoSettings(str(video), str(tmp_path / "ref"), **kwargs), make_predictor(), moving_people())
    monkeypatch.setattr(pipeline, "RENDER_BACKLOG_BYTES", 1)
    again = run_demo(DemoSettings(str(video), str(tmp_path / "again"), **kwargs), make_predictor(), moving_people())
    assert ref["render_source"] == "frames held" and again["render_source"] == "second decoding pass"
    assert again["max_frames_in_memory"] == 2 < ref["max_frames_in_memory"]
    assert again["early_batches"] == 0  # nothing is held, so batches stay full
    if case == "repeated frames":
        assert ref["repeated_frames"] > 0
    assert read_rows(again["outputs"]["csv"]) == read_rows(ref["outputs"]["csv"])
    for a, b in zip(read_video(again["outputs"]["video"]), read_video(ref["outputs"]["video"]), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_random_test_transform_is_applied_to_whole_clips(video, tmp_path):
    """Per-frame shrinking needs a transform that is the same for every clip; a random one (a short side
    drawn per clip) falls back to keeping full frames and transforming each clip as a whole."""
    from vmae_det.data.transforms import ShortSideResize

    predictor = make_predictor()
    assert predictor.frame_transform(64, 96) is not None
    predictor.augmentations = [ShortSideResize((28, 36))]
    assert predictor.frame_transform(64, 96) is None
    summary = run_demo(
        DemoSettings(
            str(video),
            str(tmp_path / "o"),
            batch_size=1,
            keyframe_interval=10,
            progress=False,
            preview=False,
            render_min_short_side=0,
        ),
        predictor,
        fixed_detector,
    )
    assert summary["max_model_frames_in_memory"] == 0 and summary["num_boxes"] == 2 * summary["num_keyframes"]


def test_unreadable_missing_and_too_short_videos_are_clear_errors(tmp_path):
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(os.urandom(2048))
    with pytest.raises(VideoDecodeError, match="garbage.mp4"):
        run_demo(DemoSettings(str(garbage), str(tmp_path / "o"), progress=False), make_predictor(), fixed_detector)
    with pytest.raises(VideoDecodeError, match="missing.mp4.*no such video file"):
        run_demo(DemoSettings(str(tmp_path / "missing.mp4"), str(tmp_path / "o")), make_predictor(), fixed_detector)
    short = make_video(tmp_path / "short.mp4", 7)  # one clip spans 8 frames
    with pytest.raises(VideoTooShortError, match=r"short.mp4.*7 frames, shorter than one clip \(8 frames"):
        run_demo(DemoSettings(str(short), str(tmp_path / "o"), progress=False), make_predictor(), fixed_detector)
    assert not any((tmp_path / "o").glob("short_*"))  # nothing half-written


def test_zero_frame_video_is_a_clear_error(tmp_path):
    import av

    empty = tmp_path / "empty.mp4"
    with av.open(str(empty), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
    with pytest.raises(VideoDecodeError, match="empty.mp4"):
        run_demo(DemoSettings(str(empty), str(tmp_path / "o"), progress=False), make_predictor(), fixed_detector)


def _snapshot(folder: Path):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_failed_rerun_keeps_earlier_results_and_leaves_no_partial_files(video, tmp_path):
    out = tmp_path / "o"
    run_demo(
        DemoSettings(str(video), str(out), progress=False, render_min_short_side=0), make_predictor(), fixed_detector
    )
    before = _snapshot(out)
    assert sorted(before) == [
        "clip one_actions.csv",
        "clip one_actions.json",
        "clip one_actions.mp4",
        "clip one_preview.png",
        "clip one_tracks.csv",
    ]

    broken = make_predictor()
    with torch.no_grad():
        broken.model.cls.weight.fill_(float("nan"))
    from vmae_det.demo import DemoModelError

    with pytest.raises(DemoModelError, match="non-finite"):
        run_demo(DemoSettings(str(video), str(out), progress=False, render_min_short_side=0), broken, fixed_detector)
    assert _snapshot(out) == before

    def nan_scores(frame):
        return BOXES.copy(), np.array([0.9, np.nan], np.float32)

    summary = run_demo(
        DemoSettings(str(video), str(out), progress=False, preview=False, render_min_short_side=0),
        make_predictor(),
        nan_scores,
    )
    assert summary["detector_boxes_nonfinite"] == 3 and summary["num_boxes"] == 3  # one person per keyframe
    assert sorted(p.name for p in out.iterdir()) == sorted(set(before) - {"clip one_preview.png"})  # stale preview gone


def test_an_encoder_that_refuses_the_frame_size_is_a_clear_error_before_any_work(tmp_path, monkeypatch):
    from vmae_det.formats.video_writer import VideoWriteError, VideoWriter

    with pytest.raises(VideoWriteError, match=r"big\.mp4: cannot encode 360x46080 frames"):
        VideoWriter(str(tmp_path / "big.mp4"), 30, 360, 46080)
    assert not (tmp_path / "big.mp4").exists()

    tall = make_timed_video(tmp_path / "tall.mp4", range(10), 30, size=(16, 2048))  # 360-px short side: 46,080 tall
    out = tmp_path / "o"
    summary = run_demo(
        DemoSettings(str(tall), str(out), progress=False, preview=False), make_predictor(), fixed_detector
    )
    reader = VideoStreamReader(summary["outputs"]["video"])
    assert (reader.width, reader.height) == (32, 4096)  # upscaling stops at a 4096-px long side
    before = _snapshot(out)
    monkeypatch.setattr(ActionVisualizer, "_scale", lambda self, h, w: 360 / min(h, w))  # without the cap
    calls = []
    with pytest.raises(VideoWriteError, match="360x46080"):
        run_demo(
            DemoSettings(str(tall), str(out), progress=False),
            make_predictor(),
            lambda f: calls.append(1) or fixed_detector(f),
        )
    assert calls == [] and _snapshot(out) == before


SLOW_RUN = """
import signal, sys, time
# Ctrl-C as in a terminal: a test runner started in the background (SIGINT ignored) passes that on to its children.
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.path.insert(0, {tests!r})
from demo_helpers import fixed_detector, make_predictor
from vmae_det.demo import DemoSettings, run_demo

calls = 0

def slow(frame):
    global calls
    calls += 1
    open({marks!r} + "/" + str(calls), "w").close()  # the test signals only once the run is under way
    time.sleep(0.3)
    return fixed_detector(frame)

settings = DemoSettings({video!r}, {out!r}, keyframe_interval=3, progress=False, render_min_short_side=0)
run_demo(settings, make_predictor(), slow)
"""


@pytest.mark.parametrize("how", ["SIGINT", "SIGKILL"])
def test_interrupted_rerun_never_touches_earlier_results(video, tmp_path, how):
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "o"
    run_demo(
        DemoSettings(str(video), str(out), progress=False, render_min_short_side=0), make_predictor(), fixed_detector
    )
    before = _snapshot(out)
    marks = tmp_path / "marks"
    marks.mkdir()
    script = SLOW_RUN.format(tests=str(REPO / "tests"), video=str(video), out=str(out), marks=str(marks))
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    deadline = time.time() + 120
    # well inside the run: two of its 25 keyframes (0.3 s each) seen, outputs opened under partial names
    while len(list(marks.iterdir())) < 2 or not any(".partial-" in p.name for p in out.iterdir()):
        assert proc.poll() is None and time.time() < deadline, proc.stdout.read().decode()[-2000:]
        time.sleep(0.02)
    assert proc.poll() is None
    proc.send_signal(getattr(signal, how))
    proc.wait(60)
    assert proc.returncode != 0, proc.stdout.read().decode()[-2000:]
    partial = [p.name for p in out.iterdir() if ".partial-" in p.name]
    assert {n: b for n, b in _snapshot(out).items() if n not in partial} == before  # earlier results intact
    if how == "SIGINT":
        assert partial == []  # cleaned up on the way out
    else:  # kill -9 cannot clean up: hidden, visibly partial names; the next run removes them
        assert partial and all(n.startswith(".clip one_") and f".partial-{proc.pid}." in n for n in partial)
        summary = run_demo(
            DemoSettings(str(video), str(out), progress=False, render_min_short_side=0),
            make_predictor(),
            fixed_detector,
        )
        assert summary["partial_outputs_removed"] == len(partial)
        assert not any(".partial-" in p.name for p in out.iterdir())
