"""``--resume`` that survives what a killed or mistyped run leaves behind.

* The checkpoint to continue from is the one ``last_checkpoint`` names; when that file is missing,
  truncated or otherwise unreadable, the newest intact ``model_*.pth`` of the folder, with a warning
  naming the bad file (:func:`find_resume_checkpoint`). Files that exist but are all unreadable are an
  error, never a silent fresh start.
* A checkpoint of another model (changed config) is an error naming the first mismatching weights,
  instead of detectron2's partial load.
* The optimizer and LR schedule come back from the checkpoint (detectron2's contract): config values
  that differ from the saved ones (``optimizer.lr``, ``weight_decay``, ``betas``, ``eps``) are NOT
  applied, and a warning lists them (:func:`unapplied_optimizer_settings`). ``train.max_iter`` and the
  ``lr_multiplier`` shape are applied (they are not saved state).
* ``--resume`` with no checkpoint in the folder warns that a new run starts, and whether the folder
  existed at all (a mistyped ``train.output_dir``).
* metrics.json: a last line cut by a kill and the rows of iterations that will be run again are dropped
  before training continues (:func:`prepare_metrics_json`); a fresh run moves an earlier run's rows to
  ``metrics.previous.json`` (then ``metrics.previous.1.json``, ``.2.json``, ...: never overwritten) instead
  of appending to them.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import pickle
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from ..formats.atomic import atomic_write_bytes

__all__ = [
    "checkpoint_candidates",
    "read_problem",
    "find_resume_checkpoint",
    "check_checkpoint_matches",
    "optimizer_settings",
    "unapplied_optimizer_settings",
    "prepare_metrics_json",
    "previous_metrics_path",
    "CorruptCheckpointsError",
]

logger = logging.getLogger("vmae_det")


class CorruptCheckpointsError(ValueError):
    """Every checkpoint of the folder is unreadable."""


def checkpoint_candidates(output_dir: str) -> List[str]:
    """Checkpoints to resume from, best first: the file ``last_checkpoint`` names, then the other
    ``model_*.pth`` newest first (``model_best.pth``, an earlier iteration, last)."""
    ordered: List[str] = []
    tag = os.path.join(output_dir, "last_checkpoint")
    if os.path.isfile(tag):
        try:
            with open(tag) as f:
                name = f.read().strip()
        except (OSError, UnicodeDecodeError):
            name = ""
        if name:
            ordered.append(os.path.join(output_dir, name))
    files = [p for p in glob.glob(os.path.join(output_dir, "model_*.pth")) if os.path.isfile(p)]
    best = [p for p in files if os.path.basename(p) == "model_best.pth"]
    rest = sorted((p for p in files if p not in best), key=lambda p: (os.path.getmtime(p), p), reverse=True)
    for p in rest + best:
        if all(os.path.abspath(p) != os.path.abspath(q) for q in ordered):
            ordered.append(p)
    return ordered


def _short(e: BaseException) -> str:
    if isinstance(e, pickle.UnpicklingError):
        return f"corrupt or not a PyTorch checkpoint: cannot unpickle it ({type(e).__name__})"
    if isinstance(e, EOFError):
        return "truncated: the file ends early (EOFError)"
    text = str(e).strip().splitlines()
    first = text[0].split(". ")[0][:200] if text else ""
    return f"corrupt: {type(e).__name__}: {first}".rstrip(": ")


def read_problem(path: str) -> Tuple[Optional[str], Optional[dict]]:
    """``(None, checkpoint)`` when ``path`` reads as a training checkpoint (with ``model``), else
    ``(what is wrong, None)``. Reads as detectron2's checkpointer does (``torch.load``), weights only (a
    pickle that names code to run is refused, whatever PyTorch's default), memory-mapped so that tensor
    data is not read twice."""
    if not os.path.isfile(path):
        return "file not found", None
    if os.path.getsize(path) == 0:
        return "empty file", None
    try:
        try:
            ckpt = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
        except RuntimeError as e:
            if "mmap" not in str(e):
                raise
            ckpt = torch.load(path, map_location="cpu", weights_only=True)  # legacy (non-zip) format
    except Exception as e:  # truncated zip, garbage, unpickling errors: all mean "cannot use it"
        return _short(e), None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), dict):
        return "not a training checkpoint (no 'model' weights)", None
    return None, ckpt


def find_resume_checkpoint(output_dir: str) -> Tuple[Optional[str], Optional[dict]]:
    """The checkpoint ``--resume`` continues from, and its content (memory-mapped); ``(None, None)`` when
    the folder has no checkpoint at all. Skipped files are logged as warnings, naming each; when files
    exist but none is readable, :class:`CorruptCheckpointsError`."""
    candidates = checkpoint_candidates(output_dir)
    bad: List[str] = []
    for i, path in enumerate(candidates):
        problem, ckpt = read_problem(path)
        if problem is None:
            if bad:
                logger.warning(f"--resume: continuing from {path}, the newest intact checkpoint in {output_dir}")
            return path, ckpt
        what = (
            "named by last_checkpoint "
            if i == 0 and os.path.isfile(os.path.join(output_dir, "last_checkpoint"))
            else ""
        )
        logger.warning(f"--resume: skipping checkpoint {path} {what}({problem})")
        bad.append(f"{path} ({problem})")
    if any(os.path.exists(p) for p in candidates):
        raise CorruptCheckpointsError(
            f"--resume: no intact checkpoint in {output_dir}: "
            + "; ".join(bad)
            + ". Delete the broken files to start a new run there, or resume from a copy."
        )
    return None, None


def check_checkpoint_matches(model: torch.nn.Module, state: Dict[str, torch.Tensor], path: str) -> None:
    """Refuse a checkpoint whose weights do not fit ``model`` (detectron2 would skip them with a warning
    and train on from random weights)."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k} {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state and hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if not (missing or unexpected or shapes):
        return
    parts = []
    for name, items in (("different shapes", shapes), ("missing", missing), ("unexpected", unexpected)):
        if items:
            more = f", ... (+{len(items) - 3})" if len(items) > 3 else ""
            parts.append(f"{name} ({len(items)}): {', '.join(items[:3])}{more}")
    raise ValueError(
        f"--resume: {path} is not a checkpoint of the model this config builds ({'; '.join(parts)}). "
        "Was the model config changed (e.g. model.num_classes)? Resume with the config it was trained "
        "with, or start a new run in another train.output_dir."
    )


def optimizer_settings(optimizer: torch.optim.Optimizer, scheduler=None) -> List[dict]:
    """Per parameter group: the base lr (the LR schedule's, else the group's) and the hyper-parameters."""
    base = list(getattr(scheduler, "base_lrs", []) or [])
    out = []
    for i, g in enumerate(optimizer.param_groups):
        s = {"lr": base[i] if i < len(base) else g.get("initial_lr", g.get("lr"))}
        for k in ("weight_decay", "betas", "eps", "momentum"):
            if k in g:
                s[k] = tuple(g[k]) if isinstance(g[k], (list, tuple)) else g[k]
        out.append(s)
    return out


def _differs(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return abs(a - b) > 1e-9 * max(abs(a), abs(b), 1e-30)
    return a != b


def unapplied_optimizer_settings(config: Sequence[dict], restored: Sequence[dict]) -> List[str]:
    """What the config asked for but the checkpoint's optimizer/schedule state replaced, as
    ``"base lr 0.01 (config) vs 0.05 (checkpoint), 12 of 12 param groups"`` lines."""
    lines = []
    for key in ("lr", "weight_decay", "betas", "eps", "momentum"):
        diffs = [
            (c.get(key), r.get(key))
            for c, r in zip(config, restored)
            if key in c and key in r and _differs(c[key], r[key])
        ]
        if diffs:
            name = "base lr" if key == "lr" else key
            (c0, r0) = diffs[0]
            if key == "lr":  # the peak lr (optimizer.lr; layer decay scales the other groups down)
                name = "base lr (largest of the param groups)" if len(config) > 1 else name
                c0, r0 = max(c["lr"] for c in config), max(r["lr"] for r in restored)
            lines.append(
                f"{name} {c0:.6g} (config) vs {r0:.6g} (checkpoint)"
                if isinstance(c0, float)
                else f"{name} {c0} (config) vs {r0} (checkpoint)"
            )
            lines[-1] += f" in {len(diffs)} of {len(config)} param groups" if len(config) > 1 else ""
    return lines


def _read_rows(path: str) -> Tuple[List[str], int]:
    """The lines of ``path`` that parse as JSON objects, and how many did not (a cut last line)."""
    with open(path, "rb") as f:
        raw = f.read()
    good, bad = [], 0
    for line in raw.decode("utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if isinstance(row, dict):
            good.append(line)
        else:
            bad += 1
    return good, bad


def previous_metrics_path(output_dir: str) -> str:
    """Where a fresh run keeps the earlier run's ``metrics.json``: ``metrics.previous.json``, or when that
    exists ``metrics.previous.N.json`` with N one above the highest there (1, 2, ...: the highest N is the
    latest earlier run). Never a file that exists: earlier runs' metrics rotate, none is overwritten."""
    first = os.path.join(output_dir, "metrics.previous.json")
    if not os.path.exists(first):
        return first
    numbers = [0]
    for p in glob.glob(os.path.join(glob.escape(output_dir), "metrics.previous.*.json")):
        middle = os.path.basename(p)[len("metrics.previous.") : -len(".json")]
        if middle.isdigit():
            numbers.append(int(middle))
    return os.path.join(output_dir, f"metrics.previous.{max(numbers) + 1}.json")


def prepare_metrics_json(output_dir: str, start_iter: int) -> None:
    """Make ``<output_dir>/metrics.json`` fit a run that starts at ``start_iter``.

    Lines that do not parse (the last line of a killed run) and rows of iterations ``>= start_iter``
    (run again after resuming) are dropped, in place: detectron2's JSONWriter may already hold the file
    open for appending. A fresh run (``start_iter == 0``) first keeps an earlier run's rows in a file of its
    own (:func:`previous_metrics_path`, written atomically): every earlier run's metrics are kept.
    """
    path = os.path.join(output_dir, "metrics.json")
    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        return
    lines, bad = _read_rows(path)
    if start_iter == 0 and lines:
        keep_copy = previous_metrics_path(output_dir)
        with open(path, "rb") as f:
            atomic_write_bytes(keep_copy, f.read())
        logger.warning(f"{path} held {len(lines)} rows of an earlier run: moved to {keep_copy}")
    kept = [line for line in lines if json.loads(line).get("iteration", -1) < start_iter]
    dropped = len(lines) - len(kept)
    if bad:
        logger.warning(f"{path}: dropped {bad} unreadable line(s) (the last line of a killed run)")
    if dropped and start_iter > 0:
        logger.info(f"{path}: dropped {dropped} row(s) of iterations >= {start_iter}, which run again now")
    if bad or dropped:
        data = "".join(line + "\n" for line in kept).encode()
        with open(path, "r+b") as f:
            f.write(data)
            f.truncate(len(data))
            f.flush()
            os.fsync(f.fileno())
