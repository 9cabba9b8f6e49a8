"""The ``train`` section's defaults and value schema, shared by every config.

Kept apart from the engine so that loading a config does not import it. ``hooks`` and ``eval_only`` hold
LazyCall nodes, so what depends on the model lives in the config:

* ``hooks``: nodes building detectron2 ``HookBase`` objects, registered after the periodic checkpointer;
* ``eval_only``: ``f(cfg, model, checkpoint) -> dict`` run by ``--eval-only`` when there is no evaluator.
"""

TRAIN_DEFAULTS = {
    "output_dir": "./output",
    "init_checkpoint": "",
    "max_iter": 1000,
    "device": "auto",  # "auto" = cuda when available, else cpu
    "seed": -1,  # < 0: random seed
    "amp": {"enabled": False, "dtype": "bfloat16"},  # float16 uses a GradScaler (CUDA only)
    "clip_grad": 0.0,  # max grad norm; 0 disables
    "grad_accum_steps": 1,  # micro-batches per optimizer step (effective batch = total_batch_size x this);
    # max_iter, schedule and checkpoint periods count optimizer steps
    "ddp": {"broadcast_buffers": False, "find_unused_parameters": False, "fp16_compression": False},
    "checkpointer": {"period": 500, "max_to_keep": 3},
    "eval_period": 0,  # 0: evaluate only at the end
    "best_metric": "",  # e.g. "ava/mAP": keep model_best.pth by that metric
    "log_period": 20,
    "vis_period": 0,  # MAE reconstruction pictures; 0 = at checkpoints
    "cudnn_benchmark": False,
    "float32_matmul_precision": "high",
    "hooks": [],
    "eval_only": None,
}

#: What each ``train.*`` value may be, checked by :func:`vmae_det.config.load_config`. A leaf is ``(kind, rule)``:
#: kind ``int`` / ``number`` / ``bool`` / ``str`` / ``choice`` (``opt_`` also allows ``None``), rule the minimum or
#: the allowed values; ``lazy_calls`` / ``lazy_call``: LazyCall nodes whose targets take the arguments set.
TRAIN_SCHEMA = {
    "output_dir": ("path", None),
    "init_checkpoint": ("opt_str", None),
    "max_iter": ("int", 1),
    "device": ("device", None),
    "seed": ("int", None),
    "amp": {"enabled": ("bool", None), "dtype": ("choice", ("bfloat16", "float16"))},
    "clip_grad": ("number", 0),
    "grad_accum_steps": ("int", 1),
    "ddp": {
        "broadcast_buffers": ("bool", None),
        "find_unused_parameters": ("bool", None),
        "fp16_compression": ("bool", None),
    },
    "checkpointer": {"period": ("int", 1), "max_to_keep": ("opt_int", 1)},
    "eval_period": ("int", 0),
    "best_metric": ("opt_str", None),
    "log_period": ("int", 1),
    "vis_period": ("int", 0),
    "cudnn_benchmark": ("bool", None),
    "float32_matmul_precision": ("opt_choice", ("", "highest", "high", "medium")),
    "hooks": ("lazy_calls", None),
    "eval_only": ("opt_lazy_call", None),
}
