"""The streaming demo: keyframe grid, outputs (mp4/CSV/JSON/PNG), scores (= the evaluation's), memory
bound, bad input, CLI."""
from __future__ import annotations

import csv
import importlib.util
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import vmae_det  # noqa: F401  (detectron2 shims first)
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
from vmae_det.data.ava.clip_source import clip_indices
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
        frame[10:40, x:x + 16] = (30, 200, 250)
        writer.write(frame)
    writer.release()
    return path


def make_predictor(num_frames=4, stride=2, short_side=32, seed=0) -> ActionPredictor:
    torch.manual_seed(seed)
    return ActionPredictor(TinyActionModel(num_classes=3), num_frames=num_frames, sampling_rate=stride,
                           test_short_side=short_side, class_names=NAMES, device="cpu")


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
    summary = run_demo(str(video), str(out), make_predictor(), fixed_detector, batch_size=2,
                       render_min_short_side=128, progress=False)
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
    triples = [(k["timestamp"], a, round(s, 6)) for k in data["keyframes"] for p in k["people"]
               for a, s in p["actions"].items()]
    assert triples == [(int(r[1]), r[6], round(float(r[7]), 6)) for r in rows]
    assert data["summary"]["num_frames"] == 75

    # preview: a rendered frame with the first box's colour on it
    png = cv2.imread(str(out / f"{stem}_preview.png"))[:, :, ::-1]
    assert png.shape == (128, 192, 3)
    color = np.array(ActionVisualizer().color(0))
    assert (np.abs(png.astype(int) - color).sum(-1) < 10).sum() > 100


def test_scores_equal_a_direct_model_call_on_the_centred_clip(video, tmp_path):
    predictor = make_predictor()
    run_demo(str(video), str(tmp_path), predictor, fixed_detector, keyframe_interval=20, batch_size=3,
             progress=False)
    rows = read_rows(tmp_path / "clip one_actions.csv")
    frames = [f for _, f in VideoStreamReader(str(video))]
    schedule = KeyframeSchedule(fps=30, interval=20, num_frames=4, stride=2)
    for j, keyframe in enumerate([0, 20, 40, 60]):
        clip, boxes = predictor.prepare_clip([frames[i] for i in schedule.clip_indices(keyframe, 75)], BOXES)
        assert clip.shape[-2:] == (32, 48) == predictor.clip_size(64, 96)
        np.testing.assert_allclose(boxes, BOXES / 2)
        model_in = {"clip": clip, "boxes": torch.from_numpy(boxes),
                    "box_scores": torch.tensor([0.9, 0.8]), "clip_size": tuple(clip.shape[-2:])}
        expected = predictor.model([model_in])[0]["scores"].detach().numpy().ravel()
        got = np.array([float(r[7]) for r in rows[6 * j:6 * (j + 1)]])
        np.testing.assert_allclose(got, expected, atol=2e-6)


def test_batch_size_does_not_change_results(video, tmp_path):
    for b in (1, 4):
        run_demo(str(video), str(tmp_path / f"b{b}"), make_predictor(), fixed_detector, batch_size=b,
                 keyframe_interval=10, progress=False, preview=False)
    assert read_rows(tmp_path / "b1/clip one_actions.csv") == read_rows(tmp_path / "b4/clip one_actions.csv")


def test_frames_held_in_memory_do_not_grow_with_video_length(tmp_path):
    held = []
    for n in (60, 240):
        path = make_video(tmp_path / f"v{n}.mp4", n, size=(32, 32))
        summary = run_demo(str(path), str(tmp_path / f"o{n}"), make_predictor(num_frames=4, stride=3),
                           fixed_detector, keyframe_interval=5, batch_size=2, render_min_short_side=0,
                           progress=False, preview=False)
        assert summary["num_frames"] == n
        held.append(summary["max_frames_in_memory"])
    assert held[0] == held[1]
    assert held[1] <= 4 * 3 + 2 * 5 + 1  # clip span + batch x interval (+ the frame being decoded)


# --------------------------------------------------------------------------- box CSVs
def test_boxes_from_csv_with_ava_offset_merging_and_skips(video, tmp_path, caplog):
    boxes = tmp_path / "boxes.csv"
    boxes.write_text(
        "clip one,900,0.1,0.1,0.4,0.9,1,1\n"     # keyframe 0
        "clip one,900,0.1,0.1,0.4,0.9,3,1\n"     # same person, another action: merged
        "other,901,0.1,0.1,0.2,0.2,,0.5\n"       # another video: ignored
        "clip one,902,0.5,0.2,0.9,0.8,,0.75\n"   # keyframe 2, predicted-box style
        "clip one,905,0.5,0.2,0.9,0.8,,0.75\n"   # past the end (75 frames): logged skip
    )
    summary = run_demo(str(video), str(tmp_path / "o"), make_predictor(), str(boxes), progress=False)
    assert summary["csv_keyframes_past_end"] == 1 and summary["csv_rows_other_videos"] == 1
    assert "boxes.csv:5: skipped" in caplog.text
    rows = read_rows(tmp_path / "o/clip one_actions.csv")
    assert sorted({(r[1], r[2]) for r in rows}) == [("0900", "0.100"), ("0902", "0.500")]
    assert len(rows) == 6
    keyframe_2 = [float(r[7]) for r in rows if r[1] == "0902"]
    assert max(keyframe_2) <= 0.75


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
    assert (out[50, 20:81] == color).all()            # top edge of the box
    label_area = out[:50, 20:80]                       # labels sit above the box
    assert (label_area == color).all(-1).sum() > 200   # filled background
    assert (label_area > 200).all(-1).sum() > 10       # white text
    assert not frame.any()                             # input untouched
    assert vis.color(1) != vis.color(0)


# --------------------------------------------------------------------------- config + CLI
CONFIG = '''
from detectron2.config import LazyCall as L
from vmae_det.data.ava import AVAClipMapper
from vmae_det.data.transforms import build_ava_test_augmentations
from vmae_det.demo.testing import TinyActionModel

model = L(TinyActionModel)(num_classes=3)
dataloader = dict(test=dict(mapper=L(AVAClipMapper)(
    is_train=False, num_classes=3, num_frames=4, sampling_rate=2,
    augmentations=L(build_ava_test_augmentations)(short_edge=32),
)))
'''


def test_cli_loads_config_and_checkpoint_and_renders(video, tmp_path):
    cfg = tmp_path / "tiny_cfg.py"
    cfg.write_text(CONFIG)
    torch.manual_seed(3)
    weights = TinyActionModel(num_classes=3).state_dict()
    torch.save({"model": weights}, tmp_path / "w.pth")
    labelmap = tmp_path / "labels.pbtxt"
    labelmap.write_text('label { name: "walk" label_id: 1 }\nlabel { name: "sit" label_id: 2 }\n'
                        'label { name: "wave" label_id: 3 }\n')
    boxes = tmp_path / "b.csv"
    boxes.write_text("clip one,1,0.1,0.1,0.4,0.9,,0.9\n")
    spec = importlib.util.spec_from_file_location("demo_cli", REPO / "tools" / "demo.py")
    demo_cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo_cli)
    rc = demo_cli.main(["--config-file", str(cfg), "--checkpoint", str(tmp_path / "w.pth"), "--input", str(video),
                        "--output", str(tmp_path / "o"), "--boxes", str(boxes), "--labelmap", str(labelmap),
                        "--device", "cpu", "--no-progress", "--top-k", "2"])
    assert rc == 0
    predictor = ActionPredictor.from_config(str(cfg), str(tmp_path / "w.pth"), labelmap=str(labelmap), device="cpu")
    assert predictor.class_names == {1: "walk", 2: "sit", 3: "wave"}
    assert (predictor.num_frames, predictor.sampling_rate, predictor.clip_offset) == (4, 2, 0)
    assert predictor.test_short_side == 32 and [type(a).__name__ for a in predictor.augmentations] == ["ShortSideResize"]
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
    summary = run_demo(str(video), str(tmp_path / "o"), make_predictor(), detector, keyframe_interval=100,
                       progress=False)
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
    head = "from detectron2.config import LazyCall as L\nfrom vmae_det.demo.testing import TinyActionModel\n" \
           "model = L(TinyActionModel)(num_classes=3)\n"
    cases = {
        "no_mapper.py": ("dataloader = dict(test=dict(batch_size=1))\n", r"no 'dataloader\.test\.mapper'"),
        "no_test.py": ("", r"no 'dataloader\.test\.mapper'"),
        "no_rate.py": ("dataloader = dict(test=dict(mapper=dict(num_frames=4, augmentations=[])))\n",
                       r"missing 'dataloader\.test\.mapper\.sampling_rate'"),
        "no_augs.py": ("dataloader = dict(test=dict(mapper=dict(num_frames=4, sampling_rate=2, test_short_side=32)))\n",
                       r"missing 'dataloader\.test\.mapper\.augmentations'"),
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
    summary = run_demo(str(video), str(tmp_path / "o"), predictor, fixed_detector, batch_size=2, progress=False,
                       preview=False, render_min_short_side=0)
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

    return make_tiny(tmp_path_factory.mktemp("ava") / "tiny_ava", seed=0, num_train_videos=1, num_val_videos=1,
                     seconds=5, format="videos")


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
    from vmae_det.data.ava import keyframe_index, load_ava_dicts

    cfg = load_config(str(TINY_CONFIG), ["dataloader.test.mapper.test_box_source=gt",
                                         "dataloader.test.mapper.video_backend=pyav"])
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
        request = predictor.make_request([frames[i] for i in idx], gt_boxes[ts] * np.array([w, h, w, h], np.float32),
                                         np.ones(len(gt_boxes[ts]), np.float32), vid, ts)
        assert torch.equal(request.clip, inp["clip"])
        np.testing.assert_array_equal(request.boxes, inp["boxes"].numpy())
        np.testing.assert_allclose(predictor([request])[0], expected[ts], atol=1e-6, rtol=0)
    all_scores = np.concatenate(list(expected.values()))
    assert all_scores.std(0).max() > 1e-2  # scores differ between people and keyframes

    # run_demo end to end, the GT boxes given as a box CSV (AVA timestamps: frame 0 is second 900).
    boxes_csv = tmp_path / "gt_boxes.csv"
    rows = read_rows(tiny_ava / "annotations" / "ava_val_v2.2.csv")
    boxes_csv.write_text("".join(",".join(r[:6] + ["", "1.0"]) + "\n" for r in rows))
    summary = run_demo(str(video), str(tmp_path / "demo"), predictor, str(boxes_csv), batch_size=2,
                       progress=False, preview=False, render_min_short_side=0)
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
