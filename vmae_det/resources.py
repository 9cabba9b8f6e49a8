"""What a run may take of the machine: worker and thread counts from a config or command line are capped at
the CPU count (one warning per setting and value) rather than forking until the OOM killer steps in; devices
must exist."""

from __future__ import annotations

import logging
import os
from typing import Optional, Set, Tuple

__all__ = ["cpu_count", "cap_workers", "cap_threads", "check_device"]

logger = logging.getLogger("vmae_det")
_warned: Set[Tuple[str, int]] = set()


def cpu_count() -> int:
    """CPUs this process may run on (its affinity mask: a container's or taskset's limit), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def _cap(value: int, what: str, unit: str) -> int:
    limit = cpu_count()
    if value <= limit:
        return value
    if (what, value) not in _warned:
        _warned.add((what, value))
        logger.warning(f"{what}={value}: more than the {limit} CPU(s) this process may use; using {limit} {unit}")
    return limit


def cap_workers(value: int, what: str = "num_workers") -> int:
    """``value`` data-loader workers, at most :func:`cpu_count`; ``what`` names the setting in the warning."""
    return _cap(int(value), what, "worker processes")


def cap_threads(value: int, what: str = "threads") -> int:
    """``value`` threads, at most :func:`cpu_count`."""
    return _cap(int(value), what, "threads")


def check_device(device: Optional[str], what: str = "--device") -> None:
    """Refuse a device name torch does not know or this machine lacks, naming ``what``; ``None``/``auto`` pass."""
    if device is None or device == "auto":
        return
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise ValueError(f"{what} {device!r} is not a device name: use cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"{what} {device} but CUDA is not available here: use {what} cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"{what} {device} but this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type not in ("cpu", "mps"):
        raise ValueError(f"{what} {device!r}: only cpu and cuda devices are supported")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"{what} {device} but MPS is not available here: use {what} cpu")
