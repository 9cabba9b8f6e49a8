"""tools/train_net.py trains and evaluates each ACT-format dataset's tiny version (configs/{ucf24,jhmdb,multisports}/
tiny.py), in process: frame-AP and video-AP computed, the official-format pickles rescore equal through
``python -m vmae_det.evaluation.tubes``, and the trained model beats random scores on the same boxes."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog

from vmae_det.data.act.catalog import register_all_act
from vmae_det.evaluation import tubes
from vmae_det.formats.act import load_groundtruth
from vmae_det.formats.act_layout import TINY_DATASETS
from vmae_det.formats.safe_pickle import load_pickle
from vmae_det.synthetic.act import make_tiny_act

REPO = Path(__file__).resolve().parents[2]
TINY_NAMES = [f"{d}_tiny_{s}" for d in TINY_DATASETS for s in ("train", "val" if d == "multisports" else "test")]


@pytest.fixture(scope="module")
def act_root(tmp_path_factory):
    """A datasets root holding the three tiny sets (the committed ones, else generated), registered under it."""
    root = REPO / "datasets"
    if not all((root / TINY_DATASETS[d][0] / TINY_DATASETS[d][1]).exists() for d in TINY_DATASETS):
        root = tmp_path_factory.mktemp("act_datasets")
        make_tiny_act(str(root), list(TINY_DATASETS))

    def register(where):
        for name in TINY_NAMES:
            if name in DatasetCatalog.list():
                DatasetCatalog.remove(name)
                MetadataCatalog.remove(name)
        register_all_act(where)

    register(root)
    yield root
    register(None)  # the default root again, for the tests after these


def train_net(argv, monkeypatch):
    from vmae_det.tools import train_net as tool

    monkeypatch.setattr(sys, "argv", ["train_net.py", *argv])
    tool.main()


@pytest.mark.parametrize("dataset", list(TINY_DATASETS))
def test_tiny_act_training_and_evaluation(dataset, act_root, tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    train_net(
        [
            "--config-file",
            str(REPO / "configs" / dataset / "tiny.py"),
            f"train.output_dir={out}",
            "train.max_iter=40",
            "train.eval_period=0",
            "train.checkpointer.period=40",
            "dataloader.train.num_workers=0",
            "dataloader.test.num_workers=0",
        ],
        monkeypatch,
    )
    inference = out / "inference"
    report = json.loads((inference / "act_metrics.json").read_text())
    assert report["frameAP"]["mAP"] is not None and report["videoAP"]["0.5"]["mAP"] is not None
    assert report["videoAP_all"]["mAP_0.50:0.95"] is not None

    gt_file = str(act_root / TINY_DATASETS[dataset][0] / TINY_DATASETS[dataset][1])
    frame_json, video_json = tmp_path / "frame.json", tmp_path / "video.json"
    frame_pkl, video_pkl = str(inference / "frame_detections.pkl"), str(inference / "video_detections.pkl")
    assert tubes.main(["frameAP", gt_file, frame_pkl, "--output-json", str(frame_json)]) == 0
    assert tubes.main(["videoAP", gt_file, video_pkl, "-t", "0.5", "--output-json", str(video_json)]) == 0
    capsys.readouterr()
    assert json.loads(frame_json.read_text())["mAP"] == report["frameAP"]["mAP"]
    assert json.loads(video_json.read_text())["mAP"] == report["videoAP"]["0.5"]["mAP"]

    # random labels and scores on the same boxes: the trained model's frame-AP is above all 20 draws
    gt = load_groundtruth(gt_file)
    dets = load_pickle(frame_pkl)
    rng = np.random.default_rng(0)
    random_maps = []
    for _ in range(20):
        noise = dets.copy()
        noise[:, 2] = rng.integers(0, len(gt["labels"]), len(noise))
        noise[:, 3] = rng.random(len(noise))
        random_maps.append(tubes.frame_ap(gt, noise, 0.5)["mAP"])
    assert report["frameAP"]["mAP"] > max(random_maps), (report["frameAP"]["mAP"], random_maps)
