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
