"""The demo's own outputs fed back as --boxes (issue 20 item 7): its <name>_actions.csv holds action scores in
column 8, so it is refused with a line naming what to pass instead; its <name>_actions.json gives the same people
with their person scores, so a second run repeats the first one's scores."""

from __future__ import annotations

import csv
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from demo_helpers import fixed_detector, make_predictor, make_video

import vmae_det  # noqa: F401  (detectron2 shims first)
from vmae_det.demo import BoxFileError, CsvBoxSource, DemoJsonBoxSource, DemoSettings, KeyframeSchedule, run_demo
from vmae_det.demo.outputs import DetectionWriter, KeyframeDetections

STEM = "clip one"


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """A demo run with a detector whose person scores are 0.9 and 0.8: its CSV, JSON and summary."""
    tmp = tmp_path_factory.mktemp("feedback")
    video = make_video(tmp / f"{STEM}.mp4", 75)
    out = tmp / "first"
    summary = run_demo(
        DemoSettings(str(video), str(out), batch_size=2, progress=False, render_min_short_side=0),
        make_predictor(),
        fixed_detector,
    )
    return video, out, summary


def write_with_demo_writer(folder: Path, score_threshold: float = 0.0) -> Path:
    """clip_actions.csv/.json written by the demo's DetectionWriter: 2 people, person scores 0.95 and 0.85,
    action scores 0.3 / 0.6 / 0.9 (every one below the 0.8 person threshold but the last)."""
    folder.mkdir(parents=True, exist_ok=True)
    writer = DetectionWriter(
        str(folder / "clip_actions.csv"), str(folder / "clip_actions.json"), "clip", score_threshold=score_threshold
    )
    for j in range(2):
        writer.write(
            KeyframeDetections(
                j,
                j * 30,
                float(j),
                np.array([[0.1, 0.1, 0.4, 0.9], [0.5, 0.2, 0.9, 0.8]]),
                np.array([0.95, 0.85]),
                np.array([[0.3, 0.6, 0.9], [0.9, 0.3, 0.6]]),
            )
        )
    writer.close({})
    return folder / "clip_actions.csv"


def test_the_demo_csv_is_refused_naming_the_json_to_pass(tmp_path):
    path = write_with_demo_writer(tmp_path / "run")
    with pytest.raises(BoxFileError) as e:
        CsvBoxSource(str(path), "clip", score_threshold=0.8)
    message = str(e.value)
    assert message.startswith(
        f"{path}:1: column 8 holds action scores, not person scores (the box on this line has "
        "rows for action ids 1 and 2 with scores 0.3 and 0.6, and a person has one score"
    )
    assert f"pass the same run's {tmp_path / 'run' / 'clip_actions.json'} as --boxes" in message
    assert "\n" not in message

    alone = tmp_path / "copied.csv"  # without its JSON: still told apart by the repeated box
    shutil.copy(path, alone)
    with pytest.raises(
        BoxFileError,
        match="copied.csv:1: column 8 holds action scores.*pass the demo's <name>_actions.json of that run",
    ):
        CsvBoxSource(str(alone), "clip")
    # forced, the old reading: column 8 as the person score (most people fall below the threshold)
    forced = CsvBoxSource(str(alone), "clip", score_threshold=0.8, box_format="detections")
    assert not forced.is_ground_truth


def test_one_action_per_person_is_recognised_by_the_json_next_to_it(tmp_path):
    path = write_with_demo_writer(tmp_path / "run", score_threshold=0.8)  # one action row per person left
    rows = list(csv.reader(path.open()))
    assert len(rows) == 4 and len({tuple(r[:6]) for r in rows}) == 4
    with pytest.raises(
        BoxFileError,
        match=r"clip_actions.csv:1: column 8 holds action scores, not person scores "
        r"\(the demo's own <name>_actions.csv \(its clip_actions.json is next",
    ):
        CsvBoxSource(str(path), "clip")


def test_proposals_and_ground_truth_are_still_read(tmp_path):
    proposals = tmp_path / "p.csv"
    proposals.write_text("clip,0,0.1,0.1,0.4,0.9,,0.9\nclip,0,0.5,0.2,0.9,0.8,,0.85\nclip,1,0.1,0.1,0.4,0.9,1,0.95\n")
    src = CsvBoxSource(str(proposals), "clip").bind(KeyframeSchedule(fps=30, num_frames=4, stride=2))
    assert src.boxes_for(0, np.zeros((10, 10, 3), np.uint8))[1].tolist() == pytest.approx([0.9, 0.85])
    gt = tmp_path / "gt.csv"
    gt.write_text("clip,0,0.1,0.1,0.4,0.9,1,0\nclip,0,0.1,0.1,0.4,0.9,3,0\n")  # one person, two actions
    assert CsvBoxSource(str(gt), "clip").is_ground_truth


def test_the_demo_json_gives_the_same_people_and_scores(first_run, tmp_path):
    video, out, summary = first_run
    with pytest.raises(BoxFileError, match="column 8 holds action scores"):
        run_demo(
            DemoSettings(str(video), str(tmp_path / "refused"), progress=False),
            make_predictor(),
            str(out / f"{STEM}_actions.csv"),
        )
    assert not (tmp_path / "refused" / f"{STEM}_actions.csv").exists()

    again = run_demo(
        DemoSettings(str(video), str(tmp_path / "again"), batch_size=2, progress=False, render_min_short_side=0),
        make_predictor(),
        str(out / f"{STEM}_actions.json"),
    )
    assert again["num_boxes"] == summary["num_boxes"] == 6 and again["csv_boxes_below_threshold"] == 0
    first = json.loads((out / f"{STEM}_actions.json").read_text())["keyframes"]
    second = json.loads((tmp_path / "again" / f"{STEM}_actions.json").read_text())["keyframes"]
    assert [k["time"] for k in second] == [k["time"] for k in first]
    for a, b in zip(first, second):
        assert [p["person_score"] for p in b["people"]] == [p["person_score"] for p in a["people"]] == [0.9, 0.8]
        for p, q in zip(a["people"], b["people"]):
            assert q["box"] == pytest.approx(p["box"], abs=1e-6)
            assert {k: pytest.approx(v, abs=1e-4) for k, v in p["actions"].items()} == q["actions"]


def test_bad_demo_json_is_refused_naming_the_file(tmp_path, caplog):
    bad = tmp_path / "bad_actions.json"
    for text, message in (
        ("{not json", "bad_actions.json: not JSON"),
        ('{"video_id": "clip"}', "bad_actions.json: not the demo's <name>_actions.json (no 'keyframes' list)"),
        (
            '{"video_id": "clip", "keyframes": [\n{"time": 0, "people": [{"box": [0.1, 0.1, 1.4, 0.9], '
            '"person_score": 0.9}]}\n]}\n',
            "bad_actions.json:2: box [0.1, 0.1, 1.4, 0.9] is not a normalised",
        ),
        (
            '{"video_id": "clip", "keyframes": [{"time": 0, "people": [{"box": [0.1, 0.1, 0.4, 0.9], '
            '"person_score": NaN}]}]}',
            "bad_actions.json: keyframes[0]: person_score must be a number in [0, 1]",
        ),
    ):
        bad.write_text(text)
        with pytest.raises(BoxFileError) as e:
            DemoJsonBoxSource(str(bad), "clip")
        assert str(e.value).startswith(f"{tmp_path}/{message}"), str(e.value)
    bad.write_text(
        '{"video_id": "other", "keyframes": [{"time": 0, "people": [{"box": [0.1, 0.1, 0.4, 0.9], '
        '"person_score": 0.9}]}]}'
    )
    with caplog.at_level(logging.WARNING):
        src = DemoJsonBoxSource(str(bad), "clip")
    assert src.rows_other_videos == 1 and "pass --video-id" in caplog.text
    with pytest.raises(ValueError, match="--boxes-format gt: .* is the demo's JSON"):
        from vmae_det.demo.box_files import box_source_from_file

        box_source_from_file(str(bad), "clip", box_format="gt")
