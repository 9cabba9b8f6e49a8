"""The streaming demo: keyframe grid, outputs (mp4/CSV/JSON/PNG), scores (= the evaluation's), memory
bound, bad input, CLI."""

from __future__ import annotations

import csv
import importlib.util
import json
import logging
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import vmae_det  # noqa: F401  (detectron2 shims first)
from vmae_det.data.ava.clip_source import clip_indices
from vmae_det.demo import (
    ActionPredictor,
    ActionVisualizer,
    BoxFileError,
    BoxLabels,
    KeyframeSchedule,
    VideoDecodeError,
    VideoStreamReader,
    VideoTooShortError,
    run_demo,
)
from vmae_det.demo.testing import TinyActionModel

REPO = Path(__file__).resolve().parents[1]
NAMES = {1: "walk", 2: "stand", 3: "jump"}
BOXES = np.array([[4, 6, 30, 44], [40, 2, 90, 60]], np.float32)  # absolute, 96x64 frames


def make_video(path: Path, num_frames: int, size=(96, 64), fps: float = 30.0) -> Path:
    """A moving block on a gradient; each frame is distinct so clip-centring errors change scores."""
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    assert writer.isOpened()
    base = np.tile(np.linspace(0, 255, w, dtype=np.uint8)[None, :, None], (h, 1, 3))
    for i in range(num_frames):
        frame = base.copy()
        x = (3 * i) % (w - 16)
        frame[10:40, x : x + 16] = (30, 200, 250)
        writer.write(frame)
    writer.release()
    return path


def make_predictor(num_frames=4, stride=2, short_side=32, seed=0) -> ActionPredictor:
    torch.manual_seed(seed)
    return ActionPredictor(
        TinyActionModel(num_classes=3),
        num_frames=num_frames,
        sampling_rate=stride,
        test_short_side=short_side,
        class_names=NAMES,
        device="cpu",
    )


def fixed_detector(frame):
    return BOXES.copy(), np.array([0.9, 0.8], np.float32)


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return make_video(tmp_path_factory.mktemp("vid") / "clip one.mp4", 75)


# --------------------------------------------------------------------------- keyframe grid
def test_keyframe_grid_defaults_to_whole_seconds_even_at_ntsc_fps():
    s = KeyframeSchedule(fps=30000 / 1001, num_frames=4, stride=2)
    assert [s.frame_of(j) for j in range(4)] == [0, 30, 60, 90]  # round(j * 29.97)
    assert s.time_of(100) == pytest.approx(100.0)
    assert s.frame_of(100) == 2997
    assert s.index_of_time(100.0) == 100 and s.index_of_time(100.5) is None and s.index_of_time(-1) is None
    off = KeyframeSchedule(fps=30, interval=15, time_offset=900)
    assert off.index_of_time(902.5) == 5 and off.time_of(5) == 902.5
    with pytest.raises(ValueError):
        KeyframeSchedule(fps=30, interval=0.5)


def test_clip_is_centred_on_the_keyframe_and_clamped_at_the_ends():
    s = KeyframeSchedule(fps=30, num_frames=4, stride=2)
    assert s.clip_indices(10) == [6, 8, 10, 12]
    assert s.clip_indices(1) == [0, 0, 1, 3]
    assert s.clip_indices(20, num_video_frames=22) == [16, 18, 20, 21]
    assert s.first_needed(10) == 6 and s.last_needed(10) == 12 and s.span == 8
    # The clip offset (VMAD: 1 at stride 4) shifts every index; the maths is the evaluation's.
    o = KeyframeSchedule(fps=30, num_frames=4, stride=4, offset=1)
    assert o.clip_indices(20) == [13, 17, 21, 25] and o.first_needed(20) == 13 and o.last_needed(20) == 25
    assert o.clip_indices(2) == [0, 0, 3, 7] and o.clip_indices(60, num_video_frames=64) == [53, 57, 61, 63]
    for k, n in ((20, None), (2, None), (60, 64), (0, 1)):
        expected = clip_indices(k, 4, 4, n or 10**6, offset=1).tolist()
        assert o.clip_indices(k, num_video_frames=n) == expected


# --------------------------------------------------------------------------- end to end
def test_run_demo_writes_consistent_video_csv_json_and_preview(video, tmp_path):
    out = tmp_path / "out"
    summary = run_demo(
        str(video), str(out), make_predictor(), fixed_detector, batch_size=2, render_min_short_side=128, progress=False
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
    run_demo(str(video), str(tmp_path), predictor, fixed_detector, keyframe_interval=20, batch_size=3, progress=False)
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
            str(video),
            str(tmp_path / f"b{b}"),
            make_predictor(),
            fixed_detector,
            batch_size=b,
            keyframe_interval=10,
            progress=False,
            preview=False,
        )
    assert read_rows(tmp_path / "b1/clip one_actions.csv") == read_rows(tmp_path / "b4/clip one_actions.csv")


def test_frames_held_in_memory_do_not_grow_with_video_length(tmp_path):
    held = []
    for n in (60, 240):
        path = make_video(tmp_path / f"v{n}.mp4", n, size=(32, 32))
        summary = run_demo(
            str(path),
            str(tmp_path / f"o{n}"),
            make_predictor(num_frames=4, stride=3),
            fixed_detector,
            keyframe_interval=5,
            batch_size=2,
            render_min_short_side=0,
            progress=False,
            preview=False,
        )
        assert summary["num_frames"] == n
        held.append(summary["max_frames_in_memory"])
    assert held[0] == held[1]
    assert held[1] <= 4 * 3 + 2 * 5 + 1  # clip span + batch x interval (+ the frame being decoded)


def read_video(path) -> list:
    return [f for _, f in VideoStreamReader(str(path))]


def test_large_backlogs_run_smaller_batches_with_the_same_results(video, tmp_path, monkeypatch):
    """Frames waiting for a batch's labels may hold RENDER_BACKLOG_BYTES: past it the batch runs early.
    Scores, CSV and the rendered video do not change (the model sees the same clips)."""
    import vmae_det.demo.run as run_module

    kwargs = dict(batch_size=4, keyframe_interval=10, progress=False, preview=False, render_min_short_side=0)
    ref = run_demo(str(video), str(tmp_path / "ref"), make_predictor(), fixed_detector, **kwargs)
    frame_bytes = 96 * 64 * 3
    monkeypatch.setattr(run_module, "RENDER_BACKLOG_BYTES", 12 * frame_bytes)
    small = run_demo(str(video), str(tmp_path / "small"), make_predictor(), fixed_detector, **kwargs)
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
    import vmae_det.demo.run as run_module

    if case == "repeated frames":
        video = make_timed_video(tmp_path / "gaps.mp4", SPARSE_PTS[:30], 15)

    def moving_people():  # boxes move from keyframe to keyframe, so a drawing left on a frame shows
        calls = []

        def detector(frame):
            calls.append(1)
            return BOXES + 3 * len(calls), np.array([0.9, 0.8], np.float32)

        return detector

    kwargs = dict(batch_size=2, keyframe_interval=3, progress=False, preview=False, render_min_short_side=0)
    ref = run_demo(str(video), str(tmp_path / "ref"), make_predictor(), moving_people(), **kwargs)
    monkeypatch.setattr(run_module, "RENDER_BACKLOG_BYTES", 1)
    again = run_demo(str(video), str(tmp_path / "again"), make_predictor(), moving_people(), **kwargs)
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
        str(video),
        str(tmp_path / "o"),
        predictor,
        fixed_detector,
        batch_size=1,  # sizes differ
        keyframe_interval=10,
        progress=False,
        preview=False,
        render_min_short_side=0,
    )
    assert summary["max_model_frames_in_memory"] == 0 and summary["num_boxes"] == 2 * summary["num_keyframes"]


# --------------------------------------------------------------------------- box CSVs
def test_boxes_from_csv_with_ava_offset_merging_and_skips(video, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    boxes = tmp_path / "boxes.csv"
    boxes.write_text(
        "clip one,900,0.1,0.1,0.4,0.9,1,1\n"  # keyframe 0
        "clip one,900,0.1,0.1,0.4,0.9,3,1\n"  # same person, another action: merged
        "other,901,0.1,0.1,0.2,0.2,,0.5\n"  # another video: ignored
        "clip one,902,0.5,0.2,0.9,0.8,,0.85\n"  # keyframe 2, predicted-box style
        "clip one,905,0.5,0.2,0.9,0.8,,0.85\n"  # past the end (75 frames): logged skip
        "clip one,901,0.5,0.2,0.9,0.8,,0.75\n"  # below --person-score-threshold 0.8: counted skip
    )
    summary = run_demo(str(video), str(tmp_path / "o"), make_predictor(), str(boxes), progress=False)
    assert summary["csv_keyframes_past_end"] == 1 and summary["csv_rows_other_videos"] == 1
    assert summary["csv_boxes_below_threshold"] == 1
    assert "boxes.csv:5: skipped" in caplog.text and "below the person score threshold 0.8" in caplog.text
    rows = read_rows(tmp_path / "o/clip one_actions.csv")
    assert sorted({(r[1], r[2]) for r in rows}) == [("0900", "0.100"), ("0902", "0.500")]
    assert len(rows) == 6
    keyframe_2 = [float(r[7]) for r in rows if r[1] == "0902"]
    assert max(keyframe_2) <= 0.85
    # The threshold is the user's: 0.7 keeps the 0.75 box (keyframe 1).
    summary = run_demo(
        str(video), str(tmp_path / "o7"), make_predictor(), str(boxes), progress=False, person_score_threshold=0.7
    )
    assert summary["csv_boxes_below_threshold"] == 0
    assert "0901" in {r[1] for r in read_rows(tmp_path / "o7/clip one_actions.csv")}


def test_off_grid_timestamp_names_file_and_line(video, tmp_path):
    boxes = tmp_path / "bad.csv"
    boxes.write_text("clip one,1,0.1,0.1,0.4,0.9\nclip one,1.5,0.1,0.1,0.4,0.9\n")
    with pytest.raises(BoxFileError, match=r"bad\.csv:2: timestamp 1\.5 is not a keyframe time"):
        run_demo(str(video), str(tmp_path / "o"), make_predictor(), str(boxes), progress=False)
    boxes.write_text("clip one,1,0.1,0.1,1.4,0.9\n")
    with pytest.raises(BoxFileError, match=r"bad\.csv:1: .*not a normalised"):
        run_demo(str(video), str(tmp_path / "o"), make_predictor(), str(boxes), progress=False)


# --------------------------------------------------------------------------- bad input
def test_unreadable_missing_and_too_short_videos_are_clear_errors(tmp_path):
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(os.urandom(2048))
    with pytest.raises(VideoDecodeError, match="garbage.mp4"):
        run_demo(str(garbage), str(tmp_path / "o"), make_predictor(), fixed_detector, progress=False)
    with pytest.raises(VideoDecodeError, match="missing.mp4.*no such video file"):
        run_demo(str(tmp_path / "missing.mp4"), str(tmp_path / "o"), make_predictor(), fixed_detector)
    short = make_video(tmp_path / "short.mp4", 7)  # one clip spans 8 frames
    with pytest.raises(VideoTooShortError, match=r"short.mp4.*7 frames, shorter than one clip \(8 frames"):
        run_demo(str(short), str(tmp_path / "o"), make_predictor(), fixed_detector, progress=False)
    assert not any((tmp_path / "o").glob("short_*"))  # nothing half-written


def test_zero_frame_video_is_a_clear_error(tmp_path):
    import av

    empty = tmp_path / "empty.mp4"
    with av.open(str(empty), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
    with pytest.raises(VideoDecodeError, match="empty.mp4"):
        run_demo(str(empty), str(tmp_path / "o"), make_predictor(), fixed_detector, progress=False)


# --------------------------------------------------------------------------- drawing
def test_visualizer_draws_box_and_label_background_in_the_box_colour():
    vis = ActionVisualizer(min_short_side=0)
    frame = np.zeros((120, 160, 3), np.uint8)
    out = vis.draw(frame, [BoxLabels((20, 50, 80, 110), [("walk", 0.9), ("jump", 0.4)])])
    color = np.array(vis.color(0))
    assert (out[50, 20:81] == color).all()  # top edge of the box
    label_area = out[:50, 20:80]  # labels sit above the box
    assert (label_area == color).all(-1).sum() > 200  # filled background
    assert (label_area > 200).all(-1).sum() > 10  # white text
    assert not frame.any()  # input untouched
    assert vis.color(1) != vis.color(0)


def test_visualizer_layout_cache_follows_the_labels_and_inplace_draws_on_the_frame():
    vis = ActionVisualizer(min_short_side=0)
    frame = np.random.RandomState(0).randint(0, 255, (120, 160, 3), np.uint8)
    people = [BoxLabels((20, 50, 80, 110), [("walk", 0.9)])]
    first = vis.draw(frame, people)
    np.testing.assert_array_equal(vis.draw(frame, people), first)
    people[0].labels.append(("jump", 0.4))  # the same list, changed: a new layout
    changed = vis.draw(frame, people)
    np.testing.assert_array_equal(changed, ActionVisualizer(min_short_side=0).draw(frame, people))
    assert not np.array_equal(changed, first)
    own = frame.copy()
    assert vis.draw(own, people, inplace=True) is own
    np.testing.assert_array_equal(own, changed)


# --------------------------------------------------------------------------- config + CLI
CONFIG = """
from detectron2.config import LazyCall as L
from vmae_det.data.ava import AVAClipMapper
from vmae_det.data.transforms import build_ava_test_augmentations
from vmae_det.demo.testing import TinyActionModel

model = L(TinyActionModel)(num_classes=3)
dataloader = dict(test=dict(mapper=L(AVAClipMapper)(
    is_train=False, num_classes=3, num_frames=4, sampling_rate=2,
    augmentations=L(build_ava_test_augmentations)(short_edge=32),
)))
"""


def test_cli_loads_config_and_checkpoint_and_renders(video, tmp_path):
    cfg = tmp_path / "tiny_cfg.py"
    cfg.write_text(CONFIG)
    torch.manual_seed(3)
    weights = TinyActionModel(num_classes=3).state_dict()
    torch.save({"model": weights}, tmp_path / "w.pth")
    labelmap = tmp_path / "labels.pbtxt"
    labelmap.write_text(
        'label { name: "walk" label_id: 1 }\nlabel { name: "sit" label_id: 2 }\nlabel { name: "wave" label_id: 3 }\n'
    )
    boxes = tmp_path / "b.csv"
    boxes.write_text("clip one,1,0.1,0.1,0.4,0.9,,0.9\n")
    spec = importlib.util.spec_from_file_location("demo_cli", REPO / "tools" / "demo.py")
    demo_cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo_cli)
    rc = demo_cli.main(
        [
            "--config-file",
            str(cfg),
            "--checkpoint",
            str(tmp_path / "w.pth"),
            "--input",
            str(video),
            "--output",
            str(tmp_path / "o"),
            "--boxes",
            str(boxes),
            "--labelmap",
            str(labelmap),
            "--device",
            "cpu",
            "--no-progress",
            "--top-k",
            "2",
        ]
    )
    assert rc == 0
    predictor = ActionPredictor.from_config(str(cfg), str(tmp_path / "w.pth"), labelmap=str(labelmap), device="cpu")
    assert predictor.class_names == {1: "walk", 2: "sit", 3: "wave"}
    assert (predictor.num_frames, predictor.sampling_rate, predictor.clip_offset) == (4, 2, 0)
    assert predictor.test_short_side == 32 and [type(a).__name__ for a in predictor.augmentations] == [
        "ShortSideResize"
    ]
    assert torch.equal(predictor.model.cls.weight, weights["cls.weight"])  # checkpoint really loaded
    rows = read_rows(tmp_path / "o/clip one_actions.csv")
    assert [r[1] for r in rows] == ["0001"] * 3
    assert (tmp_path / "o/clip one_preview.png").is_file()
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        ActionPredictor.from_config(str(cfg), str(tmp_path / "nope.pth"))


def test_labels_stay_on_the_canvas_for_boxes_at_the_right_edge():
    vis = ActionVisualizer(min_short_side=0)
    out = vis.draw(np.zeros((100, 100, 3), np.uint8), [BoxLabels((85, 40, 99, 90), [("a long label", 0.5)])])
    color = np.array(vis.color(0))
    filled_cols = np.flatnonzero((out[:40] == color).all(-1).any(0))
    assert filled_cols.min() < 85 and filled_cols.max() == 99  # shifted left, not cut off


def test_torchvision_person_detector_from_local_weights_through_the_demo(tmp_path):
    """The --person-detector torchvision --person-weights path, with weights this test creates."""
    from torchvision.models.detection import fasterrcnn_resnet50_fpn

    from vmae_det.demo import build_person_detector

    torch.manual_seed(0)
    weights = tmp_path / "frcnn.pth"
    torch.save(fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None).state_dict(), weights)
    detector = build_person_detector("torchvision", weights=str(weights), device="cpu", score_threshold=0.8)
    video = make_video(tmp_path / "v.mp4", 9, size=(40, 32))
    summary = run_demo(
        str(video), str(tmp_path / "o"), make_predictor(), detector, keyframe_interval=100, progress=False
    )
    # Random weights find nobody above 0.8: the keyframe is written empty, every frame is rendered.
    assert summary["num_keyframes"] == 1 and summary["num_boxes"] == 0 and summary["num_csv_rows"] == 0
    assert sum(1 for _ in VideoStreamReader(summary["outputs"]["video"])) == 9
    data = json.loads(Path(summary["outputs"]["json"]).read_text())
    assert data["keyframes"] == [{"timestamp": 0, "time": 0.0, "frame": 0, "people": []}]
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        build_person_detector("torchvision", weights=str(tmp_path / "missing.pth"))


def _tiny_model_checkpoint(path: Path, num_classes: int = 3, seed: int = 3) -> Path:
    torch.manual_seed(seed)
    torch.save({"model": TinyActionModel(num_classes=num_classes).state_dict()}, path)
    return path


def test_config_without_the_test_mapper_settings_is_a_clear_error(tmp_path):
    weights = _tiny_model_checkpoint(tmp_path / "w.pth")
    head = (
        "from detectron2.config import LazyCall as L\nfrom vmae_det.demo.testing import TinyActionModel\n"
        "model = L(TinyActionModel)(num_classes=3)\n"
    )
    cases = {
        "no_mapper.py": ("dataloader = dict(test=dict(batch_size=1))\n", r"no 'dataloader\.test\.mapper'"),
        "no_test.py": ("", r"no 'dataloader\.test\.mapper'"),
        "no_rate.py": (
            "dataloader = dict(test=dict(mapper=dict(num_frames=4, augmentations=[])))\n",
            r"missing 'dataloader\.test\.mapper\.sampling_rate'",
        ),
        "no_augs.py": (
            "dataloader = dict(test=dict(mapper=dict(num_frames=4, sampling_rate=2, test_short_side=32)))\n",
            r"missing 'dataloader\.test\.mapper\.augmentations'",
        ),
    }
    for name, (body, message) in cases.items():
        cfg = tmp_path / name
        cfg.write_text(head + body)
        with pytest.raises(KeyError, match=rf"{name.replace('.', '[.]')}: {message}"):
            ActionPredictor.from_config(str(cfg), str(weights), device="cpu")
    with pytest.raises(ValueError, match="pass a checkpoint"):
        ActionPredictor.from_config(str(tmp_path / "no_augs.py"), None)


def test_clip_offset_of_the_test_mapper_is_honoured(video, tmp_path):
    cfg = tmp_path / "offset_cfg.py"
    cfg.write_text(CONFIG.replace("sampling_rate=2,", "sampling_rate=2, clip_offset=3,"))
    predictor = ActionPredictor.from_config(str(cfg), str(_tiny_model_checkpoint(tmp_path / "w.pth")), device="cpu")
    assert (predictor.num_frames, predictor.sampling_rate, predictor.clip_offset) == (4, 2, 3)
    assert predictor.clip_indices(30, 75) == [29, 31, 33, 35] and predictor.clip_indices(73, 75) == [72, 74, 74, 74]
    summary = run_demo(
        str(video),
        str(tmp_path / "o"),
        predictor,
        fixed_detector,
        batch_size=2,
        progress=False,
        preview=False,
        render_min_short_side=0,
    )
    data = json.loads(Path(summary["outputs"]["json"]).read_text())
    assert data["clip_offset"] == 3 and [k["frame"] for k in data["keyframes"]] == [0, 30, 60]
    frames = [f for _, f in VideoStreamReader(str(video))]
    for k in data["keyframes"]:
        got = np.array([[p["actions"][str(a)] for a in (1, 2, 3)] for p in k["people"]])
        scores = {}
        for offset in (3, 0):
            idx = clip_indices(k["frame"], 4, 2, len(frames), offset=offset)
            request = predictor.make_request([frames[i] for i in idx], BOXES, np.array([0.9, 0.8], np.float32))
            scores[offset] = predictor([request])[0]
        np.testing.assert_allclose(got, scores[3], atol=1e-6, rtol=0)
        assert np.abs(scores[3] - scores[0]).max() > 1e-4  # the offset really changes the clip


# --------------------------------------------------------------------------- demo = evaluation
TINY_CONFIG = REPO / "configs" / "ava" / "tiny.py"


@pytest.fixture(scope="module")
def tiny_ava(tmp_path_factory) -> Path:
    from datasets_tiny import make_tiny

    return make_tiny(
        tmp_path_factory.mktemp("ava") / "tiny_ava",
        seed=0,
        num_train_videos=1,
        num_val_videos=1,
        seconds=5,
        format="videos",
    )


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """The quick-start detector (configs/ava/tiny.py) with a random but decisive head, as model_final.pth."""
    from detectron2.config import instantiate

    from vmae_det.config import load_config

    torch.manual_seed(0)
    model = instantiate(load_config(str(TINY_CONFIG)).model)
    with torch.no_grad():  # VMAD's head init (0.02 x 0.001) gives ~0.5 everywhere: scores would barely differ
        for p in model.head.parameters():
            p.normal_(0.0, 0.5)
    path = tmp_path_factory.mktemp("ckpt") / "model_final.pth"
    torch.save({"model": model.state_dict(), "iteration": 0}, path)
    return path


def test_demo_scores_equal_the_evaluation_scores(tiny_ava, tiny_checkpoint, tmp_path):
    """The tiny AVA val video with its GT boxes: the evaluation (AVAClipMapper of configs/ava/tiny.py on
    the video file, PyAV, test_box_source="gt", then the model) and the demo (run_demo with the same boxes
    as a CSV, and ActionPredictor on the streamed frames) give the same clips, boxes and scores."""
    from detectron2.config import instantiate

    from vmae_det.config import load_config
    from vmae_det.data.ava import load_ava_dicts
    from vmae_det.formats.ava import keyframe_index

    cfg = load_config(
        str(TINY_CONFIG), ["dataloader.test.mapper.test_box_source=gt", "dataloader.test.mapper.video_backend=pyav"]
    )
    mapper = instantiate(cfg.dataloader.test.mapper)
    predictor = ActionPredictor.from_config(str(TINY_CONFIG), str(tiny_checkpoint), device="cpu")
    assert (predictor.num_frames, predictor.sampling_rate, predictor.clip_offset) == (8, 2, 1)
    assert (mapper.num_frames, mapper.sampling_rate, mapper.clip_offset) == (8, 2, 1)
    assert predictor.clip_size(96, 128) == (64, 85)  # ShortSideResize(64): cv2, long side truncated

    vid = "tinyval000"
    video = tiny_ava / "videos" / f"{vid}.mp4"
    dicts = [d for d in load_ava_dicts(tiny_ava, "val", source="videos") if d["video_id"] == vid]
    assert len(dicts) >= 2 and all(d.get("video_path") and not d.get("frames_dir") for d in dicts)
    frames = [f for _, f in VideoStreamReader(str(video))]  # what the demo decodes
    h, w = frames[0].shape[:2]
    transform = predictor.frame_transform(h, w)
    assert transform is not None and (transform.out_height, transform.out_width) == (64, 85)
    expected, gt_boxes = {}, {}
    for d in dicts:
        ts = d["timestamp"]
        inp = mapper(d)  # the evaluation
        with torch.no_grad():
            expected[ts] = predictor.model([inp])[0]["scores"].numpy()
        gt_boxes[ts] = np.array([a["bbox"] for a in d["annotations"]], np.float32)
        assert len(inp["boxes"]) == len(gt_boxes[ts]) > 0
        # The demo's own path on the same keyframe: identical model input, identical scores.
        idx = predictor.clip_indices(keyframe_index(ts), len(frames))
        request = predictor.make_request(
            [frames[i] for i in idx],
            gt_boxes[ts] * np.array([w, h, w, h], np.float32),
            np.ones(len(gt_boxes[ts]), np.float32),
            vid,
            ts,
        )
        assert torch.equal(request.clip, inp["clip"])
        np.testing.assert_array_equal(request.boxes, inp["boxes"].numpy())
        np.testing.assert_allclose(predictor([request])[0], expected[ts], atol=1e-6, rtol=0)
        # What run_demo does: each frame shrunk once, when decoded, by the same transform; clips stacked later.
        small = [transform.apply(frames[i]) for i in idx]
        streamed = predictor.make_request_from_transformed(
            small,
            transform,
            gt_boxes[ts] * np.array([w, h, w, h], np.float32),
            np.ones(len(gt_boxes[ts]), np.float32),
            vid,
            ts,
        )
        assert torch.equal(streamed.clip, inp["clip"])
        np.testing.assert_array_equal(streamed.boxes, inp["boxes"].numpy())
    all_scores = np.concatenate(list(expected.values()))
    assert all_scores.std(0).max() > 1e-2  # scores differ between people and keyframes

    # run_demo end to end, the GT boxes given as a box CSV (AVA timestamps: frame 0 is second 900).
    boxes_csv = tmp_path / "gt_boxes.csv"
    rows = read_rows(tiny_ava / "annotations" / "ava_val_v2.2.csv")
    boxes_csv.write_text("".join(",".join(r[:6] + ["", "1.0"]) + "\n" for r in rows))
    summary = run_demo(
        str(video),
        str(tmp_path / "demo"),
        predictor,
        str(boxes_csv),
        batch_size=2,
        progress=False,
        preview=False,
        render_min_short_side=0,
    )
    assert summary["max_model_frames_in_memory"] > 0  # clips were built from the per-frame copies
    data = json.loads(Path(summary["outputs"]["json"]).read_text())
    assert data["time_offset"] == 900 and data["clip_offset"] == 1
    seen = set()
    for k in data["keyframes"]:
        ts = k["timestamp"]
        if ts not in expected:  # no boxes, or excluded from the evaluation
            continue
        seen.add(ts)
        assert k["frame"] == keyframe_index(ts) == (ts - 900) * 30  # same keyframe as the evaluation
        assert len(k["people"]) == len(gt_boxes[ts])
        for person in k["people"]:
            g = int(np.abs(gt_boxes[ts] - np.array(person["box"])).max(1).argmin())
            np.testing.assert_allclose(person["box"], gt_boxes[ts][g], atol=1e-6)
            got = [person["actions"][str(a)] for a in range(1, expected[ts].shape[1] + 1)]
            np.testing.assert_allclose(got, expected[ts][g], atol=1e-6, rtol=0)  # JSON keeps 6 decimals
    assert seen == set(expected)


# --------------------------------------------------------------------------- time axis (presentation timestamps)
def make_timed_video(path: Path, pts, rate, size=(64, 48), codec="mpeg4", rotation=None) -> Path:
    """Frame ``k`` is flat grey ``level(k)`` and has presentation time ``pts[k]`` (in units of ``1/rate``)."""
    from fractions import Fraction

    import av

    w, h = size
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.bit_rate = 20_000_000  # grey levels 3 apart must survive the encoder
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for k, p in enumerate(pts):
            img = np.full((h, w, 3), level(k), np.uint8)
            img[: h // 4, : w // 4] = 255  # top-left marker, to see rotations
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = int(p), Fraction(1, rate)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def level(k: int) -> int:
    return 10 + 3 * (k % 80)


def which_frame(img: np.ndarray) -> int:
    """The ``k`` of a frame written by :func:`make_timed_video` (its grey level, away from the marker)."""
    return int(round((float(np.median(img[img.shape[0] // 2 :, img.shape[1] // 2 :])) - 10) / 3))


def nearest(pts, t) -> int:
    """Index of the timestamp nearest to ``t``, ties to the earlier frame (an independent re-statement)."""
    return min(range(len(pts)), key=lambda k: (abs(pts[k] - t), k))


SPARSE_PTS = sorted(set([0] + list(np.random.RandomState(0).choice(np.arange(1, 444), 67, replace=False))))
VFR_PTS = list(range(0, 30)) + list(range(30, 90, 3))  # 1 s at 30 fps, then 2 s at 10 fps


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
        str(path),
        str(tmp_path / "o"),
        make_predictor(),
        detector,
        progress=False,
        render_min_short_side=0,
        preview=False,
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
        str(path),
        str(tmp_path / "o"),
        make_predictor(),
        fixed_detector,
        progress=False,
        render_min_short_side=0,
        preview=False,
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
        str(cut),
        str(tmp_path / "o"),
        make_predictor(),
        fixed_detector,
        progress=False,
        render_min_short_side=0,
        preview=False,
    )
    assert "cut.mkv: damaged tail" in caplog.text and "header promises 3.00 s" in caplog.text
    assert 0.5 < summary["damaged_tail_seconds"] < 3 and summary["num_frames"] < 90
    caplog.clear()
    assert (
        run_demo(
            str(full),
            str(tmp_path / "o"),
            make_predictor(),
            fixed_detector,
            progress=False,
            render_min_short_side=0,
            preview=False,
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
        run_demo(str(joined), str(tmp_path / "o"), make_predictor(), fixed_detector, progress=False)
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


def test_clips_span_the_model_time_when_the_video_runs_at_another_rate(tmp_path):
    s = KeyframeSchedule(fps=10, num_frames=4, stride=3, model_fps=30)
    assert s.resampled and s.clip_indices(50) == [48, 49, 50, 51] and s.span == 4  # -6,-3,0,3 model frames
    assert KeyframeSchedule(fps=60, num_frames=4, stride=3, model_fps=30).clip_indices(50) == [38, 44, 50, 56]
    assert KeyframeSchedule(fps=10, num_frames=4, stride=3, model_fps=30).clip_indices(1) == [0, 0, 1, 2]
    same = KeyframeSchedule(fps=30, num_frames=4, stride=3, model_fps=30, offset=1)
    assert not same.resampled and same.clip_indices(50) == clip_indices(50, 4, 3, 10**6, offset=1).tolist()

    video = make_video(tmp_path / "ten.mp4", 40, fps=10)  # 4 s at 10 fps
    predictor = make_predictor(num_frames=4, stride=2)
    frames = [f for _, f in VideoStreamReader(str(video))]
    for model_fps, expected in ((30, [19, 19, 20, 21]), (10, [16, 18, 20, 22])):
        summary = run_demo(
            str(video),
            str(tmp_path / f"o{model_fps}"),
            predictor,
            fixed_detector,
            model_fps=model_fps,
            progress=False,
            preview=False,
            render_min_short_side=0,
        )
        data = json.loads(Path(summary["outputs"]["json"]).read_text())
        assert data["clips_resampled"] == (model_fps == 30)
        assert data["clip_seconds"] == pytest.approx(8 / model_fps, abs=1e-6)
        assert data["keyframes"][2]["frame"] == 20  # second 2
        clip, boxes = predictor.prepare_clip([frames[i] for i in expected], BOXES)
        with torch.no_grad():
            want = predictor.model(
                [
                    {
                        "clip": clip,
                        "boxes": torch.from_numpy(boxes),
                        "box_scores": torch.tensor([0.9, 0.8]),
                        "clip_size": tuple(clip.shape[-2:]),
                    }
                ]
            )[0]["scores"].numpy()
        got = [[p["actions"][str(a)] for a in (1, 2, 3)] for p in data["keyframes"][2]["people"]]
        np.testing.assert_allclose(got, want, atol=2e-6)


# --------------------------------------------------------------------------- outputs: all or nothing
def _snapshot(folder: Path):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_failed_rerun_keeps_earlier_results_and_leaves_no_partial_files(video, tmp_path):
    out = tmp_path / "o"
    run_demo(str(video), str(out), make_predictor(), fixed_detector, progress=False, render_min_short_side=0)
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
        run_demo(str(video), str(out), broken, fixed_detector, progress=False, render_min_short_side=0)
    assert _snapshot(out) == before

    def nan_scores(frame):
        return BOXES.copy(), np.array([0.9, np.nan], np.float32)

    summary = run_demo(
        str(video), str(out), make_predictor(), nan_scores, progress=False, preview=False, render_min_short_side=0
    )
    assert summary["detector_boxes_nonfinite"] == 3 and summary["num_boxes"] == 3  # one person per keyframe
    assert sorted(p.name for p in out.iterdir()) == sorted(set(before) - {"clip one_preview.png"})  # stale preview gone


def test_an_encoder_that_refuses_the_frame_size_is_a_clear_error_before_any_work(tmp_path, monkeypatch):
    from vmae_det.demo import VideoStreamWriter, VideoWriteError

    with pytest.raises(VideoWriteError, match=r"big\.mp4: cannot encode 360x46080 frames"):
        VideoStreamWriter(str(tmp_path / "big.mp4"), 30, 360, 46080)
    assert not (tmp_path / "big.mp4").exists()

    tall = make_timed_video(tmp_path / "tall.mp4", range(10), 30, size=(16, 2048))  # 360-px short side: 46,080 tall
    out = tmp_path / "o"
    summary = run_demo(str(tall), str(out), make_predictor(), fixed_detector, progress=False, preview=False)
    reader = VideoStreamReader(summary["outputs"]["video"])
    assert (reader.width, reader.height) == (32, 4096)  # upscaling stops at a 4096-px long side
    before = _snapshot(out)
    monkeypatch.setattr(ActionVisualizer, "_scale", lambda self, h, w: 360 / min(h, w))  # without the cap
    calls = []
    with pytest.raises(VideoWriteError, match="360x46080"):
        run_demo(str(tall), str(out), make_predictor(), lambda f: calls.append(1) or fixed_detector(f), progress=False)
    assert calls == [] and _snapshot(out) == before


SLOW_RUN = """
import signal, sys, time
# Ctrl-C as in a terminal: a test runner started in the background (SIGINT ignored) passes that on to its children.
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.path.insert(0, {tests!r})
from test_demo import fixed_detector, make_predictor
from vmae_det.demo import run_demo

calls = 0

def slow(frame):
    global calls
    calls += 1
    open({marks!r} + "/" + str(calls), "w").close()  # the test signals only once the run is under way
    time.sleep(0.3)
    return fixed_detector(frame)

run_demo({video!r}, {out!r}, make_predictor(), slow, keyframe_interval=3, progress=False, render_min_short_side=0)
"""


@pytest.mark.parametrize("how", ["SIGINT", "SIGKILL"])
def test_interrupted_rerun_never_touches_earlier_results(video, tmp_path, how):
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "o"
    run_demo(str(video), str(out), make_predictor(), fixed_detector, progress=False, render_min_short_side=0)
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
            str(video), str(out), make_predictor(), fixed_detector, progress=False, render_min_short_side=0
        )
        assert summary["partial_outputs_removed"] == len(partial)
        assert not any(".partial-" in p.name for p in out.iterdir())


# --------------------------------------------------------------------------- box CSV rules
def _source(tmp_path, text, **kw):
    from vmae_det.demo import CsvBoxSource

    path = tmp_path / "boxes.csv"
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return CsvBoxSource(str(path), "v", **kw).bind(KeyframeSchedule(fps=30, num_frames=4, stride=2))


def _boxes(source, j):
    return source.boxes_for(j, np.zeros((100, 100, 3), np.uint8))


def test_box_csv_with_a_byte_order_mark_keeps_its_first_row(tmp_path):
    src = _source(tmp_path, "\ufeffv,0,0.1,0.1,0.5,0.5,,0.9\nv,0,0.6,0.1,0.9,0.5,,0.9\n")
    assert len(_boxes(src, 0)[0]) == 2 and src.rows_other_videos == 0


def test_box_csv_keeps_only_this_videos_rows_while_reading(tmp_path):
    """A large box CSV (a whole ava_val_v2.2.csv) is streamed and filtered while read: memory for this video's
    rows only (issue 19 item 7: 2M rows, 11 of them this video's, cost 2.9 GB). 200,000 rows of other videos:
    tracemalloc peak 159 MB when every row was held, 0.04 MB streamed."""
    import tracemalloc

    from vmae_det.demo import CsvBoxSource

    path = tmp_path / "big.csv"
    with open(path, "w") as f:
        f.writelines(f"other{i % 500:03d},{902 + i % 900},0.1,0.2,0.5,0.9,,0.5\n" for i in range(200_000))
        f.writelines(f"v,{k},0.1,0.1,0.4,0.9,,0.9\n" for k in range(3))
    tracemalloc.start()
    try:
        src = CsvBoxSource(str(path), "v")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert src.rows_other_videos == 200_000 and [r[0] for r in src._rows] == [200_001, 200_002, 200_003]
    assert peak < 5e6, f"{peak / 1e6:.1f} MB: rows of other videos were held"


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_box_csv_with_a_non_finite_number_names_file_and_line(tmp_path, value):
    with pytest.raises(BoxFileError, match=rf"boxes\.csv:2: score must be finite, got '{value}'"):
        _source(tmp_path, f"v,0,0.1,0.1,0.5,0.5,,0.9\nv,0,0.6,0.1,0.9,0.5,,{value}\n")
    with pytest.raises(BoxFileError, match=r"boxes\.csv:1: timestamp must be finite"):
        _source(tmp_path, f"v,{value},0.1,0.1,0.5,0.5,,0.9\n")
    with pytest.raises(BoxFileError, match=r"boxes\.csv:1: box coordinates must be finite"):
        _source(tmp_path, f"v,0,0.1,{value},0.5,0.5,,0.9\n")


def test_box_csv_person_score_threshold_and_range(tmp_path):
    src = _source(tmp_path, "v,0,0.1,0.1,0.5,0.5,,0.9\nv,0,0.6,0.1,0.9,0.5,,0.3\n", score_threshold=0.5)
    boxes, scores = _boxes(src, 0)
    assert scores.tolist() == pytest.approx([0.9]) and src.boxes_below_threshold == 1
    with pytest.raises(BoxFileError, match=r"boxes\.csv:1: person score 1\.5 is outside \[0, 1\]$"):
        _source(tmp_path, "v,0,0.1,0.1,0.5,0.5,,1.5\n")


def test_ground_truth_csv_is_told_from_detections_by_its_integer_columns(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    gt = (
        "v,0,0.1,0.1,0.5,0.5,12,0\n"  # person 0: would have been score 0 (all-zero action scores)
        "v,0,0.1,0.1,0.5,0.5,80,0\n"  # same person, another action
        "w,3,0.6,0.1,0.9,0.5,5,7\n"
        "v,0,0.6,0.1,0.9,0.5,12,7\n"
    )
    src = _source(tmp_path, gt)
    assert src.is_ground_truth and "read as AVA ground truth" in caplog.text
    boxes, scores = _boxes(src, 0)
    assert len(boxes) == 2 and scores.tolist() == [1.0, 1.0]
    # The same boxes as a detections file (SlowFast style, empty action and a fractional score).
    det = _source(tmp_path, "v,0,0.1,0.1,0.5,0.5,,0.0\nv,0,0.6,0.1,0.9,0.5,,1.0\n")
    assert not det.is_ground_truth and _boxes(det, 0)[1].tolist() == [0.0, 1.0]
    # This demo's own output (action id + 6-decimal score) is detections too.
    assert not _source(tmp_path, "v,0000,0.100,0.100,0.500,0.500,3,0.731058\n").is_ground_truth
    # Forced: a GT file read as detections has person ids > 1 as "scores": refused with the hint.
    with pytest.raises(BoxFileError, match=r"boxes\.csv:4: person score 7 is outside \[0, 1\].*--boxes-format gt"):
        _source(tmp_path, gt, box_format="detections")
    forced = _source(tmp_path, "v,0,0.1,0.1,0.5,0.5,1,1\nv,0,0.6,0.1,0.9,0.5,1,0\n", box_format="detections")
    assert _boxes(forced, 0)[1].tolist() == [1.0, 0.0]


def test_a_whole_ground_truth_file_through_the_demo(video, tmp_path):
    gt = tmp_path / "ava_val_v2.2.csv"
    gt.write_text(
        "clip one,1,0.1,0.1,0.4,0.9,12,0\nclip one,1,0.1,0.1,0.4,0.9,17,0\nclip one,1,0.5,0.2,0.9,0.8,12,1\n"
        "another,902,0.1,0.1,0.2,0.2,1,0\n"
    )
    det = tmp_path / "det.csv"
    det.write_text("clip one,1,0.1,0.1,0.4,0.9,,1.0\nclip one,1,0.5,0.2,0.9,0.8,,1.0\n")
    a = run_demo(str(video), str(tmp_path / "a"), make_predictor(), str(gt), time_offset=0, progress=False)
    b = run_demo(str(video), str(tmp_path / "b"), make_predictor(), str(det), time_offset=0, progress=False)
    assert a["num_boxes"] == 2 and a["csv_rows_other_videos"] == 1
    rows = read_rows(a["outputs"]["csv"])
    assert rows == read_rows(b["outputs"]["csv"]) and min(float(r[7]) for r in rows) > 0


def test_bad_settings_are_refused_before_anything_is_opened(video, tmp_path):
    from vmae_det.demo import DemoArgumentError

    cases = [
        ({"keyframe_interval": float("inf")}, r"keyframe_interval \(--keyframe-interval\) must be a finite"),
        ({"keyframe_interval": 0.5}, "keyframe_interval"),
        ({"time_offset": float("nan")}, "time_offset"),
        ({"batch_size": 0}, r"batch_size \(--batch-size\) must be an integer >= 1, got 0"),
        ({"top_k": -1}, "top_k"),
        ({"score_threshold": float("nan")}, "score_threshold"),
        ({"person_score_threshold": 2.0}, "person_score_threshold"),
        ({"model_fps": 0}, "model_fps"),
    ]
    for kwargs, message in cases:
        with pytest.raises(DemoArgumentError, match=message):
            run_demo(str(tmp_path / "missing.mp4"), str(tmp_path / "o"), make_predictor(), fixed_detector, **kwargs)
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(OSError, match="is an existing file, not a folder"):
        run_demo(str(video), str(afile), make_predictor(), fixed_detector, progress=False)
    assert afile.read_text() == "x" and not (tmp_path / "o").exists()


# --------------------------------------------------------------------------- the streaming pieces, one by one
class _CountingTransform:
    """A stand-in FrameTransform: halves the frame, counts its calls."""

    def __init__(self):
        self.calls = 0

    def apply(self, frame):
        self.calls += 1
        return frame[::2, ::2].copy()


def test_clip_frame_buffer_transforms_each_decoded_frame_once_and_forgets_from_the_front():
    from vmae_det.demo.clip_buffer import ClipFrameBuffer

    transform = _CountingTransform()
    buf = ClipFrameBuffer(transform)
    frames = [np.full((4, 6, 3), i, np.uint8) for i in range(5)]
    for f in frames[:3] + [frames[2]] + frames[3:]:  # grid frame 3 repeats decoded frame 2 (same array)
        buf.push(f)
    assert len(buf) == 6 and buf.base == 0 and transform.calls == 5
    got = buf.frames([0, 2, 3, 5])
    assert [int(f[0, 0, 0]) for f in got] == [0, 2, 2, 4] and got[0].shape == (2, 3, 3)
    assert got[1] is got[2]  # the repeat shares the small copy
    buf.forget_before(4)
    assert buf.base == 4 and len(buf) == 2 and int(buf.frames([4])[0][0, 0, 0]) == 3
    buf.forget_before(2)  # never backwards
    assert buf.base == 4
    buf.clear()
    assert len(buf) == 0
    raw = ClipFrameBuffer(None)  # a random test transform: full frames, as pushed
    raw.push(frames[1])
    assert raw.frames([0])[0] is frames[1] and raw.transform is None


def test_render_source_is_held_frames_unless_one_keyframe_backlog_passes_the_budget(video):
    from vmae_det.demo.render_source import HeldFrames, SecondDecodePass, open_render_source

    schedule = KeyframeSchedule(fps=30, num_frames=4, stride=2)  # keyframe 0's clip ends at frame 2
    frame = np.zeros((64, 96, 3), np.uint8)
    held = open_render_source(frame, schedule, str(video), budget_bytes=3 * frame.nbytes)
    assert isinstance(held, HeldFrames) and held.name == "frames held"
    a, b = frame.copy(), frame.copy()
    held.push(a)
    held.push(b)
    assert held.num_alive == 2 and held.backlog_bytes == 2 * frame.nbytes
    taken, owned = held.take(0)
    assert taken is a and not owned and held.num_alive == 1
    held.close()
    assert held.num_alive == 0

    second = open_render_source(frame, schedule, str(video), budget_bytes=3 * frame.nbytes - 1)
    try:
        assert isinstance(second, SecondDecodePass) and second.name == "second decoding pass"
        second.push(frame)  # nothing is kept
        assert second.backlog_bytes == 0 and second.num_alive == 2
        expected = [f for _, f in VideoStreamReader(str(video))]
        for i in range(3):
            got, owned = second.take(i)
            assert owned
            np.testing.assert_array_equal(got, expected[i])
        with pytest.raises(VideoDecodeError, match="gave grid frame 3 where 5 was expected"):
            second.take(5)
    finally:
        second.close()


def test_second_decode_pass_gives_a_fresh_array_for_a_repeated_grid_frame(tmp_path):
    from vmae_det.demo.render_source import SecondDecodePass

    path = make_timed_video(tmp_path / "gaps.mp4", SPARSE_PTS[:12], 15)
    reader = VideoStreamReader(str(path))
    grid = [f for _, f in reader]
    assert reader.stats["repeated"] > 0
    source = SecondDecodePass(str(path))
    try:
        seen = []
        for i, expected in enumerate(grid):
            got, owned = source.take(i)
            np.testing.assert_array_equal(got, expected)
            assert owned and all(got is not s for s in seen)  # the caller draws on it
            got[:] = 0  # a drawing must not show on a repeat of this frame
            seen.append(got)
    finally:
        source.close()


def test_keyframe_finder_asks_for_people_once_per_keyframe_on_its_own_frame():
    from vmae_det.demo.keyframe_batches import KeyframeFinder

    schedule = KeyframeSchedule(fps=10, interval=2.5, num_frames=4, stride=2)  # keyframes at 0, 2, 5, 8
    asked = []

    class Persons:
        def boxes_for(self, j, frame):
            asked.append((j, int(frame[0, 0, 0])))
            return BOXES[: j % 3], np.full(j % 3, 0.9, np.float32)

    found = []
    finder = KeyframeFinder(schedule, Persons(), found.append)
    for i in range(9):
        finder.push(i, np.full((2, 2, 3), i, np.uint8))
    assert asked == [(0, 0), (1, 2), (2, 5), (3, 8)]
    assert [(p.j, p.frame, len(p.boxes), p.last_needed) for p in found] == [
        (0, 0, 0, 2),
        (1, 2, 1, 4),
        (2, 5, 2, 7),
        (3, 8, 0, 10),
    ]
    assert finder.num_found == 4 and finder.next_frame == 10


class _FakePredictor:
    """Records the model calls; a request is its clip's frame numbers, scores say which keyframe they are."""

    def __init__(self):
        self.calls = []

    def make_request(self, frames, boxes, box_scores, video_id, timestamp):
        return ([int(f[0, 0, 0]) for f in frames], len(boxes), timestamp)

    def __call__(self, requests):
        self.calls.append(list(requests))
        return [np.full((n, 2), ts, np.float32) for _, n, ts in requests]


def _batcher(batch_size, scored):
    from vmae_det.demo.clip_buffer import ClipFrameBuffer
    from vmae_det.demo.keyframe_batches import KeyframeBatcher

    schedule = KeyframeSchedule(fps=1, interval=2, num_frames=2, stride=2)  # clip of k: frames k-2, k
    clips = ClipFrameBuffer(None)
    predictor = _FakePredictor()
    return schedule, clips, predictor, KeyframeBatcher(schedule, predictor, clips, "vid", batch_size, scored)


def _keyframe(schedule, j, people):
    from vmae_det.demo.keyframe_batches import PendingKeyframe

    k = schedule.frame_of(j)
    return PendingKeyframe(j, k, BOXES[:people], np.full(people, 0.9, np.float32), schedule.last_needed(k))


def test_keyframe_batcher_waits_for_clips_fills_batches_and_keeps_keyframe_order():
    out = []
    schedule, clips, predictor, batcher = _batcher(2, lambda p, s: out.append((p.j, s.shape, float(s.max(initial=-1)))))
    people = [2, 0, 1, 1, 2]  # keyframe 1 has nobody: no model input, but its place in the order is kept
    for i in range(10):
        clips.push(np.full((1, 1, 3), i, np.uint8))
        if i % 2 == 0:
            batcher.add(_keyframe(schedule, i // 2, people[i // 2]))
        batcher.advance(i)
        if i == 0:
            assert out == [] and len(batcher.waiting) == 0 and batcher.batch_requests == 1  # clip complete, batch not
    # keyframes 0 and 2 fill the first batch (keyframe 1 rides along); 3 and 4 the second one
    assert [[r[0] for r in call] for call in predictor.calls] == [[[0, 0], [2, 4]], [[4, 6], [6, 8]]]
    # scores carry the request's timestamp: keyframe j is at second 2 * j
    assert out == [(0, (2, 2), 0.0), (1, (0, 0), -1.0), (2, (1, 2), 4.0), (3, (1, 2), 6.0), (4, (2, 2), 8.0)]
    assert batcher.num_early_batches == 0 and batcher.oldest_frame(default=10) == 10


def test_keyframe_batcher_runs_early_over_budget_and_clamps_clips_at_the_end():
    out = []
    schedule, clips, predictor, batcher = _batcher(4, lambda p, s: out.append(p.j))
    for i in range(3):
        clips.push(np.full((1, 1, 3), i, np.uint8))
    for j in range(3):
        batcher.add(_keyframe(schedule, j, 1))
    batcher.advance(2)  # keyframes 0 and 1 join the batch; keyframe 2 (frame 4) waits for its clip
    assert out == [] and batcher.batch_requests == 2 and batcher.oldest_frame(default=99) == 4
    batcher.advance(2, over_budget=True)  # the frames waiting for their labels weigh too much
    assert out == [0, 1] and batcher.num_early_batches == 1
    batcher.advance(2, num_frames=3)  # the video ended: keyframe 2's clip is clamped to frame 2
    assert out == [0, 1, 2] and predictor.calls[-1][0][0] == [2, 2] and batcher.num_early_batches == 1
    none = []
    _, _, predictor, batcher = _batcher(4, lambda p, s: none.append(p.j))
    batcher.add(_keyframe(schedule, 0, 0))
    batcher.advance(5)  # a batch without people has nothing to wait for
    assert none == [0] and predictor.calls == []


def test_top_labels_keep_the_best_k_above_the_threshold_with_names():
    from vmae_det.demo.renderer import top_labels

    scores = np.array([[0.1, 0.7, 0.5], [0.9, 0.2, 0.05]], np.float32)
    people = top_labels(BOXES, scores, {1: "walk", 2: "stand"}, top_k=2, threshold=0.3)
    assert [p.box for p in people] == [(4.0, 6.0, 30.0, 44.0), (40.0, 2.0, 90.0, 60.0)]
    assert [[(n, round(s, 2)) for n, s in p.labels] for p in people] == [
        [("stand", 0.7), ("action 3", 0.5)],
        [("walk", 0.9)],
    ]
    assert top_labels(np.zeros((0, 4)), np.zeros((0, 3)), {}, 3, 0.0) == []


def test_frame_renderer_draws_in_order_as_far_as_labels_are_known(tmp_path):
    from vmae_det.demo.render_source import HeldFrames
    from vmae_det.demo.renderer import FrameRenderer

    class Writer:
        def __init__(self):
            self.frames, self.closed = [], False

        def write(self, frame):
            self.frames.append(frame)

        def close(self):
            self.closed = True

    schedule = KeyframeSchedule(fps=1, interval=3)  # keyframes at frames 0, 3, 6
    preview = tmp_path / "p.png"
    renderer = FrameRenderer(schedule, ActionVisualizer(0), str(preview))
    renderer.video_writer = writer = Writer()
    source = HeldFrames(64 * 96 * 3)
    for i in range(8):
        source.push(np.zeros((64, 96, 3), np.uint8))
    renderer.render(7, source)
    assert renderer.next_frame == 0  # keyframe 0's labels are not known yet
    renderer.add_labels(0, [])
    renderer.add_labels(2, [BoxLabels((4, 6, 30, 44), [("walk", 0.9)])])  # out of order: held until reached
    renderer.render(7, source)
    assert renderer.next_frame == 3 and len(writer.frames) == 3 and not renderer.preview_written
    renderer.add_labels(1, [BoxLabels((4, 6, 30, 44), [])])
    renderer.render(4, source)
    assert renderer.next_frame == 5 and not renderer.preview_written  # a box without labels: no preview yet
    with pytest.raises(RuntimeError, match="rendered 5 of 8 frames"):
        renderer.finish(8)
    renderer.render(7, source)
    assert renderer.next_frame == 8 and renderer.preview_written and preview.exists()
    assert not any(f.any() for f in writer.frames[:3]) and writer.frames[3].any()  # keyframe 1's box from frame 3
    assert not np.array_equal(writer.frames[5], writer.frames[6])  # keyframe 2's label from frame 6 on
    renderer.finish(8)
    assert writer.closed and source.num_alive == 0
