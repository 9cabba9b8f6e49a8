"""The shared training engine (pretraining and detection)."""

from .hooks import LossCurveHook, plot_metrics
from .optim import build_adamw, cosine_with_warmup, get_param_groups, scaled_lr
from .train_loop import (
    build_model,
    default_argument_parser,
    do_test,
    do_train,
    launch_from_args,
    main,
    setup,
)
from .trainer import Trainer

__all__ = [
    "LossCurveHook",
    "plot_metrics",
    "build_adamw",
    "cosine_with_warmup",
    "get_param_groups",
    "scaled_lr",
    "build_model",
    "default_argument_parser",
    "do_test",
    "do_train",
    "launch_from_args",
    "main",
    "setup",
    "Trainer",
]
