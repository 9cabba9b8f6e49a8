"""detectron2 v0.6 works on current dependencies through vmae_det.compat."""

import os
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
    import detectron2.layers  # noqa: F401

    if compat.has_compiled_ops():
        pytest.skip("real detectron2._C is installed")
    if not compat.extension_placeholder_installed():
        pytest.skip("this detectron2 falls back by itself when _C is missing (upstream HEAD): no placeholder")
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
        "    runpy.run_module('vmae_det.evaluation.ava_cli', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = [m for m in ('torch', 'detectron2', 'matplotlib') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "from vmae_det import compat\n"
        "needed = compat.extension_placeholder_needed()\n"
        "assert 'detectron2' not in sys.modules  # the feature check reads the sources, imports nothing\n"
        "import detectron2.layers\n"
        "assert compat.extension_placeholder_installed() == needed\n"
        "assert ('detectron2._C' in sys.modules) == (needed or compat.has_compiled_ops())\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]


# ----------------------------------------------------------------- detectron2._C placeholder: only when needed
V06_LIKE = {
    "__init__.py": "",
    "layers/__init__.py": "from .deform_conv import deform_conv\n",
    "layers/deform_conv.py": (
        "import torch\nfrom detectron2 import _C\n\ndef deform_conv():\n    return _C.deform_conv_forward\n"
    ),
    "evaluation/__init__.py": "from .coco_evaluation import COCOeval_opt\n",
    "evaluation/fast_eval_api.py": "from detectron2 import _C\nCOCOeval_opt = 'fast'\n",
    "evaluation/coco_evaluation.py": "from detectron2.evaluation.fast_eval_api import COCOeval_opt\n",
}
HEAD_LIKE = {  # upstream HEAD: torch.ops / ImportError fallbacks; fast_eval_api itself still imports _C
    "__init__.py": "",
    "layers/__init__.py": "from .deform_conv import deform_conv\n",
    "layers/deform_conv.py": (
        "try:\n    from detectron2 import _C\nexcept ImportError:\n    deform_conv = None\n"
        "else:\n    deform_conv = _C.deform_conv_forward\n"
    ),
    "layers/rotated_boxes.py": "def iou():\n    from detectron2 import _C  # at call time only\n    return _C\n",
    "config/config.py": "from .defaults import _C\n",
    "config/defaults.py": "_C = {}\n",
    "evaluation/__init__.py": "from .coco_evaluation import COCOeval_opt\n",
    "evaluation/fast_eval_api.py": "from detectron2 import _C\nCOCOeval_opt = 'fast'\n",
    "evaluation/coco_evaluation.py": (
        "try:\n    from detectron2.evaluation.fast_eval_api import COCOeval_opt\n"
        "except ImportError:\n    COCOeval_opt = 'pycocotools fallback'\n"
    ),
}


def _fake_detectron2(root, files):
    for rel, text in files.items():
        path = root / "detectron2" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return str(root / "detectron2")


def test_feature_check_flags_unguarded_extension_imports_only(tmp_path):
    v06 = _fake_detectron2(tmp_path / "v06", V06_LIKE)
    head = _fake_detectron2(tmp_path / "head", HEAD_LIKE)
    assert compat.unguarded_extension_imports(v06) == [
        "detectron2.evaluation.coco_evaluation:1",
        "detectron2.layers.deform_conv:2",
    ]
    assert compat.extension_placeholder_needed(v06)
    assert compat.unguarded_extension_imports(head) == []
    assert not compat.extension_placeholder_needed(head)
    # Relative spellings count too.
    rel = _fake_detectron2(
        tmp_path / "rel",
        {"__init__.py": "", "layers/x.py": "from .. import _C\n", "evaluation/y.py": "from .fast_eval_api import A\n"},
    )
    assert compat.unguarded_extension_imports(rel) == ["detectron2.evaluation.y:1", "detectron2.layers.x:1"]


def test_installed_detectron2_feature_check():
    import detectron2

    found = compat.unguarded_extension_imports(os.path.dirname(detectron2.__file__))
    if compat.has_compiled_ops():
        assert not compat.extension_placeholder_installed()
    elif found:  # v0.6: its layers import _C unconditionally; the placeholder is what makes them importable
        assert compat.extension_placeholder_installed()
        assert "detectron2.layers.deform_conv:11" in found
    else:  # upstream HEAD: nothing to stand in for; its own ImportError fallbacks are kept working
        assert "detectron2._C" not in sys.modules
        from detectron2.evaluation import coco_evaluation

        assert coco_evaluation.COCOeval_opt is coco_evaluation.COCOeval


@pytest.mark.parametrize(
    "layout, expect_placeholder, expect_coco",
    [
        ("v06", True, "fast"),
        ("head", False, "pycocotools fallback"),
    ],
)
def test_placeholder_hook_on_fake_detectron2(tmp_path, layout, expect_placeholder, expect_coco):
    """End to end in a fresh interpreter: the hook installs the placeholder for a v0.6-like detectron2 (whose
    imports would fail otherwise) and leaves a HEAD-like one alone (its COCOEvaluator fallback still works)."""
    _fake_detectron2(tmp_path, V06_LIKE if layout == "v06" else HEAD_LIKE)
    code = textwrap.dedent(
        """
        import sys
        import vmae_det
        from vmae_det import compat
        import detectron2.layers, detectron2.evaluation
        print(compat.extension_placeholder_installed(), detectron2.evaluation.COCOeval_opt, sep="|")
        """
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), os.getcwd()]))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == f"{expect_placeholder}|{expect_coco}"


def test_hooks_survive_a_find_spec_before_the_import():
    """transformers 4.x runs importlib.util.find_spec("detectron2") when it is imported; the shims must still
    be applied when detectron2 (and detectron2.data.common) are imported afterwards."""
    code = textwrap.dedent(
        """
        import importlib.util
        import vmae_det
        from vmae_det import compat
        assert importlib.util.find_spec("detectron2") is not None
        needed = compat.extension_placeholder_needed()
        assert importlib.util.find_spec("detectron2.data.common") is not None
        import detectron2.layers
        from detectron2.data.common import MapDataset
        assert compat.extension_placeholder_installed() == needed
        assert MapDataset._vmae_det_patched
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_trainer_creates_the_data_loader_iterator_at_construction():
    """detectron2 v0.6 calls iter(data_loader) in SimpleTrainer.__init__, upstream HEAD on first use; our
    Trainer does it at construction on both, so runs draw the same random numbers on either."""
    from detectron2.utils.events import EventStorage

    from vmae_det.engine.trainer import Trainer

    class Loader:
        iter_calls = 0

        def __iter__(self):
            Loader.iter_calls += 1
            return iter(lambda: torch.ones(2, 3), None)  # endless

    class Toy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Linear(3, 1)

        def forward(self, batch):
            return {"loss": self.w(batch).pow(2).mean()}

    toy = Toy()
    trainer = Trainer(toy, Loader(), torch.optim.SGD(toy.parameters(), lr=0.1))
    assert Loader.iter_calls == 1
    with EventStorage(0):
        trainer.iter = 0
        trainer.run_step()
    assert Loader.iter_calls == 1
