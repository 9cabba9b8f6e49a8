"""Past one machine: ``--num-machines/--machine-rank/--dist-url`` over gloo, tested with two "machines"
of one process each on loopback, and torchrun (``env://`` with its RANK/LOCAL_RANK/WORLD_SIZE).

Both runs train the tiny pretraining config (configs/pretrain/tiny.py) through the real tool
(tools/pretrain_mae.py) on a folder of generated videos, with one hook added by a config file (the way a
user extends a config): every rank saves its final weights and what detectron2's ``comm`` says about it.
The ranks start from different random weights (seed + rank) and draw different clips, so identical final
weights on both ranks mean DDP kept them together; only rank 0 writes checkpoints and metrics.json.
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from detectron2.engine import HookBase
from detectron2.engine.launch import _find_free_port
from detectron2.utils import comm

REPO = Path(__file__).resolve().parents[2]
TOOL = REPO / "tools" / "pretrain_mae.py"


class SaveRankState(HookBase):
    """After training, each rank writes ``weights_rank<R>.pt`` and ``comm_rank<R>.json`` into ``output_dir``."""

    def __init__(self, output_dir: str):
        self.output_dir = output_dir

    def after_train(self):
        rank = comm.get_rank()
        model = getattr(self.trainer.model, "module", self.trainer.model)
        torch.save(
            {k: v.detach().cpu() for k, v in model.state_dict().items()},
            os.path.join(self.output_dir, f"weights_rank{rank}.pt"),
        )
        info = {
            "rank": rank,
            "world_size": comm.get_world_size(),
            "local_rank": comm.get_local_rank(),
            "local_size": comm.get_local_size(),
            "iter": self.trainer.iter,
        }
        with open(os.path.join(self.output_dir, f"comm_rank{rank}.json"), "w") as f:
            json.dump(info, f)


CONFIG = """
from detectron2.config import LazyCall as L, LazyConfig

from test_multi_machine import SaveRankState

_base = LazyConfig.load({tiny!r})
model, dataloader, optimizer, lr_multiplier, train = (
    _base.model, _base.dataloader, _base.optimizer, _base.lr_multiplier, _base.train)
train.hooks.append(L(SaveRankState)(output_dir="${{train.output_dir}}"))
"""


@pytest.fixture(scope="module")
def setup_files(tmp_path_factory):
    from helpers import write_square_video

    d = tmp_path_factory.mktemp("multi_machine")
    videos = d / "my_videos"
    videos.mkdir()
    for i in range(4):
        write_square_video(videos / f"clip{i}.mp4", seed=i)
    config = d / "tiny_with_rank_state.py"
    config.write_text(CONFIG.format(tiny=str(REPO / "configs" / "pretrain" / "tiny.py")))
    return d, videos, config


def _env():
    paths = (str(REPO / "tests"), str(Path(__file__).resolve().parent), os.environ.get("PYTHONPATH"))
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "GLOO_SOCKET_IFNAME": "lo",
        "PYTHONPATH": os.pathsep.join(p for p in paths if p),
    }


def _opts(out: Path, videos: Path):
    return [
        "--videos",
        str(videos),
        "dataloader.train.num_workers=0",
        "dataloader.train.total_batch_size=2",
        f"train.output_dir={out}",
        "train.max_iter=4",
        "train.checkpointer.period=2",
        "train.log_period=1",
        "train.device=cpu",
        "train.seed=0",
        "train.vis_period=100",
    ]


def _check_trained_together(out: Path, logs: str, world: int, local_size: int):
    infos = [json.loads((out / f"comm_rank{r}.json").read_text()) for r in range(world)]
    assert [i["rank"] for i in infos] == list(range(world)) and {i["world_size"] for i in infos} == {world}, infos
    assert [i["local_size"] for i in infos] == [local_size] * world, infos
    assert [i["local_rank"] for i in infos] == [r % local_size for r in range(world)], infos
    assert {i["iter"] for i in infos} == {4}
    weights = [torch.load(out / f"weights_rank{r}.pt", weights_only=True) for r in range(world)]
    for name, tensor in weights[0].items():
        for other in weights[1:]:
            assert torch.equal(tensor, other[name]), f"{name} differs between ranks: they did not train together"
    final = torch.load(out / "model_final.pth", weights_only=True)  # written by rank 0 only
    assert final["iteration"] == 3
    for name, tensor in weights[0].items():
        assert torch.equal(final["model"][name], tensor), name
    rows = [json.loads(line) for line in (out / "metrics.json").read_text().splitlines()]
    assert [r["iteration"] for r in rows if "total_loss" in r] == [0, 1, 2, 3]  # one writer: no row twice
    assert "skipped_videos" in rows[-1]
    assert (out / "log.txt").is_file() and all((out / f"log.txt.rank{r}").is_file() for r in range(1, world))
    assert (
        f"Rank of current process: {world - 1}. World size: {world}" in (out / f"log.txt.rank{world - 1}").read_text()
    )
    assert "Traceback" not in logs, logs[-3000:]


def test_two_machines_of_one_process_train_together_over_gloo(setup_files):
    """tools/pretrain_mae.py --num-machines 2 --machine-rank R --dist-url tcp://127.0.0.1:P, twice."""
    d, videos, config = setup_files
    out = d / "two_machines"
    url = f"tcp://127.0.0.1:{_find_free_port()}"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(TOOL),
                "--config-file",
                str(config),
                "--num-machines",
                "2",
                "--machine-rank",
                str(rank),
                "--dist-url",
                url,
                *_opts(out, videos),
            ],
            cwd=REPO,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in (0, 1)
    ]
    logs = []
    try:
        for p in procs:
            logs.append(p.communicate(timeout=240)[0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for rank, (p, log) in enumerate(zip(procs, logs)):
        assert p.returncode == 0, f"machine {rank}: exit code {p.returncode}\n{log[-4000:]}"
    _check_trained_together(out, "".join(logs), world=2, local_size=1)


def test_torchrun_processes_join_through_the_environment(setup_files):
    """torchrun --nproc-per-node 2 tools/pretrain_mae.py ...: RANK/LOCAL_RANK/WORLD_SIZE from torchrun."""
    d, videos, config = setup_files
    out = d / "torchrun"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes",
        "1",
        "--nproc-per-node",
        "2",
        "--master-addr",
        "127.0.0.1",
        "--master-port",
        str(_find_free_port()),
        str(TOOL),
        "--config-file",
        str(config),
        *_opts(out, videos),
    ]
    proc = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=240)
    logs = proc.stdout + proc.stderr
    assert proc.returncode == 0, logs[-4000:]
    _check_trained_together(out, logs, world=2, local_size=2)


def _args(**kw):
    base = dict(
        config_file=str(REPO / "configs" / "pretrain" / "tiny.py"),
        resume=False,
        eval_only=False,
        num_gpus=1,
        num_machines=1,
        machine_rank=0,
        dist_url="auto",
        opts=[],
    )
    return argparse.Namespace(**{**base, **kw})


@pytest.mark.parametrize(
    "kw, env, message",
    [
        (dict(num_machines=2), {}, "--num-machines 2 needs --dist-url tcp://HOST:PORT"),
        (dict(num_machines=2, machine_rank=2, dist_url="tcp://127.0.0.1:1"), {}, "--machine-rank 2 must be below"),
        (dict(dist_url="env://"), {}, "--dist-url env:// reads RANK, WORLD_SIZE, LOCAL_RANK"),
        (
            dict(num_gpus=2),
            {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0"},
            "torchrun starts the processes (--nproc-per-node, --nnodes, --node-rank); leave --num-gpus",
        ),
        (
            dict(),
            {"RANK": "x", "WORLD_SIZE": "2", "LOCAL_RANK": "0"},
            "environment variable RANK='x' is not an integer",
        ),
        (dict(dist_url="http://h:1"), {}, "--dist-url 'http://h:1': expected 'auto', tcp://HOST:PORT"),
    ],
)
def test_launch_arguments_that_cannot_work_are_refused_before_anything_starts(monkeypatch, tmp_path, kw, env, message):
    from vmae_det.engine import launch_from_args

    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        launch_from_args(_args(opts=[f"train.output_dir={tmp_path / 'out'}"], **kw))
    assert not (tmp_path / "out").exists()
