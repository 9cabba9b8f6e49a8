"""Hooks that detectron2 does not ship: a loss-curve picture and a progress bar for short runs."""
from __future__ import annotations

import json
import logging
import os
from typing import Callable, Iterable, List, Optional

from detectron2.engine import HookBase
from detectron2.utils import comm

__all__ = ["LossCurveHook", "SkipCounterHook", "plot_metrics"]

logger = logging.getLogger(__name__)


def _read_metrics(path: str) -> List[dict]:
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                rows.append(json.loads(line))
    return rows


def plot_metrics(metrics_json: str, out_png: str, keys: Optional[Iterable[str]] = None) -> Optional[str]:
    """Plot losses (and any ``*/mAP``-style eval metric) from detectron2's metrics.json to a PNG.

    Returns the PNG path, or None when there is nothing to plot yet.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not os.path.exists(metrics_json):
        return None
    rows = _read_metrics(metrics_json)
    loss_keys = sorted(keys or {k for r in rows for k in r if "loss" in k})
    eval_keys = sorted({k for r in rows for k in r if k.endswith("mAP")})
    if not loss_keys:
        return None
    ncols = 2 if eval_keys else 1
    fig, axes = plt.subplots(1, ncols, figsize=(6 * ncols, 4), squeeze=False)
    ax = axes[0][0]
    for k in loss_keys:
        pts = [(r["iteration"], r[k]) for r in rows if k in r]
        if pts:
            ax.plot(*zip(*pts), label=k)
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.set_title("training loss")
    ax.grid(alpha=0.3)
    ax.legend()
    if eval_keys:
        ax = axes[0][1]
        for k in eval_keys:
            pts = [(r["iteration"], r[k]) for r in rows if k in r]
            ax.plot(*zip(*pts), marker="o", label=k)
        ax.set_xlabel("iteration")
        ax.set_title("evaluation")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)
    return out_png


class LossCurveHook(HookBase):
    """Redraw ``loss_curve.png`` from metrics.json every ``period`` iterations and at the end.

    Must run after the PeriodicWriter so metrics.json holds the latest rows.
    """

    def __init__(self, output_dir: str, period: int):
        self.output_dir = output_dir
        self.period = period

    def _draw(self):
        if not comm.is_main_process():
            return
        out = plot_metrics(
            os.path.join(self.output_dir, "metrics.json"), os.path.join(self.output_dir, "loss_curve.png")
        )
        if out:
            logger.info(f"Loss curve written to {out}")

    def after_step(self):
        next_iter = self.trainer.iter + 1
        if self.period > 0 and next_iter % self.period == 0 and next_iter != self.trainer.max_iter:
            self._draw()

    def after_train(self):
        self._draw()


class SkipCounterHook(HookBase):
    """Report a count of skipped samples (e.g. undecodable videos): a warning whenever it grows,
    the running total as the ``skipped_<what>`` metric, and a summary at the end of training."""

    def __init__(self, what: str, count: Callable[[], int], period: int):
        self.what, self.count, self.period = what, count, period
        self.last = 0

    def _report(self):
        n = self.count()
        if n != self.last:
            logger.warning(f"{n} {self.what} skipped so far (unreadable or corrupt; see earlier warnings)")
            self.last = n
        self.trainer.storage.put_scalar(f"skipped_{self.what}", n, smoothing_hint=False)

    def after_step(self):
        if (self.trainer.iter + 1) % self.period == 0:
            self._report()

    def after_train(self):
        n = self.count()
        logger.info(f"Training done: {n} {self.what} skipped in total")
