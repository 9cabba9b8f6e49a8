"""The tube evaluator (vmae_det.evaluation.tubes) against MultiSports' official evaluate_multisports.py.

tests/reference/tube_reference.json holds the official's numbers on the inputs
tests/reference/make_tube_reference.py builds (random and edge cases: a skipped class name, a class without ground
truth, a class without detections, a video without detections, equal scores, detected tubes shorter and longer than
the ground truth, boxes on the frame border, float32 / float64 / mixed arrays; the "edge" case: one-frame tubes,
zero-area boxes, exact duplicates). Means and per-class APs must equal the official's to 1e-12.
"""

from __future__ import annotations

import json
import os
import pickle
import sys

import numpy as np
import pytest
from reference import make_tube_reference as ref_inputs

from vmae_det.evaluation import tubes
from vmae_det.formats.act import load_groundtruth

REFERENCE = json.load(open(ref_inputs.OUT))["cases"]
CASES = ref_inputs.build_cases()
TOL = 1e-12


def _dump(path, obj):
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)
    return str(path)


@pytest.mark.parametrize("name", sorted(CASES))
def test_equal_to_official(name):
    gt, fd, vd = CASES[name]
    ref = REFERENCE[name]
    for task, fn, dets, thrs in (
        ("frameAP", tubes.frame_ap, fd, ref_inputs.FRAME_THRS),
        ("videoAP", tubes.video_ap, vd, ref_inputs.VIDEO_THRS),
    ):
        for t in thrs:
            ours = fn(gt, dets, t)
            assert abs(ours["mAP_percent"] - ref[f"{task}@{t!r}"]) <= TOL
            assert abs(ours["mAP"] - ref[f"{task}@{t!r}"] / 100) <= TOL
            official_classes = ref[f"{task}_classes@{t!r}"]
            assert len(ours["per_class"]) == len(official_classes)
            assert all(abs(a - b) <= TOL for a, b in zip(ours["per_class"].values(), official_classes))
    all_ = tubes.video_ap_all(gt, vd)
    for key, value in ref["videoAP_all"].items():
        assert abs(all_[key + "_percent"] - value) <= TOL
        assert abs(all_[key] - value / 100) <= TOL


def test_cli_json(tmp_path, capsys):
    gt, fd, vd = CASES["random_f32"]
    ref = REFERENCE["random_f32"]
    g, f, v = _dump(tmp_path / "gt.pkl", gt), _dump(tmp_path / "fd.pkl", fd), _dump(tmp_path / "vd.pkl", vd)
    out = tmp_path / "out" / "frame.json"
    assert tubes.main(["frameAP", g, f, "-t", "0.3", "--output-json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert abs(res["mAP"] - ref["frameAP@0.3"] / 100) <= TOL
    assert "aerobic kick jump" not in res["per_class"] and "empty class" not in res["per_class"]
    assert {"run", "jump", "throw"} <= set(res["per_class"]) <= {"run", "jump", "throw", "catch"}
    out2 = tmp_path / "all.json"
    assert tubes.main(["videoAP_all", g, v, "--output-json", str(out2)]) == 0
    res = json.loads(out2.read_text())
    for key, value in ref["videoAP_all"].items():
        assert abs(res[key] - value / 100) <= TOL
    assert tubes.main(["videoAP", g, v, "-t", "0.2"]) == 0
    assert "VideoAP" not in capsys.readouterr().err


ACT_REFERENCE = json.load(open(os.path.join(os.path.dirname(ref_inputs.OUT), "tube_act_ap_reference.json")))["cases"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_act_area_equal_to_official(name):
    """``ap="act"``: the official with ACT's ``pr_to_ap`` back (tests/reference/make_tube_act_ap_reference.py);
    float32 like ACT, so the numbers are equal exactly."""
    gt, fd, vd = CASES[name]
    ref = ACT_REFERENCE[name]
    differs = False
    for task, fn, dets, thrs in (
        ("frameAP", tubes.frame_ap, fd, ref_inputs.FRAME_THRS),
        ("videoAP", tubes.video_ap, vd, ref_inputs.VIDEO_THRS),
    ):
        for t in thrs:
            ours = fn(gt, dets, t, ap="act")
            assert ours["mAP_percent"] == ref[f"{task}@{t!r}"]
            assert list(ours["per_class"].values()) == ref[f"{task}_classes@{t!r}"]
            differs |= ours["mAP_percent"] != fn(gt, dets, t)["mAP_percent"]
    assert differs  # the switch reaches the numbers
    all_ = tubes.video_ap_all(gt, vd, ap="act")
    for key, value in ref["videoAP_all"].items():
        assert all_[key + "_percent"] == value


def test_act_area_cli(tmp_path):
    gt, fd, vd = CASES["random_f32"]
    g, f = _dump(tmp_path / "gt.pkl", gt), _dump(tmp_path / "fd.pkl", fd)
    out = tmp_path / "frame.json"
    assert tubes.main(["frameAP", g, f, "--ap", "act", "--output-json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["ap"] == "act" and res["mAP_percent"] == ACT_REFERENCE["random_f32"]["frameAP@0.5"]
    with pytest.raises(ValueError, match="ap must be one of voc, act"):
        tubes.frame_ap(gt, fd, 0.5, ap="trapezoid")


def _error(capsys, argv):
    assert tubes.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_bad_inputs(tmp_path, capsys):
    gt, fd, vd = CASES["random_f64"]
    g, f = _dump(tmp_path / "gt.pkl", gt), _dump(tmp_path / "fd.pkl", fd)
    # wrong layouts
    assert "missing key(s) gttubes" in _error(capsys, ["frameAP", _dump(tmp_path / "x.pkl", {"labels": []}), f])
    assert "(N, 8) array" in _error(capsys, ["frameAP", g, _dump(tmp_path / "y.pkl", fd[:, :7])])
    assert "video detections must be a dict" in _error(capsys, ["videoAP", g, _dump(tmp_path / "z.pkl", "abc")])
    assert "(video, score, tube)" in _error(capsys, ["videoAP", g, _dump(tmp_path / "w.pkl", {0: [(1, 2)]})])
    cut = tmp_path / "cut.pkl"
    cut.write_bytes(open(g, "rb").read()[:100])
    assert f"{cut}: not a readable pickle (truncated" in _error(capsys, ["frameAP", str(cut), f])
    # video index out of range
    bad = fd.copy()
    bad[3, 0] = len(gt["test_videos"][0])
    msg = _error(capsys, ["frameAP", g, _dump(tmp_path / "r.pkl", bad)])
    assert "row 3" in msg and "out of range" in msg
    # tubes with a gap / unsorted frames, in detections and in the ground truth
    video, score, tube = vd[0][0]
    gap = tube.copy()
    gap[1:, 0] += 1
    assert "gap" in _error(capsys, ["videoAP", g, _dump(tmp_path / "gap.pkl", {0: [(video, score, gap)]})])
    unsorted = tube[::-1].copy()
    assert "not sorted" in _error(capsys, ["videoAP", g, _dump(tmp_path / "uns.pkl", {0: [(video, score, unsorted)]})])
    gt2 = {**gt, "gttubes": {k: dict(t) for k, t in gt["gttubes"].items()}}
    v0 = gt["test_videos"][0][0]
    lab = next(iter(gt2["gttubes"][v0]))
    t0 = gt2["gttubes"][v0][lab][0].copy()
    t0[-1, 0] += 3
    gt2["gttubes"][v0][lab] = [t0]
    assert "gap" in _error(capsys, ["frameAP", _dump(tmp_path / "gt2.pkl", gt2), f])

    # a pickle that would run code is refused before anything runs
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo hacked",))

    assert "refused to unpickle" in _error(capsys, ["frameAP", _dump(tmp_path / "evil.pkl", Evil()), f])
    # a missing file
    assert "error: " in _error(capsys, ["frameAP", str(tmp_path / "nope.pkl"), f])


def test_label_missing_from_video_detections_is_no_detections():
    gt, fd, vd = CASES["random_f64"]
    with_empty = {**vd, 3: []}
    without = {k: x for k, x in vd.items() if k != 3}
    assert tubes.video_ap(gt, without, 0.2) == tubes.video_ap(gt, with_empty, 0.2)


def test_nothing_evaluated_gives_none():
    gt = {"labels": ["basketball save"], "gttubes": {"a": {0: [np.array([[0, 0, 0, 1, 1.0]])]}}, "test_videos": [["a"]]}
    assert tubes.frame_ap(gt, np.zeros((0, 8)), 0.5)["mAP"] is None


@pytest.mark.parametrize("protocol", [0, 1, 2, 4, 5])
def test_every_pickle_protocol_reads(tmp_path, protocol):
    """ACT's pickles are Python-2 pickles (protocol 0-2): numpy arrays, dicts, lists, str only."""
    gt, fd, vd = CASES["edge"]
    p = tmp_path / "gt.pkl"
    with open(p, "wb") as f:
        pickle.dump(gt, f, protocol=protocol)
    with open(tmp_path / "fd.pkl", "wb") as f:
        pickle.dump(fd, f, protocol=protocol)
    loaded = load_groundtruth(str(p))
    dets = tubes.load_frame_detections(str(tmp_path / "fd.pkl"), loaded)
    assert tubes.frame_ap(loaded, dets, 0.5) == tubes.frame_ap(gt, fd, 0.5)


def test_module_cli_error_line(tmp_path):
    import subprocess

    gt, fd, _ = CASES["edge"]
    g = _dump(tmp_path / "gt.pkl", gt)
    bad = fd.copy()
    bad[0, 0] = -1
    r = subprocess.run(
        [sys.executable, "-m", "vmae_det.evaluation.tubes", "frameAP", g, _dump(tmp_path / "b.pkl", bad)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "out of range" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("thr", ["nan", "2", "0", "-0.5", "inf"])
def test_threshold_outside_0_1_is_refused(tmp_path, capsys, thr):
    """The official takes any float: NaN or above 1 matches nothing (mAP 0.00), 0 or below everything."""
    gt, fd, _ = CASES["edge"]
    g, f = _dump(tmp_path / "gt.pkl", gt), _dump(tmp_path / "fd.pkl", fd)
    msg = _error(capsys, ["frameAP", g, f, "-t", thr])
    assert msg == f"error: -t/--thr {float(thr)!r}: an IoU threshold must be a number in (0, 1]"
    with pytest.raises(ValueError, match=r"thr 1.5: an IoU threshold must be a number in \(0, 1\]"):
        tubes.video_ap(gt, CASES["edge"][2], 1.5)
    assert tubes.main(["frameAP", g, f, "-t", "1"]) == 0  # 1 itself: exact boxes only


@pytest.mark.parametrize("label", [-1, 6, 2.5])
def test_frame_detection_of_no_label_is_refused(tmp_path, capsys, label):
    """The official skips a row whose label index is no label without a word."""
    gt, fd, _ = CASES["random_f64"]
    assert len(gt["labels"]) == 6
    bad = fd.copy()
    bad[5, 2] = label
    f = _dump(tmp_path / "fd.pkl", bad)
    msg = _error(capsys, ["frameAP", _dump(tmp_path / "gt.pkl", gt), f])
    assert msg == f"error: {f}: row 5: label index {label:g} is not an integer 0..5 (6 labels)"


def test_video_detection_of_another_video_or_label_is_refused(tmp_path, capsys):
    gt, _, vd = CASES["random_f64"]
    g = _dump(tmp_path / "gt.pkl", gt)
    video, score, tube = vd[0][0]
    other = {**vd, 0: [*vd[0], ("train/v_x", score, tube)]}
    f = _dump(tmp_path / "vd.pkl", other)
    msg = _error(capsys, ["videoAP", g, f])
    n = len(gt["test_videos"][0])
    assert msg == (
        f"error: {f}: detection {len(vd[0])} of label 0: video 'train/v_x' is not one of the ground truth's {n} "
        "scored test videos"
    )
    f = _dump(tmp_path / "vd2.pkl", {**vd, 7: [(video, score, tube)]})
    assert _error(capsys, ["videoAP_all", g, f]) == (
        f"error: {f}: label 7 is not a label index 0..5 (the ground truth has 6 labels)"
    )


def test_missing_groundtruth_is_named_as_the_datasets_name_it(tmp_path, capsys):
    gt, fd, _ = CASES["edge"]
    missing = tmp_path / "nope.pkl"
    msg = _error(capsys, ["frameAP", str(missing), _dump(tmp_path / "fd.pkl", fd)])
    assert msg == f"error: ACT ground-truth file not found: {missing}"
    assert _error(capsys, ["videoAP", str(tmp_path), str(missing)]) == (
        f"error: ACT ground-truth file not found: {tmp_path} (a folder; give the pickle)"
    )
