"""tools/demo.py (vmae_det.tools.demo): config, checkpoint and label map loaded, the video rendered."""

from __future__ import annotations

import importlib.util

import pytest
import torch
from demo_helpers import (
    CONFIG,
    REPO,
    read_rows,
)

import vmae_det  # noqa: F401  (detectron2 shims first)
from vmae_det.demo import ActionPredictor
from vmae_det.modeling.tiny_action_model import TinyActionModel


def test_cli_loads_config_and_checkpoint_and_renders(video, tmp_path):
    cfg = tmp_path / "tiny_cfg.py"
    cfg.write_text(CONFIG)
    torch.manual_seed(3)
    weights = TinyActionModel(num_classes=3).state_dict()
    torch.save({"model": weights}, tmp_path / "w.pth")
    labelmap = tmp_path / "labels.pbtxt"
    labelmap.write_text(
        'label { name: "walk" label_id: 1 }\nlabel { name: "sit" label_id: 2 }\nlabel { name: "wave" label_id: 3 }\n'
    )
    boxes = tmp_path / "b.csv"
    boxes.write_text("clip one,1,0.1,0.1,0.4,0.9,,0.9\n")
    spec = importlib.util.spec_from_file_location("demo_cli", REPO / "tools" / "demo.py")
    demo_cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo_cli)
    rc = demo_cli.main(
        [
            "--config-file",
            str(cfg),
            "--checkpoint",
            str(tmp_path / "w.pth"),
            "--input",
            str(video),
            "--output",
            str(tmp_path / "o"),
            "--boxes",
            str(boxes),
            "--labelmap",
            str(labelmap),
            "--device",
            "cpu",
            "--no-progress",
            "--top-k",
            "2",
        ]
    )
    assert rc == 0
    predictor = ActionPredictor.from_config(str(cfg), str(tmp_path / "w.pth"), labelmap=str(labelmap), device="cpu")
    assert predictor.class_names == {1: "walk", 2: "sit", 3: "wave"}
    assert (predictor.num_frames, predictor.sampling_rate, predictor.clip_offset) == (4, 2, 0)
    assert predictor.test_short_side == 32 and [type(a).__name__ for a in predictor.augmentations] == [
        "ShortSideResize"
    ]
    assert torch.equal(predictor.model.cls.weight, weights["cls.weight"])  # checkpoint really loaded
    rows = read_rows(tmp_path / "o/clip one_actions.csv")
    assert [r[1] for r in rows] == ["0001"] * 3
    assert (tmp_path / "o/clip one_preview.png").is_file()
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        ActionPredictor.from_config(str(cfg), str(tmp_path / "nope.pth"))
