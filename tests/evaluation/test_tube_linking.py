"""Tube linking (vmae_det.evaluation.tube_linking) against MOC-Detector's official BuildTubes (K = 1) + nms3dt.

tests/reference/tube_linking_reference.npz holds the official's tubes on the inputs
tests/reference/make_tube_linking_reference.py builds (random, equal scores, crowded frames past top_k, float32 and
float64, a long video). Every tube must be equal: order, video, score (value and numpy type) and every row, bitwise.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from reference import make_tube_linking_reference as ref

from vmae_det.evaluation import tube_linking, tubes
from vmae_det.evaluation.tube_linking import link_tubes, main
from vmae_det.formats.safe_pickle import load_pickle

REFERENCE = np.load(ref.OUT)
CASES = ref.build_cases()


def _official(name, videos):
    meta, rows = REFERENCE[name + "/tubes"], REFERENCE[name + "/rows"]
    ends = np.cumsum(meta[:, 3].astype(np.int64))
    return [(int(m[0]), videos[int(m[1])], m[2], rows[e - int(m[3]) : e]) for m, e in zip(meta, ends)]


@pytest.mark.parametrize("name", sorted(CASES))
def test_equal_to_official(name):
    _assert_official(name)


def test_videos_linked_in_chunks_give_the_same_tubes(monkeypatch):
    monkeypatch.setattr(tube_linking, "CHUNK_ROWS", 300)  # one to three videos a chunk
    for name in ("random_f32", "crowd_ties_f64"):
        _assert_official(name)


def _assert_official(name):
    fd, videos, nframes, n_labels = CASES[name]
    res = link_tubes(fd, videos, nframes, num_labels=n_labels)
    assert sorted(res) == list(range(n_labels))
    ours = [(il, v, s, t) for il, lst in res.items() for v, s, t in lst]
    official = _official(name, videos)
    assert len(ours) == len(official) > 0
    for (il, v, s, t), (oil, ov, os_, ot) in zip(ours, official):
        assert (il, v) == (oil, ov)
        assert type(s) is fd.dtype.type and float(s) == os_
        assert t.dtype == np.float32 and t.shape == ot.shape and np.array_equal(t, ot)


def test_options_change_the_tubes():
    fd, videos, nframes, n_labels = CASES["random_f32"]
    base = link_tubes(fd, videos, nframes, num_labels=n_labels)
    count = lambda r: sum(map(len, r.values()))
    assert count(link_tubes(fd, videos, nframes, num_labels=n_labels, min_length=1)) > count(base)
    assert count(link_tubes(fd, videos, nframes, num_labels=n_labels, tube_nms=None)) >= count(base)
    assert count(link_tubes(fd, videos, nframes, num_labels=n_labels, min_score=0.5)) < count(base)
    assert link_tubes(fd[:0], videos, nframes, num_labels=2) == {0: [], 1: []}
    with pytest.raises(ValueError, match="video 'sport/v_1_3' has no frame count"):
        link_tubes(fd, videos, {v: 70 for v in videos[:3]})


def _gt(videos, nframes, n_labels):
    return {
        "labels": [f"class {i}" for i in range(n_labels)],
        "gttubes": {v: {} for v in videos},
        "nframes": dict(nframes),
        "train_videos": [[]],
        "test_videos": [list(videos)],
        "resolution": {v: (240, 320) for v in videos},
    }


def _dump(path, obj):
    with open(path, "wb") as f:
        pickle.dump(obj, f)
    return str(path)


def test_cli_writes_what_the_evaluator_reads(tmp_path, capsys):
    fd, videos, nframes, n_labels = CASES["ties_f32"]
    gt = _dump(tmp_path / "gt.pkl", _gt(videos, nframes, n_labels))
    det = _dump(tmp_path / "fd.pkl", fd)
    out = tmp_path / "out" / "video_dets.pkl"
    assert main([gt, det, "-o", str(out), "--quiet"]) == 0
    written = load_pickle(out)
    expected = link_tubes(fd, videos, nframes, num_labels=n_labels)
    assert sorted(written) == sorted(expected)
    for il in expected:
        assert [(v, s) for v, s, _ in written[il]] == [(v, s) for v, s, _ in expected[il]]
        assert all(np.array_equal(a[2], b[2]) for a, b in zip(written[il], expected[il]))
    checked = tubes.load_video_detections(str(out), load_pickle(gt))
    assert sum(map(len, checked.values())) == sum(map(len, expected.values()))
    assert "tubes of 4 classes written" in capsys.readouterr().out


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda fd: fd[:, :7], "must be an (N, 8) array"),
        (lambda fd: np.vstack([fd, [[9, 1, 0, 0.5, 0, 0, 1, 1]]]), "video index 9 is not an integer 0..3"),
        (lambda fd: np.vstack([fd, [[0, 71, 0, 0.5, 0, 0, 1, 1]]]), "frame 71 is not an integer 1..70"),
        (lambda fd: np.vstack([fd, [[0, 0, 0, 0.5, 0, 0, 1, 1]]]), "frame 0 is not an integer 1..70"),
        (lambda fd: np.vstack([fd, [[0, 2, -1, 0.5, 0, 0, 1, 1]]]), "label index -1 is not an integer"),
        (lambda fd: np.vstack([fd, [[0, 2, 0, np.nan, 0, 0, 1, 1]]]), "a non-finite value"),
        (lambda fd: np.vstack([fd, [[0, 2, 4, 0.5, 0, 0, 1, 1]]]), "label index 4 is not an integer 0..3 (4 labels)"),
        (lambda fd: fd.astype(np.int64), "frame detections must be float32 or float64"),
    ],
)
def test_bad_input_is_one_error_line(tmp_path, capsys, edit, message):
    fd, videos, nframes, n_labels = CASES["random_f32"]
    gt = _dump(tmp_path / "gt.pkl", _gt(videos, nframes, n_labels))
    det = _dump(tmp_path / "fd.pkl", edit(fd))
    out = tmp_path / "vd.pkl"
    assert main([gt, det, "-o", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and str(det) in err and message in err and "\n" not in err
    assert not out.exists()


@pytest.mark.parametrize(
    "flag, value, message",
    [
        ("--min-length", "-1", "--min-length -1: must be an integer >= 0"),
        ("--top-k", "0", "--top-k 0: must be an integer >= 1"),
        ("--link-iou", "nan", "--link-iou nan: must be a finite number"),
        ("--nms-threshold", "1.5", "--nms-threshold 1.5: an IoU threshold must be in [0, 1]"),
        ("--tube-nms", "-0.1", "--tube-nms -0.1: an IoU threshold must be in [0, 1]"),
        ("--min-score", "inf", "--min-score inf: must be a finite number"),
    ],
)
def test_bad_option_is_refused_before_any_work(tmp_path, capsys, flag, value, message):
    out = tmp_path / "vd.pkl"
    missing = str(tmp_path / "no_gt.pkl")  # never read: the options are checked first
    assert main([missing, missing, "-o", str(out), flag, value]) == 2
    assert capsys.readouterr().err.strip() == f"error: {message}"
    assert not out.exists()


def test_library_options_are_checked():
    fd, videos, nframes, n_labels = CASES["random_f32"]
    with pytest.raises(ValueError, match="top_k 0: must be an integer >= 1"):
        link_tubes(fd, videos, nframes, num_labels=n_labels, top_k=0)
    with pytest.raises(ValueError, match="label index 3 is not an integer 0..2"):
        link_tubes(fd, videos, nframes, num_labels=3)
    with pytest.raises(ValueError, match="^frame detections: frame detections must be float32 or float64"):
        link_tubes(fd.astype(np.int32), videos, nframes, num_labels=n_labels)
