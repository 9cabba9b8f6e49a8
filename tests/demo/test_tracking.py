"""Person tracking across keyframes (vmae_det/demo/tracking.py) and its demo outputs: synthetic people with
known identities (ID switches counted), score smoothing, argument errors, track ids in the JSON, the
sidecar CSV and the video, and an unchanged detections CSV."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest

from vmae_det.demo.tracking import PersonTracker, box_iou, count_id_switches

W, H = 60, 160  # person box size in pixels


def person(x: float, y: float = 100.0) -> list:
    return [x, y, x + W, y + H]


def track(tracker: PersonTracker, keyframes, seed: int = 0):
    """Feed ``keyframes`` (lists of ``(identity, box)``) in a shuffled order per keyframe; returns the true
    ids and the track ids, per keyframe, for :func:`count_id_switches`."""
    rng = np.random.default_rng(seed)
    truth, got = [], []
    for people in keyframes:
        people = [people[i] for i in rng.permutation(len(people))]
        ids = [p for p, _ in people]
        boxes = np.array([b for _, b in people], np.float64).reshape(-1, 4)
        track_ids, _ = tracker.update(boxes)
        assert track_ids.dtype == np.int64 and len(track_ids) == len(ids)
        assert len(set(track_ids.tolist())) == len(ids)  # one id per person on a keyframe
        truth.append(ids)
        got.append(track_ids.tolist())
    return truth, got


def ids_of(truth, got, identity):
    return [g[t.index(identity)] for t, g in zip(truth, got) if identity in t]


# --------------------------------------------------------------------------- identities
def test_people_standing_still_keep_their_ids_under_detector_jitter():
    rng = np.random.default_rng(1)
    places = {"a": 100, "b": 150, "c": 400}  # a and b overlap (IoU ~0.1)
    keyframes = [[(p, np.array(person(x)) + rng.normal(0, 3, 4)) for p, x in places.items()] for _ in range(10)]
    truth, got = track(PersonTracker(), keyframes)
    assert count_id_switches(truth, got) == 0
    assert sorted({i for g in got for i in g}) == [1, 2, 3]
    assert ids_of(truth, got, "a") == [ids_of(truth, got, "a")[0]] * 10


def test_two_people_crossing_in_depth_keep_their_ids():
    # a walks right, b walks left a little lower in the frame (further back), 10 px per keyframe: their
    # boxes overlap for 10 keyframes, fully on one; the total overlap picks the right pairs each time.
    keyframes = [[("a", person(10 * k)), ("b", person(200 - 10 * k, 120))] for k in range(21)]
    for motion in (False, True):
        truth, got = track(PersonTracker(motion=motion), keyframes)
        assert count_id_switches(truth, got) == 0, motion
        assert ids_of(truth, got, "a") == [1] * 21 or ids_of(truth, got, "a") == [2] * 21


def test_fast_crossing_switches_ids_without_motion_and_not_with_it():
    # 25 px per keyframe on 60 px wide boxes: on the keyframe they pass each other, each one's last box
    # overlaps the other person more than themselves (IoU 0.6 vs 0.4), so matching last boxes swaps them
    # (a switch for each); the constant-velocity prediction looks where each one is going.
    keyframes = [[("a", person(25 * k)), ("b", person(240 - 25 * k, 110))] for k in range(11)]
    truth, got = track(PersonTracker(motion=False), keyframes)
    static_switches = count_id_switches(truth, got)
    truth, got = track(PersonTracker(motion=True), keyframes)
    assert count_id_switches(truth, got) == 0
    assert static_switches == 2


def test_an_occluded_person_keeps_the_id_for_max_missed_keyframes_then_gets_a_new_one():
    def run(hidden, max_missed=2):
        keyframes = [[("a", person(100))] + ([] if k in hidden else [("b", person(300))]) for k in range(8)]
        return track(PersonTracker(max_missed=max_missed), keyframes)

    truth, got = run(hidden={3, 4})  # missing for 2 keyframes: survives
    assert count_id_switches(truth, got) == 0
    assert len(set(ids_of(truth, got, "b"))) == 1
    truth, got = run(hidden={3, 4, 5})  # 3: the track ended, b is a new track
    assert count_id_switches(truth, got) == 1
    b = ids_of(truth, got, "b")
    assert b[0] != b[-1] and b[-1] == 3  # ids are never reused: the next one is 3
    truth, got = run(hidden={3}, max_missed=0)
    assert count_id_switches(truth, got) == 1


def test_a_person_leaving_and_a_new_one_entering_get_different_ids():
    keyframes = (
        [[("a", person(100)), ("b", person(300))]] * 3
        + [[("a", person(100))]] * 4
        + [[("a", person(100)), ("c", person(300))]] * 3
    )  # c enters where b stood, 4 keyframes later
    truth, got = track(PersonTracker(max_missed=2), keyframes)
    assert count_id_switches(truth, got) == 0
    assert ids_of(truth, got, "c") == [3] * 3 and ids_of(truth, got, "b")[0] in (1, 2)
    # an empty keyframe ages every track too
    tracker = PersonTracker(max_missed=1)
    first, _ = tracker.update(np.array([person(0)]))
    ids, scores = tracker.update(np.zeros((0, 4)))
    assert ids.shape == (0,) and ids.dtype == np.int64 and scores is None
    assert tracker.update(np.array([person(0)]))[0].tolist() == first.tolist()
    tracker.update(np.zeros((0, 4)))
    tracker.update(np.zeros((0, 4)))
    assert tracker.update(np.array([person(0)]))[0].tolist() == [2] and tracker.num_tracks == 2


def scene(rng, speed: float, jitter: float, num_people: int = 4, num_keyframes: int = 12, width: int = 1280):
    """People walking across a frame in both directions at up to ``speed`` px per keyframe, in nearby
    lanes, with Gaussian box jitter of ``jitter`` px (a detector's)."""
    x0 = rng.uniform(0, width - W, num_people)
    v = rng.choice([-1, 1], num_people) * rng.uniform(0.3, 1.0, num_people) * speed
    y0 = 300 + rng.uniform(-20, 20, num_people)
    keyframes = []
    for k in range(num_keyframes):
        x = x0 + v * k
        boxes = np.stack([x, y0, x + W, y0 + H], 1) + rng.normal(0, jitter, (num_people, 4))
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
        keyframes.append([(i, boxes[i]) for i in np.flatnonzero((x > -W) & (x < width))])
    return keyframes


def switches_on_scenes(speed, jitter, motion, num_scenes=60):
    rng = np.random.default_rng(0)
    total = 0
    for s in range(num_scenes):
        truth, got = track(PersonTracker(motion=motion), scene(rng, speed, jitter), seed=s)
        total += count_id_switches(truth, got)
    return total


def test_motion_prediction_trade_off_on_random_scenes():
    """The measurement behind ``motion=False`` by default (docs/tracking.md): the prediction switches fewer
    ids between walking people and more between people standing close together under detector jitter."""
    walking = {m: switches_on_scenes(20, 2, m) for m in (False, True)}
    standing = {m: switches_on_scenes(0, 6, m) for m in (False, True)}
    print(
        f"ID switches, 60 scenes x 12 keyframes x 4 people: walking 20 px/keyframe {walking}, "
        f"standing with 6 px jitter {standing}"
    )
    assert walking[True] < walking[False] / 2
    assert standing[False] < standing[True]


def test_count_id_switches():
    assert count_id_switches([[1, 2], [1, 2], [2, 1]], [[5, 6], [5, 6], [6, 5]]) == 0  # order free
    assert count_id_switches([[1, 2], [1, 2], [1]], [[5, 6], [6, 5], [6]]) == 2
    assert count_id_switches([[1], [], [1]], [[5], [], [7]]) == 1  # absence does not reset
    with pytest.raises(ValueError, match="keyframe 0: 2 true ids but 1"):
        count_id_switches([[1, 2]], [[1]])
    with pytest.raises(ValueError, match="2 keyframes of true ids but 1"):
        count_id_switches([[1], [1]], [[1]])


def test_box_iou():
    iou = box_iou(np.array([[0, 0, 10, 10], [0, 0, 0, 0]]), np.array([[5, 0, 15, 10], [0, 0, 10, 10]]))
    np.testing.assert_allclose(iou, [[50 / 150, 1.0], [0.0, 0.0]])


# --------------------------------------------------------------------------- smoothing
def test_scores_are_the_mean_of_the_tracks_last_window_keyframes():
    tracker = PersonTracker(smooth_window=3)
    a, b = person(100), person(400)
    s = [np.array([[0.1 * k, 1.0 - 0.1 * k], [0.5, 0.5]], np.float32) for k in range(5)]
    for k in range(5):
        ids, smoothed = tracker.update(
            np.array([a, b]) if k % 2 == 0 else np.array([b, a]), s[k] if k % 2 == 0 else s[k][::-1]
        )
        out = smoothed if k % 2 == 0 else smoothed[::-1]  # rows of a, b
        assert smoothed.dtype == np.float32
        window = [s[i][0] for i in range(max(0, k - 2), k + 1)]
        np.testing.assert_allclose(out[0], np.mean(window, axis=0), rtol=1e-6)
        np.testing.assert_allclose(out[1], [0.5, 0.5])
    # keyframes a track was missed on are skipped; a new track starts from its own scores
    ids, smoothed = tracker.update(np.array([a]), np.array([[1.0, 1.0]]))
    np.testing.assert_allclose(smoothed[0], np.mean([s[3][0], s[4][0], [1, 1]], axis=0), rtol=1e-6)
    ids, smoothed = tracker.update(np.array([person(800)]), np.array([[0.2, 0.4]]))
    assert ids.tolist() == [3] and smoothed[0].tolist() == pytest.approx([0.2, 0.4])


def test_window_one_returns_the_scores_unchanged():
    tracker = PersonTracker(smooth_window=1)
    rng = np.random.default_rng(0)
    for _ in range(3):
        scores = rng.random((2, 7)).astype(np.float32)
        _, smoothed = tracker.update(np.array([person(0), person(300)]), scores)
        assert np.array_equal(smoothed, scores)


# --------------------------------------------------------------------------- bad arguments
@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"iou_threshold": 0}, r"iou_threshold must be a number in \(0, 1\], got 0"),
        ({"iou_threshold": 1.5}, r"iou_threshold must be a number in \(0, 1\], got 1.5"),
        ({"iou_threshold": float("nan")}, r"iou_threshold must be a number in \(0, 1\], got nan"),
        ({"iou_threshold": "0.3"}, r"iou_threshold must be a number in \(0, 1\], got '0.3'"),
        ({"max_missed": -1}, "max_missed must be an integer >= 0, got -1"),
        ({"max_missed": 1.5}, "max_missed must be an integer >= 0, got 1.5"),
        ({"smooth_window": 0}, "smooth_window must be an integer >= 1, got 0"),
        ({"smooth_window": True}, "smooth_window must be an integer >= 1, got True"),
    ],
)
def test_bad_settings_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PersonTracker(**kwargs)


@pytest.mark.parametrize(
    "boxes, scores, message",
    [
        (np.zeros((2, 3)), None, r"boxes must be an \[N, 4\] xyxy array, got shape \(2, 3\)"),
        (np.array([[0, 0, np.nan, 1]]), None, "boxes must be finite"),
        (np.array([[5, 0, 1, 1]]), None, "x2 >= x1 and y2 >= y1"),
        (np.array([[0, 0, 1, 1]]), np.zeros((2, 3)), r"scores must be an \[N, C\] array with N = 1 boxes, got shape"),
        (np.array([[0, 0, 1, 1]]), np.zeros(3), r"scores must be an \[N, C\] array"),
    ],
)
def test_bad_inputs_are_clear_errors(boxes, scores, message):
    with pytest.raises(ValueError, match=message):
        PersonTracker().update(boxes, scores)


def test_a_change_in_the_number_of_classes_is_an_error():
    tracker = PersonTracker()
    tracker.update(np.array([person(0)]), np.zeros((1, 3)))
    with pytest.raises(ValueError, match="scores have 4 classes, earlier keyframes had 3"):
        tracker.update(np.array([person(0)]), np.zeros((1, 4)))


# --------------------------------------------------------------------------- through the demo
@pytest.fixture(scope="module")
def video(tmp_path_factory):
    from demo_helpers import make_video

    return make_video(tmp_path_factory.mktemp("vid") / "walk.mp4", 75)  # keyframes at frames 0, 30, 60


def swapping_detector():
    """The two people of tests/demo_helpers.py, listed in the other order on every other keyframe."""
    from demo_helpers import BOXES

    calls = []

    def detector(frame):
        order = [1, 0] if len(calls) % 2 else [0, 1]
        calls.append(order)
        return BOXES[order].copy(), np.array([0.9, 0.8], np.float32)[order]

    return detector


def demo(video, out, **kw):
    from demo_helpers import make_predictor

    from vmae_det.demo import DemoSettings, run_demo

    settings = DemoSettings(str(video), str(out), batch_size=2, render_min_short_side=0, progress=False, **kw)
    return run_demo(settings, make_predictor(), swapping_detector())


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_demo_writes_track_ids_to_the_json_the_sidecar_csv_and_keeps_the_detections_csv(video, tmp_path):
    from demo_helpers import BOXES

    summary = demo(video, tmp_path / "track")
    assert summary["num_tracks"] == 2 and summary["outputs"]["tracks"].endswith("walk_tracks.csv")
    data = json.loads((tmp_path / "track" / "walk_actions.json").read_text())
    assert data["tracking"] == {"iou_threshold": 0.3, "max_missed": 2, "smooth_window": 1}
    # the person on the left is #1 on every keyframe, wherever the detector lists them
    left = BOXES[0] / [96, 64, 96, 64]
    for keyframe in data["keyframes"]:
        ids = {p["track_id"]: p["box"] for p in keyframe["people"]}
        assert sorted(ids) == [1, 2]
        assert ids[1] == pytest.approx(left.tolist(), abs=1e-6)
    # the sidecar: one row per person box, the box and second as written in the detections CSV
    rows = read_csv(tmp_path / "track" / "walk_tracks.csv")
    detections = read_csv(tmp_path / "track" / "walk_actions.csv")
    assert len(rows) == 6 and all(len(r) == 7 for r in rows)
    assert [int(r[6]) for r in rows] == [1, 2, 2, 1, 1, 2]  # listing order of the swapping detector
    assert {tuple(r[:6]) for r in rows} == {tuple(r[:6]) for r in detections}
    assert {r[2] for r in rows if r[6] == "1"} == {"0.042"}  # 4 / 96, three decimals as the detections

    # --no-track: the same detections CSV byte for byte, no track ids, and the old sidecar is removed
    (tmp_path / "track" / "walk_tracks.csv").rename(tmp_path / "track_sidecar.csv")
    summary = demo(video, tmp_path / "untracked", track=False)
    assert summary["num_tracks"] is None and "tracks" not in summary["outputs"]
    assert (tmp_path / "untracked" / "walk_actions.csv").read_bytes() == (
        tmp_path / "track" / "walk_actions.csv"
    ).read_bytes()
    untracked = json.loads((tmp_path / "untracked" / "walk_actions.json").read_text())
    assert untracked["tracking"] is None
    assert all("track_id" not in p for k in untracked["keyframes"] for p in k["people"])
    (tmp_path / "track_sidecar.csv").rename(tmp_path / "untracked" / "walk_tracks.csv")
    demo(video, tmp_path / "untracked", track=False)
    assert not (tmp_path / "untracked" / "walk_tracks.csv").exists()


def test_smoothed_scores_are_the_mean_over_each_persons_track(video, tmp_path):
    demo(video, tmp_path / "raw")
    demo(video, tmp_path / "smooth", smooth_window=2)

    def scores(folder):
        data = json.loads((tmp_path / folder / "walk_actions.json").read_text())
        return [
            {p["track_id"]: np.array([p["actions"][a] for a in sorted(p["actions"])]) for p in k["people"]}
            for k in data["keyframes"]
        ]

    raw, smooth = scores("raw"), scores("smooth")
    for person in (1, 2):
        np.testing.assert_allclose(smooth[0][person], raw[0][person], atol=2e-6)
        for k in (1, 2):
            np.testing.assert_allclose(smooth[k][person], (raw[k - 1][person] + raw[k][person]) / 2, atol=2e-6)
    assert not np.allclose(smooth[2][1], raw[2][1])  # the moving block changes the scores


def test_rendered_boxes_keep_each_persons_colour(video, tmp_path):
    from vmae_det.demo import ActionVisualizer, VideoStreamReader

    demo(video, tmp_path)
    frames = [f for _, f in VideoStreamReader(str(tmp_path / "walk_actions.mp4"))]
    colours = [np.array(ActionVisualizer().color(i)) for i in (0, 1)]  # ids 1 and 2
    for idx in (5, 35, 65):  # one frame after each keyframe: the detector listed the people in other orders
        left_edge = frames[idx][20:40, 4].astype(int)  # the left side of person 1's box (x = 4)
        assert (np.abs(left_edge - colours[0]).sum(-1) < 60).mean() > 0.5, idx


def test_visualizer_puts_the_track_id_first():
    from vmae_det.demo import BoxLabels

    assert BoxLabels((0, 0, 1, 1), [("walk", 0.5), ("stand", 0.25)], 7).lines() == ["#7 walk 0.50", "stand 0.25"]
    assert BoxLabels((0, 0, 1, 1), [], 7).lines() == ["#7"]
    assert BoxLabels((0, 0, 1, 1), [("walk", 0.5)]).lines() == ["walk 0.50"]


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--track-iou", "0"], r"track_iou \(--track-iou\) must be a number in \(0, 1\], got 0.0"),
        (["--track-iou", "nan"], r"track_iou \(--track-iou\) must be a number in \(0, 1\], got nan"),
        (["--smooth-window", "0"], r"smooth_window \(--smooth-window\) must be an integer >= 1, got 0"),
        (["--smooth-window", "3", "--no-track"], r"smooth_window \(--smooth-window\) averages scores along tracks"),
    ],
)
def test_bad_tracking_flags_are_clear_errors(tmp_path, capsys, flags, message):
    from vmae_det.tools.demo import cli

    argv = [
        "--config-file",
        "c.py",
        "--checkpoint",
        "w.pth",
        "--input",
        "v.mp4",
        "--output",
        str(tmp_path / "o"),
        "--boxes",
        "b.csv",
        "--no-progress",
    ] + flags
    assert cli(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert re.search("error: " + message, err), err
