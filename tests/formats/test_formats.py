"""vmae_det.formats: every AVA reader/writer round-trips, errors name file:line; the one video writer."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from vmae_det.constants import AVA_FPS, AVA_START_SEC, default_device
from vmae_det.formats.ava import (
    NO_ACTION,
    AVAFormatError,
    AVARows,
    annotation_file_names,
    as_str,
    checked_boxes,
    format_ava_row,
    format_labelmap,
    frame_file_name,
    keyframe_index,
    read_ava_csv,
    read_exclusions,
    read_labelmap,
    row_timestamps,
    write_ava_csv,
    write_detections_csv,
    write_labelmap,
)
from vmae_det.formats.ava_boxes import (
    read_annotations,
    read_excluded_keyframes,
    read_person_boxes,
    read_proposals,
)


# ----------------------------------------------------------------------------------- layout
def test_layout_names_and_time_axis():
    assert annotation_file_names("val") == {
        "groundtruth": "ava_val_v2.2.csv",
        "exclusions": "ava_val_excluded_timestamps_v2.2.csv",
        "proposals": "ava_val_predicted_boxes.csv",
        "label_map": "ava_action_list_v2.2_for_activitynet_2019.pbtxt",
    }
    assert annotation_file_names("train", "v2.1")["label_map"] == "ava_action_list_v2.1_for_activitynet_2018.pbtxt"
    assert frame_file_name("abc", 0) == "abc_000001.jpg"
    assert keyframe_index(902) == 2 * AVA_FPS and keyframe_index(AVA_START_SEC) == 0
    assert default_device() in ("cpu", "cuda")


# ----------------------------------------------------------------------------------- row writer
def test_format_ava_row_variants():
    assert format_ava_row("v", 902, [0.1, 0.2, 0.3, 0.4], 12, 3) == "v,0902,0.100,0.200,0.300,0.400,12,3"
    assert format_ava_row("v", 902, [0.1, 0.2, 0.3, 0.4], None, 0.5) == "v,0902,0.100,0.200,0.300,0.400,,0.500000"
    assert (
        format_ava_row("v", "902", [0.1, 0.2, 0.3, 0.4], 1, 0.1 + 0.2, decimals=None, score_decimals=None)
        == "v,902,0.1,0.2,0.3,0.4,1,0.30000000000000004"
    )
    assert format_ava_row("v", 7, ["0.1250", "0", "1", "1"], 2, np.int64(4)) == "v,0007,0.1250,0,1,1,2,4"
    assert format_ava_row("v", 903) == "v,0903"
    assert format_ava_row("a,b", 1) == '"a,b",0001' and format_ava_row('q"', 1) == '"q""",0001'


def test_ground_truth_round_trip(tmp_path: Path):
    rows = [
        ("v1", 902, [0.1, 0.2, 0.3, 0.4], 12, 0),
        ("v1", 902, [0.1, 0.2, 0.3, 0.4], 80, 0),
        ("v1", 902, [0.5, 0.5, 0.9, 0.9], 12, 1),
        ("v2", 903, [0.0, 0.0, 1.0, 1.0], 3, 7),
    ]
    path = tmp_path / "gt.csv"
    write_ava_csv(path, (format_ava_row(*r) for r in rows))
    read = read_ava_csv(path)
    assert [as_str(v) for v in read.video_ids] == ["v1", "v1", "v1", "v2"]
    assert [as_str(t) for t in read.timestamps] == ["0902"] * 3 + ["0903"]
    np.testing.assert_array_equal(read.boxes, [r[2] for r in rows])
    assert read.action_ids.tolist() == [12, 80, 12, 3] and read.scores.tolist() == [0, 0, 1, 7]
    gt = read_annotations(path, class_whitelist={12, 80})
    assert list(gt) == [("v1", 902), ("v2", 903)]
    a0, a1 = gt[("v1", 902)]
    assert (a0.person_id, a0.actions, a1.person_id, a1.actions) == (0, [12, 80], 1, [12])
    assert gt[("v2", 903)][0].actions == [] and gt[("v2", 903)][0].person_id == 7


def test_detections_round_trip_exact(tmp_path: Path):
    rng = np.random.default_rng(0)
    n = 50
    rows = AVARows.from_arrays(
        [f"vid{i % 3}" for i in range(n)],
        [str(902 + i % 5) for i in range(n)],
        rng.random((n, 4)),
        rng.integers(1, 81, n),
        rng.random(n),
    )
    path = tmp_path / "sub" / "det.csv"
    write_detections_csv(path, rows)
    lines = path.read_text().splitlines()
    assert lines == [
        format_ava_row(v, t, b, a, s, decimals=None, score_decimals=None)
        for v, t, b, a, s in zip(
            rows.video_ids, rows.timestamps, rows.boxes.tolist(), rows.action_ids.tolist(), rows.scores.tolist()
        )
    ]
    back = read_ava_csv(path)
    for col in ("boxes", "action_ids", "scores"):
        np.testing.assert_array_equal(getattr(back, col), getattr(rows, col))  # bit for bit
    # a video id with a comma is quoted, and read back through the general reader
    odd = AVARows.from_arrays(["a,b"], ["902"], [[0.1, 0.1, 0.2, 0.2]], [1], [0.5])
    write_detections_csv(path, odd)
    assert path.read_text() == '"a,b",902,0.1,0.1,0.2,0.2,1,0.5\n'
    assert read_ava_csv(path).video_ids.tolist() == ["a,b"]


def test_proposals_round_trip(tmp_path: Path):
    path = tmp_path / "ava_val_predicted_boxes.csv"
    write_ava_csv(
        path,
        [
            format_ava_row("v1", 902, [0.1, 0.1, 0.3, 0.5], None, 0.95),
            format_ava_row("v1", 902, [0.5, 0.1, 0.7, 0.5], None, 0.4),
            format_ava_row("v1", 902, [0.1, 0.1, 0.3, 0.5], 3, 0.9),  # the same box on an action row: merged
            format_ava_row("v1", 903, [0.2, 0.2, 0.4, 0.4], None, 0.85),
        ],
    )
    rows = read_ava_csv(path, columns=(8,), optional_action=True)
    assert rows.action_ids.tolist() == [NO_ACTION, NO_ACTION, 3, NO_ACTION]
    props = read_proposals(path, min_score=0.5)
    boxes, scores = props[("v1", 902)]
    assert boxes.shape == (1, 4) and scores.tolist() == pytest.approx([0.95])
    assert read_person_boxes(path, 0.0)[("v1", 902)][1].tolist() == pytest.approx([0.95, 0.4])


def test_exclusions_round_trip(tmp_path: Path):
    path = tmp_path / "ex.csv"
    write_ava_csv(path, [format_ava_row("v1", 902), format_ava_row("v2", 910)])
    assert path.read_text() == "v1,0902\nv2,0910\n"
    assert read_exclusions(path) == [("v1", "0902"), ("v2", "0910")]
    assert read_excluded_keyframes(path) == {("v1", 902), ("v2", 910)}
    assert read_excluded_keyframes(None) == set()
    write_ava_csv(path, [])
    assert path.read_text() == "" and read_exclusions(path) == []


def test_labelmap_round_trip(tmp_path: Path):
    classes = {1: "walk left", 3: "bend/bow (at the waist)", 80: r"a\b"}
    path = tmp_path / "map.pbtxt"
    write_labelmap(path, classes)
    assert read_labelmap(path) == classes
    assert path.read_text().startswith(
        'label {\n  name: "walk left"\n  label_id: 1\n  label_type: PERSON_MOVEMENT\n}\n'
    )
    for bad in ('say "hi"', "two\nlines", "ends\\"):
        with pytest.raises(ValueError, match="cannot be written"):
            format_labelmap({1: bad})


def test_fast_and_general_reader_agree_with_options(tmp_path: Path):
    from vmae_det.formats.ava import _read_fast, _read_general

    path = tmp_path / "p.csv"
    path.write_text(
        "".join(
            format_ava_row(f"v{i % 4}", 900 + i, [0.1, 0.1, 0.5, 0.5], None if i % 3 else i, 0.5 + i / 1000) + "\n"
            for i in range(200)
        )
    )
    fast = _read_fast(str(path), (8,), False, True)
    general = _read_general(str(path), (8,), False, "utf-8", True)
    assert fast is not None
    for col in ("boxes", "action_ids", "scores", "lines"):
        np.testing.assert_array_equal(getattr(fast, col), getattr(general, col))
    assert fast.str_column("video_ids") == general.str_column("video_ids")
    # spaces around fields: stripped by the general reader when asked for, never by the fast path
    path.write_text("v1 , 0902, 0.1,0.1,0.5,0.5,3,0.9\n")
    assert _read_fast(str(path), (8,), True, False) is None
    rows = read_ava_csv(path, columns=(8,), strip=True)
    assert rows.str_column("video_ids") == ["v1"] and rows.str_column("timestamps") == ["0902"]


# ----------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "text, kwargs, message",
    [
        ("v,902,0.1\n", {}, "expected 2, 7 or 8 columns"),
        ("v,902,0.1,0.1,0.5,0.5,3\n", {"columns": (8,)}, "expected 8 columns"),
        (",902,0.1,0.1,0.5,0.5,3,0.9\n", {}, "empty video id"),
        ("v,902,0.1,x,0.5,0.5,3,0.9\n", {}, "box coordinates must be numbers, got 'x'"),
        ("v,902,0.1,inf,0.5,0.5,3,0.9\n", {}, "box coordinates must be finite, got 'inf'"),
        ("v,902,0.1,0.1,0.5,0.5,walk,0.9\n", {}, "action id must be an integer, got 'walk'"),
        ("v,902,0.1,0.1,0.5,0.5,,0.9\n", {}, "action id must be an integer, got ''"),
        ("v,902,0.1,0.1,0.5,0.5,3,high\n", {}, "score must be a number, got 'high'"),
        ("v,902,0.1,0.1,0.5,0.5,3,\n", {}, "score must be a number, got ''"),
        ("v,902,0.1,0.1,0.5,0.5,3,nan\n", {}, "score must be finite, got 'nan'"),
        ("v,902,3\n", {"columns": (2,)}, "expected 2 columns"),
    ],
)
def test_csv_errors_name_file_and_line(tmp_path: Path, text, kwargs, message):
    path = tmp_path / "bad.csv"
    path.write_text("v,902,0.1,0.1,0.5,0.5,3,0.9\n" + text if kwargs.get("columns") != (2,) else "v,901\n" + text)
    with pytest.raises(AVAFormatError, match=message) as e:
        read_ava_csv(path, **kwargs)
    assert str(e.value).startswith(f"{path}:2: ") and e.value.line == 2 and e.value.path == str(path)


def test_file_level_errors(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        read_ava_csv(tmp_path / "nope.csv")
    latin = tmp_path / "latin1.csv"
    latin.write_bytes("caf\u00e9,902,0.1,0.1,0.5,0.5,3,0.9\n".encode("latin-1"))
    with pytest.raises(AVAFormatError, match=r"latin1\.csv:1: not UTF-8 text"):
        read_ava_csv(latin)
    bom = tmp_path / "bom.csv"
    bom.write_bytes("\ufeffv,902,0.1,0.1,0.5,0.5,3,0.9\n".encode("utf-8"))
    assert read_ava_csv(bom, encoding="utf-8-sig").str_column("video_ids") == ["v"]
    assert read_ava_csv(bom).str_column("video_ids") == ["v"]  # the default: a BOM is never part of an id
    from vmae_det.formats.ava_boxes import read_annotations

    bom.write_bytes("\ufeffv,902,0.1,0.1,0.5,0.5,3,0\n".encode("utf-8"))
    assert list(read_annotations(bom)) == [("v", 902)]  # ground truth for training
    pbtxt = tmp_path / "bad.pbtxt"
    pbtxt.write_text('label {\n  name: "a"\n  label_id: 1\n}\nlabel {\n  name: "b"\n}\n')
    with pytest.raises(AVAFormatError, match=r"bad\.pbtxt:5: label block without"):
        read_labelmap(pbtxt)


def test_checked_columns_name_file_and_line(tmp_path: Path):
    path = tmp_path / "c.csv"
    path.write_text("v,0902,0.1,0.1,0.5,0.5,3,0\nv,09x2,0.1,0.1,1.5,0.5,3,0.5\nv,1.5,0.6,0.1,0.5,0.5,3,0\n")
    rows = read_ava_csv(path)
    with pytest.raises(AVAFormatError, match=r"c\.csv:2: timestamp must be an integer, got '09x2'"):
        row_timestamps(rows)
    with pytest.raises(AVAFormatError, match=r"c\.csv:2: timestamp must be a number, got '09x2'"):
        row_timestamps(rows, integer=False)
    assert row_timestamps(rows, [0, 2], integer=False) == [902.0, 1.5]
    with pytest.raises(AVAFormatError, match=r"c\.csv:2: box \[0.1, 0.1, 1.5, 0.5\] is not a normalised"):
        checked_boxes(rows)
    with pytest.raises(AVAFormatError, match=r"c\.csv:3: box .* has x2 < x1"):
        checked_boxes(rows, [0, 2])
    person = tmp_path / "p.csv"
    person.write_text("v,0902,0.1,0.1,0.5,0.5,3,0\nv,0902,0.1,0.1,0.5,0.5,3,0.5\n")
    with pytest.raises(AVAFormatError, match=r"p\.csv:2: person id must be an integer, got 0.5"):
        read_annotations(person)
    assert checked_boxes(rows, [0]).tolist() == [[0.1, 0.1, 0.5, 0.5]]
    edge = tmp_path / "e.csv"
    edge.write_text("v,0902,-0.0005,0.1,1.0004,0.5,3,0\n")  # within the official files' rounding: clipped
    assert read_annotations(edge)[("v", 902)][0].bbox == [0.0, 0.1, 1.0, 0.5]


# ----------------------------------------------------------------------------------- video writer
def _decode(path: Path):
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return s.codec_context.name, [f.to_ndarray(format="rgb24") for f in c.decode(s)]


@pytest.mark.parametrize("codec, expect", [("auto", "h264"), ("mp4v", "mpeg4")])
def test_video_writer_round_trip(tmp_path: Path, codec, expect):
    from vmae_det.formats.video_writer import VideoWriter, h264_available

    if codec == "auto" and not h264_available():
        pytest.skip("no libx264 in this PyAV")
    path = tmp_path / f"{codec}.mp4"
    frames = [np.full((48, 64, 3), 20 * i, np.uint8) for i in range(10)]
    with VideoWriter(str(path), 30, 64, 48, codec=codec) as w:
        for f in frames:
            w.write(f)
    assert w.num_frames == 10
    name, decoded = _decode(path)
    assert name == expect and len(decoded) == 10
    for f, d in zip(frames, decoded):
        assert abs(int(d[24, 32].astype(int).mean()) - int(f[24, 32, 0])) <= 4


def test_video_writer_pads_odd_sizes_and_refuses_bad_ones(tmp_path: Path):
    from vmae_det.formats.video_writer import VideoWriteError, VideoWriter, h264_available

    with pytest.raises(ValueError, match="codec must be one of"):
        VideoWriter(str(tmp_path / "x.mp4"), 30, 8, 8, codec="gif")
    if not h264_available():
        pytest.skip("no libx264 in this PyAV")
    with pytest.raises(VideoWriteError, match=r"big\.mp4: cannot encode 360x46080 frames"):
        VideoWriter(str(tmp_path / "big.mp4"), 30, 360, 46080)
    with VideoWriter(str(tmp_path / "odd.mp4"), 25, 63, 47, options={"g": "25"}) as w:
        for i in range(3):
            w.write(np.full((47, 63, 3), 100, np.uint8))
        with pytest.raises(ValueError, match="frame size"):
            w.write(np.zeros((48, 64, 3), np.uint8))
    _, decoded = _decode(tmp_path / "odd.mp4")
    assert len(decoded) == 3 and decoded[0].shape == (48, 64, 3)
    assert math.isclose(decoded[0][-1, -1].mean(), 100, abs_tol=4)  # the padding repeats the edge
