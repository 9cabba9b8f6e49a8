"""detectron2 v0.6 works on current dependencies through vmae_det.compat."""
import subprocess
import sys
import textwrap

import pytest
import torch

import vmae_det  # noqa: F401
from vmae_det import compat


def test_pillow_linear_alias():
    from PIL import Image

    assert Image.LINEAR == Image.BILINEAR


def test_placeholder_error_names_op_and_fix():
    if compat.has_compiled_ops():
        pytest.skip("real detectron2._C is installed")
    import detectron2._C as C

    with pytest.raises(compat.CompiledOpUnavailable) as err:
        C.nms_rotated  # noqa: B018
    msg = str(err.value)
    assert "nms_rotated" in msg and "detectron2._C" in msg and "pip install" in msg
    # Dunder probes (inspect, torch op registration) must stay ordinary AttributeErrors.
    with pytest.raises(AttributeError):
        C.__wrapped__  # noqa: B018
    assert not isinstance(getattr(C, "__file__"), type(None))


def test_collect_env_info_works_without_extension():
    from detectron2.utils.collect_env import collect_env_info

    info = collect_env_info()
    assert "PyTorch" in info and "detectron2" in info


def test_compat_runs_before_detectron2_in_fresh_interpreter():
    code = textwrap.dedent(
        """
        import vmae_det, detectron2
        from detectron2.data import transforms as T
        import numpy as np
        img = np.zeros((20, 30, 3), np.uint8)
        t = T.ResizeShortestEdge(10, 100).get_transform(img)
        print(t.apply_image(img).shape)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "(10, 15, 3)"


def test_registries_and_lazyconfig_and_model_zoo():
    from detectron2 import model_zoo
    from detectron2.config import LazyConfig, get_cfg
    from detectron2.modeling import BACKBONE_REGISTRY, META_ARCH_REGISTRY, build_model

    assert "GeneralizedRCNN" in META_ARCH_REGISTRY
    assert "build_resnet_fpn_backbone" in BACKBONE_REGISTRY
    cfg = get_cfg()
    cfg.merge_from_file(model_zoo.get_config_file("COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml"))
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.RESNETS.DEPTH = 50
    model = build_model(cfg).eval()
    with torch.no_grad():
        out = model([{"image": torch.zeros(3, 64, 64), "height": 64, "width": 64}])
    assert "instances" in out[0]
    lazy = model_zoo.get_config("common/models/mask_rcnn_fpn.py")
    assert "model" in lazy and LazyConfig is not None


def test_roi_pooler_roialign_matches_torchvision():
    from detectron2.modeling.poolers import ROIPooler
    from detectron2.structures import Boxes
    from torchvision.ops import roi_align

    feat = torch.randn(2, 4, 8, 8)
    boxes = [Boxes(torch.tensor([[0.0, 0.0, 32.0, 32.0]])), Boxes(torch.tensor([[8.0, 8.0, 60.0, 40.0]]))]
    pooler = ROIPooler((7, 7), scales=(1 / 8,), sampling_ratio=0, pooler_type="ROIAlignV2")
    out = pooler([feat], boxes)
    rois = torch.tensor([[0, 0.0, 0.0, 32.0, 32.0], [1, 8.0, 8.0, 60.0, 40.0]])
    ref = roi_align(feat, rois, (7, 7), spatial_scale=1 / 8, sampling_ratio=0, aligned=True)
    torch.testing.assert_close(out, ref)


def test_simple_trainer_checkpoint_resume(tmp_path):
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.engine import SimpleTrainer, hooks

    class Toy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Linear(3, 1)

        def forward(self, batch):
            return {"loss": (self.w(batch) ** 2).mean()}

    def data():
        while True:
            yield torch.ones(4, 3)

    def run(max_iter, resume):
        model = Toy()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        trainer = SimpleTrainer(model, data(), opt)
        ckpt = DetectionCheckpointer(model, str(tmp_path), trainer=trainer)
        trainer.register_hooks([hooks.PeriodicCheckpointer(ckpt, 5)])
        start = ckpt.resume_or_load("", resume=resume).get("iteration", -1) + 1 if resume else 0
        trainer.train(start, max_iter)
        return start, model

    run(5, resume=False)
    start, model = run(8, resume=True)
    assert start == 5
    assert (tmp_path / "model_final.pth").exists()


def test_map_dataset_retries_skipped_items_on_python_311():
    from detectron2.data.common import MapDataset

    def mapper(x):
        return None if x % 2 else x  # odd items "fail to decode"

    ds = MapDataset(list(range(6)), mapper)
    for i in range(6):
        assert ds[i] % 2 == 0  # a failing item is replaced by another, valid one


def test_import_vmae_det_and_the_evaluator_cli_stay_light(tmp_path):
    """The shims install without importing torch or detectron2; the evaluator CLI needs neither."""
    import subprocess
    import sys

    code = (
        "import sys, runpy\n"
        "import vmae_det\n"
        "assert 'torch' not in sys.modules and 'detectron2' not in sys.modules\n"
        "sys.argv = ['ava', '--help']\n"
        "try:\n"
        "    runpy.run_module('vmae_det.evaluation.ava', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('torch', 'detectron2', 'matplotlib') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "import detectron2.layers\n"
        "assert 'detectron2._C' in sys.modules\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
