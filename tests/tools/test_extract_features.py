"""Feature extraction (engine/feature_extraction.py, its CLI) and AVAActionDetector.roi_features: the
head's input per box, written in shards.

On a small generated AVA-layout dataset with random weights (a larger head init than VMAD's, so scores
differ between boxes): the features reproduce the evaluation's scores through the model's own head, the
index names every box (the proposals the evaluation classifies; the training set's ground-truth people
with their person ids), a run stopped after a shard and resumed ends with the same bytes as one that
ran through, and bad inputs end with ``error: ...``.
"""

from __future__ import annotations

import csv
import json
import logging
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import torch
from detectron2.config import instantiate
from detectron2.data import DatasetCatalog, MetadataCatalog

import vmae_det  # noqa: F401  (detectron2 shims first)
from vmae_det.checkpoints import load_init_weights
from vmae_det.config import load_config
from vmae_det.data.ava.catalog import register_ava
from vmae_det.formats.feature_shards import FeatureShardWriter
from vmae_det.modeling.action_detector import AVAActionDetector
from vmae_det.modeling.vit import build_vit
from vmae_det.tools import extract_features as ef

REPO = Path(__file__).resolve().parents[2]
CONFIG = str(REPO / "configs/ava/tiny.py")
VAL, TRAIN = "test_extract_features_val", "test_extract_features_train"
OPTS = [
    f"dataloader.test.dataset.names={VAL}",
    f"dataloader.train.dataset.names={TRAIN}",
    f"dataloader.evaluator.dataset_name={VAL}",
    "train.device=cpu",
]


@pytest.fixture(scope="module")
def tiny(tiny_ava_factory) -> Path:
    """This module's tiny dataset (shared: read only)."""
    return tiny_ava_factory(seed=1, num_train_videos=1, num_val_videos=2, seconds=7, format="frames")


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny):
    """(checkpoint path, folder): :func:`tiny` registered under this module's names, random weights."""
    tmp = tmp_path_factory.mktemp("features")
    register_ava(VAL, tiny, "val", num_classes=5)
    register_ava(TRAIN, tiny, "train", num_classes=5)
    torch.manual_seed(0)
    model = instantiate(load_config(CONFIG, OPTS).model)
    with torch.no_grad():
        model.head.fc.weight.normal_(0, 0.5)
    ckpt = tmp / "model.pth"
    torch.save({"model": model.state_dict()}, ckpt)
    yield str(ckpt), tmp
    for name in (VAL, TRAIN):
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


def _run(ckpt, out, *extra, split="test", opts=()):
    return ef.main(
        [
            "--config-file",
            CONFIG,
            "--checkpoint",
            ckpt,
            "--output",
            str(out),
            "--split",
            split,
            "--num-workers",
            "0",
            *extra,
            *OPTS,
            *opts,
        ]
    )


def _index(out: Path):
    with open(out / "index.csv", newline="") as f:
        return list(csv.DictReader(f))


def _features(out: Path):
    meta = json.loads((out / "meta.json").read_text())
    return meta, [np.load(out / s["file"]) for s in meta["shards"]]


def test_roi_features_through_the_head_give_the_inference_scores():
    torch.manual_seed(0)
    backbone = build_vit("tiny", img_size=32, num_frames=4, patch_size=8, tubelet_size=2)
    model = AVAActionDetector(backbone=backbone, num_classes=5, head_init_std=0.5, head_init_scale=1.0).eval()
    g = torch.Generator().manual_seed(1)
    inputs = [
        {
            "clip": torch.randint(0, 256, (3, 4, 32, 48), dtype=torch.uint8, generator=g),
            "boxes": torch.tensor([[2.0, 3.0, 20.0, 30.0], [10.0, 0.0, 47.0, 31.0]]),
            "box_scores": torch.tensor([0.9, 0.5]),
        },
        {
            "clip": torch.randint(0, 256, (3, 4, 24, 40), dtype=torch.uint8, generator=g),
            "boxes": torch.zeros(0, 4),
            "box_scores": torch.zeros(0),
        },
        {
            "clip": torch.randint(0, 256, (3, 4, 32, 32), dtype=torch.uint8, generator=g),
            "boxes": torch.tensor([[0.0, 0.0, 16.0, 16.0]]),
            "box_scores": torch.tensor([1.0]),
        },
    ]
    with torch.no_grad():
        results = model(inputs)
        features = model.roi_features(inputs)
        assert [tuple(f.shape) for f in features] == [
            (2, backbone.embed_dim),
            (0, backbone.embed_dim),
            (1, backbone.embed_dim),
        ]
        # The head on the same rows at once: bit for bit (one input at a time differs by float rounding only).
        probs = torch.sigmoid(model.head(torch.cat(features))).split([len(f) for f in features])
        for d, f, p, r in zip(inputs, features, probs, results):
            torch.testing.assert_close(p * d["box_scores"][:, None], r["scores"], rtol=0, atol=0)
            torch.testing.assert_close(
                torch.sigmoid(model.head(f)) * d["box_scores"][:, None], r["scores"], rtol=0, atol=1e-6
            )
    assert results[0]["scores"].std(0).max() > 1e-3  # scores that differ between boxes: not a trivial match


def test_features_reproduce_the_evaluation_scores_and_the_index_names_each_box(setup):
    ckpt, tmp = setup
    out = tmp / "test_split"
    assert _run(ckpt, out, "--shard-size", "5") == 0
    meta, shards = _features(out)
    rows = _index(out)
    assert not (out / "progress.json").exists()
    assert meta["feature_dim"] == 64 and all(s.shape[1] == 64 and s.dtype == np.float32 for s in shards)
    assert [s.shape[0] for s in shards] == [s["rows"] for s in meta["shards"]] and len(shards) >= 3
    assert all(s.shape[0] >= 5 for s in shards[:-1])  # closed once full, at a keyframe border
    assert len(rows) == meta["num_rows"] == sum(s.shape[0] for s in shards)
    # One row per box the evaluation classifies: the proposals above the test threshold.
    dicts = DatasetCatalog.get(VAL)
    threshold = load_config(CONFIG, OPTS).dataloader.test.mapper.test_proposal_threshold
    assert len(rows) == sum(int((d["proposals"]["scores"] >= threshold).sum()) for d in dicts)
    assert meta["num_keyframes"] == len(dicts)
    assert [(int(r["shard"]), int(r["row"])) for r in rows] == [
        (i, j) for i, s in enumerate(shards) for j in range(len(s))
    ]

    cfg = load_config(CONFIG, OPTS + ["dataloader.test.num_workers=0"])
    model = instantiate(cfg.model)
    load_init_weights(model, ckpt, full_model=True)
    model.eval()
    by_keyframe = defaultdict(list)
    for r in rows:
        by_keyframe[(r["video_id"], int(r["timestamp"]))].append(r)
    checked = 0
    with torch.no_grad():
        for batch in instantiate(cfg.dataloader.test):
            for d, res in zip(batch, model(batch)):
                got = by_keyframe[(d["video_id"], d["timestamp"])]
                assert len(got) == len(res["scores"])
                if not got:
                    continue
                feats = torch.from_numpy(np.stack([shards[int(r["shard"])][int(r["row"])] for r in got]))
                score = torch.tensor([float(r["score"]) for r in got])
                np.testing.assert_allclose(
                    torch.sigmoid(model.head(feats)) * score[:, None], res["scores"], rtol=0, atol=1e-6
                )
                boxes = np.array([[float(r[k]) for k in ("x1", "y1", "x2", "y2")] for r in got])
                np.testing.assert_allclose(boxes, res["boxes"].numpy(), atol=1e-5)  # the boxes the evaluation reports
                checked += len(got)
    assert checked == len(rows)
    # Proposals have no person id: the demo's tracker links them per video (ids from 1).
    assert "PersonTracker" in meta["settings"]["person_id"]
    assert all(int(r["person_id"]) >= 1 for r in rows)


def test_without_a_tracker_proposals_have_person_id_minus_one(setup, monkeypatch):
    ckpt, tmp = setup
    monkeypatch.setattr(ef, "_load_tracker_class", lambda: None)
    out = tmp / "untracked"
    assert _run(ckpt, out) == 0
    meta, _ = _features(out)
    rows = _index(out)
    assert meta["settings"]["person_id"] == "none (-1)" and rows
    assert {r["person_id"] for r in rows} == {"-1"}


def test_train_split_has_the_ground_truth_boxes_and_person_ids(setup, tiny):
    ckpt, tmp = setup
    out = tmp / "train_split"
    assert _run(ckpt, out, "--dtype", "float16", split="train") == 0
    meta, shards = _features(out)
    assert meta["settings"]["person_id"] == "ground truth person id" and shards[0].dtype == np.float16
    got = defaultdict(list)
    for r in _index(out):
        got[(r["video_id"], int(r["timestamp"]))].append(
            (int(r["person_id"]), tuple(np.float32(float(r[k])) for k in ("x1", "y1", "x2", "y2")), float(r["score"]))
        )
    expected = {
        (d["video_id"], d["timestamp"]): sorted(
            (a["person_id"], tuple(np.float32(a["bbox"])), 1.0) for a in d["annotations"]
        )
        for d in DatasetCatalog.get(TRAIN)
    }
    assert {k: sorted(v) for k, v in got.items()} == {k: v for k, v in expected.items() if v}
    assert meta["num_rows"] == sum(len(v) for v in expected.values()) > 0
    # The same data given as a folder (as tools/train_net.py --ava-root): the same rows.
    by_root = tmp / "train_split_ava_root"
    assert (
        ef.main(
            [
                "--config-file",
                CONFIG,
                "--checkpoint",
                ckpt,
                "--output",
                str(by_root),
                "--split",
                "train",
                "--num-workers",
                "0",
                "--dtype",
                "float16",
                "--ava-root",
                str(tiny),
                "train.device=cpu",
            ]
        )
        == 0
    )
    for name in ["index.csv"] + [s["file"] for s in meta["shards"]]:
        assert (by_root / name).read_bytes() == (out / name).read_bytes(), name
    assert json.loads((by_root / "meta.json").read_text())["settings"]["ava_root"] == str(tiny)


def test_resume_after_a_stop_gives_the_same_bytes(setup, monkeypatch):
    ckpt, tmp = setup
    full, stopped = tmp / "full", tmp / "stopped"
    args = ("--shard-size", "4", "--batch-size", "4")
    assert _run(ckpt, full, *args) == 0

    close = FeatureShardWriter._close_shard
    calls = []

    def close_then_stop(self):
        close(self)
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # stopped right after the third shard was committed

    monkeypatch.setattr(FeatureShardWriter, "_close_shard", close_then_stop)
    with pytest.raises(KeyboardInterrupt):
        _run(ckpt, stopped, *args)
    monkeypatch.undo()
    progress = json.loads((stopped / "progress.json").read_text())
    done, total = progress["keyframes_done"], progress["settings"]["num_keyframes"]
    assert len(progress["shards"]) == 3 and 0 < done < total
    assert done % 4  # stopped inside a batch: the resumed run redoes that batch (clips are padded per batch)
    dicts = sorted(DatasetCatalog.get(VAL), key=lambda d: (d["video_id"], d["timestamp"]))
    assert dicts[done - 1]["video_id"] == dicts[done]["video_id"]  # and inside a video: its tracks are replayed
    # What a killed run may leave behind: rows of an uncommitted shard, a half-written shard.
    with open(stopped / "index.csv", "a") as f:
        f.write("9,9,half,0902,0.1")
    (stopped / ".features_00002.npy.tmp").write_bytes(b"\x93NUMPY half")

    with pytest.raises(ValueError, match="pass --resume"):
        _run(ckpt, stopped, *args)
    with pytest.raises(ValueError, match="started with other settings: shard_size"):
        _run(ckpt, stopped, "--resume", "--shard-size", "5", "--batch-size", "4")
    roi_features = AVAActionDetector.roi_features
    seen = []
    monkeypatch.setattr(
        AVAActionDetector, "roi_features", lambda self, batch: seen.extend(batch) or roi_features(self, batch)
    )
    assert _run(ckpt, stopped, "--resume", *args) == 0
    monkeypatch.undo()
    assert [(d["video_id"], d["timestamp"]) for d in seen] == [
        (d["video_id"], d["timestamp"]) for d in dicts[done // 4 * 4 :]
    ]
    names = sorted(p.name for p in full.iterdir())
    assert names == sorted(p.name for p in stopped.iterdir())
    assert "meta.json" in names and "features_00003.npy" in names
    assert ".vmae_det.lock" in names  # the output-folder lock of the training tools (who held it, when)
    for name in names:
        if name != ".vmae_det.lock":
            assert (full / name).read_bytes() == (stopped / name).read_bytes(), name
    assert _run(ckpt, stopped, "--resume", *args) == 0  # complete: nothing to do
    with pytest.raises(ValueError, match="already holds extracted features"):
        _run(ckpt, stopped, *args)


@pytest.mark.parametrize(
    "case, change, message",
    [
        ("missing checkpoint", {"--checkpoint": "{tmp}/nope.pth"}, "--checkpoint {tmp}/nope.pth does not exist"),
        ("unknown key", {"model.no_such_key": "1"}, "model.no_such_key"),
        ("shard size", {"--shard-size": "0"}, "--shard-size must be an integer >= 1, got 0"),
        ("output is a file", {"--output": "{tmp}/model.pth"}, "is a file, not a folder"),
        ("not a test-time mapper", {"dataloader.test.mapper.is_train": "True"}, "not a test-time AVAClipMapper"),
        ("checkpoint of another model", {"--checkpoint": "{tmp}/other.pth"}, "{tmp}/other.pth"),
    ],
)
def test_bad_inputs_end_with_an_error_line(setup, capsys, monkeypatch, case, change, message):
    ckpt, tmp = setup
    torch.save({"model": {"conv.weight": torch.zeros(2, 2)}}, tmp / "other.pth")
    flags = {"--config-file": CONFIG, "--checkpoint": ckpt, "--output": str(tmp / "bad"), "--num-workers": "0"}
    flags.update({k: v.format(tmp=tmp) for k, v in change.items() if k.startswith("--")})
    opts = OPTS + [f"{k}={v}" for k, v in change.items() if not k.startswith("--")]
    monkeypatch.setattr("sys.argv", ["vmae-extract-features", *(x for kv in flags.items() for x in kv), *opts])
    # main's logging.basicConfig keeps a root handler an earlier in-process CLI test bound to its (closed) capture
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    assert ef.cli() == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]  # the log lines of the steps before it may come first
    assert last.startswith("error: ") and message.format(tmp=tmp) in last, err
    assert not (tmp / "bad").exists()  # refused before the output folder is made


def test_num_workers_above_the_cpu_count_is_capped(setup, tmp_path, monkeypatch):
    """--num-workers 100000 started that many processes; it is lowered to the CPU count with a warning."""
    from vmae_det.data import loaders
    from vmae_det.resources import cpu_count

    ckpt, _ = setup
    seen, warnings = [], []
    real = loaders.build_batched_test_loader
    monkeypatch.setattr(
        loaders,
        "build_batched_test_loader",
        lambda *a, num_workers=0, **k: seen.append(num_workers) or real(*a, num_workers=0, **k),
    )

    class Keep(logging.Handler):
        def emit(self, record):
            warnings.append(record.getMessage())

    handler = Keep(level=logging.WARNING)
    logging.getLogger("vmae_det").addHandler(handler)
    try:
        assert _run(ckpt, tmp_path / "out", "--num-workers", "100003") == 0
    finally:
        logging.getLogger("vmae_det").removeHandler(handler)
    assert seen == [cpu_count()]
    assert [w for w in warnings if "--num-workers=100003: more than the" in w] == [
        f"--num-workers=100003: more than the {cpu_count()} CPU(s) this process may use; using {cpu_count()} "
        "worker processes"
    ]
