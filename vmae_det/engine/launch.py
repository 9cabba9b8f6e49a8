"""Multi-process launch: detectron2's ``launch`` on GPUs, the same contract on CPU with gloo.

detectron2 v0.6's ``launch`` asserts CUDA and uses NCCL for more than one process. On a machine without
a GPU we spawn the processes ourselves with the gloo backend and set up detectron2's per-machine process
group the same way, so ``--num-gpus N`` runs N CPU processes (for debugging and for testing the DDP path).
"""
from __future__ import annotations

import logging
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from detectron2.engine import launch as d2_launch
from detectron2.engine.launch import _find_free_port
from detectron2.utils import comm

__all__ = ["launch"]

logger = logging.getLogger(__name__)


def _cpu_worker(rank: int, main_func, world_size: int, dist_url: str, args) -> None:
    dist.init_process_group("gloo", init_method=dist_url, world_size=world_size, rank=rank,
                            timeout=timedelta(minutes=30))
    comm._LOCAL_PROCESS_GROUP = dist.new_group(list(range(world_size)))
    comm.synchronize()
    try:
        main_func(*args)
    finally:
        dist.destroy_process_group()


def launch(main_func, num_processes: int, num_machines: int = 1, machine_rank: int = 0,
           dist_url: str = "auto", args=()) -> None:
    """Run ``main_func(*args)`` in ``num_processes`` processes per machine (1: in this process)."""
    if num_processes * num_machines <= 1 or torch.cuda.is_available():
        return d2_launch(main_func, num_processes, num_machines=num_machines, machine_rank=machine_rank,
                         dist_url=dist_url, args=args)
    if num_machines != 1:
        raise ValueError("CPU multi-process launch supports one machine; use GPUs for multi-machine runs")
    if dist_url == "auto":
        dist_url = f"tcp://127.0.0.1:{_find_free_port()}"
    logger.info(f"No CUDA: launching {num_processes} CPU processes with the gloo backend")
    mp.spawn(_cpu_worker, nprocs=num_processes, args=(main_func, num_processes, dist_url, args), daemon=False)
