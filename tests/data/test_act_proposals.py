"""Person boxes for ACT-format datasets (``tools/make_proposals.py --dataset``): the pickle MultiSports' reader
reads back, the built-in UCF101-24 name and its recipe then score those boxes, checkpoints and ``--resume``, and
bad inputs as one expected error (all in-process)."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from detectron2.config import LazyConfig
from detectron2.data import DatasetCatalog, MetadataCatalog

import vmae_det.data  # noqa: F401  (registers the built-in names)
from vmae_det.cli import EXPECTED_ERRORS
from vmae_det.data.act import register_act_dataset, register_all_act
from vmae_det.data.act.catalog import person_box_file
from vmae_det.data.act.proposals import collect_act_videos, make_act_person_boxes, partial_path
from vmae_det.formats.act import TubeFormatError, load_person_box_pickle
from vmae_det.formats.safe_pickle import load_pickle
from vmae_det.tools import make_proposals as tool

REPO = Path(__file__).resolve().parents[2]
TINY_UCF = REPO / "datasets" / "tiny_ucf24"
W, H = 128, 96  # the tiny frames


def _fake_detector(calls=None):
    """Nobody on every other call; else two people (one below the score threshold) and a zero-width box."""
    calls = [] if calls is None else calls

    def detect(frame):
        calls.append(1)
        if len(calls) % 2 == 0:
            return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32)
        boxes = np.array([[10, 20, 50, 90], [0, 0, 200, 100], [5, 5, 5, 60]], np.float32)
        return boxes, np.array([0.9, 0.2, 0.95], np.float32)

    return detect


@pytest.fixture
def tiny_test(monkeypatch):
    monkeypatch.chdir(REPO)  # the tiny names' roots are relative: ./datasets
    return "ucf24_tiny_test"


def test_person_boxes_read_back_in_multisports_layout(tiny_test, tmp_path):
    out = tmp_path / "boxes.pkl"
    videos, skipped = collect_act_videos(tiny_test, frame_stride=10)
    assert skipped == [] and [v.frames for v in videos] == [[1, 11, 21, 31]] * 4
    n_videos, n_frames, n_boxes = make_act_person_boxes(
        tiny_test, out, _fake_detector(), min_score=0.5, videos=(videos, [])
    )
    raw = load_pickle(out)
    assert set(raw) == {f"{v.video},{f}" for v in videos for f in v.frames}  # every frame, people or not
    assert all(a.dtype == np.float32 and a.shape[1] == 5 for a in raw.values())
    boxes = load_person_box_pickle(out, [v.video for v in videos])
    one = np.array([[10 / W, 20 / H, 50 / W, 90 / H, 0.9]], np.float32)  # clipped, thresholded, normalised
    for i, key in enumerate((v.video, f) for v in videos for f in v.frames):
        np.testing.assert_allclose(boxes[key], one if i % 2 == 0 else np.zeros((0, 5)), rtol=1e-6)
    assert (n_videos, n_frames, n_boxes) == (4, 16, 8)
    assert not partial_path(out).exists()


def test_checkpoint_and_resume_run_only_unfinished_videos(tiny_test, tmp_path):
    out = tmp_path / "boxes.pkl"
    videos = collect_act_videos(tiny_test, frame_stride=10)
    calls = []
    detect = _fake_detector(calls)

    def interrupted(frame):
        if len(calls) == 8:  # the third video's first frame
            raise KeyboardInterrupt
        return detect(frame)

    with pytest.raises(KeyboardInterrupt):
        make_act_person_boxes(tiny_test, out, interrupted, min_score=0.5, videos=videos, save_every_s=0)
    assert not out.exists()  # an earlier output would be untouched; the finished videos are in the checkpoint
    assert {k.rsplit(",", 1)[0] for k in load_pickle(partial_path(out))} == {v.video for v in videos[0][:2]}
    calls.clear()
    n_videos, n_frames, _ = make_act_person_boxes(tiny_test, out, detect, min_score=0.5, videos=videos, resume=True)
    assert len(calls) == 8 and (n_videos, n_frames) == (4, 16) and not partial_path(out).exists()
    first = load_pickle(out)
    calls.clear()  # a finished output: nothing to run again
    make_act_person_boxes(tiny_test, out, detect, min_score=0.5, videos=videos, resume=True)
    assert calls == [] and load_pickle(out).keys() == first.keys()
    # a video missing one frame is run again; without --resume everything is
    del first[f"{videos[0][0].video},11"]
    out.write_bytes(pickle.dumps(first))
    make_act_person_boxes(tiny_test, out, detect, min_score=0.5, videos=videos, resume=True)
    assert len(calls) == 4 and len(load_pickle(out)) == 16
    calls.clear()
    make_act_person_boxes(tiny_test, out, detect, min_score=0.5, videos=videos)
    assert len(calls) == 16


@pytest.fixture
def ucf24_root(tmp_path):
    """The built-in ``ucf24_{train,test}`` names re-registered on a UCF101-24 root made of the tiny copy."""
    root = tmp_path / "data"
    (root / "ucf24").mkdir(parents=True)
    (root / "ucf24" / "rgb-images").symlink_to(TINY_UCF / "rgb-images")
    shutil.copy(TINY_UCF / "UCF101v2-GT.pkl", root / "ucf24")
    names = ("ucf24_train", "ucf24_test")

    def reregister(where):
        for name in names:
            DatasetCatalog.remove(name)
            MetadataCatalog.remove(name)
        register_all_act(where)

    reregister(root)
    yield root / "ucf24"
    reregister(None)


def test_builtin_ucf24_and_its_recipe_score_the_written_boxes(ucf24_root, capsys):
    out = ucf24_root / "person_boxes" / "test.pkl"
    assert MetadataCatalog.get("ucf24_test").proposal_file == str(out) and person_box_file("ucf24_test") is None
    assert LazyConfig.load(str(REPO / "configs/ucf24/vit_b.py")).dataloader.test.mapper.test_box_source == "gt"
    argv = ["--dataset", "ucf24_test", "--detector", "hog", "--frame-stride", "40", "--output", str(out)]
    assert tool.main(argv) == 0  # OpenCV's HOG: no download; one frame per video keeps it to seconds
    assert capsys.readouterr().out.startswith("wrote ")
    boxes = load_person_box_pickle(out)
    assert sorted(f for _, f in boxes) == [1] * 4
    assert person_box_file("ucf24_test") == str(out)
    assert LazyConfig.load(str(REPO / "configs/ucf24/vit_b.py")).dataloader.test.mapper.test_box_source == "proposals"
    dicts = DatasetCatalog.get("ucf24_test")
    assert len(dicts) == 160
    for d in dicts:
        got = np.concatenate([d["proposals"]["boxes"], d["proposals"]["scores"][:, None]], axis=1)
        want = boxes.get((d["video_id"], d["timestamp"]), np.zeros((0, 5), np.float32))
        np.testing.assert_array_equal(got, want)
    assert sum(len(d["proposals"]["scores"]) for d in dicts) == sum(len(b) for b in boxes.values())


def _error(argv, exc=EXPECTED_ERRORS):
    with pytest.raises(exc) as e:
        tool.main(argv)
    assert isinstance(e.value, EXPECTED_ERRORS) and "\n" not in str(e.value)
    return str(e.value.args[0]) if isinstance(e.value, KeyError) else str(e.value)


def test_bad_inputs_are_one_line_errors(tiny_test, tmp_path, caplog):
    out = str(tmp_path / "boxes.pkl")
    base = ["--detector", "hog", "--output", out]
    assert "not a registered ACT-format dataset" in _error(["--dataset", "ucf_24_test", *base], KeyError)
    assert "ucf24_tiny_test" in _error(["--dataset", "ava_v2.2_val", *base], KeyError)  # the names are listed
    assert (
        _error(["--dataset", tiny_test, "--frame-stride", "0", *base])
        == "--frame-stride must be an integer >= 1, got 0"
    )
    assert "drop --root" in _error(["--dataset", tiny_test, "--root", "datasets/tiny_ava", *base])
    assert "drop --split" in _error(["--dataset", tiny_test, "--split", "val", *base])
    assert _error(["--frame-stride", "2", *base]).startswith("--frame-stride goes with --dataset")
    assert _error(["--resume", *base]).startswith("--resume goes with --dataset")
    # a video without its frames: named, or skipped and counted with --skip-bad-videos
    root = tmp_path / "cut"
    shutil.copytree(TINY_UCF, root)
    shutil.rmtree(root / "rgb-images" / load_pickle(root / "UCF101v2-GT.pkl")["test_videos"][0][0])
    if "act_proposals_cut" in DatasetCatalog.list():
        DatasetCatalog.remove("act_proposals_cut")
        MetadataCatalog.remove("act_proposals_cut")
    register_act_dataset("act_proposals_cut", root / "UCF101v2-GT.pkl", root, "test")
    message = _error(["--dataset", "act_proposals_cut", *base], FileNotFoundError)
    assert (
        message.startswith("1 of the 4 videos of act_proposals_cut have no frames under ")
        and "--skip-bad-videos" in message
    )
    videos, skipped = collect_act_videos("act_proposals_cut", 40, skip_bad_videos=True)
    assert len(videos) == 3 and len(skipped) == 1 and "Jumping/v_Jumping_g03_c01" in skipped[0]
    # --resume on a file that is not a person-box pickle
    Path(out).write_bytes(pickle.dumps([1, 2]))
    message = _error(["--dataset", tiny_test, "--resume", *base], TubeFormatError)
    assert message.startswith(f"{out}: not a person-box pickle")
