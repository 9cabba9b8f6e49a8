"""Default ``train`` section shared by every config (pretraining and detection), and its value schema.

Read by :func:`vmae_det.config.load_config` (which fills missing keys and checks values) and by the engine
(``vmae_det.engine.defaults`` re-exports both names); it lives next to ``config.py`` so that loading a
config does not import the engine.

A config's ``train`` may set any subset of these keys; any other key is an error.

Two keys hold LazyCall nodes rather than plain values, so that what depends on the model lives in the
config and the engine has no model switches:

* ``hooks``: a list of LazyCall nodes, each building a detectron2 ``HookBase`` (or a list of them, or
  None). They are built after the trainer and registered after the engine's periodic checkpointer, before
  its evaluation and metric-writing hooks; a hook reaches the model, the data loader and the storage
  through ``self.trainer``. Values may interpolate other keys, e.g. ``period="${train.log_period}"``.
  The pretraining configs declare the MAE reconstruction pictures and the skipped-video counter here.
* ``eval_only``: null, or a LazyCall node building a callable ``f(cfg, model, checkpoint) -> dict`` that
  ``--eval-only`` runs when the config has no ``dataloader.evaluator`` (pretraining configs: the masked
  reconstruction loss, :class:`vmae_det.engine.mae_eval.MAELossEvaluation`).
"""

TRAIN_DEFAULTS = {
    "output_dir": "./output",
    "init_checkpoint": "",  # path to weights loaded before training (any VideoMAE format)
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
    "hooks": [],  # LazyCall hook factories (see above)
    "eval_only": None,  # LazyCall of f(cfg, model, checkpoint) for --eval-only without an evaluator
}

#: What each ``train.*`` value may be, checked by :func:`vmae_det.config.load_config` before anything is
#: built. A leaf is ``(kind, rule)``: kind ``int`` / ``number`` (int or float, never bool) / ``bool`` /
#: ``str`` / ``choice``; rule is the minimum for numbers, the allowed values for ``choice``. ``opt_``
#: kinds also allow ``None`` (null). ``lazy_calls``: a list of LazyCall nodes; ``lazy_call``: one node (each
#: node's target must exist and take every argument the node sets).
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
