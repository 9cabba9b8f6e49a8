"""AVA-Kinetics: the Kinetics CSVs through the AVA readers, clip lookup, dataset dicts with the counted skip of
missing clips, the mapper's keyframe frame, and the scored ground truth of the 2020 protocol."""

import csv
import logging
import shutil
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import pytest

from vmae_det.data.ava import AVAClipMapper
from vmae_det.data.ava.kinetics import (
    KineticsClip,
    _ava_lines,
    find_clip,
    kinetics_clip_index,
    load_ava_kinetics_dicts,
    load_kinetics_dicts,
    register_ava_kinetics,
    write_scored_groundtruth,
)
from vmae_det.evaluation import AVAEvaluator
from vmae_det.evaluation.ava_map import evaluate
from vmae_det.formats.ava import (
    AVAFormatError,
    AVARows,
    kinetics_file_names,
    read_ava_csv,
    read_exclusions,
    read_labelmap,
)
from vmae_det.formats.ava_boxes import read_annotations
from vmae_det.synthetic.ava_kinetics import make_tiny_ava_kinetics


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return make_tiny_ava_kinetics(tmp_path_factory.mktemp("datasets") / "tiny_ava_kinetics")


def _csv_rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def _listed_clips(root: Path, split: str):
    """``{youtube_id: set of keyframe seconds}`` of the Kinetics file, parsed with the csv module."""
    out = defaultdict(set)
    for r in _csv_rows(root / "annotations" / kinetics_file_names(split)["groundtruth"]):
        out[r[0]].add(float(r[1]))
    return out


def test_kinetics_rows_through_the_ava_reader(root):
    path = root / "annotations" / kinetics_file_names("train")["groundtruth"]
    got = read_annotations(path, columns=(2, 7, 8), integer_timestamps=False)
    expected = defaultdict(dict)
    for r in _csv_rows(path):
        if len(r) == 7:
            box = tuple(float(v) for v in r[2:6])
            expected[(r[0], float(r[1]))].setdefault(box, []).append(int(r[6]))
    assert set(got) == set(expected)
    assert any(ts != int(ts) for _, ts in got)  # fractional seconds, as the distributed files
    for key, people in got.items():
        assert {tuple(p.bbox): sorted(p.actions) for p in people} == {b: sorted(a) for b, a in expected[key].items()}
        assert all(p.person_id == -1 for p in people)  # the Kinetics files carry no person id
    # AVA's files read as before: integer seconds, person ids
    ava = read_annotations(root / "annotations" / "ava_train_v2.2.csv")
    assert all(isinstance(ts, int) and ts >= 902 for _, ts in ava)
    assert {p.person_id for people in ava.values() for p in people} >= {0, 1}


def test_bad_kinetics_timestamp_names_the_line(tmp_path):
    bad = tmp_path / "kinetics_train_v1.0.csv"
    bad.write_text("abcdefghijk,7.000000,0.1,0.1,0.5,0.5,3\nabcdefghijk,seven,0.1,0.1,0.5,0.5,3\n")
    with pytest.raises(AVAFormatError, match=r"kinetics_train_v1.0.csv:2: timestamp"):
        read_annotations(bad, columns=(2, 7, 8), integer_timestamps=False)


def test_clip_index_and_lookup(tmp_path):
    for name in ("a/abc_000010_000020.mp4", "b/c/abc_000014_000024.mkv", "abc_000030_000040.txt", "x_1_2.mp4"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    index = kinetics_clip_index(tmp_path)
    assert list(index) == ["abc"] and [(c.start, c.end) for c in index["abc"]] == [(10, 20), (14, 24)]
    clips = index["abc"]
    assert find_clip(clips, 12.5).start == 10  # only the first holds it
    assert find_clip(clips, 18.9).start == 14  # both hold it: the nearer middle (19 vs 15)
    assert find_clip(clips, 17.0).start == 10  # equally near (15 and 19 are 2 away): the earlier
    assert find_clip(clips, 10.0) is None and find_clip(clips, 24.0) is None  # start < t < end, strictly
    assert find_clip([KineticsClip("abc", 10, 20, "p")], 20.5) is None
    assert kinetics_clip_index(tmp_path / "absent") == {}


def test_dicts_skip_missing_clips_and_count_them(root, caplog):
    listed = _listed_clips(root, "train")
    present = kinetics_clip_index(root / "kinetics")
    missing = sorted(set(listed) - set(present))
    assert len(missing) == 1  # the generator lists one clip that is not there
    stats = {}
    with caplog.at_level(logging.WARNING, logger="vmae_det.data.ava.kinetics"):
        dicts = load_kinetics_dicts(root, "train", stats=stats)
    assert stats["missing_clips"] == 1
    assert stats["skipped_keyframes"] == len(listed[missing[0]])
    assert stats["keyframes"] == len(dicts) == sum(len(v) for k, v in listed.items() if k not in missing)
    assert any("1 Kinetics video(s) have no clip" in r.getMessage() for r in caplog.records)
    for d in dicts:
        clip = find_clip(present[d["video_id"]], d["timestamp"])
        assert d["start_sec"] == clip.start and d["video_path"] == clip.path and d["fps"] == 30
        assert d["start_sec"] < d["timestamp"] < clip.end and d["annotations"]
        assert isinstance(d["timestamp"], float)


def test_combined_registration_metadata_and_scored_groundtruth(root):
    from detectron2.data import DatasetCatalog, MetadataCatalog

    name = "ava_kinetics_test_combined_val"
    register_ava_kinetics(name, root, "val", num_classes=5)
    try:
        meta = MetadataCatalog.get(name)
        assert meta.protocol == "2020" and meta.exclusions_csv is None and meta.evaluator_type == "ava"
        dicts = DatasetCatalog.get(name)
        ava = [d for d in dicts if d["video_id"].startswith("tinyval")]
        kin = [d for d in dicts if d["video_id"].startswith("tinykin")]
        assert ava and kin and len(ava) + len(kin) == len(dicts)
        assert all(isinstance(d["timestamp"], int) for d in ava) and all("start_sec" in d for d in kin)
        assert meta.kinetics_skips["missing_clips"] == 1
        rows = _csv_rows(meta.groundtruth_csv)
    finally:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    # The scored file: AVA rows without the excluded keyframe, Kinetics rows of present clips only (as written)
    excluded = read_exclusions(root / "annotations" / "ava_val_excluded_timestamps_v2.2.csv")
    listed = _csv_rows(root / "annotations" / kinetics_file_names("val")["groundtruth"])
    present = kinetics_clip_index(root / "kinetics")
    kept = [r for r in listed if find_clip(present.get(r[0], ()), float(r[1]))]
    assert [r for r in rows if r[0].startswith("tinykin")] == [r for r in kept if len(r) == 7] + [
        r for r in kept if len(r) == 2
    ]
    assert len(kept) < len(listed)
    assert not any((r[0], r[1]) in set(excluded) for r in rows)
    assert ["tinykin2003", "50.148391"] in rows  # the keyframe without people


def test_ava_part_scored_by_2020_equals_2019_with_exclusions(root, tmp_path):
    ann = root / "annotations"
    labels = read_labelmap(ann / "ava_action_list_v2.2_for_activitynet_2019.pbtxt")
    gt = read_ava_csv(ann / "ava_val_v2.2.csv")
    excluded = read_exclusions(ann / "ava_val_excluded_timestamps_v2.2.csv")
    converted = tmp_path / "ava_val_2020.csv"
    converted.write_text("".join(line + "\n" for line in _ava_lines(root, "val")))
    rng = np.random.default_rng(0)
    # detections near GT boxes, on the excluded keyframe and on seconds without GT (false positives in 2019)
    vids, stamps, boxes, actions, scores = [], [], [], [], []
    for i in range(len(gt)):
        for a in labels:
            vids.append(str(gt.video_ids[i].decode() if isinstance(gt.video_ids[i], bytes) else gt.video_ids[i]))
            stamps.append(int(gt.timestamps[i]))
            boxes.append(np.clip(gt.boxes[i] + rng.normal(0, 0.03, 4), 0, 1))
            actions.append(a)
            scores.append(rng.random())
    for vid, ts in list(excluded) + [("tinyval000", 1000), ("tinyval000", 906)]:
        for a in labels:
            vids.append(vid), stamps.append(int(ts)), boxes.append([0.1, 0.1, 0.5, 0.9]), actions.append(a)
            scores.append(rng.random())
    dets = AVARows.from_arrays(vids, stamps, np.array(boxes), np.array(actions), np.array(scores))
    old = evaluate(gt, dets, labels, excluded, "2019", max_detections_per_keyframe=None)
    new = evaluate(read_ava_csv(converted), dets, labels, None, "2020", max_detections_per_keyframe=None)
    assert old.mAP == new.mAP
    np.testing.assert_equal(old.per_class_ap, new.per_class_ap)  # NaN (no GT) equal to NaN
    on_excluded = sum((v, t) in {(ev, int(et)) for ev, et in excluded} for v, t in zip(vids, stamps))
    assert new.stats["ignored_detections_unknown_keyframes"] == on_excluded > 0  # the others stay scored
    assert 0 < new.mAP < 1


def test_evaluator_keeps_fractional_keyframes(root):
    """Perfect detections on the Kinetics keyframes score 1.0: their float seconds meet the scored file's keys."""
    gt_file = write_scored_groundtruth(root, "val", with_ava=False)
    dicts = load_kinetics_dicts(root, "val")
    ev = AVAEvaluator(
        label_map_file=str(root / "annotations" / "ava_action_list_v2.2_for_activitynet_2019.pbtxt"),
        groundtruth_csv=str(gt_file),
        protocol="2020",
        distributed=False,
        max_detections_per_keyframe=None,
    )
    for d in dicts:
        boxes = np.array([a["bbox"] for a in d["annotations"]]).reshape(-1, 4)
        scores = np.zeros((len(boxes), 5))
        for i, a in enumerate(d["annotations"]):
            scores[i, np.array(a["actions"]) - 1] = 1.0
        ev.process([{"video_id": d["video_id"], "timestamp": d["timestamp"]}], [{"boxes": boxes, "scores": scores}])
    assert ev.evaluate()["ava"]["mAP"] == pytest.approx(100.0)
    rows = ev.detections()
    assert {str(t) for t in rows.timestamps} >= {"8.087323", "20.063581"}


def test_mapper_reads_the_keyframe_frame_of_the_clip(root):
    d = next(d for d in load_kinetics_dicts(root, "val") if d["timestamp"] != int(d["timestamp"]))
    mapper = AVAClipMapper(is_train=False, num_classes=5, num_frames=1, augmentations=[], test_box_source="gt")
    out = mapper(d)
    assert out["timestamp"] == d["timestamp"] and isinstance(out["timestamp"], float)
    cap = cv2.VideoCapture(d["video_path"])
    frames = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(img[..., ::-1])
    cap.release()
    k = int(round((d["timestamp"] - d["start_sec"]) * 30))
    np.testing.assert_array_equal(out["clip"][:, 0].permute(1, 2, 0).numpy(), frames[k])
    h, w = frames[k].shape[:2]
    np.testing.assert_allclose(
        out["boxes"].numpy(), np.array([a["bbox"] for a in d["annotations"]]) * [w, h, w, h], atol=1e-4
    )


def test_train_split_without_any_clip_still_loads_ava(root, tmp_path):
    copy = tmp_path / "no_kinetics"
    shutil.copytree(root, copy)
    shutil.rmtree(copy / "kinetics")
    stats = {}
    kin = load_kinetics_dicts(copy, "train", stats=stats)
    assert kin == [] and stats["missing_clips"] == len(_listed_clips(root, "train"))
    both = load_ava_kinetics_dicts(copy, "train")
    assert both and all(d["video_id"].startswith("tinytrain") for d in both)


def test_generator_is_deterministic(tmp_path):
    a = make_tiny_ava_kinetics(tmp_path / "a", num_ava_train=1, num_kinetics_train=1, num_kinetics_val=2)
    b = make_tiny_ava_kinetics(tmp_path / "b", num_ava_train=1, num_kinetics_train=1, num_kinetics_val=2)
    names = sorted(p.relative_to(a) for p in (a / "annotations").iterdir())
    assert names and all((a / n).read_bytes() == (b / n).read_bytes() for n in names)
    assert sorted(p.name for p in (a / "kinetics").rglob("*.mp4")) == sorted(
        p.name for p in (b / "kinetics").rglob("*.mp4")
    )


def test_clip_shorter_than_its_name_is_named(root, tmp_path):
    """A cut download: second 7 of a clip named 6..16 s is its frame 30, past the file's 20 frames."""
    from helpers import write_video

    from vmae_det.data.ava.kinetics import kinetics_clip_fields

    path = write_video(tmp_path / "tinykin2000_000006_000016.mp4", [np.full((32, 48, 3), 80, np.uint8)] * 20, rate=30)
    d = kinetics_clip_fields("tinykin2000", 7.0, KineticsClip("tinykin2000", 6, 16, str(path)))
    mapper = AVAClipMapper(is_train=False, num_classes=5, num_frames=1, augmentations=[], test_box_source="gt")
    with pytest.raises(ValueError) as e:
        mapper({**d, "annotations": []})
    assert str(e.value) == (
        f"tinykin2000,7.0: keyframe frame 30 outside the video's 20 frames: {path} "
        "(shorter than the seconds its name gives?)"
    )
