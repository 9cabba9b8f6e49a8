"""vmae_det.data.custom / tools/prepare_custom_dataset.py: own videos + CSV -> AVA layout."""

from __future__ import annotations

import importlib.util
import uuid
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data import transforms as T

import vmae_det  # noqa: F401  (shims before detectron2)
from vmae_det.data import register_ava
from vmae_det.data.ava import AVAClipMapper, load_ava_dicts
from vmae_det.data.custom import CustomDatasetError, prepare_custom_dataset, read_label_names, resample_to_fps
from vmae_det.formats.ava import read_labelmap

W, H, SRC_FPS, SECONDS = 64, 48, 25, 4
HEADER = "video,split,time,x1,y1,x2,y2,action,person\n"
# cam1 (lossless FFV1 .avi) train; cam2 (mp4v .mp4) val; two actions of person 0 share a box;
# person 1's box sticks out of the frame (clipped); times as float "1.0" are whole seconds.
ROWS = (
    "cam1,train,2,8,4,24,40,walk,0\n"
    "cam1,train,2,8,4,24,40,wave,0\n"
    "cam1,train,2,40,10,70,47,stand,1\n"
    "cam1,train,3,10,6,26,42,walk,0\n"
    "cam2.mp4,val,1.0,0,0,32,24,stand,3\n"
)


def _write_video(path: Path, fourcc: str) -> None:
    """Frame i is flat grey 2*i (so a decoded frame tells which source frame it was)."""
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), SRC_FPS, (W, H))
    assert w.isOpened()
    for i in range(SRC_FPS * SECONDS):
        w.write(np.full((H, W, 3), 2 * i, np.uint8))
    w.release()


@pytest.fixture(scope="module")
def raw(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("raw")
    (d / "videos").mkdir()
    _write_video(d / "videos" / "cam1.avi", "FFV1")
    _write_video(d / "videos" / "cam2.mp4", "mp4v")
    _write_video(d / "videos" / "spare.avi", "FFV1")  # no annotations: reported, not converted
    (d / "ann.csv").write_text(HEADER + ROWS)
    return d


@pytest.fixture(scope="module")
def built(raw, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "my_ava"
    summary = prepare_custom_dataset(raw / "videos", raw / "ann.csv", out, extract_frames=True, progress=False)
    return out, summary


def test_resample_nearest_frame():
    src = [(Fraction(i, 25), i) for i in range(100)]  # 4 s at 25 fps
    out = list(resample_to_fps(iter(src), 30))
    assert [i for i, _ in out] == list(range(120))  # covers the 4 s
    frames = [f for _, f in out]
    for t in range(4):
        assert frames[30 * t] == 25 * t  # keyframe second t <-> output frame t * 30
    assert frames[1] == 1 and frames[119] == 99
    # Nearest, ties to the earlier frame; times relative to the first frame; non-increasing dropped.
    shifted = [(Fraction(7) + Fraction(i, 10), i) for i in range(3)] + [(Fraction(7), 99)]
    assert [f for _, f in resample_to_fps(iter(shifted), 20)] == [0, 0, 1, 1, 2, 2]


def test_layout_and_annotations(built):
    out, s = built
    ann = out / "annotations"
    for name in (
        "ava_train_v2.2.csv",
        "ava_val_v2.2.csv",
        "ava_action_list_v2.2_for_activitynet_2019.pbtxt",
        "ava_train_excluded_timestamps_v2.2.csv",
        "ava_val_excluded_timestamps_v2.2.csv",
    ):
        assert (ann / name).is_file(), name
    assert sorted(p.name for p in (out / "videos").iterdir()) == ["cam1.mp4", "cam2.mp4"]
    assert len(list((out / "frames" / "cam1").glob("cam1_*.jpg"))) == 120
    assert (out / "frames" / "cam1" / "cam1_000001.jpg").is_file()
    assert (ann / "ava_train_excluded_timestamps_v2.2.csv").read_text() == ""
    assert read_labelmap(str(ann / "ava_action_list_v2.2_for_activitynet_2019.pbtxt")) == {
        1: "stand",
        2: "walk",
        3: "wave",
    }
    # 900-s offset, boxes / (64, 48), clipped to the frame, sorted, one row per (person, action).
    assert (ann / "ava_train_v2.2.csv").read_text().splitlines() == [
        "cam1,0902,0.1250,0.0833,0.3750,0.8333,2,0",
        "cam1,0902,0.1250,0.0833,0.3750,0.8333,3,0",
        "cam1,0902,0.6250,0.2083,1.0000,0.9792,1,1",
        "cam1,0903,0.1562,0.1250,0.4062,0.8750,2,0",
    ]
    assert (ann / "ava_val_v2.2.csv").read_text() == "cam2,0901,0.0000,0.0000,0.5000,0.5000,1,3\n"
    assert s.num_classes == 3 and s.classes == {1: "stand", 2: "walk", 3: "wave"}
    assert s.keyframes == {"train": 2, "val": 1} and s.boxes == {"train": 3, "val": 1}
    assert s.rows == {"train": 4, "val": 1} and s.clipped_boxes == 1 and s.unused_videos == ["spare.avi"]
    assert s.videos["cam1"].num_frames == 120 and (s.videos["cam1"].width, s.videos["cam1"].height) == (W, H)
    text = s.format("my_ava")
    assert f'register_ava(f"my_ava_{{_split}}", "{out}", _split, num_classes=3)' in text
    assert "model.num_classes = 3" in text


def test_written_video_is_30fps_nearest_frame(built):
    from vmae_det.data.video_io import open_video

    out, _ = built
    r = open_video(str(out / "videos" / "cam1.mp4"))
    try:
        assert r.num_frames == 120 and abs(r.fps - 30) < 1e-3
        grey = r.get_frames([0, 30, 60, 90])[:, H // 2, W // 2, 0].astype(int)
    finally:
        r.close()
    np.testing.assert_allclose(grey, [0, 50, 100, 150], atol=3)  # source frames 0, 25, 50, 75


def test_readers_register_and_mapper(built):
    out, _ = built
    train = load_ava_dicts(out, "train")
    assert [(d["video_id"], d["timestamp"]) for d in train] == [("cam1", 902), ("cam1", 903)]
    assert train[0]["frames_dir"].endswith("cam1")
    first = {a["person_id"]: a for a in train[0]["annotations"]}
    assert first[0]["actions"] == [2, 3] and first[1]["actions"] == [1]
    np.testing.assert_allclose(first[1]["bbox"], [40 / 64, 10 / 48, 1.0, 47 / 48], atol=1e-4)
    videos_only = load_ava_dicts(out, "val", source="videos")
    assert videos_only[0]["video_path"].endswith("cam2.mp4")

    name = f"custom_{uuid.uuid4().hex[:8]}"
    for split in ("train", "val"):
        register_ava(f"{name}_{split}", out, split, num_classes=3)
    assert len(DatasetCatalog.get(f"{name}_train")) == 2 and len(DatasetCatalog.get(f"{name}_val")) == 1
    meta = MetadataCatalog.get(f"{name}_val")
    assert meta.num_classes == 3 and meta.class_names == {1: "stand", 2: "walk", 3: "wave"}

    for d, source in ((train[0], "frames"), (load_ava_dicts(out, "train", source="videos")[0], "video")):
        m = AVAClipMapper(
            is_train=True, num_classes=3, num_frames=4, sampling_rate=2, augmentations=[T.NoOpTransform()]
        )
        x = m(d)
        assert x["clip"].shape == (3, 4, H, W), source
        assert abs(int(x["clip"][0, 2, H // 2, W // 2]) - 100) <= 3, source  # keyframe = source frame 50
        order = np.argsort(x["boxes"][:, 0].numpy())
        np.testing.assert_allclose(x["boxes"].numpy()[order], [[8, 4, 24, 40], [40, 10, 64, 47]], atol=0.01)
        np.testing.assert_array_equal(x["labels"].numpy()[order], [[0, 1, 1], [1, 0, 0]])


def test_normalized_labels_and_odd_size(raw, tmp_path):
    import av

    vids = tmp_path / "v"
    vids.mkdir()
    with av.open(str(vids / "odd.mkv"), "w") as c:  # 63x47: padded to 64x48 for H.264
        st = c.add_stream("ffv1", rate=SRC_FPS)
        st.width, st.height, st.pix_fmt = 63, 47, "yuv420p"
        for i in range(2 * SRC_FPS):
            f = av.VideoFrame.from_ndarray(np.full((47, 63, 3), 2 * i, np.uint8), format="rgb24")
            for p in st.encode(f):
                c.mux(p)
        for p in st.encode(None):
            c.mux(p)
    csv_path = tmp_path / "a.csv"
    csv_path.write_text(
        "person,action,video,time,split,x1,y1,x2,y2,note\n"
        "0,wave,odd,1,train,0.0,0.0,1.0,0.5,extra columns are ignored\n"
    )
    labels = tmp_path / "labels.txt"
    labels.write_text("# my actions\nwave\nstand\n")
    s = prepare_custom_dataset(vids, csv_path, tmp_path / "out", normalized=True, labels=labels, progress=False)
    assert s.classes == {1: "wave", 2: "stand"} and s.num_classes == 2
    assert (s.videos["odd"].width, s.videos["odd"].height, s.videos["odd"].num_frames) == (64, 48, 60)
    assert (
        tmp_path / "out/annotations/ava_train_v2.2.csv"
    ).read_text() == f"odd,0901,0.0000,0.0000,{63 / 64:.4f},{23.5 / 48:.4f},1,0\n"
    assert not (tmp_path / "out" / "frames").exists()
    labels.write_text("stand\n")
    with pytest.raises(CustomDatasetError, match=r"a\.csv:2: action 'wave' is not in"):
        prepare_custom_dataset(vids, csv_path, tmp_path / "out2", normalized=True, labels=labels, progress=False)


def test_label_names_from_pbtxt_or_text(tmp_path):
    pbtxt = tmp_path / "labels.pbtxt"  # read by the AVA label-map reader (this path used to fail to import it)
    pbtxt.write_text('label {\n  name: "wave"\n  label_id: 2\n}\nitem { name: "stand" id: 5 }\n')
    assert read_label_names(pbtxt) == {2: "wave", 5: "stand"}
    txt = tmp_path / "labels.txt"
    txt.write_text("# mine\nwave\n\nstand\nwave\n")
    with pytest.raises(CustomDatasetError, match=r"labels\.txt: action name 'wave' appears twice \(ids 1 and 3\)"):
        read_label_names(txt)
    pbtxt.write_text('label {\n  name: "wave"\n}\n')
    with pytest.raises(ValueError, match=r"labels\.pbtxt:1: label block without"):
        read_label_names(pbtxt)


@pytest.mark.parametrize(
    "row, message",
    [
        ("nope,train,2,8,4,24,40,walk,0", "unknown video 'nope'"),
        ("cam1,test,2,8,4,24,40,walk,0", "unknown split 'test'"),
        ("cam1,train,2,24,4,8,40,walk,0", "needs x2 > x1"),
        ("cam1,train,2,80,4,90,40,walk,0", "entirely outside the frame"),
        ("cam1,train,2,8,4,24,walk,0", "expected 9 columns"),
        ("cam1,train,2.5,8,4,24,40,walk,0", "whole, non-negative number of seconds"),
        ("cam1,train,two,8,4,24,40,walk,0", "time must be a number"),
        ("cam1,train,2,8,4,24,40,walk,bob", "person must be an integer"),
        ("cam1,train,2,9,4,24,40,wave,0", "already has a different box on line 2"),
        ("cam1,train,4,8,4,24,40,walk,0", "past the end"),
    ],
)
def test_errors_name_file_and_line(raw, tmp_path, row, message):
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "cam1,train,2,8,4,24,40,walk,0\n" + row + "\n")  # the bad row is line 3
    with pytest.raises(CustomDatasetError, match=rf"bad\.csv:3: .*{message}"):
        prepare_custom_dataset(raw / "videos", bad, tmp_path / "out", progress=False)
    assert not (tmp_path / "out" / "videos").exists() or not any((tmp_path / "out" / "videos").iterdir())


def test_header_and_duplicates(raw, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("video,split,time,x1,y1,x2,y2,action\ncam1,train,2,8,4,24,40,walk\n")
    with pytest.raises(CustomDatasetError, match=r"bad\.csv:1: header lacks column\(s\) \['person'\]"):
        prepare_custom_dataset(raw / "videos", bad, tmp_path / "out", progress=False)
    dup = tmp_path / "dup.csv"
    dup.write_text(HEADER + "cam1,train,2,8,4,24,40,walk,0\n" * 2)
    s = prepare_custom_dataset(raw / "videos", dup, tmp_path / "out", progress=False)
    assert s.duplicate_rows == 1 and s.rows["train"] == 1


def _annotation_files(root: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted((root / "annotations").iterdir())}


def test_streamed_rows_out_of_order_across_chunks(raw, tmp_path, caplog, monkeypatch):
    """The rows are sorted on disk in chunks, so memory does not grow with the CSV: rows shuffled across
    chunks of 2 rows (their runs merged 3 at a time) give the files, counts and logged duplicates of the CSV
    in order, in one chunk."""
    import logging
    import random

    from vmae_det.data.custom import spill

    rows = [
        f"cam{1 + i % 2},{'train' if i % 2 == 0 else 'val'},{i % 4},{i % 20},{i % 10},{30 + i % 40},"
        f"{20 + i % 25},{('walk', 'stand', 'wave')[i % 3]},{i % 7}\n"
        for i in range(60)
    ]
    rows = list({r.split(",")[0] + r.split(",")[2] + r.split(",")[8]: r for r in rows}.values())  # one box a person
    rows += rows[:3]  # exact duplicates
    in_order = tmp_path / "in_order.csv"
    in_order.write_text(HEADER + "".join(sorted(rows)))
    random.Random(0).shuffle(rows)
    shuffled = tmp_path / "shuffled.csv"
    shuffled.write_text(HEADER + "".join(rows))
    a = prepare_custom_dataset(raw / "videos", in_order, tmp_path / "a", progress=False, chunk_rows=10_000)
    caplog.set_level(logging.INFO, logger="vmae_det.data.custom.ava_layout")
    monkeypatch.setattr(spill, "MAX_FAN_IN", 3)
    b = prepare_custom_dataset(raw / "videos", shuffled, tmp_path / "b", progress=False, chunk_rows=2)
    assert _annotation_files(tmp_path / "a") == _annotation_files(tmp_path / "b")
    train = (tmp_path / "b" / "annotations" / "ava_train_v2.2.csv").read_text().splitlines()
    assert len(train) == b.rows["train"] > 10 and train == sorted(train, key=lambda r: r.split(",")[:2])
    for k in ("keyframes", "boxes", "rows", "clipped_boxes", "duplicate_rows"):
        assert getattr(a, k) == getattr(b, k), k
    assert a.duplicate_rows == 3
    lines = [int(m.split(":")[1]) for m in caplog.messages if "duplicate row skipped" in m]
    assert len(lines) == 3 and lines == sorted(lines)  # in file order, as the rows were read
    assert not list((tmp_path / "b").glob(".*"))  # the temporary rows are gone


@pytest.mark.parametrize(
    "late_row, message",
    [
        ("cam1,val,1,8,4,24,40,walk,bob", r"bad\.csv:40: person must be an integer"),
        ("cam1,train,2,80,4,90,40,walk,0", r"bad\.csv:40: .*entirely outside the frame"),
        (
            "cam1,train,0,9,4,24,40,wave,0",
            r"bad\.csv:40: person 0 of cam1 at 0 s already has a different box on line 2",
        ),
        ("cam1,train,4,8,4,24,40,walk,0", r"bad\.csv:40: time 4 s is past the end"),
    ],
)
def test_streamed_errors_in_a_later_chunk_name_file_and_line(raw, tmp_path, late_row, message):
    """A bad row in a later chunk (of 4 rows) still names its line; the first bad line of a check wins, as when
    the rows were checked one by one."""
    good = [f"cam1,train,{i % 4},8,4,24,40,walk,{i // 4}\n" for i in range(38)]
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "".join(good) + late_row + "\n")  # line 40
    with pytest.raises(CustomDatasetError, match=message):
        prepare_custom_dataset(raw / "videos", bad, tmp_path / "out", progress=False, chunk_rows=4)
    assert not (tmp_path / "out").exists()  # nothing left behind, the temporary rows included
    bad.write_text(HEADER + "".join(good) + late_row + "\n" + late_row + "\n")
    with pytest.raises(CustomDatasetError, match=message):
        prepare_custom_dataset(raw / "videos", bad, tmp_path / "out", progress=False, chunk_rows=4)
    if "integer" in message:
        return  # a row that does not read is reported before any other check
    bad.write_text(HEADER + "cam1,train,0,10,4,24,40,walk,0\n" + "".join(good) + late_row + "\n")
    with pytest.raises(CustomDatasetError, match=r"bad\.csv:3: person 0 of cam1 at 0 s .* on line 2"):
        prepare_custom_dataset(raw / "videos", bad, tmp_path / "out", progress=False, chunk_rows=4)


def test_cli(raw, tmp_path, capsys):
    path = Path(__file__).resolve().parents[2] / "tools" / "prepare_custom_dataset.py"
    spec = importlib.util.spec_from_file_location("prepare_custom_dataset_cli", path)
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    assert (
        cli.main(
            [
                "--videos",
                str(raw / "videos"),
                "--annotations",
                str(raw / "ann.csv"),
                "--output",
                str(tmp_path / "cli_ava"),
                "--quiet",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "train:     2 keyframes, 3 person boxes" in printed and "num_classes=3" in printed
    assert 'register_ava(f"cli_ava_{_split}"' in printed
    (tmp_path / "bad.csv").write_text(HEADER + "cam1,val,2,8,4,24,4,walk,0\n")
    from vmae_det.cli import run_main

    # through the tools' error boundary (the console script's): one error line, exit code 2
    assert (
        run_main(
            lambda: cli.main(
                [
                    "--videos",
                    str(raw / "videos"),
                    "--annotations",
                    str(tmp_path / "bad.csv"),
                    "--output",
                    str(tmp_path / "x"),
                    "--quiet",
                ]
            )
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "bad.csv:2:" in err
