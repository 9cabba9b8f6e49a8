"""AVA frame-mAP: hand-computed cases, edge cases, and equality with the line-by-line port."""

from __future__ import annotations

import csv
import json
import math
import os
import random

import ava_eval_reference as reference  # noqa: E402  (tests/ava_eval_reference.py)
import numpy as np
import pytest
import torch

import vmae_det  # noqa: F401
from vmae_det.evaluation import DEFAULT_LABEL_MAP, evaluate
from vmae_det.evaluation.ava_cli import main as cli_main
from vmae_det.formats.ava import AVARows, as_str, read_ava_csv, read_exclusions, read_labelmap, write_detections_csv

LABELS = {1: "bend", 2: "crouch", 3: "dance"}
BOX_A = (0.1, 0.1, 0.4, 0.5)
BOX_B = (0.5, 0.2, 0.9, 0.9)


def gt_rows(*rows, empty=()):
    """rows: (video, ts, box, action)."""
    return AVARows.from_arrays(
        [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows], empty_frames=empty
    )


def det_rows(*rows):
    """rows: (video, ts, box, action, score)."""
    return AVARows.from_arrays(
        [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows], [r[4] for r in rows]
    )


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return str(path)


# ----------------------------------------------------------------------------- hand-made cases
def test_hand_computed_ap_with_duplicate_detection():
    gt = gt_rows(("v", 902, BOX_A, 1), ("v", 902, BOX_B, 1))
    det = det_rows(("v", 902, BOX_A, 1, 0.9), ("v", 902, BOX_A, 1, 0.8), ("v", 902, BOX_B, 1, 0.7))
    r = evaluate(gt, det, LABELS)
    # TP, FP (box A already taken), TP: precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1.
    # Envelope: 1 up to recall 1/2, then max(1/2, 2/3) = 2/3 up to recall 1.
    expected = 0.5 * 1.0 + 0.5 * (2.0 / 3.0)
    assert r.per_class_ap[1] == pytest.approx(expected, abs=1e-12)
    assert math.isnan(r.per_class_ap[2]) and math.isnan(r.per_class_ap[3])  # no ground truth
    assert r.mAP == pytest.approx(expected, abs=1e-12)  # mean over classes with ground truth only


def test_class_with_ground_truth_and_no_detection_scores_zero():
    gt = gt_rows(("v", 902, BOX_A, 1), ("v", 902, BOX_A, 2))
    det = det_rows(("v", 902, BOX_A, 1, 0.9))
    r = evaluate(gt, det, LABELS)
    assert r.per_class_ap == {1: 1.0, 2: 0.0, 3: r.per_class_ap[3]} and math.isnan(r.per_class_ap[3])
    assert r.mAP == pytest.approx(0.5)


def test_empty_detections_and_whitelist():
    gt = gt_rows(("v", 902, BOX_A, 1), ("v", 902, BOX_A, 7))  # 7 is not in the label map
    r = evaluate(gt, det_rows(), LABELS)
    assert r.per_class_ap[1] == 0.0 and r.mAP == 0.0 and 7 not in r.per_class_ap
    assert r.num_groundtruth[1] == 1


def test_iou_threshold_and_best_box_only():
    # Dyadic coordinates so that IoU is exactly 0.5, which counts (>=).
    square = (0.0, 0.0, 0.5, 0.5)
    gt = gt_rows(("v", 902, square, 1), ("v", 902, (0.0, 0.0, 0.5, 0.375), 1))
    half = (0.0, 0.0, 0.25, 0.5)
    r = evaluate(gt_rows(("v", 902, square, 1)), det_rows(("v", 902, half, 1, 0.9)), LABELS)
    assert r.per_class_ap[1] == 1.0
    r = evaluate(gt_rows(("v", 902, square, 1)), det_rows(("v", 902, (0.0, 0.0, 0.2499, 0.5), 1, 0.9)), LABELS)
    assert r.per_class_ap[1] == 0.0
    # Two detections of the square: the second's best box is the (taken) square, so it is a false
    # positive even though its IoU with the other box (0.75) is above the threshold.
    r = evaluate(gt, det_rows(("v", 902, square, 1, 0.9), ("v", 902, square, 1, 0.8)), LABELS)
    assert r.per_class_ap[1] == pytest.approx(0.5) and r.stats["true_positives"] == 1


def test_degenerate_boxes_are_dropped_after_the_cap():
    gt = gt_rows(("v", 902, BOX_A, 1))
    flat = (0.1, 0.1, 0.1, 0.5)  # x2 == x1
    det = det_rows(("v", 902, flat, 1, 0.99), ("v", 902, BOX_A, 1, 0.5))
    r = evaluate(gt, det, LABELS)
    assert r.per_class_ap[1] == 1.0 and r.stats["degenerate_detections"] == 1
    # 50 degenerate boxes with higher scores fill the cap: the good box never gets in.
    det = det_rows(*[("v", 902, flat, 1, 0.9 + i * 1e-4) for i in range(50)], ("v", 902, BOX_A, 1, 0.5))
    r = evaluate(gt, det, LABELS)
    assert r.per_class_ap[1] == 0.0 and r.stats["capped_detections"] == 1


def test_more_than_50_detections_per_keyframe():
    gt = gt_rows(("v", 902, BOX_A, 1))
    far = (0.6, 0.6, 0.9, 0.9)
    rows = [("v", 902, far, 2, 0.5 + i / 1000) for i in range(50)] + [("v", 902, BOX_A, 1, 0.1)]
    assert evaluate(gt, det_rows(*rows), LABELS).per_class_ap[1] == 0.0  # the TP is 51st by score
    rows[-1] = ("v", 902, BOX_A, 1, 0.9)
    assert evaluate(gt, det_rows(*rows), LABELS).per_class_ap[1] == 1.0


def test_protocol_2019_exclusions_and_keyframes_without_ground_truth():
    gt = gt_rows(("v", 902, BOX_A, 1), ("v", 903, BOX_A, 1))
    det = det_rows(("v", 902, BOX_A, 1, 0.5), ("v", 903, BOX_B, 1, 0.9), ("w", 902, BOX_A, 1, 0.95))
    # Keyframe v,903 excluded: its GT and its (wrong) detection vanish. w,902 has no GT: FP.
    r = evaluate(gt, det, LABELS, exclusions=[("v", "0903")])
    assert r.num_groundtruth[1] == 1
    assert r.per_class_ap[1] == pytest.approx(0.5)  # FP at 0.95 then TP: precision 1/2 at recall 1
    r = evaluate(gt, det, LABELS)
    assert r.num_groundtruth[1] == 2 and r.per_class_ap[1] == pytest.approx(0.5 * 1 / 3)


def test_protocol_2020_ignores_unknown_keyframes_and_keeps_empty_ones():
    gt = gt_rows(("v", 902, BOX_A, 1), empty=[("e", 902)])
    det = det_rows(("v", 902, BOX_A, 1, 0.5), ("w", 902, BOX_A, 1, 0.95), ("e", 902, BOX_A, 1, 0.6))
    r = evaluate(gt, det, LABELS, protocol="2020")
    # w,902 is unknown: ignored. e,902 is a keyframe with no actions: its detection is a FP.
    assert r.per_class_ap[1] == pytest.approx(0.5)
    assert r.stats["ignored_detections_unknown_keyframes"] == 1
    with pytest.raises(ValueError, match="protocol 2020"):
        evaluate(gt, det, LABELS, protocol="2019")
    with pytest.raises(ValueError, match="no excluded timestamps"):
        evaluate(gt, det, LABELS, exclusions=[("v", "902")], protocol="2020")


def test_keys_are_integer_seconds_in_2019_and_decimal_in_2020():
    gt = gt_rows(("v", "0902", BOX_A, 1))
    det = det_rows(("v", "902", BOX_A, 1, 0.5))
    assert evaluate(gt, det, LABELS).per_class_ap[1] == 1.0
    assert evaluate(gt, det, LABELS, protocol="2020").per_class_ap[1] == 1.0
    det = det_rows(("v", "902.5", BOX_A, 1, 0.5))
    with pytest.raises(ValueError, match=r"<memory>:1: timestamp '902.5' is not an integer second"):
        evaluate(gt, det, LABELS)
    assert evaluate(gt, det, LABELS, protocol="2020").stats["ignored_detections_unknown_keyframes"] == 1


def test_score_ties_follow_the_official_order():
    # Two tied detections, one TP one FP, across two keyframes: the result depends on the
    # official argsort tie order; it must equal the reference port's.
    gt = [["v", "902", *map(str, BOX_A), "1", "0"]]
    det = [
        ["v", "903", *map(str, BOX_A), "1", "0.5"],
        ["v", "902", *map(str, BOX_A), "1", "0.5"],
        ["v", "902", *map(str, BOX_A), "1", "0.5"],
    ]
    ours = evaluate(_rows(gt), _rows(det), LABELS).per_class_ap[1]
    ref_map, ref_ap = reference.run_evaluation(_labelmap_lines(LABELS), gt, det)
    assert ours == ref_ap[1]


# ----------------------------------------------------------------------------- equality with the port
def _labelmap_lines(labels):
    return [line for c, n in labels.items() for line in ("item {\n", f'  name: "{n}"\n', f"  id: {c}\n", "}\n")]


def _rows(rows):
    box = [r for r in rows if len(r) > 2]
    return AVARows.from_arrays(
        [r[0] for r in box],
        [r[1] for r in box],
        [[float(v) for v in r[2:6]] for r in box],
        [int(r[6]) for r in box],
        [float(r[7]) if len(r) == 8 else 1.0 for r in box],
        empty_frames=[(r[0], r[1]) for r in rows if len(r) == 2],
    )


def _random_case(seed, protocol, classes):
    rng = random.Random(seed)
    gt, det, excl = [], [], []
    for k in range(rng.randint(0, 25)):
        vid, ts = f"v{k % 3}", str(902 + k)
        if protocol == "2020" and rng.random() < 0.15:
            gt.append([vid, ts])
        people = []
        for pid in range(rng.randint(0, 4)):
            x1, y1 = rng.random() * 0.6, rng.random() * 0.6
            people.append([x1, y1, x1 + rng.choice([0.0, 0.2, 0.3]), y1 + 0.3])  # some degenerate GT
            for c in rng.sample(classes + [99], rng.randint(1, 3)):
                gt.append([vid, ts, *(f"{v:.2f}" for v in people[-1]), str(c), str(rng.randint(0, 3))])
        if protocol == "2019" and rng.random() < 0.15:
            excl.append([vid, ts])
        for _ in range(rng.choice([0, 3, 20, 60])):
            if people and rng.random() < 0.7:
                box = [v + rng.choice([0.0, 0.0, 0.02, -0.05]) for v in rng.choice(people)]
            else:
                box = [rng.random() for _ in range(4)]  # often degenerate
            score = rng.choice([0.5, 0.25, round(rng.random(), rng.choice([1, 2, 6]))])  # many ties
            det.append(
                [
                    vid if rng.random() < 0.9 else "other",
                    ts,
                    *(f"{v:.2f}" for v in box),
                    str(rng.choice(classes + [99])),
                    repr(score),
                ]
            )
    rng.shuffle(det)
    return gt, det, excl


@pytest.mark.parametrize("protocol", ["2019", "2020"])
def test_equal_to_reference_port_on_random_cases(tmp_path, protocol):
    labels = {1: "a", 3: "b", 4: "c", 9: "d"}
    lm = tmp_path / "lm.pbtxt"
    lm.write_text("".join(_labelmap_lines(labels)))
    for seed in range(25):
        gt, det, excl = _random_case(seed, protocol, list(labels))
        ref_map, ref_ap = reference.run_evaluation(_labelmap_lines(labels), gt, det, excl, protocol)
        g, d = write_csv(tmp_path / "g.csv", gt), write_csv(tmp_path / "d.csv", det)
        e = write_csv(tmp_path / "e.csv", excl)
        r = evaluate(
            read_ava_csv(g),
            read_ava_csv(d),
            read_labelmap(str(lm)),
            read_exclusions(e) if protocol == "2019" else None,
            protocol,
        )
        for c in labels:
            assert (math.isnan(ref_ap[c]) and math.isnan(r.per_class_ap[c])) or abs(
                ref_ap[c] - r.per_class_ap[c]
            ) <= 1e-9, (seed, c, ref_ap[c], r.per_class_ap[c])
        assert (math.isnan(ref_map) and math.isnan(r.mAP)) or abs(ref_map - r.mAP) <= 1e-9, seed


# ----------------------------------------------------------------------------- I/O
def test_labelmap_formats(tmp_path):
    official = read_labelmap(DEFAULT_LABEL_MAP)
    assert len(official) == 60 and official[1] == "bend/bow (at the waist)" and 2 not in official
    v22 = tmp_path / "v22.pbtxt"
    v22.write_text(
        'label {\n  name: "bend/bow (at the waist)"\n  label_id: 1\n  label_type: PERSON_MOVEMENT\n}\n'
        'label {\n  name: "crouch/kneel"\n  label_id: 3\n  label_type: PERSON_MOVEMENT\n}\n'
    )
    assert read_labelmap(str(v22)) == {1: "bend/bow (at the waist)", 3: "crouch/kneel"}
    bad = tmp_path / "bad.pbtxt"
    bad.write_text('item {\n  name: "x"\n}\n')
    with pytest.raises(ValueError, match=r"bad.pbtxt:1: label block without both"):
        read_labelmap(str(bad))


def test_csv_errors_name_file_and_line(tmp_path):
    p = write_csv(
        tmp_path / "d.csv",
        [["v", "902", "0.1", "0.1", "0.2", "0.2", "1", "0.5"], ["v", "902", "0.1", "oops", "0.2", "0.2", "1", "0.5"]],
    )
    with pytest.raises(ValueError, match=r"d.csv:2: box coordinates must be numbers"):
        read_ava_csv(p)
    p = write_csv(tmp_path / "n.csv", [["v", "902", "0.1", "0.1", "0.2", "0.2", "1", "nan"]])
    with pytest.raises(ValueError, match=r"n.csv:1: score must be finite"):
        read_ava_csv(p)
    p = write_csv(tmp_path / "c.csv", [["v", "902", "0.1"]])
    with pytest.raises(ValueError, match=r"c.csv:1: expected 2, 7 or 8 columns"):
        read_ava_csv(p)


def test_written_detections_round_trip(tmp_path):
    det = det_rows(("v", 902, (0.1, 0.2, 0.30000001192092896, 0.4), 3, 0.123456789))
    path = tmp_path / "out.csv"
    write_detections_csv(str(path), det)
    back = read_ava_csv(str(path))
    assert np.array_equal(back.boxes, det.boxes) and np.array_equal(back.scores, det.scores)
    assert path.read_text().startswith("v,902,0.1,0.2,0.30000001192092896,0.4,3,0.123456789")


# ----------------------------------------------------------------------------- evaluator and CLI
def test_dataset_evaluator_and_cli(tmp_path, capsys):
    from vmae_det.evaluation.ava_evaluator import AVAEvaluator

    labels = read_labelmap(DEFAULT_LABEL_MAP)
    g = write_csv(
        tmp_path / "gt.csv",
        [
            ["vid", "0902", *map(str, BOX_A), "1", "0"],
            ["vid", "0902", *map(str, BOX_B), "3", "1"],
            ["vid", "0903", *map(str, BOX_A), "2", "0"],
        ],
    )  # 2 not in label map
    ev = AVAEvaluator(groundtruth_csv=g, output_dir=str(tmp_path / "out"), distributed=False)
    scores = torch.zeros(2, 80)
    scores[0, 0] = 0.9  # action 1 on box A: TP
    scores[1, 2] = 0.8  # action 3 on box B: TP
    scores[1, 0] = 0.7  # action 1 on box B: FP, ranked below the TP
    ev.process([{"video_id": "vid", "timestamp": 902}], [{"boxes": torch.tensor([BOX_A, BOX_B]), "scores": scores}])
    assert len(ev.detections()) == 2 * 60  # only label-map classes are kept
    out = ev.evaluate()["ava"]
    assert out["mAP"] == pytest.approx(100.0) and out["AP/crouch/kneel"] == pytest.approx(100.0)
    assert "AP/dance" not in out  # no ground truth: left out
    files = sorted(os.listdir(tmp_path / "out"))
    assert files == ["ava_detections.csv", "ava_metrics.json", "ava_per_class_ap.png"]
    metrics = json.loads((tmp_path / "out" / "ava_metrics.json").read_text())
    assert metrics["mAP"] == pytest.approx(1.0) and metrics["per_class"][2]["AP"] is None

    # The CLI on the written detections gives the same number.
    rc = cli_main(["-g", g, "-d", str(tmp_path / "out" / "ava_detections.csv"), "--output-dir", str(tmp_path / "cli")])
    assert rc == 0 and "mAP@0.5IoU (protocol 2019): 100.0000" in capsys.readouterr().out
    assert os.path.getsize(tmp_path / "cli" / "ava_per_class_ap.png") > 1000
    assert labels[3] == "crouch/kneel"
    bad = write_csv(tmp_path / "bad.csv", [["vid", "0902", "x"]])
    assert cli_main(["-g", g, "-d", bad]) == 2 and "bad.csv:1" in capsys.readouterr().err


def test_fast_reader_equals_the_general_reader(tmp_path):
    """The C-speed reader (np.loadtxt) gives exactly the general reader's rows, and steps aside for
    anything it does not cover, so errors still name the file and line."""
    from vmae_det.formats.ava import _read_fast, _read_general

    rng = random.Random(0)
    long_id = "x" * 40  # longer than the first width guess: read again wider
    lines = []
    for i in range(3000):
        vid = rng.choice(["-5KQ66BBWC4", "abc_def-123", long_id, " spaced"])
        score = rng.choice([repr(rng.random()), f"{rng.random():.5f}", "1e-7", "7", "0.30000000000000004"])
        lines.append(
            f"{vid},{rng.choice(['0902', '902', '1798', '902.5'])},{rng.random():.3f},{rng.random()!r},"
            f"0.5,1,{rng.randint(1, 80)},{score}"
        )
    for newline in ("\n", "\r\n"):
        path = tmp_path / "d.csv"
        path.write_bytes((newline.join(lines) + newline).encode())
        fast, general = _read_fast(str(path)), _read_general(str(path))
        assert fast is not None
        for col in ("boxes", "action_ids", "scores", "lines"):
            np.testing.assert_array_equal(getattr(fast, col), getattr(general, col))
        assert [as_str(v) for v in fast.video_ids] == list(general.video_ids)
        assert [as_str(v) for v in fast.timestamps] == list(general.timestamps)
    # rows wider than those the widths were measured on (the first chunk) are read again, not cut
    import vmae_det.formats.ava as ava_format

    chunk, ava_format._SCAN_CHUNK = ava_format._SCAN_CHUNK, 256
    try:
        path.write_text("short,0902,0.1,0.1,0.5,0.5,3,0.9\n" * 20 + f"{long_id}{long_id},09020,0.1,0.1,0.5,0.5,3,0.9\n")
        fast, general = _read_fast(str(path)), _read_general(str(path))
        assert [as_str(v) for v in fast.video_ids] == list(general.video_ids)
        assert as_str(fast.timestamps[-1]) == "09020"
    finally:
        ava_format._SCAN_CHUNK = chunk
    seven = tmp_path / "seven.csv"
    seven.write_text("v,902,0.1,0.1,0.5,0.5,3\nv,903,0.1,0.1,0.5,0.5,4\n")
    assert _read_fast(str(seven)).scores.tolist() == [1.0, 1.0]
    for name, text in [
        ("quote", '"v",902,0.1,0.1,0.5,0.5,3,0.9\n'),
        ("blank", "v,902,0.1,0.1,0.5,0.5,3,0.9\n\n"),
        ("crlf_blank", "\r\nv,902,0.1,0.1,0.5,0.5,3,0.9\n"),
        ("utf8", "vé,902,0.1,0.1,0.5,0.5,3,0.9\n"),
        ("mixed", "v,902\nv,903,0.1,0.1,0.5,0.5,3,0.9\n"),
        ("nan", "v,902,nan,0.1,0.5,0.5,3,0.9\n"),
        ("bad", "v,902,0.1,0.1,0.5,0.5,3.5,0.9\n"),
    ]:
        p = tmp_path / f"{name}.csv"
        p.write_text(text, encoding="utf-8")
        assert _read_fast(str(p)) is None, name
    with pytest.raises(ValueError, match=r"nan\.csv:1: box coordinates must be finite"):
        read_ava_csv(str(tmp_path / "nan.csv"))
    with pytest.raises(ValueError, match=r"bad\.csv:1: action id must be an integer"):
        read_ava_csv(str(tmp_path / "bad.csv"))
