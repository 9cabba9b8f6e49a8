"""AVA frame-mAP: the official top-50 detections per keyframe vs keeping them all (VMAD/SlowFast)."""

from __future__ import annotations

import json
import math
import random
from contextlib import contextmanager
from unittest import mock

import ava_eval_reference as reference  # noqa: E402  (tests/ava_eval_reference.py)
import pytest
import torch
from test_ava_eval import _labelmap_lines, _random_case, write_csv  # helpers only (no test_* names)

import vmae_det  # noqa: F401
from vmae_det.evaluation import DEFAULT_LABEL_MAP, evaluate
from vmae_det.evaluation.ava_cli import main as cli_main
from vmae_det.formats.ava import AVARows, read_ava_csv, read_exclusions, read_labelmap

LABELS60 = read_labelmap(DEFAULT_LABEL_MAP)
BOXES = [(0.05, 0.05, 0.30, 0.90), (0.35, 0.05, 0.60, 0.90), (0.70, 0.05, 0.95, 0.90)]  # A, B, C: disjoint
# The two ground-truth actions of keyframe vid,0902: action 1 on box A, action 3 on box B.
SPECIAL = {
    (0, 1): 0.01,
    (1, 1): 0.30,
    (2, 1): 0.20,  # action 1: TP at 0.01, two FPs above it
    (1, 3): 0.95,
    (0, 3): 0.02,
    (2, 3): 0.03,
}  # action 3: TP at 0.95, two FPs below it


def score_matrix() -> torch.Tensor:
    """``[3 boxes, 80 classes]`` as a detector writes them: every class of every box has a score.

    The 177 other label-map (box, class) pairs get distinct "filler" scores in [0.5, 0.677): they
    fill the official top 50, pushing out every special row except (B, 3) at 0.95.
    """
    scores = torch.full((3, 80), 0.001, dtype=torch.float64)  # columns outside the label map: dropped
    k = 0
    for b in range(3):
        for c in sorted(LABELS60):
            scores[b, c - 1] = SPECIAL.get((b, c), 0.5 + k * 1e-3)
            k += (b, c) not in SPECIAL
    return scores


def detection_csv_rows() -> list[list[str]]:
    """The 180 label-map rows (box-major, classes ascending, as AVAEvaluator writes them)."""
    s = score_matrix()
    return [
        ["vid", "0902", *map(repr, BOXES[b]), str(c), repr(float(s[b, c - 1]))]
        for b in range(3)
        for c in sorted(LABELS60)
    ]


def gt_csv_rows() -> list[list[str]]:
    return [["vid", "0902", *map(repr, BOXES[0]), "1", "0"], ["vid", "0902", *map(repr, BOXES[1]), "3", "1"]]


# Hand computation. Top 50: action 1 has no detection left (AP 0); action 3 keeps only its TP (AP 1).
# Keep all: action 1 ranks FP 0.30, FP 0.20, TP 0.01 -> precision 1/3 at recall 1 (AP 1/3); action 3
# ranks TP 0.95 first (AP 1). Classes without ground truth are NaN and left out of the mean.
EXPECTED_TOP50 = {1: 0.0, 3: 1.0}
EXPECTED_ALL = {1: 1.0 / 3.0, 3: 1.0}


def _csv_rows_to_arrays(rows) -> AVARows:
    return AVARows.from_arrays(
        [r[0] for r in rows],
        [r[1] for r in rows],
        [[float(v) for v in r[2:6]] for r in rows],
        [int(r[6]) for r in rows],
        [float(r[7]) for r in rows],
    )


@contextmanager
def reference_capacity(capacity: int):
    """Run the line-by-line port with its detection heap capped at ``capacity`` (0 = no cap, as there)."""
    original = reference.read_csv

    def read_csv(rows, class_whitelist, _capacity, protocol):
        # run_evaluation passes 0 for ground truth and 50 for detections: replace only the latter.
        return original(rows, class_whitelist, capacity if _capacity else 0, protocol)

    with mock.patch.object(reference, "read_csv", read_csv):
        yield


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= 1e-9


# ----------------------------------------------------------------------------- core
def test_keyframe_with_180_rows_top50_vs_keep_all_hand_computed():
    det = _csv_rows_to_arrays(detection_csv_rows())
    gt = _csv_rows_to_arrays(gt_csv_rows())
    assert len(det) == 180  # 3 boxes x 60 classes on one keyframe

    top50 = evaluate(gt, det, LABELS60)  # default: official protocol
    assert top50.max_detections_per_keyframe == 50
    assert {c: top50.per_class_ap[c] for c in EXPECTED_TOP50} == pytest.approx(EXPECTED_TOP50, abs=1e-12)
    assert top50.mAP == pytest.approx(0.5, abs=1e-12)
    assert top50.stats["capped_detections"] == 130 and top50.stats["evaluated_detections"] == 50

    keep_all = evaluate(gt, det, LABELS60, max_detections_per_keyframe=None)
    assert keep_all.max_detections_per_keyframe is None
    assert {c: keep_all.per_class_ap[c] for c in EXPECTED_ALL} == pytest.approx(EXPECTED_ALL, abs=1e-12)
    assert keep_all.mAP == pytest.approx(2.0 / 3.0, abs=1e-12)
    assert keep_all.stats["capped_detections"] == 0 and keep_all.stats["evaluated_detections"] == 180
    assert sum(not math.isnan(ap) for ap in keep_all.per_class_ap.values()) == 2

    # A cap at or above the number of rows is the same as no cap; an explicit 50 is the default.
    assert evaluate(gt, det, LABELS60, max_detections_per_keyframe=180).mAP == keep_all.mAP
    assert evaluate(gt, det, LABELS60, max_detections_per_keyframe=50).mAP == top50.mAP


def test_keep_all_equals_reference_port_without_cap():
    lm = open(DEFAULT_LABEL_MAP).readlines()
    det, gt = detection_csv_rows(), gt_csv_rows()
    ref_top50, _ = reference.run_evaluation(lm, gt, det)
    with reference_capacity(0):
        ref_all, ref_all_ap = reference.run_evaluation(lm, gt, det)
    assert ref_top50 == pytest.approx(0.5, abs=1e-12) and ref_all == pytest.approx(2.0 / 3.0, abs=1e-12)
    ours = evaluate(_csv_rows_to_arrays(gt), _csv_rows_to_arrays(det), LABELS60, max_detections_per_keyframe=None)
    assert all(_same(ours.per_class_ap[c], ref_all_ap[c]) for c in LABELS60)


def _dense_keyframe(seed, gt, classes):
    """70 more rows on the first ground-truth keyframe with boxes (near-duplicates of its GT boxes,
    every class, tied scores): a keyframe well above 50 rows, where the cap decides the result."""
    rng = random.Random(1000 + seed)
    boxed = [r for r in gt if len(r) > 2]
    if not boxed:
        return []
    vid, ts = boxed[0][:2]
    people = [[float(v) for v in r[2:6]] for r in boxed if r[:2] == [vid, ts]]
    return [
        [
            vid,
            ts,
            *(f"{v + rng.choice([0.0, 0.01, -0.03]):.2f}" for v in rng.choice(people)),
            str(rng.choice(classes)),
            repr(rng.choice([0.3, 0.1, round(rng.random(), 2)])),
        ]
        for _ in range(70)
    ]


@pytest.mark.parametrize("protocol", ["2019", "2020"])
@pytest.mark.parametrize("cap", [None, 7])
def test_equal_to_reference_port_with_other_caps_on_random_cases(tmp_path, protocol, cap):
    """Random keyframes with up to 60 rows and many tied scores (the heap-replay path included)."""
    labels = {1: "a", 3: "b", 4: "c", 9: "d"}
    lm = tmp_path / "lm.pbtxt"
    lm.write_text("".join(_labelmap_lines(labels)))
    differs = 0
    for seed in range(25):
        gt, det, excl = _random_case(seed, protocol, list(labels))
        det = det + _dense_keyframe(seed, gt, list(labels))
        with reference_capacity(cap or 0):
            ref_map, ref_ap = reference.run_evaluation(_labelmap_lines(labels), gt, det, excl, protocol)
        g, d, e = (write_csv(tmp_path / f"{n}.csv", rows) for n, rows in (("g", gt), ("d", det), ("e", excl)))
        args = (
            read_ava_csv(g),
            read_ava_csv(d),
            read_labelmap(str(lm)),
            read_exclusions(e) if protocol == "2019" else None,
            protocol,
        )
        r = evaluate(*args, max_detections_per_keyframe=cap)
        for c in labels:
            assert _same(ref_ap[c], r.per_class_ap[c]), (seed, c, ref_ap[c], r.per_class_ap[c])
        assert _same(ref_map, r.mAP), seed
        differs += not _same(r.mAP, evaluate(*args).mAP)
    assert differs > 0  # the sweep does reach keyframes where the cap matters


def test_invalid_caps_raise():
    det = _csv_rows_to_arrays(detection_csv_rows())
    gt = _csv_rows_to_arrays(gt_csv_rows())
    for bad in (0, -1, 2.5, 50.0, "50", True):
        with pytest.raises(ValueError, match="max_detections_per_keyframe"):
            evaluate(gt, det, LABELS60, max_detections_per_keyframe=bad)
    with pytest.raises(ValueError, match="use None to keep all"):
        evaluate(gt, det, LABELS60, max_detections_per_keyframe=0)


# ----------------------------------------------------------------------------- detectron2 evaluator
def _evaluator(tmp_path, **kwargs):
    from vmae_det.evaluation.ava_evaluator import AVAEvaluator

    g = write_csv(tmp_path / "gt.csv", gt_csv_rows())
    return AVAEvaluator(groundtruth_csv=g, distributed=False, **kwargs)


def test_evaluator_max_detections_per_keyframe(tmp_path):
    inputs = [{"video_id": "vid", "timestamp": 902}]
    outputs = [{"boxes": torch.tensor(BOXES), "scores": score_matrix()}]
    results = {}
    for name, cap in (("official", 50), ("all", None)):
        kwargs = {} if cap == 50 else {"max_detections_per_keyframe": cap}  # 50 is the default
        ev = _evaluator(tmp_path, output_dir=str(tmp_path / name), **kwargs)
        assert ev.max_detections_per_keyframe == cap
        ev.process(inputs, outputs)
        assert len(ev.detections()) == 180
        results[name] = ev.evaluate()["ava"]
        metrics = json.loads((tmp_path / name / "ava_metrics.json").read_text())
        assert metrics["protocol"] == "2019" and metrics["max_detections_per_keyframe"] == cap
        assert metrics["stats"]["capped_detections"] == (130 if cap else 0)
        assert ("official" in metrics["detections_per_keyframe"]) == (cap == 50)
    assert results["official"]["mAP"] == pytest.approx(50.0)
    assert results["official"]["AP/bend/bow (at the waist)"] == pytest.approx(0.0)
    assert results["all"]["mAP"] == pytest.approx(100 * 2.0 / 3.0)
    assert results["all"]["AP/bend/bow (at the waist)"] == pytest.approx(100 / 3.0)
    assert results["all"]["AP/crouch/kneel"] == pytest.approx(100.0)


def test_evaluator_rejects_invalid_caps(tmp_path):
    for bad in (0, -5, 2.5, "50", "all", True):
        with pytest.raises(ValueError, match="max_detections_per_keyframe"):
            _evaluator(tmp_path, max_detections_per_keyframe=bad)
    assert _evaluator(tmp_path, max_detections_per_keyframe=100).max_detections_per_keyframe == 100


def test_evaluator_cap_from_lazyconfig_override(tmp_path):
    from detectron2.config import instantiate

    from vmae_det.config import load_config

    g = write_csv(tmp_path / "gt.csv", gt_csv_rows())
    base = [
        "dataloader.evaluator.dataset_name=null",
        f"dataloader.evaluator.groundtruth_csv={g}",
        "dataloader.evaluator.output_dir=null",
        "dataloader.evaluator.distributed=false",
    ]
    cfg = load_config("configs/ava/vit_b.py", base)
    # the recipes' default is the protocol of their target numbers (VMAD keeps every detection)
    assert instantiate(cfg.dataloader.evaluator).max_detections_per_keyframe is None
    cfg = load_config("configs/ava/vit_b.py", base + ["dataloader.evaluator.max_detections_per_keyframe=50"])
    assert instantiate(cfg.dataloader.evaluator).max_detections_per_keyframe == 50  # the official cap
    for text in ("null", "None"):  # Hydra's spelling of None, and the text users naturally type
        cfg = load_config("configs/ava/vit_b.py", base + [f"dataloader.evaluator.max_detections_per_keyframe={text}"])
        assert instantiate(cfg.dataloader.evaluator).max_detections_per_keyframe is None
    cfg = load_config("configs/ava/vit_b.py", base + ["dataloader.evaluator.max_detections_per_keyframe=0"])
    with pytest.raises(ValueError, match="must be >= 1"):
        instantiate(cfg.dataloader.evaluator)


# ----------------------------------------------------------------------------- CLI
def test_cli_keep_all_detections_end_to_end(tmp_path, capsys):
    g = write_csv(tmp_path / "gt.csv", gt_csv_rows())
    d = write_csv(tmp_path / "det.csv", detection_csv_rows())
    common = ["-g", g, "-d", d]

    assert cli_main(common + ["--output-dir", str(tmp_path / "official")]) == 0
    out = capsys.readouterr().out
    assert (
        "mAP@0.5IoU (protocol 2019): 50.0000 [top 50 detections per keyframe (official ActivityNet); "
        "130 detection(s) capped]"
    ) in out
    metrics = json.loads((tmp_path / "official" / "ava_metrics.json").read_text())
    assert metrics["max_detections_per_keyframe"] == 50 and metrics["mAP"] == pytest.approx(0.5)

    assert cli_main(common + ["--keep-all-detections", "--output-dir", str(tmp_path / "all")]) == 0
    out = capsys.readouterr().out
    assert "mAP@0.5IoU (protocol 2019): 66.6667 [all detections per keyframe (no cap, as VMAD/SlowFast); 0 " in out
    metrics = json.loads((tmp_path / "all" / "ava_metrics.json").read_text())
    assert metrics["max_detections_per_keyframe"] is None and metrics["mAP"] == pytest.approx(2.0 / 3.0)
    assert metrics["stats"]["capped_detections"] == 0

    assert cli_main(common + ["--max-detections-per-keyframe", "180"]) == 0
    assert "66.6667 [top 180 detections per keyframe (non-standard cap)" in capsys.readouterr().out
    assert cli_main(common + ["--max-detections-per-keyframe", "50"]) == 0
    assert "50.0000 [top 50 detections per keyframe (official ActivityNet)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--keep-all-detections", "--max-detections-per-keyframe", "50"], "not allowed with"),
        (["--max-detections-per-keyframe", "100", "--keep-all-detections"], "not allowed with"),
        (["--max-detections-per-keyframe", "0"], "expected an integer >= 1"),
        (["--max-detections-per-keyframe", "-3"], "expected an integer >= 1"),
        (["--max-detections-per-keyframe", "all"], "expected an integer >= 1"),
    ],
)
def test_cli_conflicting_or_invalid_cap_is_an_error(tmp_path, capsys, args, message):
    g = write_csv(tmp_path / "gt.csv", gt_csv_rows())
    with pytest.raises(SystemExit) as exc:
        cli_main(["-g", g, "-d", g] + args)
    assert exc.value.code == 2 and message in capsys.readouterr().err
