"""ACTEvaluator: detector outputs -> the official frame-detection array, frame-AP / video-AP equal to tubes.py on
the written pickles, official-format files, splits, bad input."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from vmae_det.evaluation import tubes
from vmae_det.evaluation.act_evaluator import ACTEvaluator, frame_detections
from vmae_det.formats.safe_pickle import load_pickle

H, W = 60, 80
NFRAMES = 20


def _tube(first, last, box):
    frames = np.arange(first, last + 1, dtype=np.float32)[:, None]
    return np.hstack([frames, np.tile(np.asarray(box, np.float32), (len(frames), 1))])


def make_gt(tmp_path, splits=1):
    gt = {
        "labels": ["run", "jump", "wave"],
        "gttubes": {
            "a/v1": {0: [_tube(1, 20, [10, 10, 40, 50])]},
            "b/v2": {1: [_tube(2, 18, [30, 5, 70, 55])], 2: [_tube(1, 16, [0, 0, 20, 20])]},
            "c/v3": {0: [_tube(1, 20, [5, 5, 30, 30])]},
        },
        "nframes": {"a/v1": NFRAMES, "b/v2": NFRAMES, "c/v3": NFRAMES},
        "train_videos": [["c/v3"]] * splits,
        "test_videos": [["a/v1", "b/v2"], ["b/v2", "c/v3"]][:splits],
        "resolution": {v: (H, W) for v in ("a/v1", "b/v2", "c/v3")},
    }
    path = tmp_path / "GT.pkl"
    path.write_bytes(pickle.dumps(gt, protocol=2))
    return gt, str(path)


def outputs_for(gt, videos, rng, noise=0.0):
    """One (inputs, outputs) pair per test frame: every GT box, scored for its label (+ noise), normalised."""
    pairs = []
    for v in videos:
        for frame in range(1, NFRAMES + 1):
            boxes, scores = [], []
            for label, tube_list in gt["gttubes"][v].items():
                for tube in tube_list:
                    row = tube[tube[:, 0] == frame]
                    if len(row):
                        boxes.append(row[0, 1:5] / np.array([W, H, W, H]))
                        s = np.full(3, 0.05) + noise * rng.random(3)
                        s[label] = 0.9
                        scores.append(s / s.sum())
            pairs.append(
                (
                    {"video_id": v, "timestamp": frame},
                    {
                        "boxes": torch.tensor(np.array(boxes).reshape(-1, 4), dtype=torch.float32),
                        "scores": torch.tensor(np.array(scores).reshape(-1, 3), dtype=torch.float32),
                    },
                )
            )
    return pairs


def run(evaluator, pairs):
    evaluator.reset()
    for inp, out in pairs:
        evaluator.process([inp], [out])
    return evaluator.evaluate()


def test_frame_detections_rows():
    preds = [
        {"video_id": "b", "timestamp": 3, "boxes": np.array([[0.1, 0.2, 0.5, 1.0]]), "scores": np.array([[0.2, 0.7]])}
    ]
    res = {"b": (100, 200)}
    top = frame_detections(preds, ["a", "b"], res)
    np.testing.assert_allclose(top, [[1, 3, 1, 0.7, 20, 20, 100, 100]], rtol=1e-6)
    assert top.dtype == np.float32
    every = frame_detections(preds, ["a", "b"], res, labels_per_box="all")
    np.testing.assert_allclose(every[:, 2:4], [[0, 0.2], [1, 0.7]], rtol=1e-6)
    assert frame_detections([], ["a"], res).shape == (0, 8)
    with pytest.raises(ValueError, match="'c'.*not a test video"):
        frame_detections([dict(preds[0], video_id="c")], ["a", "b"], res)


def test_perfect_detections_score_one_and_the_written_pickle_rescores_equal(tmp_path, capsys):
    gt, path = make_gt(tmp_path)
    out_dir = tmp_path / "inference"
    ev = ACTEvaluator(gt_file=path, output_dir=str(out_dir), video_ap=False, distributed=False)
    result = run(ev, outputs_for(gt, gt["test_videos"][0], np.random.default_rng(0)))["act"]
    assert result["frame_mAP@0.5"] == pytest.approx(100.0)
    assert set(result) == {"frame_mAP@0.5", "frameAP/run", "frameAP/jump", "frameAP/wave"}
    dets = load_pickle(str(out_dir / "frame_detections.pkl"))
    assert dets.shape == (20 + 17 + 16, 8) and not (out_dir / "video_detections.pkl").exists()
    report = json.loads((out_dir / "act_metrics.json").read_text())
    rescored = tmp_path / "rescored.json"
    assert tubes.main(["frameAP", path, str(out_dir / "frame_detections.pkl"), "--output-json", str(rescored)]) == 0
    assert json.loads(rescored.read_text())["mAP"] == report["frameAP"]["mAP"] == 1.0


def test_noisy_scores_equal_tubes_frame_ap_and_split_indexes_test_videos(tmp_path):
    gt, path = make_gt(tmp_path, splits=2)
    rng = np.random.default_rng(1)
    pairs = outputs_for(gt, gt["test_videos"][1], rng, noise=1.0)
    # a false positive of class 0 on b/v2 scoring above some true ones
    pairs[0][1]["boxes"] = torch.cat([pairs[0][1]["boxes"], torch.tensor([[0.5, 0.5, 0.9, 0.9]])])
    pairs[0][1]["scores"] = torch.cat([pairs[0][1]["scores"], torch.tensor([[0.8, 0.1, 0.1]])])
    ev = ACTEvaluator(gt_file=path, split=1, output_dir=str(tmp_path / "o"), video_ap=False, distributed=False)
    result = run(ev, pairs)["act"]
    dets = load_pickle(str(tmp_path / "o" / "frame_detections.pkl"))
    assert set(np.unique(dets[:, 0])) == {0.0, 1.0}  # indices into test_videos[1] = [b/v2, c/v3]
    expected = tubes.frame_ap(dict(gt, test_videos=[gt["test_videos"][1]]), dets, 0.5)
    assert result["frame_mAP@0.5"] == pytest.approx(100 * expected["mAP"], abs=1e-12)
    assert 0 < result["frame_mAP@0.5"] < 100


def test_pickles_of_a_later_split_rescore_equal_with_split(tmp_path, capsys):
    """The written pickles index ``test_videos[1]`` (ACT's ``Dataset(split=2)``): the CLI rescores them with
    ``--split 1``; against ``test_videos[0]`` the same rows would point at other videos."""
    gt, path = make_gt(tmp_path, splits=2)
    pairs = outputs_for(gt, gt["test_videos"][1], np.random.default_rng(3), noise=1.0)
    out = tmp_path / "o"
    report = run(ACTEvaluator(gt_file=path, split=1, output_dir=str(out), distributed=False), pairs)["act"]
    frame_json, video_json = tmp_path / "f.json", tmp_path / "v.json"
    assert (
        tubes.main(
            ["frameAP", path, str(out / "frame_detections.pkl"), "--split", "1", "--output-json", str(frame_json)]
        )
        == 0
    )
    assert (
        tubes.main(
            [
                "videoAP",
                path,
                str(out / "video_detections.pkl"),
                "--split",
                "1",
                "-t",
                "0.5",
                "--output-json",
                str(video_json),
            ]
        )
        == 0
    )
    assert 100 * json.loads(frame_json.read_text())["mAP"] == pytest.approx(report["frame_mAP@0.5"], abs=1e-12)
    assert 100 * json.loads(video_json.read_text())["mAP"] == pytest.approx(report["video_mAP@0.5"], abs=1e-12)
    assert tubes.main(["frameAP", path, str(out / "frame_detections.pkl"), "--output-json", str(frame_json)]) == 0
    assert 100 * json.loads(frame_json.read_text())["mAP"] != pytest.approx(report["frame_mAP@0.5"])
    assert tubes.main(["frameAP", path, str(out / "frame_detections.pkl"), "--split", "2"]) == 2
    assert "split 2 out of range" in capsys.readouterr().err


def test_video_ap_from_linked_tubes(tmp_path):
    pytest.importorskip("vmae_det.evaluation.tube_linking")
    gt, path = make_gt(tmp_path)
    out_dir = tmp_path / "inference"
    ev = ACTEvaluator(gt_file=path, output_dir=str(out_dir), distributed=False)
    result = run(ev, outputs_for(gt, gt["test_videos"][0], np.random.default_rng(0)))["act"]
    assert result["video_mAP@0.2"] == result["video_mAP@0.5"] == pytest.approx(100.0)  # perfect tubes
    assert "video_mAP@0.50:0.95" in result
    report = json.loads((out_dir / "act_metrics.json").read_text())
    assert report["linking"]["min_length"] == 15  # MOC-Detector's, recorded with the numbers
    video = tubes.load_video_detections(str(out_dir / "video_detections.pkl"), gt)
    assert tubes.video_ap(gt, video, 0.5)["mAP"] == report["videoAP"]["0.5"]["mAP"]
    assert result["video_mAP@0.5"] == pytest.approx(100 * report["videoAP"]["0.5"]["mAP"])


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="gt_file"):
        ACTEvaluator()
    with pytest.raises(ValueError, match="labels_per_box"):
        ACTEvaluator(gt_file="x.pkl", labels_per_box="top2")
    with pytest.raises(ValueError, match="ap must be"):
        ACTEvaluator(gt_file="x.pkl", ap="coco")


def test_act_area_switch_reaches_every_metric(tmp_path):
    gt, path = make_gt(tmp_path)
    pairs = outputs_for(gt, gt["test_videos"][0], np.random.default_rng(2), noise=1.0)
    ev = ACTEvaluator(gt_file=path, output_dir=str(tmp_path / "o"), ap="act", distributed=False)
    run(ev, pairs)
    report = json.loads((tmp_path / "o" / "act_metrics.json").read_text())
    dets = load_pickle(str(tmp_path / "o" / "frame_detections.pkl"))
    video = tubes.load_video_detections(str(tmp_path / "o" / "video_detections.pkl"), gt)
    assert report["frameAP"]["mAP"] == tubes.frame_ap(gt, dets, 0.5, ap="act")["mAP"]
    assert report["videoAP"]["0.2"]["mAP"] == tubes.video_ap(gt, video, 0.2, ap="act")["mAP"]


def test_frames_without_any_box_are_named_in_a_warning(tmp_path, caplog):
    gt, path = make_gt(tmp_path)
    empty = {"boxes": torch.zeros(0, 4), "scores": torch.zeros(0, 3)}
    ev = ACTEvaluator(gt_file=path, video_ap=False, distributed=False)
    result = run(ev, [({"video_id": "a/v1", "timestamp": f}, empty) for f in (1, 2)])["act"]
    assert result["frame_mAP@0.5"] == 0.0
    assert "2 frames and not one box scored" in caplog.text


def test_frames_never_evaluated_count_as_missed_and_are_reported(tmp_path, caplog):
    gt, path = make_gt(tmp_path)
    every_other = [p for p in outputs_for(gt, gt["test_videos"][0], np.random.default_rng(0)) if p[0]["timestamp"] % 2]
    result = run(ACTEvaluator(gt_file=path, video_ap=False, distributed=False), every_other)["act"]
    annotated = {(v, f) for v in gt["test_videos"][0] for ts in gt["gttubes"][v].values() for f in ts[0][:, 0]}
    unseen = [k for k in annotated if k[1] % 2 == 0]
    assert f"{len(unseen)} of {len(annotated)} annotated test frames were not evaluated" in caplog.text
    assert result["frame_mAP@0.5"] < 60  # perfect boxes on half of the frames: recall about one half
