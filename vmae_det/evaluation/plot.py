"""Per-class AP bar chart (PNG), drawn with matplotlib's Agg canvas (no pyplot global state)."""

from __future__ import annotations

import math
from typing import Mapping

from ..formats.atomic import atomic_save

__all__ = ["plot_per_class_ap"]


def plot_per_class_ap(per_class_ap: Mapping[str, float], path: str, *, title: str = "AVA per-class AP") -> str:
    """Draw a horizontal bar per class (AP in percent, classes without ground truth shown as "n/a") to ``path``.

    Args:
        per_class_ap: ``{class name: AP as a fraction or NaN}``, in the order to draw.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # lazy: the evaluator CLI may not plot
    from matplotlib.figure import Figure

    names = list(per_class_ap)
    values = [float(per_class_ap[n]) for n in names]
    fig = Figure(figsize=(8, max(2.0, 0.22 * len(names) + 1.0)))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ys = list(range(len(names)))
    ax.barh(ys, [0.0 if math.isnan(v) else 100 * v for v in values], color="tab:blue")
    for y, v in zip(ys, values):
        ax.text(
            0.5 if math.isnan(v) else 100 * v + 0.5,
            y,
            "n/a" if math.isnan(v) else f"{100 * v:.1f}",
            va="center",
            fontsize=6,
        )
    ax.set_yticks(ys)
    ax.set_yticklabels(names, fontsize=6)
    ax.set_ylim(len(names) - 0.5, -0.5)  # first class on top, no empty margins
    ax.set_xlim(0, 105)
    ax.set_xlabel("AP (%)")
    valid = [v for v in values if not math.isnan(v)]
    mean = 100 * sum(valid) / len(valid) if valid else float("nan")
    ax.set_title(f"{title} (mAP {mean:.2f})")
    fig.tight_layout()
    atomic_save(path, lambda tmp: fig.savefig(tmp, dpi=120))  # creates the folder
    return path
