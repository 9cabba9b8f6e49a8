"""ACT-format datasets (issue 23 items 1 and 5): per-frame dataset dicts from the ground truth, registration and
metadata, frame strides, the clip mapper on each tiny dataset, missing data and bad entries, and that
``datasets/make_tiny_act.py`` regenerates the committed tiny datasets."""

from __future__ import annotations

import hashlib
import pickle
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog

import vmae_det.data  # noqa: F401  (registers the built-in names)
from vmae_det.data import AVAClipMapper
from vmae_det.data.act import load_act_dicts, register_act_dataset
from vmae_det.data.video_io import open_video
from vmae_det.formats.act import TubeFormatError
from vmae_det.formats.act_layout import TINY_DATASETS, ACTLayout
from vmae_det.formats.safe_pickle import load_pickle
from vmae_det.synthetic.act import make_tiny_act

REPO = Path(__file__).resolve().parents[2]
DATASETS = REPO / "datasets"
# name prefix -> (dataset key of TINY_DATASETS, train name, test name)
TINY = {
    "ucf24": ("ucf24_tiny_train", "ucf24_tiny_test"),
    "jhmdb": ("jhmdb_tiny_train", "jhmdb_tiny_test"),
    "multisports": ("multisports_tiny_train", "multisports_tiny_val"),
}


def _spec(dataset):
    folder, gt_name, layout, boxes, labels = TINY_DATASETS[dataset]
    return DATASETS / folder, DATASETS / folder / gt_name, layout, boxes, labels


def _register(name, *args, **kwargs):
    if name in DatasetCatalog.list():  # a rerun in the same process
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
    register_act_dataset(name, *args, **kwargs)


def _load(dataset, kind, **kwargs):
    root, gt_file, layout, boxes, _ = _spec(dataset)
    return load_act_dicts(gt_file, root, kind, 0, layout=layout, proposal_file=root / boxes[kind], **kwargs)


def test_builtin_names_and_metadata(monkeypatch):
    monkeypatch.chdir(REPO)  # the built-in roots are relative: ./datasets
    names = DatasetCatalog.list()
    for kind in ("train", "test"):
        assert f"ucf24_{kind}" in names and all(f"jhmdb_{kind}_split{s}" in names for s in (1, 2, 3))
    assert "multisports_train" in names and "multisports_val" in names
    assert MetadataCatalog.get("jhmdb_test_split3").split == 2
    assert MetadataCatalog.get("ucf24_test").num_classes == 24  # known without the data
    for dataset, (train, test) in TINY.items():
        _, gt_file, _, _, labels = _spec(dataset)
        for name, kind in ((train, "train"), (test, "test")):
            meta = MetadataCatalog.get(name)
            assert (meta.evaluator_type, meta.split, meta.split_kind, meta.multi_label) == ("act", 0, kind, False)
            assert Path(meta.gt_file).resolve() == gt_file.resolve()
            assert meta.labels == labels and meta.num_classes == len(labels)


@pytest.mark.parametrize("dataset", list(TINY))
def test_dicts_follow_the_ground_truth(dataset):
    root, gt_file, layout, _, _ = _spec(dataset)
    gt = load_pickle(gt_file)
    train, test = _load(dataset, "train"), _load(dataset, "test")
    # train: every frame inside a tube of a training video; test: every frame of every test video
    expected = {
        (v, int(f)) for v in gt["train_videos"][0] for ts in gt["gttubes"][v].values() for t in ts for f in t[:, 0]
    }
    assert {(d["video_id"], d["timestamp"]) for d in train} == expected
    assert [(d["video_id"], d["timestamp"]) for d in test] == [
        (v, f) for v in gt["test_videos"][0] for f in range(1, gt["nframes"][v] + 1)
    ]
    boxes = 0
    for d in train + test:
        v, f = d["video_id"], d["timestamp"]
        h, w = gt["resolution"][v]
        assert d["frame_index"] == f - 1 and d["image_size"] == (h, w) and d["nframes"] == gt["nframes"][v]
        want = sorted(
            (label + 1, tuple(np.asarray(t[t[:, 0] == f][0, 1:5], np.float64) / [w, h, w, h]))
            for label, ts in gt["gttubes"][v].items()
            for t in ts
            if f in t[:, 0]
        )
        got = sorted((a["actions"][0], tuple(a["bbox"])) for a in d["annotations"])
        assert [g[0] for g in got] == [x[0] for x in want]
        np.testing.assert_allclose(np.reshape([g[1] for g in got], (-1, 4)), np.reshape([x[1] for x in want], (-1, 4)))
        assert len({a["person_id"] for a in d["annotations"]}) == len(d["annotations"])
        boxes += len(d["proposals"]["scores"])
        assert d["proposals"]["boxes"].dtype == np.float32 and d["proposals"]["boxes"].shape[1] == 4
    assert boxes > len(train) + len(test)  # the person-box files give every frame its figures
    if layout == "multisports":
        assert Path(test[0]["video_path"]) == root / "trainval" / f"{test[0]['video_id']}.mp4"
    else:
        folder = {"ucf24": "rgb-images", "jhmdb": "Frames"}[layout]
        assert Path(test[0]["frames_dir"]) == root / folder / test[0]["video_id"]


def test_strides():
    train = _load("ucf24", "train", train_frame_stride=3)
    full = _load("ucf24", "train")
    assert {(d["video_id"], d["timestamp"]) for d in train} == {
        (d["video_id"], d["timestamp"]) for d in full if (d["timestamp"] - 1) % 3 == 0
    }
    test = _load("jhmdb", "test", test_frame_stride=4)
    assert sorted({d["timestamp"] for d in test}) == list(range(1, 41, 4))
    with pytest.raises(ValueError, match="train_frame_stride must be an integer >= 1, got 0"):
        _load("ucf24", "train", train_frame_stride=0)


def _frame_on_disk(d) -> np.ndarray:
    if "video_path" in d:
        with open_video(d["video_path"]) as reader:
            return reader.get_frames([d["frame_index"]])[0]
    return cv2.imread(str(Path(d["frames_dir"]) / (d["frame_pattern"] % d["timestamp"])))[..., ::-1]


@pytest.mark.parametrize("dataset", list(TINY))
def test_mapper_on_each_tiny_dataset(dataset):
    num_classes = len(_spec(dataset)[4])
    dicts = _load(dataset, "test")
    d = next(x for x in dicts if len(x["annotations"]) >= 1 and 10 < x["timestamp"] < 30)
    mapper = AVAClipMapper(
        is_train=False,
        num_classes=num_classes,
        num_frames=8,
        sampling_rate=2,
        augmentations=[],
        test_box_source="gt",
    )
    out = mapper(d)
    h, w = d["image_size"]
    assert tuple(out["clip"].shape) == (3, 8, h, w)
    assert (out["video_id"], out["timestamp"]) == (d["video_id"], d["timestamp"])
    # The clip is centred on the dict's frame: frame 8 // 2 of the clip is that frame of the source.
    np.testing.assert_array_equal(out["clip"][:, 4].permute(1, 2, 0).numpy(), _frame_on_disk(d))
    want = np.array([a["bbox"] for a in d["annotations"]]) * [w, h, w, h]
    np.testing.assert_allclose(out["boxes"].numpy(), want, rtol=1e-5)
    labels = np.zeros((len(d["annotations"]), num_classes))
    for i, a in enumerate(d["annotations"]):
        labels[i, a["actions"][0] - 1] = 1
    np.testing.assert_array_equal(out["labels"].numpy(), labels)
    # training with the default augmentations and person boxes
    train = AVAClipMapper(
        is_train=True, num_classes=num_classes, num_frames=8, sampling_rate=2, train_box_source="gt+proposals"
    )
    got = train(_load(dataset, "train")[0])
    assert got["clip"].shape[:2] == (3, 8) and got["labels"].shape[1] == num_classes
    assert (got["labels"].sum(1) <= 1).all()  # single-label


def test_missing_frames_and_videos_are_named(tmp_path):
    root, gt_file, _, _, _ = _spec("ucf24")
    shutil.copytree(root, tmp_path / "ucf", ignore=shutil.ignore_patterns("v_Walking_g01_c01"))
    with pytest.raises(FileNotFoundError) as e:
        load_act_dicts(gt_file, tmp_path / "ucf", "train", layout="ucf24")
    assert str(tmp_path / "ucf" / "rgb-images" / "Walking" / "v_Walking_g01_c01") in str(e.value)
    assert "1 of the 8 train videos" in str(e.value)
    (tmp_path / "ucf" / "rgb-images" / "Walking" / "v_Walking_g01_c01").mkdir()
    shutil.copy(
        root / "rgb-images/Walking/v_Walking_g01_c01/00001.jpg", tmp_path / "ucf/rgb-images/Walking/v_Walking_g01_c01"
    )
    with pytest.raises(FileNotFoundError, match="v_Walking_g01_c01/00040.jpg"):  # a cut folder
        load_act_dicts(gt_file, tmp_path / "ucf", "train", layout="ucf24")
    with pytest.raises(FileNotFoundError, match=r"tiny_ucf24/rgb-images/Jumping/v_Jumping_g01_c01/00001.png"):
        load_act_dicts(gt_file, root, "train", layout=ACTLayout(fps=25, frames="rgb-images", pattern="%05d.png"))
    ms_root, ms_gt, _, _, _ = _spec("multisports")
    with pytest.raises(FileNotFoundError, match=r"elsewhere/trainval/aerobic_gymnastics/v_tinyaer04_c001.mp4"):
        load_act_dicts(ms_gt, tmp_path / "elsewhere", "test", layout="multisports")
    with pytest.raises(FileNotFoundError, match="ACT ground-truth file not found: .*nothing.pkl"):
        load_act_dicts(tmp_path / "nothing.pkl", root, "train")
    with pytest.raises(FileNotFoundError, match="no_boxes.pkl"):
        load_act_dicts(gt_file, root, "train", proposal_file=tmp_path / "no_boxes.pkl")
    assert all(
        len(d["proposals"]["scores"]) == 0
        for d in load_act_dicts(
            gt_file, root, "test", proposal_file=tmp_path / "no_boxes.pkl", proposal_file_optional=True
        )
    )


def test_missing_test_video_ends_train_net_before_training(tmp_path, monkeypatch, capsys):
    """Existence checks of the evaluated split's videos before anything is built (not at the first evaluation)."""
    import sys

    from vmae_det.data.act.catalog import check_act_sources
    from vmae_det.tools import train_net

    root, gt_file, _, boxes, _ = _spec("ucf24")
    cut = tmp_path / "ucf"
    shutil.copytree(root, cut, ignore=shutil.ignore_patterns("v_Waving_g03_c01"))
    _register("act_test_cut_test", gt_file, cut, "test", layout="ucf24", proposal_file=root / boxes["test"])
    missing = cut / "rgb-images" / "Waving" / "v_Waving_g03_c01"
    reason = f"1 of the 4 test videos of {gt_file} have no frames under {cut}: first missing {missing}"
    with pytest.raises(FileNotFoundError) as e:
        check_act_sources("act_test_cut_test")
    assert str(e.value) == reason
    monkeypatch.chdir(REPO)  # the built-in roots are relative: ./datasets
    check_act_sources("ucf24_tiny_test")  # whole: passes
    check_act_sources("ava_tiny_val")  # not an ACT dataset: not its business
    out = tmp_path / "run"
    argv = [
        "train_net.py",
        "--config-file",
        str(REPO / "configs" / "ucf24" / "tiny.py"),
        f"train.output_dir={out}",
        "train.device=cpu",
        "dataloader.test.dataset.names=act_test_cut_test",
        "dataloader.evaluator.dataset_name=act_test_cut_test",
    ]
    monkeypatch.setattr(sys, "argv", argv)
    assert train_net.cli() == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: dataloader.test.dataset.names=act_test_cut_test: {reason}"
    assert not out.exists()  # nothing trained, nothing written


def test_bad_entries_are_named(tmp_path):
    root, gt_file, _, _, _ = _spec("ucf24")
    gt = load_pickle(gt_file)
    video = gt["train_videos"][0][0]
    gt["gttubes"][video][7] = gt["gttubes"][video].pop(next(iter(gt["gttubes"][video])))
    bad = tmp_path / "UCF101v2-GT.pkl"
    bad.write_bytes(pickle.dumps(gt, protocol=2))
    with pytest.raises(TubeFormatError, match=rf"UCF101v2-GT.pkl: gttubes\['{video}'\]: label index 7 outside 0..3"):
        load_act_dicts(bad, root, "train")
    _register("act_test_bad_labels", bad, root, "train")
    with pytest.raises(TubeFormatError, match="label index 7"):
        DatasetCatalog.get("act_test_bad_labels")


def test_registered_dataset_reads_lazily(tmp_path):
    _register("act_test_later", tmp_path / "GT.pkl", tmp_path, "test", layout="jhmdb")
    meta = MetadataCatalog.get("act_test_later")
    assert meta.evaluator_type == "act" and meta.fps == 30.0
    with pytest.raises(FileNotFoundError, match="GT.pkl"):
        meta.labels  # noqa: B018  (read on first use)
    assert meta.get("class_names") is None  # what optional readers (checkpoint, demo) ask
    _, gt_file, _, _, labels = _spec("jhmdb")
    shutil.copy(gt_file, tmp_path / "GT.pkl")
    assert meta.labels == labels and meta.num_classes == len(labels)
    assert meta.class_names == {i + 1: name for i, name in enumerate(labels)}  # AVA's: column k is id k + 1


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_regenerating_gives_the_committed_datasets(tmp_path):
    make_tiny_act(tmp_path)
    for dataset, (folder, gt_name, _, boxes, _) in TINY_DATASETS.items():
        new, old = tmp_path / folder, DATASETS / folder
        assert sorted(p.relative_to(new) for p in new.rglob("*")) == sorted(p.relative_to(old) for p in old.rglob("*"))
        for name in {gt_name, *boxes.values()}:  # pickles: byte for byte
            assert _digest(new / name) == _digest(old / name), name
        for img in list(new.rglob("*.png"))[:40] + list(new.rglob("*.jpg"))[:40]:  # pixels: as decoded
            a, b = cv2.imread(str(img)), cv2.imread(str(old / img.relative_to(new)))
            assert np.abs(a.astype(int) - b).max() <= (0 if img.suffix == ".png" else 2), img


@pytest.mark.parametrize("dataset", list(TINY))
def test_tiny_classes_are_visible_in_the_motion(dataset):
    """Each label's tubes move as its name says (what lets a tiny model learn them): walk 1 px/frame, run 2,
    jump bounces (the box bottom moves), wave swings the arm (the box width changes), neither of those travels."""
    _, gt_file, _, _, labels = _spec(dataset)
    gt = load_pickle(gt_file)
    for tubes in gt["gttubes"].values():
        for label, ts in tubes.items():
            word = labels[label].split()[-1].lower()
            motion = {"jumping": "jump", "running": "run", "walking": "walk", "waving": "wave"}.get(word, word)
            for t in ts:
                speed = np.abs(np.diff(t[:, 1])).mean()  # the left edge: the body (the arm is on its right)
                feet, width = np.ptp(t[:, 4]), np.ptp(t[:, 3] - t[:, 1])
                want = {"walk": 1.0, "run": 2.0}.get(motion, 0.0)
                assert abs(speed - want) < 0.3, (labels[label], speed)
                assert (feet >= 3) == (motion == "jump"), (labels[label], feet)
                assert (width >= 3) == (motion == "wave"), (labels[label], width)


def test_act_video_is_read_frame_for_frame_whatever_its_timestamps(tmp_path):
    """ACT frame n is the file's n-th decoded frame: a variable-frame-rate MultiSports-style video is not resampled
    onto an average-rate grid (which would repeat and skip frames)."""
    from helpers import write_video

    from vmae_det.data.ava.clip_source import clip_source_for

    levels = np.arange(40) * 6 + 10
    frames = [np.full((48, 64, 3), v, np.uint8) for v in levels]
    pts_ms = np.cumsum([0] + list(np.random.default_rng(0).choice([20, 40, 120], len(frames) - 1)))
    path = write_video(tmp_path / "vfr.mp4", frames, pts_ms=pts_ms)
    d = {"video_id": "s/v", "timestamp": 1, "frame_index": 0, "nframes": len(frames), "video_path": str(path)}
    with clip_source_for(d) as src:
        assert src.num_frames == len(frames)
        got = src.get_frames(range(len(frames))).reshape(len(frames), -1).mean(1)
    np.testing.assert_array_equal(np.abs(got[:, None] - levels[None]).argmin(1), np.arange(len(frames)))
