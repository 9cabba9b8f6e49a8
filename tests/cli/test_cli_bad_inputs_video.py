"""Bad and unusual videos through the real tools (tools/train_net.py, tools/pretrain_mae.py,
tools/make_proposals.py): docs/bad_input.md, "Videos and decoding".

A valid but unindexed AVI (what ``ffmpeg -i x.mp4 -c:v mpeg4 -f avi - > x.avi`` or a recorder that
dies leaves) can make decord abort the process (rc 134 with 0 workers, "worker killed by
signal" with 2): it must train (rc 0) with 0 and 2 data-loader workers in both tools. Every other
case ends in ``error: ...`` naming the file with exit code 2, or in a counted, logged skip.
"""

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest
from cli_table import BadInput, run_both_ways, run_case, run_tool
from helpers import transcode_to_unindexed_avi

AVA = ["--config-file", "configs/ava/tiny.py", "train.max_iter=2", "train.eval_period=0", "train.output_dir={tmp}/out"]
MAE = ["--config-file", "configs/pretrain/tiny.py", "train.max_iter=2", "train.output_dir={tmp}/out"]
GARBAGE = b"\x00\x00\x00\x18ftypmp42" + bytes(300)


def _workers(n: int, test: bool = True):
    return [f"dataloader.train.num_workers={n}"] + ([f"dataloader.test.num_workers={n}"] if test else [])


@pytest.fixture(scope="module")
def data(tmp_path_factory, tiny_ava_factory) -> Path:
    """Dataset roots (each a $VMAE_DET_DATASETS) under one folder."""
    d = tmp_path_factory.mktemp("video_inputs")
    # avi/: the tiny AVA default (2 train, 1 val video) with every video an unindexed AVI
    tiny = d / "avi" / "tiny_ava"
    mp4s = tiny_ava_factory(num_train_videos=2, num_val_videos=1, seconds=5, format="videos")
    shutil.copytree(mp4s, tiny, ignore=shutil.ignore_patterns("videos"))
    (tiny / "videos").mkdir()
    for mp4 in sorted((mp4s / "videos").glob("*.mp4")):
        transcode_to_unindexed_avi(mp4, tiny / "videos" / f"{mp4.stem}.avi")
    # some_bad/: those AVIs and one corrupt file (pretraining skips and counts it)
    shutil.copytree(d / "avi", d / "some_bad")
    (d / "some_bad" / "tiny_ava" / "videos" / "broken.mp4").write_bytes(GARBAGE)
    # corrupt_train/: AVA training data with one undecodable video
    shutil.copytree(d / "avi", d / "corrupt_train")
    (d / "corrupt_train" / "tiny_ava" / "videos" / "tinytrain001.avi").write_bytes(GARBAGE)
    # all_bad/: every pretraining video corrupt; all_missing/: a Kinetics list of absent files
    (d / "all_bad" / "tiny_ava" / "videos").mkdir(parents=True)
    for name in ("a.mp4", "b.avi", "c.mkv"):
        (d / "all_bad" / "tiny_ava" / "videos" / name).write_bytes(GARBAGE)
    (d / "all_missing" / "kinetics400").mkdir(parents=True)
    (d / "all_missing" / "kinetics400" / "train.csv").write_text("videos/x.mp4 0\nvideos/y.mp4 1\n")
    # proposals: val videos 000 (missing), 001 (corrupt), 002 (fine); corrupt_only: 001 corrupt
    props = d / "proposals"
    shutil.copytree(tiny_ava_factory(num_train_videos=1, num_val_videos=3, seconds=4, format="videos"), props)
    (props / "videos" / "tinyval000.mp4").unlink()
    (props / "videos" / "tinyval001.mp4").write_bytes(GARBAGE)
    shutil.copytree(props, d / "proposals_corrupt_only")
    shutil.copy(props / "videos" / "tinyval002.mp4", d / "proposals_corrupt_only" / "videos" / "tinyval000.mp4")
    return d


def _root(name: str) -> dict:
    return {"VMAE_DET_DATASETS": "{data}/" + name}


CASES = [
    # A valid video: trains, in both tools, with and without data-loader workers.
    BadInput(
        "train_net_unindexed_avi_0_workers",
        "train_net",
        [*AVA, *_workers(0)],
        ["Saving checkpoint to {tmp}/out/model_final.pth", "copypaste: mAP"],
        rc=0,
        env=_root("avi"),
        process=True,  # decord can abort a process on unindexed AVIs
    ),
    BadInput(
        "train_net_unindexed_avi_2_workers",
        "train_net",
        [*AVA, *_workers(2)],
        ["Saving checkpoint to {tmp}/out/model_final.pth", "copypaste: mAP"],
        rc=0,
        env=_root("avi"),
        process=True,  # decord can abort a process on unindexed AVIs
    ),
    BadInput(
        "pretrain_unindexed_avi_0_workers",
        "pretrain_mae",
        [*MAE, *_workers(0, test=False)],
        ["Saving checkpoint to {tmp}/out/model_final.pth", "Training done: 0 videos skipped in total"],
        rc=0,
        env=_root("avi"),
        process=True,  # decord can abort a process on unindexed AVIs
    ),
    BadInput(
        "pretrain_unindexed_avi_2_workers",
        "pretrain_mae",
        [*MAE, *_workers(2, test=False)],
        ["Saving checkpoint to {tmp}/out/model_final.pth", "Training done: 0 videos skipped in total"],
        rc=0,
        env=_root("avi"),
        process=True,  # decord can abort a process on unindexed AVIs
    ),
    # One corrupt video among good ones: pretraining skips it, logs it, counts the file once.
    BadInput(
        "pretrain_one_corrupt_video_is_skipped_and_counted",
        "pretrain_mae",
        [*MAE, *_workers(0, test=False)],
        [
            "Skipping video '{data}/some_bad/tiny_ava/videos/broken.mp4'",
            "1 distinct video file(s) skipped",
            "Training done: 1 videos skipped in total",
        ],
        rc=0,
        env=_root("some_bad"),
        process=True,  # decord can abort a process on unindexed AVIs
    ),
    # Nothing usable: a clear error before training, instead of 'Sample larger than population'.
    BadInput(
        "pretrain_every_video_corrupt",
        "pretrain_mae",
        [*MAE, *_workers(0, test=False)],
        [
            "error: none of the 3 videos tried from '{data}/all_bad/tiny_ava/videos' decodes",
            "is every video of this list bad?",
            "tiny_ava/videos/a.mp4: ",
        ],
        rc=2,
        env=_root("all_bad"),
    ),
    BadInput(
        "pretrain_every_video_missing",
        "pretrain_mae",
        [*MAE, *_workers(0, test=False), "dataloader.train.dataset.names=kinetics400_train"],
        [
            "error: none of the 2 videos listed in '{data}/all_missing/kinetics400/train.csv' exists",
            "kinetics400/videos/x.mp4",
        ],
        rc=2,
        env=_root("all_missing"),
    ),
    # Proposals: a missing or undecodable video of the split is an error before any detector is built.
    BadInput(
        "make_proposals_missing_video",
        "make_proposals",
        ["--root", "{data}/proposals", "--split", "val", "--output", "{tmp}/p.csv", "--weights", "{tmp}/unused.pth"],
        ["error: 1 video(s) of split 'val' have neither", "tinyval000", "--skip-bad-videos"],
        rc=2,
    ),
    BadInput(
        "make_proposals_corrupt_video",
        "make_proposals",
        [
            "--root",
            "{data}/proposals_corrupt_only",
            "--split",
            "val",
            "--output",
            "{tmp}/p.csv",
            "--weights",
            "{tmp}/unused.pth",
        ],
        [
            "error: cannot decode video '{data}/proposals_corrupt_only/videos/tinyval001.mp4'",
            "--skip-bad-videos skips such videos",
        ],
        rc=2,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_video_input(case: BadInput, tmp_path: Path, data: Path):
    case = dataclasses.replace(case, env={k: v.format(data=data, tmp=tmp_path) for k, v in case.env.items()})
    run_case(case, tmp_path, data)
    if case.rc == 2:
        assert not (tmp_path / "p.csv").exists()


@pytest.mark.parametrize(
    "case",
    [c for c in CASES if c.id == "pretrain_every_video_corrupt"],
    ids=lambda c: c.id,
)
def test_in_process_as_in_a_process(case: BadInput, tmp_path: Path, data: Path):
    """The rows above without ``process=True`` run in-process (tests/cli_table.py): a sample gives the same exit
    code and messages as a real process."""
    case = dataclasses.replace(case, env={k: v.format(data=data, tmp=tmp_path) for k, v in case.env.items()})
    run_both_ways(case, tmp_path, data)


def test_train_net_corrupt_video_from_a_worker(data: Path, tmp_path: Path):
    """AVA training on an undecodable video ends in one ``error:`` line naming it, also when a
    data-loader worker hit it, and no traceback (the engine drops detectron2's for expected errors)."""
    args = [a.format(tmp=tmp_path) for a in [*AVA, *_workers(2)]]
    proc = run_tool("train_net", args, {"VMAE_DET_DATASETS": str(data / "corrupt_train")}, process=True)
    assert proc.returncode == 2, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: cannot decode video '{data}/corrupt_train/tiny_ava/videos/tinytrain001.avi': ")
    assert last.endswith("(in DataLoader worker process 0)") or last.endswith("(in DataLoader worker process 1)"), last
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]


def test_make_proposals_skip_bad_videos(data: Path, tmp_path: Path, caplog):
    """--skip-bad-videos: the missing and the corrupt video are skipped, each logged and counted;
    the readable one gets its proposals."""
    import importlib.util
    import logging

    spec = importlib.util.spec_from_file_location(
        "make_proposals_tool", Path(__file__).resolve().parents[2] / "tools" / "make_proposals.py"
    )
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    fake = lambda img: (np.array([[10, 20, 50, 90]], np.float32), np.array([0.9], np.float32))  # noqa: E731
    out = tmp_path / "p.csv"
    with caplog.at_level(logging.WARNING, logger="make_proposals"):
        n = tool.make_proposals(data / "proposals", out, fake, split="val", skip_bad_videos=True)
    assert {r.split(",")[0] for r in out.read_text().splitlines()} == {"tinyval002"} and n > 0
    assert "1 video(s) of split 'val' have neither" in caplog.text and "tinyval000" in caplog.text
    assert "tinyval001: skipped (--skip-bad-videos): cannot decode video" in caplog.text
    assert "skipped 2 of 3 videos" in caplog.text
