"""ActionPredictor (vmae_det.demo.predictor): the config's test mapper settings, and the demo's clips, boxes and scores
equal to the evaluation's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from demo_helpers import (
    BOXES,
    CONFIG,
    REPO,
    fixed_detector,
    read_rows,
    tiny_model_checkpoint,
)

import vmae_det  # noqa: F401  (detectron2 shims first)
from vmae_det.data.ava.clip_source import clip_indices
from vmae_det.demo import ActionPredictor, DemoSettings, VideoStreamReader, run_demo


def test_config_without_the_test_mapper_settings_is_a_clear_error(tmp_path):
    weights = tiny_model_checkpoint(tmp_path / "w.pth")
    head = (
        "from detectron2.config import LazyCall as L\nfrom vmae_det.modeling.tiny_action_model import TinyActionModel\n"
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
    predictor = ActionPredictor.from_config(str(cfg), str(tiny_model_checkpoint(tmp_path / "w.pth")), device="cpu")
    assert (predictor.num_frames, predictor.sampling_rate, predictor.clip_offset) == (4, 2, 3)
    assert predictor.clip_indices(30, 75) == [29, 31, 33, 35] and predictor.clip_indices(73, 75) == [72, 74, 74, 74]
    summary = run_demo(
        DemoSettings(
            str(video), str(tmp_path / "o"), batch_size=2, progress=False, preview=False, render_min_short_side=0
        ),
        predictor,
        fixed_detector,
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


TINY_CONFIG = REPO / "configs" / "ava" / "tiny.py"


@pytest.fixture(scope="module")
def tiny_ava_5s(tiny_ava_factory) -> Path:
    """One training and one validation video of 5 s (shared: read only)."""
    return tiny_ava_factory(num_train_videos=1, num_val_videos=1, seconds=5, format="videos")


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


def test_demo_scores_equal_the_evaluation_scores(tiny_ava_5s, tiny_checkpoint, tmp_path):
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
    video = tiny_ava_5s / "videos" / f"{vid}.mp4"
    dicts = [d for d in load_ava_dicts(tiny_ava_5s, "val", source="videos") if d["video_id"] == vid]
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
    rows = read_rows(tiny_ava_5s / "annotations" / "ava_val_v2.2.csv")
    boxes_csv.write_text("".join(",".join(r[:6] + ["", "1.0"]) + "\n" for r in rows))
    summary = run_demo(
        DemoSettings(
            str(video), str(tmp_path / "demo"), batch_size=2, progress=False, preview=False, render_min_short_side=0
        ),
        predictor,
        str(boxes_csv),
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
