"""AVA data: readers (errors name file:line), clip indices, dataset dicts, mapper, proposals tool."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.data import transforms as T

import vmae_det  # noqa: F401  (shims before detectron2)
from vmae_det.data.ava import (
    AVAClipMapper,
    FramesClipSource,
    VideoClipSource,
    box_iou_labels,
    clip_indices,
    clip_source_for,
    load_ava_dicts,
    register_ava,
)
from vmae_det.formats.ava import AVAFormatError, keyframe_index, read_labelmap
from vmae_det.formats.ava_boxes import read_annotations, read_excluded_keyframes, read_proposals
from vmae_det.modeling.vmad_boxes import jitter_boxes

REPO = Path(__file__).resolve().parents[2]


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, mod)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def tiny(tiny_ava_factory) -> Path:
    return tiny_ava_factory(seed=3, num_train_videos=2, num_val_videos=1, seconds=5)


# ------------------------------------------------------------------------------------ readers
def test_read_annotations_merges_actions(tmp_path: Path):
    f = tmp_path / "gt.csv"
    f.write_text(
        "v1,0902,0.1,0.2,0.3,0.4,12,0\nv1,0902,0.1,0.2,0.3,0.4,80,0\n"
        "v1,0902,0.5,0.5,0.9,0.9,12,1\n\nv2,0903,0.0,0.0,1.0,1.0,99,0\n"
    )
    gt = read_annotations(f, class_whitelist={12, 80})
    assert sorted(gt) == [("v1", 902), ("v2", 903)]
    a0, a1 = gt[("v1", 902)]
    assert a0.actions == [12, 80] and a0.person_id == 0 and a0.bbox == pytest.approx([0.1, 0.2, 0.3, 0.4])
    assert a1.actions == [12]
    assert gt[("v2", 903)][0].actions == []  # non-whitelisted action: still a person box


@pytest.mark.parametrize(
    "line,msg",
    [
        ("v1,0902,0.1,0.2,0.3,0.4,12", "expected 8 columns"),
        ("v1,09x2,0.1,0.2,0.3,0.4,12,0", "timestamp must be an integer"),
        ("v1,0902,0.1,0.2,1.3,0.4,12,0", "not a normalised"),
        ("v1,0902,0.5,0.2,0.3,0.4,12,0", "x2 < x1"),
        ("v1,0902,0.1,0.2,0.3,0.4,walk,0", "action id must be an integer"),
    ],
)
def test_read_annotations_errors_name_file_and_line(tmp_path: Path, line: str, msg: str):
    f = tmp_path / "gt.csv"
    f.write_text("v1,0902,0.1,0.2,0.3,0.4,12,0\n" + line + "\n")
    with pytest.raises(AVAFormatError, match=msg) as e:
        read_annotations(f)
    assert str(e.value).startswith(f"{f}:2:")


def test_read_exclusions_and_proposals(tmp_path: Path):
    ex = tmp_path / "ex.csv"
    ex.write_text("v1,0902\nv2,0910\n")
    assert read_excluded_keyframes(ex) == {("v1", 902), ("v2", 910)}
    assert read_excluded_keyframes(None) == set()
    ex.write_text("v1,0902,3\n")
    with pytest.raises(AVAFormatError, match=":1: expected 2 columns"):
        read_excluded_keyframes(ex)
    pr = tmp_path / "pr.csv"
    pr.write_text(
        "v1,0902,0.1,0.1,0.3,0.5,,0.95\nv1,0902,0.5,0.1,0.7,0.5,,0.4\n"
        "v1,0902,0.1,0.1,0.3,0.5,3,0.90\nv1,0903,0.2,0.2,0.4,0.4,,0.85\n"
    )
    props = read_proposals(pr, min_score=0.5)
    boxes, scores = props[("v1", 902)]
    assert boxes.dtype == np.float32 and boxes.shape == (1, 4)  # duplicate merged, low score dropped
    assert scores.tolist() == pytest.approx([0.95])
    assert len(read_proposals(pr)[("v1", 902)][1]) == 2
    pr.write_text("v1,0902,0.1,0.1,0.3,0.5,,high\n")
    with pytest.raises(AVAFormatError, match=r"pr.csv:1: score"):
        read_proposals(pr)


def test_read_label_map(tmp_path: Path):
    f = tmp_path / "map.pbtxt"
    f.write_text(
        'label {\n  name: "bend/bow (at the waist)"\n  label_id: 1\n  label_type: PERSON_MOVEMENT\n}\n'
        'label {\n  name: "answer phone"\n  label_id: 80\n  label_type: OBJECT_MANIPULATION\n}\n'
    )
    assert read_labelmap(str(f)) == {1: "bend/bow (at the waist)", 80: "answer phone"}
    f.write_text('label { name: "walk" label_id: 1 }\nitem { name: "run/jog" id: 10 }\n')  # one-line blocks
    assert read_labelmap(str(f)) == {1: "walk", 10: "run/jog"}
    f.write_text('label {\n  name: "a"\n  label_id: 1\n}\nlabel {\n  name: "b"\n}\n')
    with pytest.raises(ValueError, match=r"map.pbtxt:5: label block without"):
        read_labelmap(str(f))


# ------------------------------------------------------------------------------ clip indices
def test_keyframe_and_clip_indices():
    assert keyframe_index(900) == 0 and keyframe_index(902) == 60 and keyframe_index(1798) == 26940
    np.testing.assert_array_equal(clip_indices(60, 8, 2, 300), [52, 54, 56, 58, 60, 62, 64, 66])
    np.testing.assert_array_equal(clip_indices(2, 4, 4, 300), [0, 0, 2, 6])  # clamped at the start
    np.testing.assert_array_equal(clip_indices(298, 4, 2, 300), [294, 296, 298, 299])  # and the end
    with pytest.raises(ValueError):
        clip_indices(0, 0, 2, 10)


def test_frames_and_video_sources_agree(tiny: Path):
    src = FramesClipSource(tiny / "frames" / "tinyval000", "tinyval000")
    assert src.num_frames == 150
    f = src.get_frames([0, 60, 60, 149])
    assert f.shape == (4, 96, 128, 3) and f.dtype == np.uint8 and np.array_equal(f[1], f[2])
    with VideoClipSource(tiny / "videos" / "tinyval000.mp4") as vsrc:
        assert vsrc.num_frames == 150
        v = vsrc.get_frames([0, 60, 60, 149])
    assert np.abs(v.astype(int) - f.astype(int)).mean() < 12
    with pytest.raises(FileNotFoundError, match="tinyval000_000151.jpg"):
        src.get_frames([150])


# ---------------------------------------------------------------------------- dataset dicts
def test_load_dicts_exclusions_and_train_filter(tiny: Path):
    excl = read_excluded_keyframes(tiny / "annotations" / "ava_train_excluded_timestamps_v2.2.csv")
    train = load_ava_dicts(tiny, "train")
    keys = {(d["video_id"], d["timestamp"]) for d in train}
    assert keys and not (keys & excl)
    assert len(keys) == 2 * 3 - len(excl)  # 2 videos x keyframes 902..904, minus excluded
    d = train[0]
    assert d["fps"] == 30 and Path(d["frames_dir"]).is_dir() and all(len(x["annotations"]) for x in train)
    ann = d["annotations"][0]
    assert set(ann) == {"bbox", "actions", "person_id"} and len(ann["bbox"]) == 4
    assert d["proposals"]["boxes"].dtype == np.float32 and d["proposals"]["boxes"].shape[1] == 4
    vids = load_ava_dicts(tiny, "val", source="videos")
    assert all("video_path" in x and "frames_dir" not in x for x in vids)


def test_register_and_metadata(tiny: Path):
    register_ava("ava_test_tiny_val", tiny, "val", num_classes=5)
    meta = MetadataCatalog.get("ava_test_tiny_val")
    assert meta.evaluator_type == "ava" and meta.num_classes == 5
    assert meta.class_names == {1: "walk left", 2: "walk right", 3: "stand", 4: "jump", 5: "wave"}
    assert meta.groundtruth_csv.endswith("ava_val_v2.2.csv") and meta.exclusions_csv.endswith("_v2.2.csv")
    assert len(DatasetCatalog.get("ava_test_tiny_val")) > 0
    import vmae_det.data  # noqa: F401  (registers built-in names)

    assert {"ava_v2.2_train", "ava_v2.2_val", "ava_v2.1_val", "ava_tiny_train", "ava_tiny_val"} <= set(
        DatasetCatalog.list()
    )


def test_missing_video_is_an_error(tiny: Path, tmp_path: Path):
    root = tmp_path / "r"
    (root / "annotations").mkdir(parents=True)
    for f in (tiny / "annotations").iterdir():
        (root / "annotations" / f.name).write_text(f.read_text())
    with pytest.raises(FileNotFoundError, match="neither"):
        load_ava_dicts(root, "val")


# ------------------------------------------------------------------------------------ mapper
def _dict(boxes, actions, props=(), scores=(), frames_dir=None):
    return {
        "video_id": "tinyval000",
        "timestamp": 902,
        "fps": 30,
        "frames_dir": frames_dir,
        "annotations": [{"bbox": b, "actions": a, "person_id": i} for i, (b, a) in enumerate(zip(boxes, actions))],
        "proposals": {"boxes": np.array(props, np.float32).reshape(-1, 4), "scores": np.array(scores, np.float32)},
    }


def test_mapper_train_output_contract(tiny: Path):
    train = load_ava_dicts(tiny, "train")
    m = AVAClipMapper(
        is_train=True,
        num_classes=5,
        num_frames=8,
        sampling_rate=2,
        gt_box_jitter=0.05,
        train_box_source="gt+proposals",
        train_proposal_threshold=0.8,
        augmentations=[T.ResizeShortestEdge((96, 112)), T.RandomCrop("absolute", (80, 80)), T.RandomFlip()],
    )
    out = m(train[0])
    n = len(out["boxes"])
    assert out["clip"].dtype == torch.uint8 and out["clip"].shape == (3, 8, 80, 80)
    assert out["clip_size"] == (80, 80)
    assert out["boxes"].dtype == torch.float32 and out["boxes"].shape == (n, 4)
    assert out["labels"].shape == (n, 5) and out["box_scores"].shape == (n,)
    assert (out["boxes"] >= 0).all() and (out["boxes"] <= 80).all()
    assert (out["boxes"][:, 2:] - out["boxes"][:, :2] >= 1).all()
    assert out["video_id"] == train[0]["video_id"] and out["timestamp"] == train[0]["timestamp"]


def test_mapper_labels_and_proposal_matching(tiny: Path):
    fdir = str(tiny / "frames" / "tinyval000")
    d = _dict(
        [[0.1, 0.1, 0.3, 0.5], [0.6, 0.5, 0.8, 0.9]],
        [[1, 4], [3]],
        props=[[0.11, 0.1, 0.31, 0.5], [0.4, 0.0, 0.5, 0.1], [0.6, 0.5, 0.8, 0.9]],
        scores=[0.95, 0.9, 0.5],
        frames_dir=fdir,
    )
    no_aug = [T.NoOpTransform()]
    train = AVAClipMapper(
        is_train=True,
        num_classes=5,
        num_frames=4,
        sampling_rate=2,
        augmentations=no_aug,
        train_box_source="gt+proposals",
        train_proposal_threshold=0.8,
    )(d)
    # 2 GT + 2 proposals >= 0.8: the first overlaps GT 0 (gets its labels), the second nothing.
    np.testing.assert_array_equal(
        train["labels"].numpy(), [[1, 0, 0, 1, 0], [0, 0, 1, 0, 0], [1, 0, 0, 1, 0], [0, 0, 0, 0, 0]]
    )
    np.testing.assert_allclose(train["box_scores"].numpy(), [1, 1, 0.95, 0.9], rtol=1e-6)
    np.testing.assert_allclose(train["boxes"][0].numpy(), [12.8, 9.6, 38.4, 48.0], rtol=1e-5)
    test = AVAClipMapper(is_train=False, num_classes=5, num_frames=4, sampling_rate=2, augmentations=no_aug)(d)
    assert len(test["boxes"]) == 2 and test["box_scores"].tolist() == pytest.approx([0.95, 0.9])  # 0.8 default
    low = AVAClipMapper(
        is_train=False, num_classes=5, num_frames=4, sampling_rate=2, augmentations=no_aug, test_proposal_threshold=0.3
    )(d)
    # test boxes are passed as they are: the detector enlarges them for RoIAlign only
    np.testing.assert_allclose(low["boxes"][2].numpy(), [0.6 * 128, 0.5 * 96, 0.8 * 128, 0.9 * 96], rtol=1e-5)
    gt = AVAClipMapper(
        is_train=False, num_classes=5, num_frames=4, sampling_rate=2, augmentations=no_aug, test_box_source="gt"
    )(d)
    assert gt["labels"].shape == (2, 5) and gt["box_scores"].tolist() == [1.0, 1.0]


def test_mapper_zero_boxes_degenerate_and_max(tiny: Path):
    fdir = str(tiny / "frames" / "tinyval000")
    m = AVAClipMapper(is_train=False, num_classes=5, num_frames=4, sampling_rate=2, augmentations=[T.NoOpTransform()])
    out = m(_dict([], [], props=[[0.1, 0.1, 0.2, 0.2]], scores=[0.3], frames_dir=fdir))
    assert out["boxes"].shape == (0, 4) and out["labels"].shape == (0, 5) and out["box_scores"].shape == (0,)
    assert m.stats["keyframes_without_boxes"] == 1
    crop = AVAClipMapper(
        is_train=True, num_classes=5, num_frames=4, sampling_rate=2, augmentations=[T.CropTransform(0, 0, 64, 96)]
    )
    out = crop(_dict([[0.1, 0.1, 0.3, 0.5], [0.8, 0.1, 0.95, 0.5]], [[1], [2]], frames_dir=fdir))
    assert len(out["boxes"]) == 1 and crop.stats["degenerate_boxes_dropped"] == 1
    many = AVAClipMapper(
        is_train=False, num_classes=5, num_frames=4, sampling_rate=2, max_boxes=3, augmentations=[T.NoOpTransform()]
    )
    sc = np.linspace(0.81, 0.99, 7)
    out = many(_dict([], [], props=[[0.1, 0.1, 0.3, 0.5]] * 7, scores=sc, frames_dir=fdir))
    assert out["box_scores"].tolist() == pytest.approx(sorted(sc)[::-1][:3])
    with pytest.raises(ValueError, match="outside 1..5"):
        m(_dict([[0.1, 0.1, 0.3, 0.5]], [[7]], frames_dir=fdir))


def test_box_iou_labels():
    gt = np.array([[0, 0, 10, 10]], np.float32)
    lab = np.array([[0, 1]], np.float32)
    out = box_iou_labels(np.array([[0, 0, 10, 9], [0, 0, 10, 4]], np.float32), gt, lab)
    np.testing.assert_array_equal(out, [[0, 1], [0, 0]])  # IoU 0.9 matched, 0.4 not


# ----------------------------------------------------------------------------- proposals tool
def test_make_proposals_with_local_random_weights(tiny: Path, tmp_path: Path):
    from torchvision.models.detection import fasterrcnn_resnet50_fpn

    from vmae_det.data.person_detector import TorchvisionPersonDetector, build_person_detector

    torch.manual_seed(0)
    weights = tmp_path / "frcnn.pth"
    torch.save(fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, min_size=96).state_dict(), weights)
    det = TorchvisionPersonDetector(str(weights), score_threshold=0.0, min_size=96)
    boxes, scores = det(np.zeros((96, 128, 3), np.uint8))
    assert boxes.dtype == np.float32 and boxes.shape[1] == 4 and boxes.shape[0] == scores.shape[0]
    tool = _load("make_proposals", REPO / "tools" / "make_proposals.py")
    out = tmp_path / "props.csv"
    fake = lambda img: (np.array([[10, 20, 50, 90], [0, 0, 1, 0]], np.float32), np.array([0.9, 0.95], np.float32))  # noqa: E731
    n = tool.make_proposals(tiny, out, fake, split="val")
    rows = [r.split(",") for r in out.read_text().splitlines()]
    assert n == len(rows) == 3  # keyframes 902..904 of the one val video; degenerate box dropped
    assert rows[0] == ["tinyval000", "0902", "0.078", "0.208", "0.391", "0.938", "", "0.900000"]
    assert read_proposals(out)[("tinyval000", 903)][0].shape == (1, 4)
    n = tool.make_proposals(tiny, out, det, split="val", min_score=0.0)
    assert len(read_proposals(out)) <= 3 and n == len(out.read_text().splitlines())
    with pytest.raises(FileNotFoundError, match="weights not found"):
        build_person_detector("torchvision", weights=str(tmp_path / "nope.pth"))
    with pytest.raises(ValueError, match="unknown person detector"):
        build_person_detector("yolo")


def test_mapper_clip_offset_and_vmad_box_jitter(tiny: Path):
    """clip_offset shifts every clip index (VMAD: +1 at stride 4); the train jitter runs after the
    augmentations with VMAD's clamps, and min_box_size=0 keeps a box the crop cut away as a 1-px box."""
    fdir = str(tiny / "frames" / "tinyval000")
    d = _dict([[0.1, 0.1, 0.3, 0.5], [0.8, 0.1, 0.95, 0.5]], [[1], [2]], frames_dir=fdir)
    m0 = AVAClipMapper(
        is_train=False,
        num_classes=5,
        num_frames=4,
        sampling_rate=4,
        test_box_source="gt",
        augmentations=[T.NoOpTransform()],
    )
    m1 = AVAClipMapper(
        is_train=False,
        num_classes=5,
        num_frames=4,
        sampling_rate=4,
        test_box_source="gt",
        clip_offset=1,
        augmentations=[T.NoOpTransform()],
    )
    a, b = m0(d)["clip"], m1(d)["clip"]
    center = (902 - 900) * 30
    with clip_source_for(d) as src:
        np.testing.assert_array_equal(
            a.permute(1, 2, 3, 0).numpy(), src.get_frames(clip_indices(center, 4, 4, src.num_frames))
        )
        shifted = src.get_frames(clip_indices(center, 4, 4, src.num_frames, 1))
        np.testing.assert_array_equal(b.permute(1, 2, 3, 0).numpy(), shifted)
    assert not torch.equal(a, b)

    crop = [T.CropTransform(0, 0, 64, 96)]  # cuts the second person (x 102..122 of 128) away
    kept = AVAClipMapper(
        is_train=True,
        num_classes=5,
        num_frames=4,
        sampling_rate=2,
        augmentations=crop,
        gt_box_jitter=(0.2, 0.1, 0.1, 0.05),
        min_box_size=0.0,
    )
    torch.manual_seed(0)
    out = kept(d)
    assert len(out["boxes"]) == 2 and out["labels"][1].tolist() == [0, 1, 0, 0, 0]
    x1, _, x2, _ = out["boxes"][1].tolist()
    assert (x1, x2) == (62.0, 63.0)  # VMAD: x1 <= W - 2, x2 = max(min(x2, W - 1), x1 + 1)
    torch.manual_seed(0)
    expected = jitter_boxes(
        torch.tensor([[12.8, 9.6, 38.4, 48.0], [64.0, 9.6, 64.0, 48.0]]), (0.2, 0.1, 0.1, 0.05), 96, 64
    )
    torch.testing.assert_close(out["boxes"], expected)
    with pytest.raises(ValueError, match="gt_box_jitter"):
        AVAClipMapper(is_train=True, num_classes=5, gt_box_jitter=(0.1, 0.2))


def test_training_keeps_actions_the_label_map_does_not_evaluate(tiny: Path, tmp_path: Path):
    """VMAD trains all 80 AVA actions; the 60-class label map only filters evaluation. Here a label map
    without id 4 ('jump'): training dicts keep id 4, evaluation dicts drop it (its boxes stay)."""
    import shutil

    root = tmp_path / "tiny_ava"
    shutil.copytree(tiny, root)
    pbtxt = next((root / "annotations").glob("*.pbtxt"))
    blocks = pbtxt.read_text().split("label {")
    pbtxt.write_text("label {".join(b for b in blocks if "label_id: 4\n" not in b))
    assert 4 not in read_labelmap(str(pbtxt))

    def actions(dicts):
        return {a for d in dicts for ann in d["annotations"] for a in ann["actions"]}

    train, full = load_ava_dicts(root, "train"), load_ava_dicts(tiny, "train")
    assert 4 in actions(train) and actions(train) == actions(full)
    assert sum(len(d["annotations"]) for d in train) == sum(len(d["annotations"]) for d in full)
    val, val_full = load_ava_dicts(root, "val"), load_ava_dicts(tiny, "val")
    assert 4 not in actions(val) and 4 in actions(val_full)
    assert sum(len(d["annotations"]) for d in val) == sum(len(d["annotations"]) for d in val_full)
