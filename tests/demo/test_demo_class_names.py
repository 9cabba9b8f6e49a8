"""A trained checkpoint carries its action names (id -> name, as transformers' ``id2label``), and the demo names
the actions from it without a label map or a registered dataset (issue 20 item 5)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from cli_table import run_tool

import vmae_det  # noqa: F401  (detectron2 shims first)
from vmae_det.checkpoints.files import class_names_of, read_checkpoint
from vmae_det.demo import ActionPredictor
from vmae_det.demo.labels import action_names

REPO = Path(__file__).resolve().parents[2]
TINY_NAMES = {1: "walk left", 2: "walk right", 3: "stand", 4: "jump", 5: "wave"}  # datasets/make_tiny_ava.py


def test_class_names_of_reads_pairs_and_dicts():
    assert class_names_of({"class_names": [[1, "walk"], [3, "wave"]]}) == {1: "walk", 3: "wave"}
    assert class_names_of({"class_names": {1: "walk", "2": "sit"}}) == {1: "walk", 2: "sit"}
    for bad in (None, "walk", [[1, 2]], [["x", "walk"]], [[True, "walk"]], [], {}):
        assert class_names_of({"class_names": bad}) is None
    assert class_names_of({}) is None


def test_read_checkpoint_keeps_class_names_stored_as_a_dict(tmp_path):
    state = {"w": torch.ones(2)}
    torch.save({"model": state, "class_names": {1: "walk", 2: "sit"}}, tmp_path / "d.pth")
    torch.save({"model": state, "class_names": [[1, "walk"], [2, "sit"]]}, tmp_path / "p.pth")
    for name in ("d.pth", "p.pth"):
        tensors, extras = read_checkpoint(str(tmp_path / name))
        assert list(tensors) == ["w"] and class_names_of(extras) == {1: "walk", 2: "sit"}


def test_names_come_from_label_map_then_checkpoint_then_dataset(tmp_path, caplog):
    from detectron2.data import MetadataCatalog

    MetadataCatalog.get("names_test_dataset").class_names = {1: "from dataset", 2: "dataset two"}
    labelmap = tmp_path / "l.pbtxt"
    labelmap.write_text('label { name: "from label map" label_id: 1 }\n')
    stored = {1: "from checkpoint", 2: "checkpoint two"}
    assert action_names(2, label_map=str(labelmap), dataset="names_test_dataset", checkpoint_names=stored) == {
        1: "from label map",
        2: "action 2",
    }
    assert action_names(2, dataset="names_test_dataset", checkpoint_names=stored) == stored
    assert action_names(2, dataset="names_test_dataset", checkpoint_names=None)[1] == "from dataset"
    # a dataset the user names (--dataset) goes before the checkpoint's names
    assert (
        action_names(2, dataset="names_test_dataset", checkpoint_names=stored, dataset_first=True)[1] == "from dataset"
    )
    with caplog.at_level(logging.WARNING, logger="vmae_det.demo.labels"):
        assert action_names(2, dataset="no_such_dataset_here") == {1: "action 1", 2: "action 2"}
    assert "no action names" in caplog.text and "--labelmap" in caplog.text


def test_trained_checkpoint_names_the_demo_actions(tmp_path, tiny_ava_factory):
    """Train configs/ava/tiny.py for 2 iterations; its checkpoint stores the training dataset's names (read with
    weights_only=True) and the demo's predictor built from it, with no label map and a test dataset that is
    not registered, names the actions by them, without warning."""
    data = tiny_ava_factory(num_train_videos=1, num_val_videos=1, seconds=4, format="videos").parent
    out = tmp_path / "run"
    proc = run_tool(
        "train_net",
        [
            "--config-file",
            str(REPO / "configs/ava/tiny.py"),
            f"train.output_dir={out}",
            "train.max_iter=2",
            "train.eval_period=0",
            "train.checkpointer.period=2",
            "dataloader.train.num_workers=0",
            "dataloader.test.num_workers=0",
        ],
        {"VMAE_DET_DATASETS": str(data)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    saved = torch.load(out / "model_final.pth", weights_only=True)
    assert saved["class_names"] == [[i, n] for i, n in TINY_NAMES.items()]
    assert class_names_of(read_checkpoint(str(out / "model_final.pth"))[1]) == TINY_NAMES

    predictor = ActionPredictor.from_config(
        str(REPO / "configs/ava/tiny.py"),
        str(out / "model_final.pth"),
        opts=["dataloader.test.dataset.names=no_such_dataset_registered"],
        device="cpu",
    )
    assert predictor.class_names == TINY_NAMES
    # --labelmap still wins over the checkpoint's names
    labelmap = tmp_path / "l.pbtxt"
    labelmap.write_text('label { name: "mine" label_id: 2 }\n')
    predictor = ActionPredictor.from_config(
        str(REPO / "configs/ava/tiny.py"), str(out / "model_final.pth"), labelmap=str(labelmap), device="cpu"
    )
    assert predictor.class_names == {1: "action 1", 2: "mine", 3: "action 3", 4: "action 4", 5: "action 5"}


@pytest.mark.parametrize("stored", [None, [[1, "walk"]]])
def test_predictor_warns_only_without_any_names(tmp_path, caplog, stored):
    from demo_helpers import CONFIG

    from vmae_det.modeling.tiny_action_model import TinyActionModel

    (tmp_path / "cfg.py").write_text(CONFIG)
    payload = {"model": TinyActionModel(num_classes=3).state_dict()}
    if stored:
        payload["class_names"] = stored
    torch.save(payload, tmp_path / "w.pth")
    with caplog.at_level(logging.WARNING, logger="vmae_det.demo.labels"):
        predictor = ActionPredictor.from_config(str(tmp_path / "cfg.py"), str(tmp_path / "w.pth"), device="cpu")
    if stored:
        assert (
            predictor.class_names == {1: "walk", 2: "action 2", 3: "action 3"} and "no action names" not in caplog.text
        )
    else:
        assert predictor.class_names == {1: "action 1", 2: "action 2", 3: "action 3"}
        assert "no action names" in caplog.text
