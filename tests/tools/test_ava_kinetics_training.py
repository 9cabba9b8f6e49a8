"""tools/train_net.py on the tiny AVA-Kinetics, in-process: a short training run whose evaluation scores AVA and
Kinetics keyframes together with the 2020 protocol (fractional Kinetics seconds meeting the scored file's keys)."""

import json
import sys
from pathlib import Path

import pytest

from vmae_det.data.ava.kinetics import register_ava_kinetics
from vmae_det.evaluation.ava_map import evaluate
from vmae_det.formats.ava import read_ava_csv, read_labelmap
from vmae_det.synthetic.ava_kinetics import make_tiny_ava_kinetics

REPO = Path(__file__).resolve().parents[2]
NAMES = {"train": "ava_kinetics_tiny_train", "val": "ava_kinetics_tiny_val"}


@pytest.fixture
def tiny_registered(tmp_path_factory):
    """The tiny set in a folder of its own, registered under the config's names for this test only."""
    from detectron2.data import DatasetCatalog, MetadataCatalog

    root = make_tiny_ava_kinetics(tmp_path_factory.mktemp("datasets") / "tiny_ava_kinetics")
    saved = {n: (DatasetCatalog[n], MetadataCatalog.get(n)) for n in NAMES.values() if n in DatasetCatalog}

    def reregister(make):
        for split, name in NAMES.items():
            if name in DatasetCatalog:
                DatasetCatalog.remove(name)
                MetadataCatalog.remove(name)
            make(split, name)

    reregister(lambda split, name: register_ava_kinetics(name, root, split, num_classes=5))
    yield root
    for name in NAMES.values():
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)
        if name in saved:
            DatasetCatalog.register(name, saved[name][0])
            MetadataCatalog[name] = saved[name][1]


def test_tiny_training_and_evaluation_score_ava_and_kinetics(tiny_registered, tmp_path, monkeypatch):
    from vmae_det.tools.train_net import cli

    out = tmp_path / "out"
    argv = [
        "train_net.py",
        "--config-file",
        str(REPO / "configs/ava_kinetics/tiny.py"),
        f"train.output_dir={out}",
        "train.max_iter=30",
        "train.eval_period=0",
        "train.checkpointer.period=30",
        "train.log_period=10",
        "dataloader.train.num_workers=0",
        "dataloader.test.num_workers=0",
    ]
    monkeypatch.setattr(sys, "argv", argv)
    assert cli() == 0
    metrics = json.loads((out / "inference" / "ava_metrics.json").read_text())
    assert metrics["protocol"] == "2020"
    assert metrics["stats"]["ignored_detections_unknown_keyframes"] == 0  # every detection's key is in the GT
    dets = read_ava_csv(out / "inference" / "ava_detections.csv")
    keys = set(zip(dets.str_column("video_ids"), dets.str_column("timestamps")))
    ava = {k for k in keys if k[0].startswith("tinyval")}
    kinetics = {k for k in keys if k[0].startswith("tinykin")}
    assert ava and kinetics and ava | kinetics == keys
    assert any("." in t and float(t) != int(float(t)) for _, t in kinetics)  # fractional seconds kept
    # the reported mAP is the scored file's: AVA rows (8 columns) and Kinetics rows (7) together
    gt_file = tiny_registered / "annotations" / "ava_kinetics_val_v1.0_scored.csv"
    gt = read_ava_csv(gt_file)
    vids = set(gt.str_column("video_ids"))
    assert any(v.startswith("tinyval") for v in vids) and any(v.startswith("tinykin") for v in vids)
    labels = read_labelmap(tiny_registered / "annotations" / "ava_action_list_v2.2_for_activitynet_2019.pbtxt")
    again = evaluate(gt, dets, labels, None, "2020", max_detections_per_keyframe=None)
    assert again.mAP == pytest.approx(metrics["mAP"], abs=1e-12)
    assert (out / "model_final.pth").is_file()
