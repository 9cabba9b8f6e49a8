"""Multi-process launch: detectron2's ``launch`` on GPUs, the same contract on CPU with gloo, and torchrun.

detectron2 v0.6's ``launch`` asserts CUDA for more than one process, so without a GPU the processes are spawned
here with gloo (to debug and test the DDP and multi-machine paths on CPU).
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from typing import Dict, Optional

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from detectron2.engine import launch as d2_launch
from detectron2.engine.launch import _find_free_port
from detectron2.utils import comm

__all__ = ["launch", "torchrun_env", "uses_env_rendezvous", "check_launch_args"]

logger = logging.getLogger(__name__)

_TIMEOUT = timedelta(minutes=30)
#: What torchrun puts in each process's environment (MASTER_ADDR / MASTER_PORT are read by torch itself).
_TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


def torchrun_env() -> Optional[Dict[str, int]]:
    """``{"rank", "world_size", "local_rank", "local_world_size"}`` from torchrun's environment, or None."""
    if not all(k in os.environ for k in _TORCHRUN_VARS):
        return None
    values = {}
    for key in (*_TORCHRUN_VARS, "LOCAL_WORLD_SIZE"):
        text = os.environ.get(key, os.environ["WORLD_SIZE"])
        try:
            values[key.lower()] = int(text)
        except ValueError:
            raise ValueError(f"environment variable {key}={text!r} is not an integer (set by torchrun?)") from None
    if not 0 <= values["rank"] < values["world_size"] or not 0 <= values["local_rank"] < values["local_world_size"]:
        raise ValueError(
            f"inconsistent torchrun environment: RANK={values['rank']} WORLD_SIZE={values['world_size']} "
            f"LOCAL_RANK={values['local_rank']} LOCAL_WORLD_SIZE={values['local_world_size']}"
        )
    return values


def uses_env_rendezvous(dist_url: str) -> bool:
    """Whether the processes join through the environment (``env://``): asked for, or ``auto`` under torchrun."""
    return dist_url == "env://" or (dist_url == "auto" and torchrun_env() is not None)


def check_launch_args(num_processes: int, num_machines: int, machine_rank: int, dist_url: str) -> None:
    """Refuse launch arguments that cannot work before anything starts, saying what to pass instead."""
    if machine_rank >= num_machines:
        raise ValueError(f"--machine-rank {machine_rank} must be below --num-machines {num_machines}")
    if uses_env_rendezvous(dist_url):
        if torchrun_env() is None:
            raise ValueError(
                "--dist-url env:// reads RANK, WORLD_SIZE, LOCAL_RANK (and MASTER_ADDR, MASTER_PORT) "
                "from the environment, as torchrun sets them; they are not set. Start the tool with "
                "torchrun, or pass --dist-url tcp://HOST:PORT"
            )
        if (num_processes, num_machines, machine_rank) != (1, 1, 0):
            raise ValueError(
                "started by torchrun (RANK/WORLD_SIZE in the environment): torchrun starts the processes "
                "(--nproc-per-node, --nnodes, --node-rank); leave --num-gpus, --num-machines and --machine-rank "
                f"out (got --num-gpus {num_processes} --num-machines {num_machines} --machine-rank {machine_rank})"
            )
        return
    if num_machines > 1 and dist_url == "auto":
        raise ValueError(
            f"--num-machines {num_machines} needs --dist-url tcp://HOST:PORT: the address of machine 0 "
            "and a free port there, the same on every machine (or start with torchrun)"
        )
    if not (dist_url == "auto" or dist_url.startswith(("tcp://", "file://", "env://"))):
        raise ValueError(f"--dist-url {dist_url!r}: expected 'auto', tcp://HOST:PORT, file:///PATH or env://")


def _set_local_group(processes_per_machine: int, machine_rank: int) -> None:
    """detectron2's per-machine process group; every process takes part in creating every machine's group."""
    world = dist.get_world_size()
    if world % processes_per_machine:
        raise ValueError(f"world size {world} is not a multiple of the {processes_per_machine} processes per machine")
    for i in range(world // processes_per_machine):
        group = dist.new_group(list(range(i * processes_per_machine, (i + 1) * processes_per_machine)))
        if i == machine_rank:
            comm._LOCAL_PROCESS_GROUP = group


def _cpu_worker(
    local_rank: int, main_func, num_processes: int, num_machines: int, machine_rank: int, dist_url: str, args
) -> None:
    dist.init_process_group(
        "gloo",
        init_method=dist_url,
        world_size=num_processes * num_machines,
        rank=machine_rank * num_processes + local_rank,
        timeout=_TIMEOUT,
    )
    _set_local_group(num_processes, machine_rank)
    comm.synchronize()
    try:
        main_func(*args)
    finally:
        dist.destroy_process_group()


def _env_worker(main_func, args) -> None:
    """This process is one of torchrun's: join the group from the environment, run, leave."""
    env = torchrun_env()
    assert env is not None
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(env["local_rank"])
    logger.info(
        f"Joining the process group from the environment (torchrun): rank {env['rank']} of "
        f"{env['world_size']}, {'NCCL' if cuda else 'gloo'}"
    )
    dist.init_process_group("nccl" if cuda else "gloo", init_method="env://", timeout=_TIMEOUT)
    try:
        _set_local_group(env["local_world_size"], env["rank"] // env["local_world_size"])
        comm.synchronize()
        main_func(*args)
    finally:
        dist.destroy_process_group()


def launch(
    main_func, num_processes: int, num_machines: int = 1, machine_rank: int = 0, dist_url: str = "auto", args=()
) -> None:
    """Run ``main_func(*args)`` in ``num_processes`` processes per machine, or in this process when it is one
    of torchrun's (``dist_url`` ``env://``, or ``auto`` with torchrun's environment)."""
    check_launch_args(num_processes, num_machines, machine_rank, dist_url)
    if uses_env_rendezvous(dist_url):
        return _env_worker(main_func, args)
    if num_processes * num_machines <= 1 or torch.cuda.is_available():
        return d2_launch(
            main_func, num_processes, num_machines=num_machines, machine_rank=machine_rank, dist_url=dist_url, args=args
        )
    if dist_url == "auto":
        dist_url = f"tcp://127.0.0.1:{_find_free_port()}"
    where = f" (machine {machine_rank} of {num_machines}, {dist_url})" if num_machines > 1 else ""
    logger.info(f"No CUDA: launching {num_processes} CPU process(es) with the gloo backend{where}")
    mp.spawn(
        _cpu_worker,
        nprocs=num_processes,
        args=(main_func, num_processes, num_machines, machine_rank, dist_url, args),
        daemon=False,
    )
