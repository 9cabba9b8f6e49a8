"""Strict LazyConfig loading: unknown keys are errors, LazyCall arguments stay overridable."""
import pytest

from vmae_det.config import UnknownConfigKeyError, apply_overrides_strict, load_config
from vmae_det.engine.defaults import TRAIN_DEFAULTS

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


def test_override_without_equals(cfg_file):
    cfg = load_config(str(cfg_file))
    with pytest.raises(ValueError, match="key=value"):
        apply_overrides_strict(cfg, ["train.max_iter"])


# ----------------------------------------------------------------- shipped configs
import glob  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted(p for p in glob.glob(str(REPO / "configs" / "*" / "*.py")) if "/common/" not in p)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: Path(p).relative_to(REPO).as_posix())
def test_shipped_configs_load_strictly(path):
    cfg = load_config(path)
    assert set(cfg) >= {"model", "dataloader", "optimizer", "lr_multiplier", "train"}
    assert cfg.train.max_iter > 0 and 0 <= cfg.lr_multiplier.warmup_fraction < 1


def test_ava_recipes_state_the_official_numbers():
    b = load_config(str(REPO / "configs/ava/vit_b.py"))
    assert b.dataloader.train.total_batch_size == 128
    assert b.optimizer.lr == pytest.approx(5e-4 * 128 / 256) and b.optimizer.layer_decay == 0.75
    assert tuple(b.optimizer.betas) == (0.9, 0.999) and b.optimizer.weight_decay == 0.05
    assert b.model.backbone.drop_path_rate == 0.2 and b.model.backbone.num_frames == 16
    assert b.dataloader.train.mapper.sampling_rate == 4
    assert b.dataloader.test.mapper.test_proposal_threshold == 0.8
    assert b.lr_multiplier.warmup_fraction == pytest.approx(5 / 30)
    assert b.lr_multiplier.min_lr_ratio * b.optimizer.lr == pytest.approx(1e-6)
    k400 = load_config(str(REPO / "configs/ava/vit_b_k400only.py"))
    assert k400.optimizer.lr == pytest.approx(2.5e-4 * 128 / 256)
    assert load_config(str(REPO / "configs/ava/vit_s.py")).optimizer.layer_decay == 0.6
    for size in ("l", "h"):
        c = load_config(str(REPO / f"configs/ava/vit_{size}.py"))
        assert c.optimizer.layer_decay == 0.8 and c.model.backbone.use_checkpoint
        assert c.train.max_iter == pytest.approx(b.train.max_iter * 20 / 30, rel=1e-3)
