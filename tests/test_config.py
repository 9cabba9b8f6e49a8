"""Strict LazyConfig loading: unknown keys are errors, LazyCall arguments stay overridable; the
shipped AVA recipes equal VMAD's run scripts."""

import glob
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from detectron2.config import instantiate

from vmae_det.config import UnknownConfigKeyError, apply_overrides_strict, load_config
from vmae_det.config_schema import TRAIN_DEFAULTS

CONFIG = """
from detectron2.config import LazyCall as L
from torch.nn import Linear
model = L(Linear)(in_features=3, out_features=2)
train = dict(max_iter=7, checkpointer=dict(period=3))
"""


@pytest.fixture
def cfg_file(tmp_path):
    p = tmp_path / "cfg.py"
    p.write_text(CONFIG)
    return p


def test_defaults_filled_and_overrides_applied(cfg_file):
    cfg = load_config(str(cfg_file), ["train.max_iter=11", "model.out_features=5", "model.bias=False"])
    assert cfg.train.max_iter == 11
    assert cfg.train.checkpointer.period == 3
    assert cfg.train.checkpointer.max_to_keep == TRAIN_DEFAULTS["checkpointer"]["max_to_keep"]
    assert cfg.train.log_period == TRAIN_DEFAULTS["log_period"]
    assert cfg.model.out_features == 5 and cfg.model.bias is False


@pytest.mark.parametrize(
    "override, needle",
    [
        ("train.max_iters=3", "train.max_iters"),
        ("model.out_feature=3", "model.out_feature"),
        ("trian.max_iter=3", "trian"),
        ("train.checkpointer.perod=3", "train.checkpointer.perod"),
    ],
)
def test_unknown_override_is_error(cfg_file, override, needle):
    with pytest.raises(UnknownConfigKeyError) as err:
        load_config(str(cfg_file), [override])
    assert needle in str(err.value) and "command line" in str(err.value)


def test_unknown_key_in_file_is_error_naming_file(tmp_path):
    p = tmp_path / "bad.py"
    p.write_text(CONFIG + "train['eval_perod'] = 3\n")
    with pytest.raises(UnknownConfigKeyError) as err:
        load_config(str(p))
    assert "train.eval_perod" in str(err.value) and str(p) in str(err.value)
    assert "eval_period" in str(err.value)  # suggestion


def test_unknown_top_level_section(tmp_path):
    p = tmp_path / "bad.py"
    p.write_text(CONFIG + "optimiser = dict(lr=1)\n")
    with pytest.raises(UnknownConfigKeyError, match="optimiser"):
        load_config(str(p))


def test_none_override_means_null():
    cfg = load_config(
        str(REPO / "configs/ava/vit_b.py"),
        ["model.test_box_extension=None", "dataloader.train.mapper.gt_box_jitter=null"],
    )
    assert cfg.model.test_box_extension is None and cfg.dataloader.train.mapper.gt_box_jitter is None
    model_cfg = load_config(str(REPO / "configs/ava/tiny.py"), ["model.test_box_extension=None"]).model
    assert instantiate(model_cfg).test_box_extension is None


def test_override_without_equals(cfg_file):
    cfg = load_config(str(cfg_file))
    with pytest.raises(ValueError, match="key=value"):
        apply_overrides_strict(cfg, ["train.max_iter"])


# ----------------------------------------------------------------- shipped configs
REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted(p for p in glob.glob(str(REPO / "configs" / "*" / "*.py")) if "/common/" not in p)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: Path(p).relative_to(REPO).as_posix())
def test_shipped_configs_load_strictly(path):
    cfg = load_config(path)
    assert set(cfg) >= {"model", "dataloader", "optimizer", "lr_multiplier", "train"}
    assert cfg.train.max_iter > 0 and 0 <= cfg.lr_multiplier.warmup_fraction < 1


@pytest.mark.parametrize("dataset", ["ucf24", "jhmdb", "multisports"])
def test_act_recipes_score_each_box_by_its_softmax_alone(dataset):
    """mmaction2's MultiSportsMetric (the MultiSports baselines) takes the softmax of a person box, not times the
    detector's score: a box's scores sum to 1 whatever its person score."""
    import torch

    model = instantiate(load_config(str(REPO / "configs" / dataset / "tiny.py")).model).eval()
    inp = {
        "clip": torch.randint(0, 256, (3, 8, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)),
        "boxes": torch.tensor([[4.0, 6.0, 30.0, 60.0], [30.0, 2.0, 63.0, 50.0]]),
        "box_scores": torch.tensor([0.6, 0.9]),
        "clip_size": (64, 64),
    }
    with torch.no_grad():
        scores = model([inp])[0]["scores"]
    torch.testing.assert_close(scores.sum(1), torch.ones(2))


VMAD_RECIPES = json.loads((REPO / "tests/reference/vmad_recipes.json").read_text())
SIZES = {"s": "small", "b": "base", "l": "large", "h": "huge"}
AVA_RECIPES = {
    f"vit_{s}{suffix}.py": f"videomae_vit_{name}_k400_pretrain{family}"
    for s, name in SIZES.items()
    for suffix, family in (("", "+finetune"), ("_pretrain_only", ""))
}


def _vmad_lr(r: dict, it: int, iters_per_epoch: int) -> float:
    """VMAD's utils.cosine_scheduler at iteration ``it`` (linear warm-up from 0, then cosine)."""
    batch = r["batch_size_per_gpu"] * r["gpus"]
    base, final = r["lr"] * batch / 256, VMAD_RECIPES["_defaults"]["min_lr"] * batch / 256
    warmup = int(VMAD_RECIPES["_defaults"]["warmup_epochs"]) * iters_per_epoch
    if it < warmup:
        return float(np.linspace(0, base, warmup)[it])
    n = r["epochs"] * iters_per_epoch - warmup
    return final + 0.5 * (base - final) * (1 + math.cos(math.pi * (it - warmup) / n))


@pytest.mark.parametrize("config,script", sorted(AVA_RECIPES.items()))
def test_ava_recipes_equal_vmads_run_scripts(config, script):
    """Every AVA recipe against the numbers of VMAD's own run.sh / MODEL_ZOO.md (parsed by
    tests/reference/make_vmad_reference.py), including the resulting lr at several iterations."""
    r = VMAD_RECIPES[script]
    path = REPO / "configs/ava" / config
    cfg = load_config(str(path))
    batch = r["batch_size_per_gpu"] * r["gpus"]
    assert cfg.dataloader.train.total_batch_size * cfg.train.grad_accum_steps == batch
    assert cfg.model.backbone.size == SIZES[config[4]]
    assert cfg.model.backbone.drop_path_rate == r["drop_path"]
    assert bool(cfg.model.backbone.use_checkpoint) == r["use_checkpoint"]
    assert cfg.model.head_init_scale == VMAD_RECIPES["_defaults"]["init_scale"]
    for split in ("train", "test"):
        assert cfg.dataloader[split].mapper.num_frames == r["num_frames"]
        assert cfg.dataloader[split].mapper.sampling_rate == r["sampling_rate"]
    assert cfg.dataloader.test.batch_size == int(1.5 * r["batch_size_per_gpu"])
    assert cfg.optimizer.layer_decay == r["layer_decay"] and cfg.optimizer.weight_decay == r["weight_decay"]
    assert list(cfg.optimizer.betas) == r["opt_betas"]
    assert cfg.train.clip_grad == 0 and VMAD_RECIPES["_defaults"]["clip_grad"] is None
    iters_per_epoch = 210_634 // batch
    assert cfg.train.max_iter == r["epochs"] * iters_per_epoch
    assert cfg.train.eval_period == r["val_freq"] * iters_per_epoch
    sched = instantiate(cfg.lr_multiplier)
    for it in (
        0,
        100,
        5 * iters_per_epoch - 1,
        5 * iters_per_epoch + 7,
        cfg.train.max_iter // 2,
        cfg.train.max_iter - 1,
    ):
        ours = cfg.optimizer.lr * sched(it / cfg.train.max_iter)
        assert ours == pytest.approx(_vmad_lr(r, it, iters_per_epoch), rel=2e-3, abs=1e-9), it
    target = re.search(r"target\s+\*\*([0-9.]+) mAP\*\*", path.read_text())
    assert target and float(target.group(1)) == r["map"]


# ----------------------------------------------------------------- values of train.* (before anything runs)
from vmae_det.config import ConfigFileError, ConfigValueError  # noqa: E402
from vmae_det.config_schema import TRAIN_SCHEMA  # noqa: E402


def test_schema_covers_every_train_key():
    def keys(d, prefix=""):
        return {k2 for k, v in d.items() for k2 in (keys(v, f"{prefix}{k}.") if isinstance(v, dict) else {prefix + k})}

    assert keys(TRAIN_SCHEMA) == keys(TRAIN_DEFAULTS)


@pytest.mark.parametrize(
    "override, message",
    [
        ("train.max_iter=abc", "train.max_iter='abc' from the command line is not valid: expected an integer >= 1"),
        ("train.max_iter=1.5", "train.max_iter=1.5 from the command line is not valid: expected an integer >= 1"),
        ("train.max_iter=0", "train.max_iter=0 from the command line is not valid: expected an integer >= 1"),
        ("train.max_iter=true", "train.max_iter=True from the command line"),
        ("train.log_period=0", "train.log_period=0 from the command line is not valid: expected an integer >= 1"),
        ("train.checkpointer.period=0", "train.checkpointer.period=0 from the command line is not valid"),
        ("train.checkpointer.max_to_keep=0", "train.checkpointer.max_to_keep=0"),
        (
            "train.amp.dtype=float8",
            "train.amp.dtype='float8' from the command line is not valid: expected one of 'bfloat16', 'float16'",
        ),
        ("train.amp.enabled=yes", "train.amp.enabled='yes' from the command line is not valid: expected true or false"),
        ("train.eval_period=-1", "train.eval_period=-1 from the command line is not valid: expected an integer >= 0"),
        ("train.grad_accum_steps=0", "train.grad_accum_steps=0"),
        ("train.clip_grad=-1", "train.clip_grad=-1 from the command line is not valid: expected a number >= 0"),
        ("train.device=gpu", "train.device='gpu' from the command line is not valid"),
        ("train.output_dir=", "train.output_dir"),
        ("train.float32_matmul_precision=low", "train.float32_matmul_precision='low'"),
        ("train.checkpointer=5", "train.checkpointer=5 from the command line is not valid: expected a section"),
        ("optimizer.lr=abc", "optimizer.lr='abc' from the command line is not valid: expected a number > 0"),
        ("optimizer.lr=0", "optimizer.lr=0 from the command line"),
    ],
)
def test_bad_train_values_are_refused_at_load_time(override, message):
    with pytest.raises(ConfigValueError) as err:
        load_config(str(REPO / "configs/ava/tiny.py"), [override])
    assert message in str(err.value)


def test_good_edge_values_are_accepted(cfg_file):
    cfg = load_config(
        str(cfg_file),
        [
            "train.eval_period=0",
            "train.vis_period=0",
            "train.clip_grad=0",
            "train.checkpointer.max_to_keep=null",
            "train.seed=-1",
            "train.max_iter=1",
            "train.device=cpu",
            "train.float32_matmul_precision=highest",
        ],
    )
    assert cfg.train.checkpointer.max_to_keep is None and cfg.train.max_iter == 1


def test_bad_value_in_the_file_names_file_and_line(tmp_path):
    p = tmp_path / "bad.py"
    p.write_text(CONFIG + "train['log_period'] = 0\n")
    with pytest.raises(ConfigValueError) as err:
        load_config(str(p))
    line = CONFIG.count("\n") + 1
    assert f"train.log_period=0 from {p}:{line} is not valid" in str(err.value)
    # an override that fixes it is enough
    assert load_config(str(p), ["train.log_period=5"]).train.log_period == 5


def test_config_file_that_cannot_load(tmp_path):
    with pytest.raises(ConfigFileError, match=f"Config file {tmp_path / 'nope.py'} does not exist"):
        load_config(str(tmp_path / "nope.py"))
    with pytest.raises(ConfigFileError, match="is a folder"):
        load_config(str(tmp_path))
    bad = tmp_path / "syntax.py"
    bad.write_text("train = dict(\n  max_iter=3,\n")
    with pytest.raises(ConfigFileError, match=f"{bad}:1: syntax error in config file"):
        load_config(str(bad))
    failing = tmp_path / "failing.py"
    failing.write_text("x = 1\ntrain = dict(max_iter=undefined_name)\n")
    with pytest.raises(ConfigFileError, match=f"{failing}:2: error while loading config file .*NameError"):
        load_config(str(failing))
