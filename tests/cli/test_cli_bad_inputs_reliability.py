"""Issue 19 through the real tools (docs/bad_input.md): outputs checked before the work, numbers and names
validated before it starts, worker counts capped by the machine, Ctrl-C one line and exit code 130 in every
tool, a failed write never destroying the earlier file.

Each row runs a tool as a user would (``tests/cli_table.py``); the interrupt table presses Ctrl-C (a real
SIGINT) while each tool is at work.
"""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from cli_table import REPO, BadInput, preloaded_python, run_both_ways, run_case, run_tool

TINY_AVA = "configs/ava/tiny.py"
TINY_MAE = "configs/pretrain/tiny.py"
AVA_FAST = ["dataloader.train.num_workers=0", "dataloader.test.num_workers=0", "train.max_iter=2"]
ROOT_FAST = [
    *AVA_FAST,
    "train.eval_period=0",
    "train.output_dir={tmp}/out",
    "dataloader.test.mapper.test_box_source=gt",
]
MAE_FAST = ["train.max_iter=1", "train.checkpointer.period=1000", "train.output_dir={tmp}/out"]
GT_ROWS = "tinyval000,0902,0.1,0.1,0.5,0.9,1,0\ntinyval000,0903,0.2,0.1,0.6,0.9,2,0\n"
LABEL_MAP = 'item {\n  name: "walk"\n  id: 1\n}\nitem {\n  name: "stand"\n  id: 2\n}\n'
LABEL_MAP_FILE = "ava_action_list_v2.2_for_activitynet_2019.pbtxt"


def ava_root_copy(data: Path, name: str, edit) -> None:
    """``{data}/<name>``: the tiny AVA root (videos and frames linked, annotations copied), ``edit(annotations)``."""
    import shutil

    root = data / name
    shutil.copytree(data / "tiny_ava" / "annotations", root / "annotations")
    for sub in ("videos", "frames", "frame_lists"):
        if (data / "tiny_ava" / sub).exists():
            (root / sub).symlink_to(data / "tiny_ava" / sub)
    edit(root / "annotations")


def _append(path: Path, text: str) -> None:
    with open(path, "a") as f:
        f.write(text)


@pytest.fixture(scope="module")
def data(tmp_path_factory, tiny_ava) -> Path:
    """One folder for every row: a tiny AVA dataset ($VMAE_DET_DATASETS), the demo's config, weights,
    video and boxes, an evaluator's CSV and label map, a VideoMAE checkpoint to convert."""
    from demo_helpers import CONFIG, make_video

    from vmae_det.checkpoints import export_state_dict
    from vmae_det.modeling import build_vit
    from vmae_det.modeling.tiny_action_model import TinyActionModel

    d = tmp_path_factory.mktemp("reliability")
    (d / "tiny_ava").symlink_to(tiny_ava, target_is_directory=True)
    make_video(d / "clip.mp4", 40, size=(64, 48))
    (d / "cfg.py").write_text(CONFIG)
    torch.manual_seed(0)
    torch.save({"model": TinyActionModel(num_classes=3).state_dict()}, d / "w.pth")
    (d / "boxes.csv").write_text("clip,1,0.1,0.1,0.4,0.9,,0.9\n")
    (d / "gt.csv").write_text(GT_ROWS)
    (d / "labels.pbtxt").write_text(LABEL_MAP)
    torch.manual_seed(0)
    torch.save(export_state_dict(build_vit("tiny", img_size=32, num_frames=4), "hf"), d / "hf.pth")
    ava_root_copy(
        d, "root_duplicate_id", lambda a: _append(a / LABEL_MAP_FILE, 'item {\n  name: "again"\n  id: 1\n}\n')
    )
    ava_root_copy(d, "root_bad_label_map", lambda a: _append(a / LABEL_MAP_FILE, "item { name: 'x'\n"))
    ava_root_copy(d, "root_empty_train", lambda a: (a / "ava_train_v2.2.csv").write_text(""))
    ava_root_copy(
        d,
        "root_bom",
        lambda a: (a / "ava_train_v2.2.csv").write_bytes(b"\xef\xbb\xbf" + (a / "ava_train_v2.2.csv").read_bytes()),
    )
    return d


def earlier_output(name: str, text: str = "an earlier run's output\n"):
    def setup(tmp: Path) -> None:
        (tmp / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp / name).write_text(text)

    return setup


def a_run_folder(tmp: Path) -> None:
    (tmp / "run").mkdir()
    for name in ("model_0000009.pth", "model_final.pth"):
        (tmp / "run" / name).write_bytes(b"")
    (tmp / "run" / "last_checkpoint").write_text("model_final.pth")
    (tmp / "empty").mkdir()


def tiny_ava_state() -> dict:
    from detectron2.config import instantiate

    from vmae_det.config import load_config

    torch.manual_seed(0)
    return instantiate(load_config(str(REPO / TINY_AVA)).model).state_dict()


def a_nan_checkpoint(tmp: Path) -> None:
    """{tmp}/out: a run of the tiny AVA detector that diverged (NaN weights in its last checkpoint)."""
    state = tiny_ava_state()
    next(v for v in state.values() if v.is_floating_point()).fill_(float("nan"))
    (tmp / "out").mkdir()
    torch.save({"model": state, "iteration": 4}, tmp / "out" / "model_0000004.pth")
    (tmp / "out" / "last_checkpoint").write_text("model_0000004.pth")


_held_locks = []


def a_busy_features_folder(tmp: Path) -> None:
    """Another extraction "holds" {tmp}/features: this test process takes its lock as a second run finds it."""
    import fcntl

    torch.save({"model": tiny_ava_state()}, tmp / "model_final.pth")
    (tmp / "features").mkdir()
    fd = os.open(tmp / "features" / ".vmae_det.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.write(fd, b"pid 4242 on testhost since today: extract_features.py --output x\n")
    _held_locks.append(fd)


def a_file(tmp: Path) -> None:
    (tmp / "afile").write_text("not a folder")


READ_ONLY = "/sys"  # a folder no one may create files in, root included

DEMO = [
    "--config-file",
    "{data}/cfg.py",
    "--checkpoint",
    "{data}/w.pth",
    "--input",
    "{data}/clip.mp4",
    "--output",
    "{tmp}/out",
    "--boxes",
    "{data}/boxes.csv",
    "--no-progress",
]
EVAL = ["-m vmae_det.evaluation.ava_cli", ["-l", "{data}/labels.pbtxt", "-g", "{data}/gt.csv", "-d", "{data}/gt.csv"]]
PROPOSALS = ["--root", "{data}/tiny_ava", "--split", "val", "--detector", "hog", "--output", "{tmp}/props.csv"]

CASES = [
    # ---- item 5: numbers and names validated before the work (make_proposals wrote an empty file for nan)
    BadInput(
        "proposals_min_score_nan",
        "make_proposals",
        [*PROPOSALS, "--min-score", "nan"],
        ["error: --min-score must be a finite number in [0, 1], got nan"],
        rc=2,
        setup=earlier_output("props.csv"),
    ),
    BadInput(
        "proposals_min_score_above_1",
        "make_proposals",
        [*PROPOSALS, "--min-score", "1.5"],
        ["error: --min-score must be a finite number in [0, 1], got 1.5"],
        rc=2,
    ),
    BadInput(
        "proposals_first_sec_before_the_video",
        "make_proposals",
        [*PROPOSALS, "--first-sec", "0"],
        ["error: --first-sec must be an AVA second >= 900 (frame 0 of the videos), got 0"],
        rc=2,
    ),
    BadInput(
        "proposals_unknown_device",
        "make_proposals",
        [*PROPOSALS, "--device", "tpu"],
        ["error: --device 'tpu' is not a device name: use cpu, cuda or cuda:N"],
        rc=2,
    ),
    BadInput(
        "proposals_output_under_a_file",
        "make_proposals",
        [*PROPOSALS[:-1], "{tmp}/afile/props.csv"],
        ["error: --output {tmp}/afile/props.csv: {tmp}/afile is a file, not a folder"],
        rc=2,
        setup=a_file,
    ),
    BadInput(
        "demo_unknown_dataset",
        "demo",
        [*DEMO, "--dataset", "nosuchdataset"],
        ["error: --dataset: dataset 'nosuchdataset' is not registered"],
        rc=2,
        timeout=120,
    ),
    BadInput(
        "demo_misspelt_dataset",
        "demo",
        [*DEMO, "--dataset", "ava_tiny_vall"],
        ["error: --dataset: dataset 'ava_tiny_vall' is not registered. Did you mean: ava_tiny_val"],
        rc=2,
        timeout=120,
    ),
    BadInput(
        "demo_unknown_device",
        "demo",
        [*DEMO, "--device", "tpu"],
        ["error: --device 'tpu' is not a device name"],
        rc=2,
        timeout=120,
    ),
    BadInput(
        "train_unknown_dataset",
        "train_net",
        ["--config-file", TINY_AVA, *AVA_FAST, "dataloader.train.dataset.names=ava_tiny_trian"],
        [
            "error: dataloader.train.dataset.names: dataset 'ava_tiny_trian' is not registered. Did you mean: "
            "ava_tiny_train"
        ],
        rc=2,
    ),
    # ---- item 6: batch sizes before any work (detectron2 asserted deep in its loader)
    BadInput(
        "total_batch_size_zero",
        "train_net",
        ["--config-file", TINY_AVA, *AVA_FAST, "dataloader.train.total_batch_size=0"],
        ["error: dataloader.train.total_batch_size=0 is not valid: expected an integer >= 1"],
        rc=2,
    ),
    BadInput(
        "total_batch_size_negative",
        "pretrain_mae",
        ["--config-file", TINY_MAE, *MAE_FAST, "dataloader.train.total_batch_size=-8"],
        ["error: dataloader.train.total_batch_size=-8 is not valid: expected an integer >= 1"],
        rc=2,
    ),
    BadInput(
        "total_batch_size_not_shared_evenly",
        "train_net",
        ["--config-file", TINY_AVA, "--num-gpus", "3", *AVA_FAST],
        ["error: dataloader.train.total_batch_size=8 is not a multiple of the 3 processes"],
        rc=2,
    ),
    BadInput(
        "test_batch_size_zero",
        "train_net",
        ["--config-file", TINY_AVA, *AVA_FAST, "dataloader.test.batch_size=0"],
        ["error: dataloader.test.batch_size=0 is not valid: expected an integer >= 1"],
        rc=2,
    ),
    BadInput(
        "num_workers_negative",
        "pretrain_mae",
        ["--config-file", TINY_MAE, *MAE_FAST, "dataloader.train.num_workers=-1"],
        ["error: dataloader.train.num_workers=-1 is not valid: expected an integer >= 0"],
        rc=2,
    ),
    # ---- item 4: worker counts capped by the machine, with a one-line warning; the run goes on
    BadInput(
        "num_workers_100000",
        "pretrain_mae",
        ["--config-file", TINY_MAE, *MAE_FAST, "dataloader.train.num_workers=100000"],
        ["dataloader.train.num_workers=100000: more than the ", "CPU(s) this process may use; using "],
        rc=0,
        process=True,  # data-loader worker processes
    ),
    # ---- item 6: a bad label map under --ava-root (its error class's constructor was called wrongly: TypeError)
    BadInput(
        "ava_root_duplicate_label_id",
        "train_net",
        ["--config-file", TINY_AVA, "--ava-root", "{data}/root_duplicate_id", *ROOT_FAST],
        [
            f"error: --ava-root {{data}}/root_duplicate_id: {{data}}/root_duplicate_id/annotations/{LABEL_MAP_FILE}:"
            f"26: duplicate action id 1"
        ],
        rc=2,
    ),
    BadInput(
        "ava_root_malformed_label_map",
        "train_net",
        ["--config-file", TINY_AVA, "--ava-root", "{data}/root_bad_label_map", *ROOT_FAST],
        [
            f"error: --ava-root {{data}}/root_bad_label_map: {{data}}/root_bad_label_map/annotations/{LABEL_MAP_FILE}:",
            "unexpected or unclosed text after the last label block",
        ],
        rc=2,
    ),
    BadInput(
        "ava_root_empty_train_csv",
        "train_net",
        ["--config-file", TINY_AVA, "--ava-root", "{data}/root_empty_train", *ROOT_FAST],
        [
            "error: {data}/root_empty_train/annotations/ava_train_v2.2.csv: nothing to train on: the file has no "
            "annotation rows"
        ],
        rc=2,
    ),
    # ---- item 6: a BOM in the training ground truth is no part of the first video id (it was '\ufefftinytrain000')
    BadInput(
        "ava_root_train_csv_with_bom",
        "train_net",
        ["--config-file", TINY_AVA, "--ava-root", "{data}/root_bom", *ROOT_FAST],
        ["Loaded ", " keyframes of AVA v2.2 train from {data}/root_bom"],
        rc=0,
    ),
    # ---- item 6: a folder given as --checkpoint is named as a folder, with the file to pass ("does not exist")
    BadInput(
        "demo_checkpoint_is_a_folder",
        "demo",
        [*DEMO[:3], "{tmp}/run", *DEMO[4:]],
        [
            "error: --checkpoint {tmp}/run is a folder, not a checkpoint file: pass the checkpoint file in it, "
            "e.g. {tmp}/run/model_final.pth"
        ],
        rc=2,
        setup=a_run_folder,
        timeout=120,
    ),
    BadInput(
        "extract_features_checkpoint_is_a_folder",
        "extract_features",
        ["--config-file", TINY_AVA, "--checkpoint", "{tmp}/empty", "--output", "{tmp}/features"],
        [
            "error: --checkpoint {tmp}/empty is a folder, not a checkpoint file: pass a checkpoint file (e.g. the "
            "model_final.pth of a training run's output folder); it holds none"
        ],
        rc=2,
        setup=a_run_folder,
    ),
    BadInput(
        "export_onnx_checkpoint_is_a_folder",
        "export_onnx",
        ["--config-file", "{data}/cfg.py", "--checkpoint", "{tmp}/run", "--output", "{tmp}/m.onnx"],
        [
            "error: checkpoint {tmp}/run is a folder, not a checkpoint file: pass the checkpoint file in it, "
            "e.g. {tmp}/run/model_final.pth"
        ],
        rc=2,
        setup=a_run_folder,
    ),
    # ---- item 6: --resume onto NaN weights is refused before training (it trained, then hit a FloatingPointError)
    BadInput(
        "resume_onto_nan_checkpoint",
        "train_net",
        [
            "--config-file",
            TINY_AVA,
            "--resume",
            *AVA_FAST,
            "train.max_iter=8",
            "train.eval_period=0",
            "train.output_dir={tmp}/out",
        ],
        ["error: --resume: {tmp}/out/model_0000004.pth: 1 tensor(s) hold NaN/inf values"],
        rc=2,
        setup=a_nan_checkpoint,
    ),
    # ---- item 6: extract_features takes the output-folder lock of the training tools (two runs raced)
    BadInput(
        "extract_features_output_in_use",
        "extract_features",
        [
            "--config-file",
            TINY_AVA,
            "--checkpoint",
            "{tmp}/model_final.pth",
            "--output",
            "{tmp}/features",
            "--num-workers",
            "0",
        ],
        [
            "error: --output {tmp}/features is in use by another run (pid 4242 on testhost",
            "set --output to another folder",
        ],
        rc=2,
        setup=a_busy_features_folder,
    ),
    # ---- item 6: outputs checked before the work
    BadInput(
        "convert_into_a_missing_folder",
        "convert_checkpoint",
        ["{data}/hf.pth", "{tmp}/new/folder/out.pth"],
        ["-> {tmp}/new/folder/out.pth: "],
        rc=0,
    ),
    BadInput(
        "convert_under_a_file",
        "convert_checkpoint",
        ["{data}/hf.pth", "{tmp}/afile/out.pth"],
        ["error: DST {tmp}/afile/out.pth: {tmp}/afile is a file, not a folder"],
        rc=2,
        setup=a_file,
    ),
    BadInput(
        "eval_output_dir_is_a_file",
        EVAL[0],
        [*EVAL[1], "--output-dir", "{tmp}/afile"],
        ["error: --output-dir {tmp}/afile is a file, not a folder"],
        rc=2,
        setup=a_file,
    ),
    BadInput(
        "eval_output_dir_under_a_file",
        EVAL[0],
        [*EVAL[1], "--output-dir", "{tmp}/afile/metrics"],
        ["error: --output-dir {tmp}/afile/metrics: {tmp}/afile is a file, not a folder"],
        rc=2,
        setup=a_file,
    ),
    BadInput(
        "eval_write_detections_is_a_folder",
        EVAL[0],
        [*EVAL[1], "--write-detections", "{tmp}"],
        ["error: --write-detections {tmp} is a folder; give the file to write"],
        rc=2,
    ),
    BadInput(
        "prepare_custom_dataset_output_is_a_file",
        "prepare_custom_dataset",
        ["--videos", "{data}/tiny_ava/videos", "--annotations", "{data}/gt.csv", "--output", "{tmp}/afile"],
        ["error: --output {tmp}/afile is a file, not a folder"],
        rc=2,
        setup=a_file,
    ),
    # ---- item 6: a video where pretraining wants a folder or a list file (a UTF-8 decode error before)
    BadInput(
        "pretrain_videos_is_a_video",
        "pretrain_mae",
        ["--config-file", TINY_MAE, "--videos", "{data}/clip.mp4", *MAE_FAST],
        ["error: --videos takes a folder of videos or a list file; {data}/clip.mp4 is a video"],
        rc=2,
    ),
    BadInput(
        "pretrain_videos_is_a_video_by_content",
        "pretrain_mae",
        ["--config-file", TINY_MAE, "--videos", "{tmp}/clip.list", *MAE_FAST],
        [
            "error: --videos {tmp}/clip.list: {tmp}/clip.list:1: not a text list file (byte ",
            "is not UTF-8); a folder of videos or a list file ('path [label]' per line) is expected: is it a video?",
        ],
        rc=2,
        setup=lambda tmp: (tmp / "clip.list").write_bytes(b"\x00\x00\x00\x18ftypmp42\xff\xfe\n"),
    ),
    # ---- item 6: annotations that are not UTF-8 (a UnicodeDecodeError message without the file before)
    BadInput(
        "prepare_custom_dataset_annotations_not_utf8",
        "prepare_custom_dataset",
        ["--videos", "{data}/tiny_ava/videos", "--annotations", "{tmp}/latin1.csv", "--output", "{tmp}/custom"],
        [
            "error: {tmp}/latin1.csv:3: not UTF-8 text: byte 37 of the line (byte 119 of the file) is 0xe9; save the "
            "file as UTF-8"
        ],
        rc=2,
        setup=lambda tmp: (tmp / "latin1.csv").write_bytes(
            b"video,split,time,x1,y1,x2,y2,action,person\ntinyval000,val,1,0.1,0.1,0.5,0.9,walk,0\n"
            b"tinyval000,val,2,0.1,0.1,0.5,0.9,caf\xe9,1\n"
        ),
    ),
    # ---- item 6: read-only outputs (these tests run as root, who ignores permission bits: /sys refuses
    # even root; test_output_check_sees_permission_bits covers a non-root user's read-only folder)
    BadInput(
        "convert_into_a_read_only_folder",
        "convert_checkpoint",
        ["{data}/hf.pth", f"{READ_ONLY}/out.pth"],
        [f"error: DST {READ_ONLY}/out.pth: the folder {READ_ONLY} is not writable"],
        rc=2,
    ),
    BadInput(
        "eval_output_dir_read_only",
        EVAL[0],
        [*EVAL[1], "--output-dir", f"{READ_ONLY}/metrics"],
        [f"error: --output-dir {READ_ONLY}/metrics: the folder {READ_ONLY} is not writable"],
        rc=2,
    ),
    BadInput(
        "prepare_custom_dataset_output_read_only",
        "prepare_custom_dataset",
        ["--videos", "{data}/tiny_ava/videos", "--annotations", "{data}/gt.csv", "--output", f"{READ_ONLY}/custom"],
        [f"error: --output {READ_ONLY}/custom: the folder {READ_ONLY} is not writable"],
        rc=2,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_reliability_bad_input(case, tmp_path, data):
    proc = run_case(case, tmp_path, data, env={"VMAE_DET_DATASETS": str(data)})
    out = proc.stderr + proc.stdout
    if case.rc == 2:  # one error line, before any work: no evaluation printed, no training started
        assert len([line for line in out.splitlines() if line.startswith("error: ")]) == 1, out[-3000:]
        assert "mAP@" not in out and "Starting training" not in out, out[-3000:]
    while _held_locks:
        os.close(_held_locks.pop())
    if case.id == "proposals_min_score_nan":
        assert (tmp_path / "props.csv").read_text() == "an earlier run's output\n"
    if case.id == "num_workers_100000":
        assert out.count("num_workers=100000: more than") == 1, out[-3000:]  # one line, once
        assert (tmp_path / "out" / "model_final.pth").is_file()
    if case.id == "convert_into_a_missing_folder":
        assert sorted(p.name for p in (tmp_path / "new" / "folder").iterdir()) == ["out.pth"]


SAME_IN_A_PROCESS = ("proposals_min_score_nan", "eval_output_dir_is_a_file", "ava_root_train_csv_with_bom")


@pytest.mark.parametrize("case", [c for c in CASES if c.id in SAME_IN_A_PROCESS], ids=lambda c: c.id)
def test_in_process_as_in_a_process(case, tmp_path, data):
    """The rows above run in-process (tests/cli_table.py): a sample gives the same exit code and messages as a
    real process."""
    run_both_ways(case, tmp_path, data, env={"VMAE_DET_DATASETS": str(data)})


# ------------------------------------------------------------------------------------------- Ctrl-C
# Every tool, pressed Ctrl-C (a real SIGINT) while it works: one "interrupted" line, exit code 130, no
# KeyboardInterrupt traceback. The training tools are interrupted in their training loop (each step slowed
# down); the others while a step of their work is under way (that step made to wait, so the signal always
# lands inside the tool, whatever the machine's speed).
INTERRUPT_RUN = """
import importlib, signal, sys, time
# Ctrl-C as in a terminal: a test runner started in the background (SIGINT ignored) passes that on to its children.
signal.signal(signal.SIGINT, signal.default_int_handler)
module, attr = {slow!r}.split(":")
owner = importlib.import_module(module)
if "." in attr:  # a method: each call slowed down, the work still done
    cls, name = attr.split(".")
    owner = getattr(owner, cls)
    real = getattr(owner, name)

    def slowed(*args, **kwargs):
        open({marker!r}, "w").close()
        time.sleep(0.2)
        return real(*args, **kwargs)

    setattr(owner, name, slowed)
else:  # a step of the work: made to wait
    def waiting(*args, **kwargs):
        open({marker!r}, "w").close()
        time.sleep(300)

    setattr(owner, attr, waiting)
tool = importlib.import_module({tool!r})
sys.argv = [{tool!r}, *{argv!r}]
sys.exit(tool.{entry}())
"""

INTERRUPTS = [
    # (id, tool module, entry point, what is slowed "module:attr" (or "module:Class.method"), arguments)
    (
        "train_net",
        "vmae_det.tools.train_net",
        "cli",
        "vmae_det.engine.trainer:Trainer.run_step",
        ["--config-file", TINY_AVA, "train.max_iter=1000", "train.eval_period=0", "train.output_dir={tmp}/out"],
    ),
    (
        "pretrain_mae",
        "vmae_det.tools.pretrain_mae",
        "cli",
        "vmae_det.engine.trainer:Trainer.run_step",
        ["--config-file", TINY_MAE, "train.max_iter=1000", "train.output_dir={tmp}/out"],
    ),
    (
        "extract_features",
        "vmae_det.tools.extract_features",
        "cli",
        "vmae_det.tools.extract_features:check_arguments",
        ["--config-file", TINY_AVA, "--checkpoint", "{data}/w.pth", "--output", "{tmp}/features"],
    ),
    (
        "make_proposals",
        "vmae_det.tools.make_proposals",
        "cli",
        "vmae_det.tools.make_proposals:collect_videos",
        PROPOSALS,
    ),
    (
        "convert_checkpoint",
        "vmae_det.tools.convert_checkpoint",
        "cli",
        "vmae_det.tools.convert_checkpoint:convert",
        ["{data}/hf.pth", "{tmp}/out.pth"],
    ),
    (
        "export_onnx",
        "vmae_det.tools.export_onnx",
        "cli",
        "vmae_det.tools.export_onnx:check_arguments",
        ["--config-file", "{data}/cfg.py", "--checkpoint", "{data}/w.pth", "--output", "{tmp}/m.onnx"],
    ),
    (
        "prepare_custom_dataset",
        "vmae_det.tools.prepare_custom_dataset",
        "cli",
        "vmae_det.tools.prepare_custom_dataset:prepare_custom_dataset",
        ["--videos", "{data}/tiny_ava/videos", "--annotations", "{data}/gt.csv", "--output", "{tmp}/custom"],
    ),
    ("demo", "vmae_det.tools.demo", "cli", "vmae_det.tools.demo:settings_from_args", DEMO),
    ("ava_evaluator", "vmae_det.evaluation.ava_cli", "main", "vmae_det.evaluation.ava_cli:evaluate", EVAL[1]),
]


# Real processes: train_net (its loader forks worker processes, which a terminal's Ctrl-C reaches too) and the
# evaluator (``python -m``); the other rows run in this process (test_ctrl_c_in_process).
IN_A_PROCESS = ("train_net", "ava_evaluator")


def _start_script(script: str, tmp_path: Path, env: dict, **popen) -> subprocess.Popen:
    """``script`` in a process forked from the preloaded interpreter (tests/preloaded_python.py), which passes
    on the signals it gets; SIGINT not ignored, as in a terminal."""
    path = tmp_path.with_name(f"{tmp_path.name}_script") / "interrupted_run.py"  # tmp_path: the tool's files only
    path.parent.mkdir()
    path.write_text(script)
    reset = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
    return subprocess.Popen([str(preloaded_python()), str(path)], cwd=REPO, env=env, preexec_fn=reset, **popen)


def check_interrupted(tool: str, rc: int, out: str, tmp_path: Path) -> None:
    """One "interrupted" line, exit code 130, no traceback; no half-written file left."""
    assert rc == 130, f"{tool}: exit code {rc}\n{out[-3000:]}"
    assert "Traceback" not in out and "KeyboardInterrupt" not in out, out[-3000:]
    lines = [line for line in out.splitlines() if line.startswith("interrupted")]
    assert len(lines) == 1 and not any(line.startswith("error:") for line in out.splitlines()), out[-3000:]
    assert not [p for p in tmp_path.rglob("*") if ".tmp" in p.name]
    if tool in ("train_net", "pretrain_mae"):
        assert lines[0] == "interrupted: the checkpoints written so far are whole; --resume continues from the last one"


@pytest.mark.parametrize(
    "tool, module, entry, slow, argv", [r for r in INTERRUPTS if r[0] in IN_A_PROCESS], ids=IN_A_PROCESS
)
def test_ctrl_c_is_one_line_and_exit_code_130(tool, module, entry, slow, argv, tmp_path, data):
    marker = tmp_path / "working"
    argv = [a.format(tmp=tmp_path, data=data) for a in argv]
    script = INTERRUPT_RUN.format(slow=slow, marker=str(marker), tool=module, argv=argv, entry=entry)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "VMAE_DET_DATASETS": str(data)}
    env.pop("VMAE_DET_TRACEBACK", None)
    log = tmp_path / "log.txt"
    with open(log, "w") as f:
        proc = _start_script(script, tmp_path, env, stdout=f, stderr=subprocess.STDOUT)
        deadline = time.time() + 240
        while not marker.exists():  # the tool is at work
            assert proc.poll() is None and time.time() < deadline, log.read_text()[-3000:]
            time.sleep(0.05)
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        proc.wait(120)
    check_interrupted(tool, proc.returncode, log.read_text(), tmp_path)


def slow_down(monkeypatch, slow: str, marker: Path) -> None:
    """INTERRUPT_RUN's slowed method or waiting step, in this process (monkeypatch undoes it)."""
    module, attr = slow.split(":")
    owner = importlib.import_module(module)
    if "." in attr:
        cls, attr = attr.split(".")
        owner = getattr(owner, cls)
        real = getattr(owner, attr)

        def replacement(*args, **kwargs):
            marker.touch()
            time.sleep(0.2)
            return real(*args, **kwargs)

    else:

        def replacement(*args, **kwargs):
            marker.touch()
            time.sleep(300)

    monkeypatch.setattr(owner, attr, replacement)


@pytest.mark.parametrize(
    "tool, module, entry, slow, argv",
    [r for r in INTERRUPTS if r[0] not in IN_A_PROCESS],
    ids=[r[0] for r in INTERRUPTS if r[0] not in IN_A_PROCESS],
)
def test_ctrl_c_in_process(tool, module, entry, slow, argv, tmp_path, data, monkeypatch):
    """The Ctrl-C table's other tools, run in this process (tests/cli_table.py): a real SIGINT to this process's
    main thread, 0.3 s after the tool is at work, as the process rows send it. It is sent only while the tool's
    entry point runs (a lock orders it against the entry point's return), so it can never reach pytest."""
    assert threading.current_thread() is threading.main_thread()
    marker = tmp_path / "working"
    slow_down(monkeypatch, slow, marker)
    owner = importlib.import_module(module)
    real_entry, lock, done = getattr(owner, entry), threading.Lock(), threading.Event()
    state = {"running": False, "sent": False}

    def entry_point():
        with lock:
            state["running"] = True
        try:
            return real_entry()
        finally:
            with lock:  # after this, no signal is sent
                state["running"] = False

    def press_ctrl_c():
        deadline = time.time() + 240
        while not marker.exists():  # the tool is at work
            if done.is_set() or time.time() > deadline:
                return
            time.sleep(0.05)
        time.sleep(0.3)
        with lock:
            if state["running"]:
                signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
                state["sent"] = True

    monkeypatch.setattr(owner, entry, entry_point)
    watcher = threading.Thread(target=press_ctrl_c, daemon=True)
    watcher.start()
    tool_name = module.rsplit(".", 1)[-1] if module.startswith("vmae_det.tools.") else f"-m {module}"
    args = [a.format(tmp=tmp_path, data=data) for a in argv]
    if tool == "pretrain_mae":  # no worker process forked from the test process (train_net's process row has them)
        args.append("dataloader.train.num_workers=0")
    try:
        proc = run_tool(tool_name, args, {"VMAE_DET_DATASETS": str(data), "VMAE_DET_TRACEBACK": ""})
    except KeyboardInterrupt:
        pytest.fail(f"{tool}: Ctrl-C reached the test, not the tool")
    finally:
        done.set()
        watcher.join()
    out = proc.stderr + proc.stdout
    assert state["sent"], f"{tool}: ended before Ctrl-C was pressed\n{out[-3000:]}"
    check_interrupted(tool, proc.returncode, out, tmp_path)


def test_sigterm_is_ctrl_c(tmp_path, data):
    """SIGTERM (kill, a job scheduler) ends a tool as Ctrl-C does (vmae_det.cli.run_main): one line, exit
    code 130, no traceback, nothing half-written left."""
    marker = tmp_path / "working"
    script = INTERRUPT_RUN.format(
        slow="vmae_det.tools.convert_checkpoint:convert",
        marker=str(marker),
        tool="vmae_det.tools.convert_checkpoint",
        entry="cli",
        argv=[str(data / "hf.pth"), str(tmp_path / "out.pth")],
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("VMAE_DET_TRACEBACK", None)
    proc = _start_script(script, tmp_path, env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while not marker.exists():
        assert proc.poll() is None and time.time() < deadline, proc.stdout.read()[-3000:]
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 130, f"exit code {proc.returncode}\n{out[-3000:]}"
    assert "Traceback" not in out, out[-3000:]
    assert [line for line in out.splitlines() if line.startswith(("interrupted", "error:"))] == [
        "interrupted (SIGTERM): nothing written (an earlier output is untouched)"
    ], out[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["working"]


KILLED_RUN = """
import os, sys, time
from vmae_det.formats.output_lock import output_dir_lock
with output_dir_lock(sys.argv[1]):
    child = os.fork()  # as a DataLoader worker: forked while the lock is held, outlives a kill -9 of the run
    if child == 0:
        time.sleep(60)
        os._exit(0)
    open(sys.argv[2], "w").write(str(child))
    time.sleep(60)
"""


def test_lock_goes_with_its_run_not_with_an_orphaned_worker(tmp_path):
    """After kill -9 of a run, the next run into its folder starts at once (it was refused for a moment,
    naming the dead pid, while an orphaned forked worker kept the lock's descriptor open)."""
    from vmae_det.formats.output_lock import output_dir_lock

    out, marker = tmp_path / "out", tmp_path / "child_pid"
    run = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(out), str(marker)], cwd=REPO)
    deadline = time.time() + 60
    while not (marker.exists() and marker.read_text()):
        assert run.poll() is None and time.time() < deadline
        time.sleep(0.05)
    child = int(marker.read_text())
    try:
        run.kill()
        run.wait()
        os.kill(child, 0)  # the orphaned worker is still alive
        with output_dir_lock(str(out), "--output"):  # OutputDirBusyError before the fix
            pass
    finally:
        os.kill(child, signal.SIGKILL)


def test_output_check_sees_permission_bits(tmp_path, monkeypatch):
    """A non-root user's read-only folder is refused by its permission bits (os.access), before a probe."""
    from vmae_det.cli import OutputPathError, check_output_dir, check_output_file

    check_output_dir(str(tmp_path / "out"))
    check_output_file(str(tmp_path / "out.pth"))
    assert list(tmp_path.iterdir()) == []  # the probe file is removed
    monkeypatch.setattr(os, "access", lambda path, mode: os.fspath(path) != str(tmp_path))
    with pytest.raises(
        OutputPathError,
        match=f"--output {tmp_path}/out: the folder {tmp_path} is not writable "
        r"\(permission denied\)",
    ):
        check_output_dir(str(tmp_path / "out"), "--output")
    with pytest.raises(OutputPathError, match="is not writable"):
        check_output_file(str(tmp_path / "out.pth"))


def test_worker_caps_and_device_names():
    """vmae_det/resources.py: counts above the CPU count are lowered to it (0 stays 0); devices must exist."""
    from vmae_det.resources import cap_threads, cap_workers, check_device, cpu_count

    n = cpu_count()
    assert cap_workers(100000, "--num-workers") == n and cap_workers(0) == 0 and cap_workers(n) == n
    assert cap_threads(10**6) == n
    check_device("cpu")
    check_device(None)
    for bad in ("tpu", "gpu0", "cuda:x"):
        with pytest.raises(ValueError, match="is not a device name|only cpu and cuda"):
            check_device(bad)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available here"):
            check_device("cuda")


def test_loader_checks_change_only_a_too_large_worker_count():
    from vmae_det.config import load_config
    from vmae_det.engine.checks import check_loaders
    from vmae_det.resources import cpu_count

    cfg = load_config(str(REPO / TINY_MAE), ["dataloader.train.num_workers=1"])
    check_loaders(cfg)
    assert cfg.dataloader.train.num_workers == 1
    cfg = load_config(str(REPO / TINY_MAE), ["dataloader.train.num_workers=100000"])
    check_loaders(cfg)
    assert cfg.dataloader.train.num_workers == cpu_count()
