"""AVA frame-mAP (official-exact, vectorised), detectron2 evaluator and CLI. See docs/evaluation.md.

The AVA file readers and writers are :mod:`vmae_det.formats.ava`."""

from .ava_io import DEFAULT_LABEL_MAP, write_metrics
from .ava_map import PROTOCOLS, AVAResult, evaluate, make_image_key
from .plot import plot_per_class_ap

__all__ = [
    "DEFAULT_LABEL_MAP",
    "write_metrics",
    "PROTOCOLS",
    "AVAResult",
    "evaluate",
    "make_image_key",
    "plot_per_class_ap",
    "AVAEvaluator",
    "ACTEvaluator",
]


def __getattr__(name):
    # Lazy: the evaluator imports detectron2, which the CLI and the core do not need.
    if name == "AVAEvaluator":
        from .ava_evaluator import AVAEvaluator

        return AVAEvaluator
    if name == "ACTEvaluator":
        from .act_evaluator import ACTEvaluator

        return ACTEvaluator
    raise AttributeError(name)
