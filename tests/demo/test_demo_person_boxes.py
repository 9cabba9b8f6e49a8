"""Person boxes (vmae_det.demo.person_boxes, .box_files): box CSVs (AVA offset, merging, skips, ground truth or
detections, bad rows) and a detector through the demo."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from demo_helpers import (
    make_predictor,
    make_video,
    read_rows,
)

import vmae_det  # noqa: F401  (detectron2 shims first)
from vmae_det.demo import BoxFileError, DemoSettings, KeyframeSchedule, VideoStreamReader, run_demo


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
    summary = run_demo(DemoSettings(str(video), str(tmp_path / "o"), progress=False), make_predictor(), str(boxes))
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
        DemoSettings(str(video), str(tmp_path / "o7"), progress=False, person_score_threshold=0.7),
        make_predictor(),
        str(boxes),
    )
    assert summary["csv_boxes_below_threshold"] == 0
    assert "0901" in {r[1] for r in read_rows(tmp_path / "o7/clip one_actions.csv")}


def test_off_grid_timestamp_names_file_and_line(video, tmp_path):
    boxes = tmp_path / "bad.csv"
    boxes.write_text("clip one,1,0.1,0.1,0.4,0.9\nclip one,1.5,0.1,0.1,0.4,0.9\n")
    with pytest.raises(BoxFileError, match=r"bad\.csv:2: timestamp 1\.5 is not a keyframe time"):
        run_demo(DemoSettings(str(video), str(tmp_path / "o"), progress=False), make_predictor(), str(boxes))
    boxes.write_text("clip one,1,0.1,0.1,1.4,0.9\n")
    with pytest.raises(BoxFileError, match=r"bad\.csv:1: .*not a normalised"):
        run_demo(DemoSettings(str(video), str(tmp_path / "o"), progress=False), make_predictor(), str(boxes))


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
    a = run_demo(
        DemoSettings(str(video), str(tmp_path / "a"), time_offset=0, progress=False), make_predictor(), str(gt)
    )
    b = run_demo(
        DemoSettings(str(video), str(tmp_path / "b"), time_offset=0, progress=False), make_predictor(), str(det)
    )
    assert a["num_boxes"] == 2 and a["csv_rows_other_videos"] == 1
    rows = read_rows(a["outputs"]["csv"])
    assert rows == read_rows(b["outputs"]["csv"]) and min(float(r[7]) for r in rows) > 0


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
        DemoSettings(str(video), str(tmp_path / "o"), keyframe_interval=100, progress=False), make_predictor(), detector
    )
    # Random weights find nobody above 0.8: the keyframe is written empty, every frame is rendered.
    assert summary["num_keyframes"] == 1 and summary["num_boxes"] == 0 and summary["num_csv_rows"] == 0
    assert sum(1 for _ in VideoStreamReader(summary["outputs"]["video"])) == 9
    data = json.loads(Path(summary["outputs"]["json"]).read_text())
    assert data["keyframes"] == [{"timestamp": 0, "time": 0.0, "frame": 0, "people": []}]
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        build_person_detector("torchvision", weights=str(tmp_path / "missing.pth"))
