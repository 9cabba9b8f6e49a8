"""vmae_det.formats.act (issue 23 item 1): ACT ground-truth pickles as distributed (Python-2 pickles included),
their checks for the data path (splits, nframes, resolution, label indices, tube frames), MultiSports' person-box
pickles, and the Python-2-style writer."""

from __future__ import annotations

import pickle
import pickletools
from pathlib import Path

import numpy as np
import pytest

from vmae_det.cli import EXPECTED_ERRORS
from vmae_det.formats.act import (
    TubeFormatError,
    dumps_python2_pickle,
    load_groundtruth,
    load_person_box_pickle,
    split_videos,
)
from vmae_det.formats.safe_pickle import load_pickle, loads_pickle

REPO = Path(__file__).resolve().parents[2]

# What Python 2.7's cPickle.dumps(numpy.arange(3.0), 2) writes: numpy.core names, the raw data as a py2 str.
PY2_ARANGE3 = (
    b"\x80\x02cnumpy.core.multiarray\n_reconstruct\nq\x01cnumpy\nndarray\nq\x02K\x00\x85U\x01b\x87Rq\x03"
    b"(K\x01K\x03\x85cnumpy\ndtype\nq\x04U\x02f8K\x00K\x01\x87Rq\x05(K\x03U\x01<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xff"
    b"K\x00tb\x89U\x18" + np.arange(3.0).tobytes() + b"tb."
)


def _gt():
    tube = np.array([[f, 10, 20, 50, 90] for f in range(3, 8)], np.float32)
    return {
        "labels": ["a", "b"],
        "gttubes": {"a/v1": {0: [tube]}, "b/v2": {1: [tube.copy()]}},
        "nframes": {"a/v1": 10, "b/v2": 12},
        "train_videos": [["a/v1"]],
        "test_videos": [["b/v2"]],
        "resolution": {"a/v1": (96, 128), "b/v2": (96, 128)},
    }


def _write(tmp_path, obj, name="gt.pkl"):
    p = tmp_path / name
    p.write_bytes(pickle.dumps(obj, protocol=2))
    return str(p)


def test_python2_numpy_pickle_reads_with_the_safe_loader():
    np.testing.assert_array_equal(loads_pickle(PY2_ARANGE3), np.arange(3.0))
    with pytest.raises(UnicodeDecodeError):  # plain pickle's default (ASCII) cannot read it
        pickle.loads(PY2_ARANGE3)


def test_python2_writer_writes_what_python2_wrote():
    gt = _gt()
    data = dumps_python2_pickle(gt)
    ops = {op.name for op, _, _ in pickletools.genops(data)}
    assert "SHORT_BINSTRING" in ops and not ops & {"BINUNICODE", "SHORT_BINUNICODE"}
    assert b"numpy._core" not in data and b"_codecs" not in data
    with pytest.raises(UnicodeDecodeError):  # like the originals: only latin-1 reads it
        pickle.loads(dumps_python2_pickle(np.arange(3.0)))
    back = loads_pickle(data)
    assert back["labels"] == gt["labels"] and back["resolution"] == gt["resolution"]
    np.testing.assert_array_equal(back["gttubes"]["a/v1"][0][0], gt["gttubes"]["a/v1"][0][0])


@pytest.mark.parametrize(
    "folder, name, splits",
    [("tiny_ucf24", "UCF101v2-GT.pkl", 1), ("tiny_jhmdb", "JHMDB-GT.pkl", 3)],
)
def test_tiny_groundtruth_is_a_python2_pickle(folder, name, splits):
    path = REPO / "datasets" / folder / name
    ops = {op.name for op, _, _ in pickletools.genops(path.read_bytes())}
    assert "SHORT_BINSTRING" in ops and "BINUNICODE" not in ops
    gt = load_groundtruth(str(path))
    assert len(gt["train_videos"]) == len(gt["test_videos"]) == splits
    for s in range(splits):
        for kind in ("train", "test"):
            assert split_videos(gt, str(path), kind, s) == list(gt[f"{kind}_videos"][s])


def test_bad_input_is_an_expected_error():
    assert issubclass(TubeFormatError, EXPECTED_ERRORS)


def _broken(**change):
    gt = _gt()
    for key, fn in change.items():
        fn(gt)
    return gt


TUBE = np.array([[f, 10, 20, 50, 90] for f in range(3, 8)], np.float32)


@pytest.mark.parametrize(
    "kind, edit, message",
    [
        ("train", lambda g: g.pop("nframes"), "missing key(s) nframes"),
        ("train", lambda g: g.__setitem__("train_videos", ["a/v1"]), "must be a list of splits"),
        ("train", lambda g: g["nframes"].pop("a/v1"), "video 'a/v1': nframes must be a positive integer"),
        ("test", lambda g: g["nframes"].__setitem__("b/v2", 0), "video 'b/v2': nframes must be a positive integer"),
        ("train", lambda g: g["resolution"].__setitem__("a/v1", (96,)), "video 'a/v1': resolution must be"),
        ("train", lambda g: g["gttubes"].pop("a/v1"), "video 'a/v1': no entry in 'gttubes'"),
        ("train", lambda g: g["gttubes"]["a/v1"].__setitem__(2, [TUBE]), "label index 2 outside 0..1"),
        ("train", lambda g: g["gttubes"]["a/v1"].__setitem__(0, [TUBE[[0, 2, 1]]]), "frames are not sorted"),
        ("train", lambda g: g["gttubes"]["a/v1"].__setitem__(0, [TUBE[[0, 1, 3]]]), "the tube has a gap"),
        ("train", lambda g: g["nframes"].__setitem__("a/v1", 6), "frames 3..7, outside the video's 1..6"),
        ("test", lambda g: g["gttubes"]["b/v2"].__setitem__(1, [TUBE - 3]), "outside the video's 1..12"),
    ],
)
def test_split_errors_name_the_file_and_entry(tmp_path, kind, edit, message):
    gt = _gt()
    edit(gt)
    path = _write(tmp_path, gt)
    with pytest.raises(TubeFormatError, match="gt.pkl") as e:
        split_videos(load_pickle(path), path, kind, 0)
    assert message in str(e.value)
    assert "\n" not in str(e.value)


def test_split_index_out_of_range(tmp_path):
    path = _write(tmp_path, _gt())
    with pytest.raises(TubeFormatError, match=r"split 1 out of range: 'test_videos' has 1 split"):
        split_videos(load_groundtruth(path), path, "test", 1)
    with pytest.raises(ValueError, match="split_kind"):
        split_videos(load_groundtruth(path), path, "val", 0)


def test_person_boxes_official_and_mmaction2_keys(tmp_path):
    boxes = np.array([[0.1, 0.2, 0.3, 0.9, 0.95], [0.5, 0.1, 0.7, 0.8, 0.2]])
    videos = ["basketball/v_x_c001", "football/v_y_c002"]
    official = {"v_x_c001,1": boxes, "v_y_c002,17": boxes[:1], "v_other_c003,1": boxes}
    mmaction2 = {"basketball/v_x_c001.mp4,0001": boxes, "football/v_y_c002.mp4,0017": boxes[:1]}
    for raw in (official, mmaction2):
        got = load_person_box_pickle(_write(tmp_path, raw, "boxes.pkl"), videos)
        assert sorted(got) == [("basketball/v_x_c001", 1), ("football/v_y_c002", 17)]
        assert got[("basketball/v_x_c001", 1)].dtype == np.float32
        np.testing.assert_allclose(got[("basketball/v_x_c001", 1)], boxes, rtol=1e-6)
    assert ("v_other_c003", 1) in load_person_box_pickle(_write(tmp_path, official, "boxes.pkl"))


@pytest.mark.parametrize(
    "raw, message",
    [
        ([1, 2], "not a person-box pickle"),
        ({"v_x_c001": np.zeros((1, 5))}, "key 'v_x_c001' is not 'video,frame'"),
        ({"v_x_c001,0": np.zeros((1, 5))}, "key 'v_x_c001,0' is not 'video,frame'"),
        ({"v_x_c001,3": np.zeros((2, 4))}, "entry 'v_x_c001,3': boxes must be an (n, 5) array"),
        ({"v_x_c001,3": np.array([[1.0, 2, 300, 200, 0.9]])}, "normalised to [0, 1] (pixels given?)"),
        ({"v_x_c001,3": np.array([[0.1, np.nan, 0.3, 0.4, 0.9]])}, "non-finite"),
    ],
)
def test_person_box_errors(tmp_path, raw, message):
    with pytest.raises(TubeFormatError) as e:
        load_person_box_pickle(_write(tmp_path, raw, "boxes.pkl"), ["basketball/v_x_c001"])
    assert "boxes.pkl" in str(e.value) and message in str(e.value)
