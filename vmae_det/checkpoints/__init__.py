"""Checkpoints: where weights come from, reading and checking files, their layouts, loading them into a model.

hub.py               hf://ORG/NAME[@REV][/FILE] -> a file in the hub cache (resolved once, at the entry)
files.py             read_checkpoint (weights only, checksums, NaN/inf), locate_checkpoint, clip_fps_of, ...
layouts.py           ours / MCG-NJU / HF names <-> this project's names (detect_format, export_state_dict)
hf_export.py         our weights -> a transformers VideoMAE folder (convert_checkpoint --to hf)
fit.py               does a state dict fit a model: the one check and its message (check_state_fits)
videomae_weights.py  load_videomae_weights: VideoMAE weights of any layout into a model
load_policy.py       load_init_weights (start of training / full model), build_trained_model(cfg, checkpoint)
checkpointer.py      detectron2's checkpointer with atomic saves (training output)
"""

from .files import (
    CheckpointError,
    class_names_of,
    clip_fps_of,
    locate_checkpoint,
    read_checkpoint,
    refuse_checkpoint_folder,
)
from .fit import check_state_fits
from .hub import WeightsNotFoundError, is_hub_id, resolve_weights
from .layouts import FORMATS, detect_format, export_state_dict
from .load_policy import build_trained_model, load_init_weights
from .videomae_weights import LoadReport, load_videomae_weights

__all__ = [
    "FORMATS",
    "CheckpointError",
    "LoadReport",
    "WeightsNotFoundError",
    "build_trained_model",
    "check_state_fits",
    "class_names_of",
    "clip_fps_of",
    "detect_format",
    "export_state_dict",
    "is_hub_id",
    "load_init_weights",
    "load_videomae_weights",
    "locate_checkpoint",
    "read_checkpoint",
    "refuse_checkpoint_folder",
    "resolve_weights",
]
