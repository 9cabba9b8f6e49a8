"""AVA person-box files: AlphAction's COCO-style JSON (what VMAD evaluates on), the SlowFast CSV,
the suffix dispatcher, and a per-dataset box file in load_ava_dicts / register_ava."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog

import vmae_det  # noqa: F401  (shims before detectron2)
from vmae_det.data.ava import ava_split_files, load_ava_dicts, register_ava
from vmae_det.formats import vmad_layout
from vmae_det.formats.ava import AVAFormatError
from vmae_det.formats.ava_boxes import read_person_boxes, read_proposals

READER_LOG = "vmae_det.formats.vmad_layout"


def read_alphaction_boxes(dets, info, min_score=0.0):
    """Most checks here use the continuous reading (x2 = x + w); VMAD's inclusive one: see the last tests and
    tests/tools/test_vmad_end_to_end.py."""
    return vmad_layout.read_alphaction_boxes(dets, info, min_score, convention="continuous")


def _write(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj))
    return path


def _info(tmp_path: Path, images, name="info.json") -> Path:
    return _write(tmp_path / name, {"images": images, "categories": [{"id": 1, "name": "person"}]})


def _img(i, movie="m1", ts=902, w=640, h=360):
    return {"id": i, "movie": movie, "timestamp": ts, "width": w, "height": h}


def _det(i, bbox, score=0.9):
    return {"image_id": i, "bbox": bbox, "score": score, "category_id": 1}


@pytest.fixture()
def info(tmp_path: Path) -> Path:
    return _info(tmp_path, [_img(1), _img(2, ts=903), _img(3, "m2", 1000, 320, 240)])


# --------------------------------------------------------------------------------- conversion
def test_exact_conversion_xywh_pixels_to_normalised_xyxy(tmp_path: Path, info: Path):
    dets = _write(tmp_path / "d.json", [_det(1, [64, 36, 320, 180], 0.95)])
    out = read_alphaction_boxes(dets, info)
    assert list(out) == [("m1", 902)]
    boxes, scores = out[("m1", 902)]
    assert boxes.dtype == np.float32 and scores.dtype == np.float32
    assert boxes.shape == (1, 4) and scores.shape == (1,)
    np.testing.assert_allclose(boxes[0], [0.1, 0.1, 0.6, 0.6], rtol=0, atol=1e-7)
    assert scores[0] == pytest.approx(0.95)


def test_each_image_uses_its_own_size(tmp_path: Path, info: Path):
    # Same pixel box on a 640x360 image and on a 320x240 image.
    dets = _write(tmp_path / "d.json", [_det(1, [32, 24, 96, 48]), _det(3, [32, 24, 96, 48])])
    out = read_alphaction_boxes(dets, info)
    np.testing.assert_allclose(out[("m1", 902)][0][0], [0.05, 24 / 360, 0.2, 72 / 360], atol=1e-7)
    np.testing.assert_allclose(out[("m2", 1000)][0][0], [0.1, 0.1, 0.4, 0.3], atol=1e-7)


def test_score_threshold_multiple_images_timestamps_and_order(tmp_path: Path, info: Path):
    dets = _write(
        tmp_path / "d.json",
        [
            _det(1, [0, 0, 64, 36], 0.5),
            _det(1, [64, 36, 64, 36], 0.99),
            _det(1, [128, 72, 64, 36], 0.8),  # == threshold: kept (VMAD keeps score >= box_thresh)
            _det(2, [0, 0, 640, 360], 0.85),
            _det(2, [0, 0, 320, 180], 0.79),  # below
            _det(3, [0, 0, 160, 120], 0.1),  # below: keyframe absent
        ],
    )
    out = read_alphaction_boxes(dets, info, min_score=0.8)
    assert sorted(out) == [("m1", 902), ("m1", 903)]
    boxes, scores = out[("m1", 902)]
    np.testing.assert_allclose(scores, [0.99, 0.8], atol=1e-6)  # sorted by decreasing score
    np.testing.assert_allclose(boxes, [[0.1, 0.1, 0.2, 0.2], [0.2, 0.2, 0.3, 0.3]], atol=1e-7)
    np.testing.assert_allclose(out[("m1", 903)][0], [[0, 0, 1, 1]])
    everything = read_alphaction_boxes(dets, info)
    assert sorted(everything) == [("m1", 902), ("m1", 903), ("m2", 1000)]
    assert len(everything[("m1", 902)][1]) == 3 and len(everything[("m1", 903)][1]) == 2
    np.testing.assert_allclose(everything[("m1", 902)][1], [0.99, 0.8, 0.5], atol=1e-6)


def test_timestamps_are_integer_seconds_and_ids_may_share_a_keyframe(tmp_path: Path):
    # A float timestamp written as 902.0 is still second 902; two image ids of one keyframe merge.
    info = _info(tmp_path, [_img(7, ts=902.0), _img(8, ts=902)])
    dets = _write(tmp_path / "d.json", [_det(7, [0, 0, 64, 36], 0.9), _det(8, [64, 36, 64, 36], 0.95)])
    out = read_alphaction_boxes(dets, info)
    assert list(out) == [("m1", 902)] and isinstance(list(out)[0][1], int)
    np.testing.assert_allclose(out[("m1", 902)][1], [0.95, 0.9], atol=1e-6)


def test_clipping_and_empty_boxes_are_counted_and_logged(tmp_path: Path, info: Path, caplog):
    dets = _write(
        tmp_path / "d.json",
        [
            _det(1, [-64, -36, 128, 72]),  # partly outside (top-left) -> [0, 0, 0.1, 0.1]
            _det(1, [576, 324, 128, 72]),  # partly outside (bottom-right) -> [0.9, 0.9, 1, 1]
            _det(1, [64, 36, 64, 36]),  # inside, untouched
            _det(1, [700, 10, 50, 50]),  # entirely right of the image: empty after clipping
            _det(1, [10, -100, 50, 50]),  # entirely above: empty after clipping
            _det(2, [10, 10, 0, 50]),  # zero width: empty
            _det(2, [10, 10, 50, 50], 0.1),  # below the score threshold
        ],
    )
    with caplog.at_level(logging.INFO, logger=READER_LOG):
        out = read_alphaction_boxes(dets, info, min_score=0.5)
    boxes = out[("m1", 902)][0]
    np.testing.assert_allclose(
        sorted(boxes.tolist()), [[0, 0, 0.1, 0.1], [0.1, 0.1, 0.2, 0.2], [0.9, 0.9, 1, 1]], atol=1e-7
    )
    assert ("m1", 903) not in out
    assert (boxes >= 0).all() and (boxes <= 1).all()
    lines = [r.getMessage() for r in caplog.records if r.name == READER_LOG]
    assert len(lines) == 1
    msg = lines[0]
    assert str(dets) in msg and str(info) in msg
    for part in (
        "Read 3 person boxes",
        "on 1 keyframes",
        "7 entries",
        "1 below score 0.5",
        "2 clipped",
        "3 skipped as empty",
    ):
        assert part in msg, (part, msg)


# --------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "entry,where,msg",
    [
        (_det(99, [0, 0, 10, 10]), "entry 1 (image_id 99)", "not found in image-info file"),
        (_det(2, [0, 0, 10]), "entry 1 (image_id 2)", "4 finite numbers"),
        (_det(2, [0, 0, 10, "10"]), "entry 1 (image_id 2)", "4 finite numbers"),
        (_det(2, [0, 0, 10, None]), "entry 1 (image_id 2)", "4 finite numbers"),
        (_det(2, [0, 0, 10, True]), "entry 1 (image_id 2)", "4 finite numbers"),
        (_det(2, "0 0 10 10"), "entry 1 (image_id 2)", "4 finite numbers"),
        ({"image_id": 2, "score": 0.9}, "entry 1 (image_id 2)", "4 finite numbers"),
        (_det(2, [0, 0, -10, 10]), "entry 1 (image_id 2)", "negative width/height"),
        (_det(2, [0, 0, 10, 10], None), "entry 1 (image_id 2)", "score must be a finite number"),
        (_det(2, [0, 0, 10, 10], "0.9"), "entry 1 (image_id 2)", "score must be a finite number"),
        ([1, 2, 3], "entry 1", "expected an object"),
    ],
)
def test_detection_errors_name_file_and_entry(tmp_path: Path, info: Path, entry, where: str, msg: str):
    dets = _write(tmp_path / "d.json", [_det(1, [0, 0, 10, 10]), entry])
    with pytest.raises(AVAFormatError, match=msg) as e:
        read_alphaction_boxes(dets, info)
    assert str(e.value).startswith(f"{dets}: {where}: "), str(e.value)
    assert e.value.path == str(dets) and e.value.line == where


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf"])
def test_non_finite_numbers_are_errors(tmp_path: Path, info: Path, bad: str):
    # json.dumps writes NaN / Infinity, which Python's json reads back.
    for det, msg in (
        (_det(2, [0, 0, 10, 10], float(bad)), "score must be a finite number"),
        (_det(2, [0, float(bad), 10, 10]), "4 finite numbers"),
    ):
        dets = _write(tmp_path / "d.json", [det])
        with pytest.raises(AVAFormatError, match=msg) as e:
            read_alphaction_boxes(dets, info)
        assert str(e.value).startswith(f"{dets}: entry 0 (image_id 2): ")


@pytest.mark.parametrize(
    "image,msg",
    [
        (_img(5, w=0), '"width" must be a positive number'),
        (_img(5, h=-360), '"height" must be a positive number'),
        (_img(5, w="640"), '"width" must be a positive number'),
        (_img(5, ts="noon"), '"timestamp" must be an integer'),
        (_img(5, ts=902.5), '"timestamp" must be an integer'),
        (_img(5, movie=""), '"movie" must be a non-empty string'),
        ({"movie": "m1", "timestamp": 902, "width": 1, "height": 1}, '"id" must be'),
        (_img(1, ts=905), "appears twice with different values"),
    ],
)
def test_image_info_errors_name_file_and_entry(tmp_path: Path, image, msg: str):
    info = _info(tmp_path, [_img(1), image])
    dets = _write(tmp_path / "d.json", [_det(1, [0, 0, 10, 10])])
    with pytest.raises(AVAFormatError, match=msg) as e:
        read_alphaction_boxes(dets, info)
    assert str(e.value).startswith(f"{info}: images[1] (id {image.get('id')!r}): "), str(e.value)


def test_malformed_top_levels(tmp_path: Path, info: Path):
    good = _write(tmp_path / "good.json", [_det(1, [0, 0, 10, 10])])
    # Detections must be a list; an image-info file passed by mistake gets a hint.
    for obj, msg in (
        ({"annotations": []}, "expected a list"),
        ({"images": []}, "looks like an image-info file"),
        (3, "expected a list"),
    ):
        dets = _write(tmp_path / "d.json", obj)
        with pytest.raises(AVAFormatError, match=msg) as e:
            read_alphaction_boxes(dets, info)
        assert str(e.value).startswith(f"{dets}: top level: ")
    # Image info must be an object with an "images" list.
    for obj in ([_img(1)], {"images": {"1": _img(1)}}, {"annotations": []}):
        bad_info = _write(tmp_path / "i.json", obj)
        with pytest.raises(AVAFormatError, match='"images" list') as e:
            read_alphaction_boxes(good, bad_info)
        assert str(e.value).startswith(f"{bad_info}: top level: ")
    # Not JSON at all: file and line of the parse error.
    broken = tmp_path / "broken.json"
    broken.write_text('[\n{"image_id": 1,\n "bbox": [0, 0, 1, 1] "score": 1}]')
    with pytest.raises(AVAFormatError, match="not valid JSON") as e:
        read_alphaction_boxes(broken, info)
    assert str(e.value).startswith(f"{broken}:3: ")
    with pytest.raises(FileNotFoundError, match="missing.json"):
        read_alphaction_boxes(tmp_path / "missing.json", info)
    with pytest.raises(FileNotFoundError, match="no_info.json"):
        read_alphaction_boxes(good, tmp_path / "no_info.json")


def test_empty_detection_list(tmp_path: Path, info: Path):
    assert read_alphaction_boxes(_write(tmp_path / "d.json", []), info) == {}


# ---------------------------------------------------------------------------------- dispatcher
def test_read_person_boxes_dispatches_on_suffix(tmp_path: Path, info: Path):
    csv = tmp_path / "ava_val_predicted_boxes.csv"
    csv.write_text("m1,0902,0.1,0.1,0.6,0.6,,0.95\nm1,0902,0.2,0.2,0.3,0.3,,0.3\n")
    dets = _write(tmp_path / "dets.json", [_det(1, [64, 36, 320, 180], 0.95), _det(1, [128, 72, 64, 36], 0.3)])
    from_csv = read_person_boxes(csv, 0.5)
    assert from_csv.keys() == read_proposals(csv, 0.5).keys()
    from_json = read_person_boxes(dets, 0.5, image_info=info, convention="continuous")
    assert from_csv.keys() == from_json.keys() == {("m1", 902)}
    for (b1, s1), (b2, s2) in zip(from_csv.values(), from_json.values()):
        np.testing.assert_allclose(b1, b2, atol=1e-6)
        np.testing.assert_allclose(s1, s2, atol=1e-6)
    assert len(read_person_boxes(dets, 0.0, image_info=info)[("m1", 902)][1]) == 2
    upper = _write(tmp_path / "DETS.JSON", [_det(1, [64, 36, 320, 180])])
    assert list(read_person_boxes(upper, image_info=info)) == [("m1", 902)]
    with pytest.raises(ValueError, match="needs its image-info file") as e:
        read_person_boxes(dets, 0.5)
    assert str(dets) in str(e.value)
    with pytest.raises(ValueError, match="unknown person-box file type '.txt'"):
        read_person_boxes(tmp_path / "boxes.txt")


# ------------------------------------------------------------------------ datasets end to end
@pytest.fixture(scope="module")
def tiny(tiny_ava_factory) -> Path:
    return tiny_ava_factory(seed=3, num_train_videos=2, num_val_videos=1, seconds=5)


def _alphaction_files(tiny: Path, out: Path):
    """VMAD-style box + image-info files for the tiny val split (frames are 128x96)."""
    out.mkdir(parents=True, exist_ok=True)
    images = [_img(10 + i, "tinyval000", ts, 128, 96) for i, ts in enumerate((902, 903, 904))]
    info = _write(out / "ava_val_v2.2_min.json", {"images": images})
    dets = _write(
        out / "ava_val_det_person_bbox.json",
        [
            _det(10, [12.8, 9.6, 64, 48], 0.97),  # -> [0.1, 0.1, 75.8 / 128, 56.6 / 96] (inclusive pixels)
            _det(10, [0, 0, 32, 24], 0.2),  # dropped by proposal_min_score=0.5
            _det(11, [64, 48, 128, 96], 0.85),  # clamped to W - 1, H - 1 -> [0.5, 0.5, 127 / 128, 95 / 96]
            _det(12, [0, 0, 128, 96], 0.9),  # 904 is an excluded timestamp
        ],
    )
    return dets, info


def test_load_ava_dicts_with_alphaction_json(tiny: Path, tmp_path: Path):
    dets, info = _alphaction_files(tiny, tmp_path / "boxes")
    files = ava_split_files(tiny, "val", proposal_file=dets, proposal_image_info=info)
    assert files["proposals"] == dets and files["proposal_image_info"] == info
    default = ava_split_files(tiny, "val")
    assert default["proposals"].name == "ava_val_predicted_boxes.csv" and default["proposal_image_info"] is None

    dicts = load_ava_dicts(tiny, "val", proposal_file=dets, proposal_image_info=info, proposal_min_score=0.5)
    by_key = {(d["video_id"], d["timestamp"]): d for d in dicts}
    assert set(by_key) == {("tinyval000", 902), ("tinyval000", 903)}  # 904 excluded
    p902, p903 = by_key[("tinyval000", 902)]["proposals"], by_key[("tinyval000", 903)]["proposals"]
    np.testing.assert_allclose(p902["boxes"], [[0.1, 0.1, 75.8 / 128, 56.6 / 96]], atol=1e-6)
    np.testing.assert_allclose(p902["scores"], [0.97], atol=1e-6)
    np.testing.assert_allclose(p903["boxes"], [[0.5, 0.5, 127 / 128, 95 / 96]], atol=1e-6)
    assert {(d["box_convention"], d["image_size"]) for d in dicts} == {("inclusive", (96, 128))}
    assert p902["boxes"].dtype == np.float32 and p902["scores"].dtype == np.float32
    assert all(d["annotations"] for d in dicts)  # GT still comes from the official CSV

    # Same GT keyframes as with the default SlowFast CSV; only the proposals differ.
    csv_dicts = load_ava_dicts(tiny, "val")
    assert [(d["video_id"], d["timestamp"]) for d in csv_dicts] == [(d["video_id"], d["timestamp"]) for d in dicts]
    assert [d["annotations"] for d in csv_dicts] == [d["annotations"] for d in dicts]
    assert len(csv_dicts[0]["proposals"]["scores"]) != len(dicts[0]["proposals"]["scores"])

    with pytest.raises(ValueError, match="proposal_image_info"):
        load_ava_dicts(tiny, "val", proposal_file=dets)
    with pytest.raises(FileNotFoundError, match="nope.json"):  # an explicit file must exist
        load_ava_dicts(tiny, "val", proposal_file=tmp_path / "nope.json", proposal_image_info=info)


def test_register_ava_with_alphaction_json(tiny: Path, tmp_path: Path):
    dets, info = tmp_path / "boxes" / "ava_val_det_person_bbox.json", tmp_path / "boxes" / "ava_val_v2.2_min.json"
    # Registration works before the box files exist; they are read on first load.
    register_ava(
        "ava_test_props_json_val",
        tiny,
        "val",
        num_classes=5,
        proposal_file=dets,
        proposal_image_info=info,
        proposal_min_score=0.5,
    )
    meta = MetadataCatalog.get("ava_test_props_json_val")
    assert meta.proposal_file == str(dets) and meta.proposal_image_info == str(info)
    assert meta.proposal_format == "alphaction_json"
    assert meta.groundtruth_csv.endswith("ava_val_v2.2.csv")
    _alphaction_files(tiny, tmp_path / "boxes")
    dicts = DatasetCatalog.get("ava_test_props_json_val")
    assert [len(d["proposals"]["scores"]) for d in dicts] == [1, 1]
    np.testing.assert_allclose(dicts[0]["proposals"]["boxes"], [[0.1, 0.1, 75.8 / 128, 56.6 / 96]], atol=1e-6)

    register_ava("ava_test_props_csv_val", tiny, "val", num_classes=5)
    csv_meta = MetadataCatalog.get("ava_test_props_csv_val")
    assert csv_meta.proposal_file == str(tiny / "annotations" / "ava_val_predicted_boxes.csv")
    assert csv_meta.proposal_format == "slowfast_csv" and csv_meta.proposal_image_info is None

    with pytest.raises(ValueError, match="proposal_image_info"):
        register_ava("ava_test_props_bad_val", tiny, "val", proposal_file=dets)


def test_default_csv_recorded_on_first_load_when_absent_at_registration(tiny: Path, tmp_path: Path):
    root = tmp_path / "late"
    (root / "annotations").mkdir(parents=True)
    (root / "frames").symlink_to(tiny / "frames", target_is_directory=True)
    for f in (tiny / "annotations").iterdir():
        if f.name != "ava_val_predicted_boxes.csv":
            (root / "annotations" / f.name).write_text(f.read_text())
    register_ava("ava_test_props_late_val", root, "val", num_classes=5)
    meta = MetadataCatalog.get("ava_test_props_late_val")
    assert not hasattr(meta, "proposal_file")
    (root / "annotations" / "ava_val_predicted_boxes.csv").write_text(
        (tiny / "annotations" / "ava_val_predicted_boxes.csv").read_text()
    )
    assert sum(len(d["proposals"]["scores"]) for d in DatasetCatalog.get("ava_test_props_late_val")) > 0
    assert meta.proposal_file == str(root / "annotations" / "ava_val_predicted_boxes.csv")
    assert meta.proposal_format == "slowfast_csv"


def test_builtin_alphaction_dataset_name(tmp_path: Path):
    from vmae_det.data.ava.catalog import register_all_ava

    register_all_ava(tmp_path)  # nothing exists under tmp_path: registration must not read files
    assert "ava_v2.2_val_alphaction_boxes" in DatasetCatalog.list()
    meta = MetadataCatalog.get("ava_v2.2_val_alphaction_boxes")
    if meta.dataset_root == str(tmp_path / "ava"):  # not registered earlier by another test/import
        assert meta.proposal_file == str(tmp_path / "ava" / "boxes" / "ava_val_det_person_bbox.json")
        assert meta.proposal_image_info == str(tmp_path / "ava" / "annotations" / "ava_val_v2.2_min.json")
    else:
        assert meta.proposal_file.endswith("ava/boxes/ava_val_det_person_bbox.json")
        assert meta.proposal_image_info.endswith("ava/annotations/ava_val_v2.2_min.json")
    assert meta.proposal_format == "alphaction_json" and meta.split == "val" and meta.version == "v2.2"
    assert meta.groundtruth_csv.endswith("ava/annotations/ava_val_v2.2.csv")


def test_inclusive_reading_is_the_default_and_keeps_file_order(tmp_path: Path, info: Path):
    dets = _write(tmp_path / "d.json", [_det(1, [64, 36, 320, 180], 0.85), _det(1, [0, 0, 64, 36], 0.95)])
    boxes, scores = vmad_layout.read_alphaction_boxes(dets, info)[("m1", 902)]
    np.testing.assert_allclose(scores, [0.85, 0.95], atol=1e-6)  # VMAD's order: as in the file
    np.testing.assert_allclose(boxes[0] * [640, 360, 640, 360], [64, 36, 383, 215], atol=1e-4)  # x + w - 1
    with pytest.raises(ValueError, match="box convention"):
        vmad_layout.read_alphaction_boxes(dets, info, convention="xywh")
