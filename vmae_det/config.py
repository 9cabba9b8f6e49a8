"""Loading LazyConfig files strictly: an unknown key is an error, never silently added.

detectron2's ``LazyConfig.apply_overrides`` creates any key it is given, so a typo such as
``train.max_iters=10`` would be ignored. We check every override (and the ``train`` section of the
file itself) against what exists, and against the signature of the callable a ``LazyCall`` node targets
(so an argument the file did not spell out, e.g. ``model.backbone.drop_path_rate``, is still allowed).
"""
from __future__ import annotations

import difflib
import inspect
from typing import Iterable, Mapping, Optional, Sequence

from . import compat  # noqa: F401
from detectron2.config import LazyConfig
from detectron2.utils.registry import locate
from omegaconf import DictConfig, OmegaConf

__all__ = ["load_config", "apply_overrides_strict", "check_train_keys", "UnknownConfigKeyError"]

#: Top-level sections a vmae_det config may have.
TOP_LEVEL_KEYS = ("model", "dataloader", "optimizer", "lr_multiplier", "train")


class UnknownConfigKeyError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


def _did_you_mean(name: str, options: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(options), n=3)
    return f" Did you mean: {', '.join(close)}?" if close else ""


def _target_accepts(node: DictConfig, name: str) -> bool:
    """Whether the callable a LazyCall node targets takes keyword ``name``."""
    target = node.get("_target_")
    if target is None:
        return False
    if isinstance(target, str):
        target = locate(target)
    try:
        params = inspect.signature(target).parameters
    except (TypeError, ValueError):
        return True  # cannot introspect (builtin): let instantiate() report problems
    if name in params:
        return True
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


def _check_key(cfg: DictConfig, key: str, source: str) -> None:
    parts = key.split(".")
    node = cfg
    for depth, part in enumerate(parts):
        where = ".".join(parts[: depth + 1])
        if isinstance(node, DictConfig) and part in node:
            node = node[part]
            continue
        if isinstance(node, DictConfig) and depth == len(parts) - 1 and _target_accepts(node, part):
            return
        options = list(node.keys()) if isinstance(node, DictConfig) else []
        raise UnknownConfigKeyError(
            f"Unknown config key '{where}' in {source}.{_did_you_mean(part, options)}"
        )


def apply_overrides_strict(cfg: DictConfig, overrides: Sequence[str], source: str = "command line") -> DictConfig:
    """Apply ``key=value`` overrides, refusing keys that neither exist nor are accepted by a LazyCall target.

    ``key=None`` means ``key=null`` (Hydra's grammar would otherwise read the string "None").
    """
    items = []
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"Override '{item}' from {source} is not of the form key=value.")
        key, value = item.split("=", 1)
        _check_key(cfg, key.strip(), source)
        items.append(f"{key}=null" if value.strip() == "None" else item)
    return LazyConfig.apply_overrides(cfg, items)


def check_train_keys(cfg: DictConfig, defaults: Mapping, source: str) -> None:
    """Refuse unknown top-level sections and unknown ``train.*`` keys (compared with ``defaults``)."""
    for key in cfg.keys():
        if key not in TOP_LEVEL_KEYS:
            raise UnknownConfigKeyError(
                f"Unknown top-level config key '{key}' in {source}.{_did_you_mean(key, TOP_LEVEL_KEYS)}"
            )
    train = cfg.get("train")
    if train is None:
        return

    def walk(node, ref, prefix):
        for k in node.keys():
            if k not in ref:
                raise UnknownConfigKeyError(
                    f"Unknown config key 'train.{prefix}{k}' in {source}.{_did_you_mean(k, ref.keys())}"
                )
            if isinstance(node[k], DictConfig) and isinstance(ref[k], Mapping):
                walk(node[k], ref[k], f"{prefix}{k}.")

    walk(train, defaults, "")


def load_config(path: str, overrides: Optional[Sequence[str]] = None) -> DictConfig:
    """Load a LazyConfig python/yaml file, check its keys and apply ``key=value`` overrides strictly.

    Missing ``train.*`` keys are filled from the engine's defaults so that small configs stay small.
    """
    from .engine.defaults import TRAIN_DEFAULTS

    cfg = LazyConfig.load(path)
    check_train_keys(cfg, TRAIN_DEFAULTS, path)
    merged = OmegaConf.merge(OmegaConf.create(TRAIN_DEFAULTS), cfg.get("train", OmegaConf.create({})))
    cfg.train = merged
    if overrides:
        apply_overrides_strict(cfg, overrides)
    return cfg
