"""Hooks that detectron2 does not ship: a loss-curve picture, a skip counter, and a best-checkpoint
hook whose record survives ``--resume``."""

from __future__ import annotations

import logging
import math
import os
from typing import Callable, Iterable, Optional, Union

from detectron2.engine import HookBase, hooks
from detectron2.utils import comm
from detectron2.utils.events import EventWriter

from ..formats.atomic import atomic_save
from .resume import read_metrics_json

__all__ = ["GuardedWriters", "LossCurveHook", "SkipCounterHook", "ResumableBestCheckpointer", "plot_metrics"]

logger = logging.getLogger(__name__)


def plot_metrics(metrics_json: str, out_png: str, keys: Optional[Iterable[str]] = None) -> Optional[str]:
    """Plot losses (and ``*/mAP``-style metrics) from detectron2's metrics.json to a PNG; ``None`` when there is
    nothing to plot yet."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not os.path.exists(metrics_json):
        return None
    _, rows, bad = read_metrics_json(metrics_json)
    if bad:
        logger.warning(f"{metrics_json}: skipped {bad} unreadable line(s) (cut by a killed run?)")
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
    if all(r[k] > 0 for r in rows for k in loss_keys if k in r):
        ax.set_yscale("log")  # losses fall over decades (MAE: ~1 -> ~0.01); a linear axis flattens the tail
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
    atomic_save(out_png, lambda tmp: fig.savefig(tmp, dpi=100))
    plt.close(fig)
    return out_png


class GuardedWriters(EventWriter):
    """Event writers written together, whose first ``OSError`` (a full or read-only disk) ends training with one
    error naming the output folder; after it none of them writes or closes again (detectron2's console printer
    asked twice for one iteration divides by zero).

    Args:
        writers: the wrapped ``EventWriter`` s, or a function making them at the first write (so
            ``metrics.json`` is opened only after :func:`~vmae_det.engine.resume.prepare_metrics_json`).
        output_dir: named in the error.
    """

    def __init__(self, writers: Union[Iterable[EventWriter], Callable[[], Iterable[EventWriter]]], output_dir: str):
        self._make = writers if callable(writers) else None
        self.writers = None if callable(writers) else list(writers)
        self.output_dir, self.failed = output_dir, False

    def _error(self, what: str, e: OSError) -> OSError:
        self.failed = True
        return OSError(f"train.output_dir {self.output_dir}: cannot write the {what} output: {e.strerror or e}")

    def _each(self, method: str) -> None:
        if self.failed:
            return
        if self.writers is None:
            if method == "close":
                return  # nothing was ever written
            try:
                self.writers = list(self._make())
            except OSError as e:
                raise self._error("event writers'", e) from e
        for writer in self.writers:
            try:
                getattr(writer, method)()
            except OSError as e:
                raise self._error(type(writer).__name__, e) from e

    def write(self) -> None:
        self._each("write")

    def close(self) -> None:
        self._each("close")


class LossCurveHook(HookBase):
    """Redraw ``loss_curve.png`` every ``period`` iterations and at the end; register after the PeriodicWriter."""

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
    """Report a count of skipped samples: a warning whenever it grows, the ``skipped_<what>`` metric, and a
    summary at the end of training.

    Args:
        what: the samples, e.g. ``"videos"``.
        count: a function returning the count so far, or its dotted name (so the config stays plain data).
        period: iterations between reports.
    """

    def __init__(self, what: str, count: Union[Callable[[], int], str], period: int):
        if isinstance(count, str):
            from detectron2.utils.registry import locate

            name = count
            try:
                count = locate(name)
            except Exception as e:
                raise ValueError(f"SkipCounterHook(count={name!r}): cannot import {name}: {e}") from None
            if not callable(count):
                raise ValueError(f"SkipCounterHook(count={name!r}): {name} is not a function")
        if isinstance(period, bool) or not isinstance(period, int) or period < 1:
            raise ValueError(f"SkipCounterHook(period={period!r}): expected an integer >= 1")
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


class ResumableBestCheckpointer(hooks.BestCheckpointer):
    """detectron2's ``BestCheckpointer`` whose record is saved in every checkpoint and restored by ``--resume``:
    detectron2's keeps it in memory only, so after a resume any first evaluation would replace ``model_best.pth``.
    """

    def __init__(
        self, eval_period: int, checkpointer, val_metric: str, mode: str = "max", file_prefix: str = "model_best"
    ):
        super().__init__(eval_period, checkpointer, val_metric, mode=mode, file_prefix=file_prefix)
        self._mode = mode

    def state_dict(self):
        if self.best_metric is None:
            return {}
        return {
            "metric": self._val_metric,
            "mode": self._mode,
            "best_metric": float(self.best_metric),
            "best_iter": int(self.best_iter),
        }

    def load_state_dict(self, state_dict):
        if state_dict.get("metric") != self._val_metric or state_dict.get("mode") != self._mode:
            logger.warning(
                f"The checkpoint's best-checkpoint record is for {state_dict.get('metric')!r} "
                f"({state_dict.get('mode')}), not train.best_metric={self._val_metric!r} ({self._mode}): "
                "starting a new record; the next evaluation replaces model_best.pth"
            )
            return
        self.best_metric, self.best_iter = state_dict["best_metric"], state_dict["best_iter"]
        logger.info(
            f"Best-checkpoint record restored: {self._val_metric}={self.best_metric:.5f} @ iteration {self.best_iter}"
        )

    def _best_checking(self):
        metric_tuple = self.trainer.storage.latest().get(self._val_metric)
        if metric_tuple is None:
            logger.warning(
                f"train.best_metric {self._val_metric!r} is not among the evaluation results: "
                "model_best.pth is not written"
            )
            return
        value, iteration = metric_tuple
        if math.isnan(value) or math.isinf(value):
            logger.warning(f"{self._val_metric} is {value} at iteration {iteration}: not a best checkpoint")
            return
        if self.best_metric is not None and not self._compare(value, self.best_metric):
            logger.info(
                f"Not saving {self._file_prefix}: {self._val_metric}={value:0.5f} is not better "
                f"than {self.best_metric:0.5f} @ iteration {self.best_iter}"
            )
            return
        previous = self.best_metric
        self.best_metric, self.best_iter = value, iteration
        self._checkpointer.save(self._file_prefix, iteration=iteration)
        was = f" (previous best {previous:0.5f})" if previous is not None else ""
        logger.info(f"Saved {self._file_prefix}.pth: {self._val_metric}={value:0.5f} @ iteration {iteration}{was}")
