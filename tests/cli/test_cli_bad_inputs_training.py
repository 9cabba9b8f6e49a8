"""Bad inputs to the training tools (tools/train_net.py, tools/pretrain_mae.py): each ends in
``error: ...`` naming what is wrong, with a non-zero exit code and no traceback, before anything is
trained (docs/bad_input.md, "Training runs, configs and overrides").

Value checks of every ``train.*`` key (``amp.dtype=float8``, ``log_period=0``, ...) are in
tests/test_config.py; the lock released by a killed run, resume fallback, the best-checkpoint record, lr
overrides on resume, metrics.json after a kill and MAE ``--eval-only`` in tests/engine/test_engine.py.
"""

import os
from pathlib import Path

import pytest
from cli_table import BadInput, run_both_ways, run_case

TINY_AVA = "configs/ava/tiny.py"
TINY_MAE = "configs/pretrain/tiny.py"
FAST = ["dataloader.train.num_workers=0", "dataloader.test.num_workers=0", "train.max_iter=2"]
MAE_FAST = ["dataloader.train.num_workers=0", "train.max_iter=2"]

_held_locks = []  # file descriptors of locks this test process holds for a case


def _hold_lock(tmp: Path) -> None:
    """Another run "holds" {tmp}/busy: this test process takes its lock as a second run would find it."""
    import fcntl

    folder = tmp / "busy"
    folder.mkdir()
    fd = os.open(folder / ".vmae_det.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.write(fd, b"pid 4242 on testhost since today: train_net.py --config-file x\n")
    _held_locks.append(fd)


def _corrupt_checkpoints(tmp: Path) -> None:
    folder = tmp / "broken"
    folder.mkdir()
    (folder / "model_0000009.pth").write_bytes(b"PK\x03\x04 truncated by a kill")
    (folder / "model_0000004.pth").write_bytes(b"")
    (folder / "last_checkpoint").write_text("model_0000009.pth")


CASES = [
    BadInput(
        "no_config_file",
        "train_net",
        ["train.max_iter=2"],
        ["the following arguments are required: --config-file"],
        rc=2,
    ),
    BadInput(
        "config_file_missing",
        "pretrain_mae",
        ["--config-file", "{tmp}/nope.py"],
        ["Config file {tmp}/nope.py does not exist"],
        rc=2,
    ),
    BadInput(
        "flag_after_overrides",
        "train_net",
        ["--config-file", TINY_AVA, "train.max_iter=2", "--resume"],
        ["--resume: flags must come before the key=value overrides"],
        rc=2,
    ),
    BadInput(
        "max_iter_not_a_number",
        "train_net",
        ["--config-file", TINY_AVA, *FAST, "train.max_iter=abc"],
        ["train.max_iter='abc' from the command line is not valid: expected an integer >= 1"],
        rc=2,
    ),
    BadInput(
        "checkpointer_period_zero",
        "pretrain_mae",
        ["--config-file", TINY_MAE, *MAE_FAST, "train.checkpointer.period=0"],
        ["train.checkpointer.period=0 from the command line is not valid: expected an integer >= 1"],
        rc=2,
    ),
    BadInput(
        "num_classes_below_label_map",
        "train_net",
        ["--config-file", TINY_AVA, *FAST, "model.num_classes=3", "train.output_dir={tmp}/out"],
        [
            "model.num_classes=3 is smaller than the largest action id 5",
            "ava_action_list_v2.2_for_activitynet_2019.pbtxt",
        ],
        rc=2,
    ),
    BadInput(
        "pretrain_eval_only_without_weights",
        "pretrain_mae",
        ["--config-file", TINY_MAE, "--eval-only", *MAE_FAST, "train.output_dir={tmp}/out"],
        ["--eval-only needs weights: set train.init_checkpoint=FILE, or add --resume"],
        rc=2,
    ),
    BadInput(
        "eval_only_resume_mistyped_folder",
        "train_net",
        ["--config-file", TINY_AVA, "--eval-only", "--resume", *FAST, "train.output_dir={tmp}/typo"],
        ["--eval-only --resume: no checkpoint in train.output_dir={tmp}/typo", "the folder does not exist"],
        rc=2,
    ),
    BadInput(
        "output_dir_in_use",
        "train_net",
        ["--config-file", TINY_AVA, *FAST, "train.output_dir={tmp}/busy"],
        ["train.output_dir {tmp}/busy is in use by another run", "pid 4242 on testhost"],
        rc=2,
        setup=_hold_lock,
    ),
    # Errors in worker processes (--num-gpus 2: two CPU processes with gloo): each prints its error, the
    # launching process stops the other and exits with code 2 too.
    BadInput(
        "resume_all_checkpoints_corrupt_two_processes",
        "pretrain_mae",
        ["--config-file", TINY_MAE, "--resume", "--num-gpus", "2", *MAE_FAST, "train.output_dir={tmp}/broken"],
        [
            "error: [rank 0] --resume: no intact checkpoint in {tmp}/broken",
            "model_0000009.pth (corrupt",
            "model_0000004.pth (empty file)",
            "stopped on the error above",
        ],
        rc=2,
        setup=_corrupt_checkpoints,
        env={"GLOO_SOCKET_IFNAME": "lo"},
        process=True,  # launched worker processes
    ),
]


@pytest.fixture(scope="module")
def datasets(tiny_ava):
    return tiny_ava.parent


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_training_tool_bad_input(case, tmp_path, datasets):
    try:
        # run_case asserts the exit code, every expected message and that no traceback is printed
        proc = run_case(case, tmp_path, env={"VMAE_DET_DATASETS": str(datasets)})
        if proc.returncode == 2:  # an expected error: the tools' one-line format (vmae_det.cli.run_main)
            assert "error: " in proc.stderr, proc.stderr[-2000:]
    finally:
        while _held_locks:
            os.close(_held_locks.pop())


@pytest.mark.parametrize("case", [c for c in CASES if c.id == "no_config_file"], ids=lambda c: c.id)
def test_in_process_as_in_a_process(case, tmp_path, datasets):
    """The rows above run in-process (tests/cli_table.py): a sample gives the same exit code and messages as a
    real process."""
    try:
        run_both_ways(case, tmp_path, env={"VMAE_DET_DATASETS": str(datasets)})
    finally:
        while _held_locks:
            os.close(_held_locks.pop())
