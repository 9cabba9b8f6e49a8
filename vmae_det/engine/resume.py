"""``--resume`` that survives what a killed or mistyped run leaves behind.

It continues from the newest intact checkpoint (never a silent fresh start), refuses a checkpoint of another
model, reports optimizer settings the checkpoint overrides (detectron2 restores them), and makes
``metrics.json`` fit the restarted run. User-facing behaviour: ``docs/usage.md`` and ``docs/bad_input.md``.
"""

from __future__ import annotations

import glob
import json
import logging
import os
from typing import List, Optional, Sequence, Tuple

import torch

from ..checkpoints.files import read_training_checkpoint
from ..formats.atomic import atomic_write_bytes

__all__ = [
    "checkpoint_candidates",
    "find_resume_checkpoint",
    "optimizer_settings",
    "unapplied_optimizer_settings",
    "prepare_metrics_json",
    "read_metrics_json",
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


def find_resume_checkpoint(output_dir: str) -> Tuple[Optional[str], Optional[dict]]:
    """The checkpoint ``--resume`` continues from, and its content; ``(None, None)`` when there is none.
    Unreadable files are skipped with a warning; :class:`CorruptCheckpointsError` when all are."""
    candidates = checkpoint_candidates(output_dir)
    bad: List[str] = []
    for i, path in enumerate(candidates):
        problem, ckpt = read_training_checkpoint(path)
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
    """What the config asked for but the checkpoint's optimizer/schedule state replaced, one line per setting."""
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


def read_metrics_json(path: str) -> Tuple[List[str], List[dict], int]:
    """The lines of detectron2's metrics.json that parse as JSON objects, those objects, and how many lines
    did not (the last line of a killed run)."""
    with open(path, "rb") as f:
        raw = f.read()
    lines, rows, bad = [], [], 0
    for line in raw.decode("utf-8", errors="replace").splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if isinstance(row, dict):
            lines.append(line)
            rows.append(row)
        else:
            bad += 1
    return lines, rows, bad


def previous_metrics_path(output_dir: str) -> str:
    """Where a fresh run keeps the earlier run's ``metrics.json``: ``metrics.previous.json``, else
    ``metrics.previous.N.json`` with the next free N, so no earlier run's metrics are overwritten."""
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

    Unparsable lines and rows of iterations ``>= start_iter`` are dropped and the file is replaced atomically; a
    fresh run first moves the earlier run's rows to :func:`previous_metrics_path`.
    """
    path = os.path.join(output_dir, "metrics.json")
    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        return
    lines, rows, bad = read_metrics_json(path)
    if start_iter == 0 and lines:
        keep_copy = previous_metrics_path(output_dir)
        with open(path, "rb") as f:
            atomic_write_bytes(keep_copy, f.read())
        logger.warning(f"{path} held {len(lines)} rows of an earlier run: moved to {keep_copy}")
    kept = [line for line, row in zip(lines, rows) if row.get("iteration", -1) < start_iter]
    dropped = len(lines) - len(kept)
    if bad:
        logger.warning(f"{path}: dropped {bad} unreadable line(s) (the last line of a killed run)")
    if dropped and start_iter > 0:
        logger.info(f"{path}: dropped {dropped} row(s) of iterations >= {start_iter}, which run again now")
    if bad or dropped:
        atomic_write_bytes(path, "".join(line + "\n" for line in kept).encode())
