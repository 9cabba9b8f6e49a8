"""Reading checkpoint files (weights only), their checks, and their non-tensor entries.

Paths here are local: ``hf://`` ids are resolved once, at the entry (:func:`locate_checkpoint`).
"""

from __future__ import annotations

import argparse
import math
import os
import pickle
import re
import zipfile
import zlib
from typing import Dict, List, Mapping, Optional, Tuple, Union

import torch

from ..formats.vmad_layout import VMAD_FPS
from .hub import resolve_weights

__all__ = [
    "MAX_ABS_WEIGHT",
    "CheckpointError",
    "check_finite_weights",
    "class_names_of",
    "clip_fps_of",
    "locate_checkpoint",
    "read_checkpoint",
    "read_training_checkpoint",
    "refuse_checkpoint_folder",
    "some_names",
    "verify_file_checksums",
]

StateDict = Dict[str, torch.Tensor]
#: Largest magnitude accepted in floating-point weights: trained ViT weights stay below 100, so beyond this
#: the file is corrupt (a flipped exponent bit) or the run diverged.
MAX_ABS_WEIGHT = 1e6


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file. A ``ValueError``, so tools end with
    ``error: <message>``."""


def some_names(keys: List[str], n: int = 10) -> str:
    """The first ``n`` of ``keys`` and how many more, for messages."""
    return ", ".join(keys[:n]) + (f", ... (+{len(keys) - n} more)" if len(keys) > n else "")


def verify_file_checksums(path: Union[str, os.PathLike]) -> None:
    """Check the CRC-32 of every record of a zip-format ``torch.save`` file.

    ``torch.load`` does not check them, so flipped bits in tensor data would load as garbage weights. Records
    without a checksum and non-zip files are not checked.
    """
    where = os.fspath(path)
    if not zipfile.is_zipfile(where):
        return
    try:
        with zipfile.ZipFile(where) as zf:
            for info in zf.infolist():
                if info.CRC == 0:
                    continue
                crc = 0
                with zf.open(info) as f:  # raises on a bad CRC or a damaged record header
                    for chunk in iter(lambda: f.read(1 << 22), b""):
                        crc = zlib.crc32(chunk, crc)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError, ValueError) as e:
        raise CheckpointError(
            f"{where}: the file is corrupt ({e}): its stored checksums do not match its contents (a partial "
            "download or copy, or a damaged disk). Download or copy it again."
        ) from e


def check_finite_weights(state: Mapping[str, torch.Tensor], where: str, max_abs: float = MAX_ABS_WEIGHT) -> None:
    """Raise :class:`CheckpointError` when a floating-point tensor holds NaN/inf or a value with ``|x| > max_abs``."""
    bad: List[str] = []
    huge: List[str] = []
    largest = 0.0
    for k, v in state.items():
        if not isinstance(v, torch.Tensor) or not v.is_floating_point() or v.numel() == 0:
            continue
        m = float(v.detach().abs().amax())  # NaN propagates through amax
        if not math.isfinite(m):
            bad.append(k)
        elif m > max_abs:
            huge.append(k)
            largest = max(largest, m)
    if bad:
        raise CheckpointError(
            f"{where}: {len(bad)} tensor(s) hold NaN/inf values ({some_names(bad, 5)}): the weights are broken "
            "(a diverged training run or a corrupt file); every output computed from them would be NaN. "
            "Use a checkpoint saved before the run diverged."
        )
    if huge:
        raise CheckpointError(
            f"{where}: {len(huge)} tensor(s) hold implausibly large values (|x| up to {largest:.3g} > "
            f"{max_abs:g}: {some_names(huge, 5)}): the file is probably corrupt (flipped bits) or the run diverged."
        )


def _load_error_detail(e: BaseException) -> str:
    """The first sentence of a ``torch.load`` error: its advice (``weights_only=False``) is not the way out for a
    corrupt or foreign file."""
    text = str(e)
    m = re.search(r"WeightsUnpickler error:\s*(.+?)(?:\n\n|$)", text, re.S)
    if m:
        text = m.group(1).split(". Please use")[0]
    text = " ".join(text.split())
    text = text.split(". ")[0].rstrip(".")
    return f"{type(e).__name__}: {text[:300]}" if text else type(e).__name__


def read_checkpoint(
    path_or_state_dict: Union[str, os.PathLike, Mapping], *, check_values: bool = True
) -> Tuple[StateDict, dict]:
    """Load a local file (``weights_only=True``) or take a dict -> (flat state dict, container extras).

    The state dict is taken from ``"model"``, ``"module"`` or ``"state_dict"`` and a DDP ``module.`` prefix is
    removed; an HF folder gives its weights file. ``extras["__source__"]`` is the file read. A corrupt file, one
    without tensors, or non-finite weights raise :class:`CheckpointError`.
    """
    if isinstance(path_or_state_dict, Mapping):
        ckpt, where = dict(path_or_state_dict), "<state dict>"
    else:
        where = os.fspath(path_or_state_dict)
        if not os.path.exists(where):
            raise FileNotFoundError(f"checkpoint {where} does not exist")
        if os.path.isdir(where):  # an HF model folder (save_pretrained / hub snapshot)
            for name in ("model.safetensors", "pytorch_model.bin"):
                if os.path.isfile(os.path.join(where, name)):
                    where = os.path.join(where, name)
                    break
            else:
                raise FileNotFoundError(f"{where}: folder has neither model.safetensors nor pytorch_model.bin")
        if where.endswith(".safetensors"):
            from safetensors.torch import load_file

            try:
                ckpt = load_file(where)
            except Exception as e:  # safetensors raises its own SafetensorError on a damaged header
                raise CheckpointError(
                    f"{where}: cannot read as a safetensors file ({type(e).__name__}: {e}); "
                    "the file is corrupt or not a safetensors checkpoint"
                ) from e
        else:
            if os.path.getsize(where) == 0:
                raise CheckpointError(f"{where}: the checkpoint file is empty (0 bytes)")
            verify_file_checksums(where)
            try:
                with torch.serialization.safe_globals([argparse.Namespace]):
                    ckpt = torch.load(where, map_location="cpu", weights_only=True)
            except Exception as e:
                raise CheckpointError(
                    f"{where}: cannot load as a weights-only torch checkpoint ({_load_error_detail(e)}). "
                    "The file is corrupt, truncated, or not a PyTorch checkpoint of tensors."
                ) from e
    if not isinstance(ckpt, Mapping):
        raise CheckpointError(f"{where}: expected a dict checkpoint, got {type(ckpt).__name__}")
    extras = {k: v for k, v in ckpt.items() if not isinstance(v, (torch.Tensor, Mapping))}
    if isinstance(ckpt.get("class_names"), Mapping):  # {id: name}, a dict but not a state dict
        extras["class_names"] = dict(ckpt["class_names"])
    sd = ckpt
    for key in ("model", "module", "state_dict"):
        if isinstance(ckpt.get(key), Mapping):
            sd = ckpt[key]
            break
    tensors = {k: v for k, v in sd.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise CheckpointError(f"{where}: no tensors found (top-level keys: {sorted(map(str, ckpt))[:10]})")
    if all(k.startswith("module.") for k in tensors):
        tensors = {k[len("module.") :]: v for k, v in tensors.items()}
    if check_values:
        check_finite_weights(tensors, where)
    extras["__source__"] = where
    return tensors, extras


def clip_fps_of(extras: Mapping) -> Optional[float]:
    """Frame rate of the clips a checkpoint was trained on: ``clip_fps``, 25 for a VMAD AVA checkpoint
    (AlphAction's 25-fps clips), else ``None``."""
    fps = extras.get("clip_fps")
    if isinstance(fps, (int, float)) and not isinstance(fps, bool) and math.isfinite(fps) and fps > 0:
        return float(fps)
    if getattr(extras.get("args"), "data_set", None) == "ava":
        return float(VMAD_FPS)
    return None


def class_names_of(extras: Mapping) -> Optional[Dict[int, str]]:
    """Action names ``{id: name}`` stored in a checkpoint (``[[id, name], ...]`` or a dict), else ``None``."""
    value = extras.get("class_names")
    pairs = list(value.items()) if isinstance(value, Mapping) else value
    if not isinstance(pairs, (list, tuple)):
        return None
    names: Dict[int, str] = {}
    for pair in pairs:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2 or not isinstance(pair[1], str):
            return None
        key = pair[0]
        if isinstance(key, str) and key.strip().isdigit():
            key = int(key)
        if not isinstance(key, int) or isinstance(key, bool):
            return None
        names[key] = pair[1]
    return names or None


_CHECKPOINT_SUFFIXES = (".pth", ".pt", ".pkl", ".bin", ".safetensors")


def refuse_checkpoint_folder(path: str, what: str = "--checkpoint") -> None:
    """Raise ``IsADirectoryError`` for a folder given as ``what``, naming the file in it to pass."""
    if not os.path.isdir(path):
        return
    names = sorted(
        n for n in os.listdir(path) if n.endswith(_CHECKPOINT_SUFFIXES) and os.path.isfile(os.path.join(path, n))
    )
    try:
        with open(os.path.join(path, "last_checkpoint")) as f:
            last = f.read().strip()
    except OSError:
        last = ""
    pick = next((n for n in ("model_final.pth", last) if n in names), names[0] if names else None)
    hint = (
        f"pass the checkpoint file in it, e.g. {os.path.join(path, pick)}"
        if pick
        else "pass a checkpoint file (e.g. the model_final.pth of a training run's output folder); it holds none"
    )
    raise IsADirectoryError(f"{what} {path} is a folder, not a checkpoint file: {hint}")


def locate_checkpoint(spec: Union[str, os.PathLike], what: str = "--checkpoint") -> str:
    """The local checkpoint file a weights argument names: ``hf://`` resolved, a folder refused, a missing file a
    ``FileNotFoundError`` naming ``what``."""
    path = resolve_weights(spec)
    refuse_checkpoint_folder(path, what)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what} '{path}' does not exist")
    return path


def _problem(e: BaseException) -> str:
    if isinstance(e, pickle.UnpicklingError):
        return f"corrupt or not a PyTorch checkpoint: cannot unpickle it ({type(e).__name__})"
    if isinstance(e, EOFError):
        return "truncated: the file ends early (EOFError)"
    text = str(e).strip().splitlines()
    first = text[0].split(". ")[0][:200] if text else ""
    return f"corrupt: {type(e).__name__}: {first}".rstrip(": ")


def read_training_checkpoint(path: str) -> Tuple[Optional[str], Optional[dict]]:
    """``(None, checkpoint)`` when ``path`` reads as a training checkpoint (with ``model``), else
    ``(what is wrong, None)``. Weights only, memory-mapped so tensor data is not read twice."""
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
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated zip, garbage, unpickling errors: all mean "cannot use it"
        return _problem(e), None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), dict):
        return "not a training checkpoint (no 'model' weights)", None
    return None, ckpt
