"""ONNX export of the action detector's tensor path: RoiAlign(half_pixel) and scores match PyTorch."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from demo_helpers import CONFIG, tiny_model_checkpoint

import vmae_det  # noqa: F401  (detectron2 shims first)
from vmae_det.modeling.action_detector import AVAActionDetector
from vmae_det.modeling.onnx_export import compare_with_pytorch, example_inputs, export_action_detector, run_onnx
from vmae_det.modeling.vit import build_vit
from vmae_det.modeling.vmad_boxes import extend_boxes

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def detector() -> AVAActionDetector:
    torch.manual_seed(0)
    backbone = build_vit("tiny", img_size=32, num_frames=4, patch_size=8, tubelet_size=2)
    # A larger head init than VMAD's 0.02 x 0.001 so the scores actually differ between boxes.
    return AVAActionDetector(backbone=backbone, num_classes=5, head_init_std=0.5, head_init_scale=1.0).eval()


@pytest.fixture(scope="module")
def exported(detector, tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("onnx") / "detector.onnx")
    return export_action_detector(detector, path, clip_shape=(2, 3, 4, 32, 48), num_rois=3)


def test_graph_has_output_half_pixel_roialign_and_dynamic_batch_and_rois(exported):
    graph = onnx.load(exported).graph
    roi_aligns = [n for n in graph.node if n.op_type == "RoiAlign"]
    assert len(roi_aligns) == 1
    attrs = {a.name: a for a in roi_aligns[0].attribute}
    assert attrs["coordinate_transformation_mode"].s == b"output_half_pixel"  # aligned=False (VMAD)
    dims = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in graph.input}
    assert dims == {"clip": ["batch", 3, 4, 32, 48], "rois": ["num_rois", 5]}


def test_onnxruntime_scores_match_pytorch_on_other_batch_and_box_counts(detector, exported):
    clip, rois = example_inputs((3, 3, 4, 32, 48), num_rois=7, seed=1)
    diff = compare_with_pytorch(detector, exported, clip, rois)
    assert diff < 1e-4
    scores = run_onnx(exported, clip, rois)
    assert scores.shape == (7, 5) and ((scores > 0) & (scores < 1)).all()
    assert scores.std(0).max() > 1e-3  # not a constant output that would match trivially


def test_exported_scores_equal_the_list_of_dicts_path_before_person_score(detector, exported):
    clip, rois = example_inputs((1, 3, 4, 32, 48), num_rois=2, seed=2)
    inputs = [
        {
            "clip": clip[0].to(torch.uint8),
            "boxes": rois[:, 1:],
            "box_scores": torch.tensor([0.5, 1.0]),
            "clip_size": (32, 48),
        }
    ]
    with torch.no_grad():
        expected = detector(inputs)[0]["scores"].numpy()
    pooled = torch.cat([rois[:, :1], extend_boxes(rois[:, 1:], detector.test_box_extension, 32, 48)], 1)
    got = run_onnx(exported, clip.to(torch.uint8).float(), pooled) * np.array([[0.5], [1.0]])
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_opset_below_16_is_refused(detector, tmp_path):
    with pytest.raises(ValueError, match="opset 15 < 16"):
        export_action_detector(detector, str(tmp_path / "x.onnx"), (1, 3, 4, 32, 32), opset=15)


def export_tool(tmp_path):
    """``tools/export_onnx.py`` loaded as a module, and its arguments for the demo tests' config and checkpoint."""
    (tmp_path / "cfg.py").write_text(CONFIG)
    tiny_model_checkpoint(tmp_path / "w.pth")
    spec = importlib.util.spec_from_file_location("export_onnx_cli", REPO / "tools" / "export_onnx.py")
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    return cli, ["--config-file", str(tmp_path / "cfg.py"), "--checkpoint", str(tmp_path / "w.pth")]


def test_export_tool_from_config_and_checkpoint(tmp_path, capsys):
    cli, argv = export_tool(tmp_path)
    out = tmp_path / "tiny.onnx"
    assert cli.main(argv + ["--output", str(out)]) == 0
    assert "clip (1, 3, 4, 32, 43)" in capsys.readouterr().out  # short side 32, 4:3
    dims = [d.dim_value for d in onnx.load(str(out)).graph.output[0].type.tensor_type.shape.dim]
    assert dims[1] == 3


def test_nan_weights_are_not_exported_and_nan_scores_fail_the_check(detector, exported, tmp_path):
    import copy

    from vmae_det.modeling.onnx_export import ExportCheckError

    broken = copy.deepcopy(detector)
    with torch.no_grad():
        broken.head.fc.weight[1, 2] = float("nan")
    broken.weights_source = "runs/diverged/model_final.pth"
    with pytest.raises(ExportCheckError, match=r"runs/diverged/model_final\.pth.*NaN/inf values \(head\.fc\.weight\)"):
        export_action_detector(broken, str(tmp_path / "x.onnx"), (1, 3, 4, 32, 32))
    assert not (tmp_path / "x.onnx").exists()
    # A NaN on either side would compare as "no difference" (NaN > atol is False): the check fails instead.
    clip, rois = example_inputs((1, 3, 4, 32, 48), num_rois=2, seed=3)
    with pytest.raises(ExportCheckError, match=r"PyTorch gives 2 NaN/inf score\(s\) of 10"):
        compare_with_pytorch(broken, exported, clip, rois)
    assert isinstance(ExportCheckError("x"), ValueError)


def test_export_tool_removes_a_model_that_fails_its_check(tmp_path, monkeypatch):
    """A failed check writes nothing: the model was exported under a temporary name, which is removed, and an
    earlier --output (a good model deployed before) is left byte for byte."""
    import vmae_det.modeling.onnx_export as onnx_export
    from vmae_det.modeling.onnx_export import ExportCheckError

    cli, argv = export_tool(tmp_path)
    out = tmp_path / "tiny.onnx"
    assert cli.main(argv + ["--output", str(out)]) == 0
    earlier = out.read_bytes()
    # the check sees a difference above --atol (forced: compare_with_pytorch reports 1.0)
    monkeypatch.setattr(onnx_export, "compare_with_pytorch", lambda *a, **k: 1.0)
    expected = r"tiny\.onnx: max \|onnxruntime - pytorch\| = 1\.00e\+00 exceeds --atol 0\.001"
    with pytest.raises(ExportCheckError, match=expected):
        cli.main(argv + ["--output", str(out), "--atol", "0.001"])
    assert out.read_bytes() == earlier  # the earlier export is kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cfg.py", "tiny.onnx", "w.pth"]  # no temporary file left
    out.unlink()
    with pytest.raises(ExportCheckError):
        cli.main(argv + ["--output", str(out), "--atol", "0.001"])
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["cfg.py", "w.pth"]
