"""Loading LazyConfig files strictly: an unknown key is an error, never silently added.

detectron2's ``LazyConfig.apply_overrides`` creates any key it is given, so a typo such as ``train.max_iters=10``
would be ignored. Overrides are checked against what exists and against the signature of the callable a
``LazyCall`` node targets; ``train.*`` values against ``vmae_det.config_schema.TRAIN_SCHEMA``, before anything
is built, with errors naming the key and where the value came from.
"""

from __future__ import annotations

import difflib
import inspect
import os
import re
import sysconfig
import traceback
from typing import Any, Iterable, Mapping, Optional, Sequence, Set, Tuple

from detectron2.config import LazyConfig
from detectron2.utils.registry import locate
from omegaconf import DictConfig, ListConfig, OmegaConf

from .config_schema import TRAIN_DEFAULTS, TRAIN_SCHEMA

__all__ = [
    "load_config",
    "apply_overrides_strict",
    "check_train_keys",
    "check_train_values",
    "UnknownConfigKeyError",
    "ConfigValueError",
    "ConfigFileError",
]

#: Top-level sections a vmae_det config may have.
TOP_LEVEL_KEYS = ("model", "dataloader", "optimizer", "lr_multiplier", "train")


class UnknownConfigKeyError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


class ConfigValueError(ValueError):
    """A config value of the wrong type or out of range (``train.max_iter=abc``)."""


class ConfigFileError(ValueError):
    """The config file cannot be loaded: missing, a syntax error, or an exception while executing it."""


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
        if isinstance(node, ListConfig) and part.isdigit():  # an item of a list, e.g. train.hooks.0.period
            if int(part) >= len(node):
                raise UnknownConfigKeyError(
                    f"Unknown config key '{where}' in {source}: '{'.'.join(parts[:depth])}' has {len(node)} item(s) "
                    f"(0 .. {len(node) - 1})."
                )
            node = node[int(part)]
            continue
        if isinstance(node, DictConfig) and depth == len(parts) - 1 and _target_accepts(node, part):
            return
        options = list(node.keys()) if isinstance(node, DictConfig) else []
        raise UnknownConfigKeyError(f"Unknown config key '{where}' in {source}.{_did_you_mean(part, options)}")


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


_LIBRARY_DIRS = tuple(
    os.path.realpath(d) + os.sep
    for d in {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    | {os.path.dirname(os.path.abspath(__file__))}
)


def _config_frame(tb) -> Optional[Tuple[str, int]]:
    """The innermost traceback frame in a config file (not in a library or in vmae_det itself)."""
    found = None
    for frame in traceback.extract_tb(tb):
        name = frame.filename
        if name.endswith(".py") and not os.path.realpath(name).startswith(_LIBRARY_DIRS):
            found = (name, frame.lineno)
    return found


def _load_file(path: str) -> DictConfig:
    """``LazyConfig.load`` with clear errors for a missing file, a syntax error or a failing file."""
    if not path:
        raise ConfigFileError("No config file given: pass --config-file FILE (e.g. configs/ava/vit_b.py).")
    if not os.path.isfile(path):
        what = "is a folder, not a file" if os.path.isdir(path) else "does not exist"
        raise ConfigFileError(f"Config file {path} {what} (--config-file).")
    try:
        return LazyConfig.load(path)
    except SyntaxError as e:
        inner = e.__cause__ if isinstance(e.__cause__, SyntaxError) else e
        name = inner.filename if inner.filename and not inner.filename.startswith("<") else path
        where = f"{name}:{inner.lineno}" if inner.lineno else name
        raise ConfigFileError(f"{where}: syntax error in config file: {inner.msg}") from e
    except Exception as e:  # the file's own code failed (a bad import, a typo'd name, a bad value)
        if isinstance(e, ConfigFileError):
            raise
        frame = _config_frame(e.__traceback__)
        where = f"{frame[0]}:{frame[1]}" if frame else path
        raise ConfigFileError(f"{where}: error while loading config file {path}: {type(e).__name__}: {e}") from e


def _line_of(path: str, leaf: str) -> str:
    """``path:LINE`` of the last line of ``path`` that assigns ``leaf`` (best effort), else ``path``."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return path
    pattern = re.compile(r"(?<![\w])[\"']?" + re.escape(leaf) + r"[\"']?\]?\s*[=:](?!=)")
    found = [i for i, line in enumerate(lines, 1) if pattern.search(line.split("#", 1)[0])]
    # the last assignment is the one that counts
    return f"{path}:{found[-1]}" if found else f"{path} (or a config file it imports)"


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _valid_device(v: Any) -> bool:
    if not isinstance(v, str):
        return False
    if v == "auto":
        return True
    import torch

    try:
        torch.device(v)
    except (RuntimeError, ValueError, TypeError):
        return False
    return True


def _target_name(node: Any) -> str:
    target = node.get("_target_") if isinstance(node, DictConfig) else None
    if isinstance(target, str):
        return target
    return f"{getattr(target, '__module__', '?')}.{getattr(target, '__qualname__', repr(target))}"


def _lazy_call_problem(node: Any) -> Optional[str]:
    """None when ``node`` is a LazyCall node whose target exists and takes every argument it sets;
    else what is wrong."""
    if not isinstance(node, DictConfig) or "_target_" not in node:
        return "expected a LazyCall node, LazyCall(f)(...) (a mapping with a _target_)"
    target = node.get("_target_")
    name = _target_name(node)
    if isinstance(target, str):
        try:
            target = locate(target)
        except Exception:  # ImportError, or whatever importing the module raised
            return f"its _target_ {name!r} cannot be imported"
    if not callable(target):
        return f"its _target_ {name!r} is not callable"
    short = name.rsplit(".", 1)[-1]
    for k in node.keys():
        if k != "_target_" and not _target_accepts(node, k):
            return f"{short}() takes no argument {k!r}"
    try:
        params = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return None
    missing = [
        p.name
        for p in params
        if p.default is inspect.Parameter.empty
        and p.name not in node
        and p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    ]
    if missing:
        return f"{short}() needs the argument(s) {', '.join(map(repr, missing))}"
    return None


def _check_leaf(value: Any, kind: str, rule: Any) -> Optional[str]:
    """None when ``value`` fits; else what was expected."""
    optional = kind.startswith("opt_")
    if optional:
        if value is None:
            return None
        kind = kind[4:]
    null = " (or null)" if optional else ""
    if kind == "int":
        if _is_int(value) and (rule is None or value >= rule):
            return None
        return f"expected an integer{f' >= {rule}' if rule is not None else ''}{null}"
    if kind == "number":
        if _is_number(value) and value == value and (rule is None or value >= rule):
            return None
        return f"expected a number{f' >= {rule}' if rule is not None else ''}{null}"
    if kind == "bool":
        return None if isinstance(value, bool) else f"expected true or false{null}"
    if kind == "str":
        return None if isinstance(value, str) else f"expected a string{null}"
    if kind == "path":
        return None if isinstance(value, str) and value.strip() else "expected a non-empty folder path"
    if kind == "choice":
        return None if value in rule else f"expected one of {', '.join(map(repr, rule))}{null}"
    if kind == "device":
        return None if _valid_device(value) else "expected 'auto', 'cpu', 'cuda' or 'cuda:N'"
    raise AssertionError(f"unknown schema kind {kind!r}")


def _source_of(key: str, overridden: Set[str], path: str) -> str:
    parts = key.split(".")
    if any(".".join(parts[:i]) in overridden for i in range(1, len(parts) + 1)):
        return "the command line"
    return _line_of(path, parts[-1])


def check_train_values(cfg: DictConfig, schema: Mapping, path: str, overridden: Iterable[str] = ()) -> None:
    """Check every ``train.*`` value (and ``optimizer.lr`` / ``weight_decay``) against ``schema``; an error names
    the command line for keys in ``overridden``, else ``path`` and the line that sets it."""
    overridden = set(overridden)

    def fail(key: str, value: Any, expected: str) -> None:
        raise ConfigValueError(f"{key}={value!r} from {_source_of(key, overridden, path)} is not valid: {expected}.")

    def check_lazy(key: str, value: Any, kind: str) -> None:
        if kind == "opt_lazy_call" and value is None:
            return
        if kind.endswith("lazy_call"):
            items, shown = [(key, value)], key
        elif not isinstance(value, ListConfig):
            fail(
                key,
                OmegaConf.to_container(value) if isinstance(value, DictConfig) else value,
                "expected a list of LazyCall nodes, [LazyCall(f)(...), ...]",
            )
            return
        else:
            items, shown = [(f"{key}.{i}", v) for i, v in enumerate(value)], None
        for where, node in items:
            problem = _lazy_call_problem(node)
            if problem:
                what = f"{where} ({_target_name(node)})" if isinstance(node, DictConfig) else f"{where}={node!r}"
                on_command_line = any(o == where or o.startswith(where + ".") for o in overridden)
                source = "the command line" if on_command_line else _source_of(shown or key, overridden, path)
                raise ConfigValueError(f"{what} from {source} is not valid: {problem}.")

    def walk(node, ref, prefix):
        for k, spec in ref.items():
            key = f"{prefix}{k}"
            value = node.get(k) if isinstance(node, DictConfig) else None
            if isinstance(spec, Mapping):
                if not isinstance(value, DictConfig):
                    fail(key, value, f"expected a section with keys {', '.join(spec)}")
                walk(value, spec, f"{key}.")
                continue
            if spec[0].endswith(("lazy_call", "lazy_calls")):
                check_lazy(key, node.get(k) if isinstance(node, DictConfig) else None, spec[0])
                continue
            if isinstance(value, (DictConfig, ListConfig)):
                value = OmegaConf.to_container(value)
            expected = _check_leaf(value, *spec)
            if expected:
                fail(key, value, expected)

    train = cfg.get("train")
    if train is not None:
        walk(train, schema, "train.")
    optimizer = cfg.get("optimizer")
    if isinstance(optimizer, DictConfig):
        for k, low, strict in (("lr", 0, True), ("weight_decay", 0, False)):
            if k not in optimizer:
                continue
            v = optimizer[k]
            if not _is_number(v) or v != v or (v <= low if strict else v < low):
                fail(f"optimizer.{k}", v, f"expected a number {'>' if strict else '>='} {low}")


def _override_keys(overrides: Sequence[str]) -> Set[str]:
    return {item.split("=", 1)[0].strip() for item in overrides if "=" in item}


def load_config(path: str, overrides: Optional[Sequence[str]] = None) -> DictConfig:
    """Load a LazyConfig python/yaml file, check its keys and apply ``key=value`` overrides strictly; missing
    ``train.*`` keys are filled from the engine's defaults so that small configs stay small."""
    cfg = _load_file(path)
    check_train_keys(cfg, TRAIN_DEFAULTS, path)
    merged = OmegaConf.merge(OmegaConf.create(TRAIN_DEFAULTS), cfg.get("train", OmegaConf.create({})))
    cfg.train = merged
    if overrides:
        apply_overrides_strict(cfg, overrides)
    check_train_values(cfg, TRAIN_SCHEMA, path, _override_keys(overrides or ()))
    return cfg
