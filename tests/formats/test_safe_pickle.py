"""Pickle files are never run (issue 19 item 1): ``vmae_det.formats.safe_pickle`` reads detectron2 model-zoo
``.pkl`` weights (numpy arrays) and refuses every other global before anything of the file is called.

* the reader: detectron2-style dicts of float32/int64 arrays written with plain ``pickle`` (protocols 0-5,
  numpy 1 and numpy 2 names) come back equal; pickles naming ``open``, ``os.system``, ``eval``, ... are
  refused naming the file and the global, and their side effect does not happen;
* the detectron2 person detector loads a model-zoo ``.pkl`` to the same weights as the ``.pth``;
* the tools (``demo.py --person-detector detectron2 --person-weights``, ``make_proposals.py --detector
  detectron2 --weights``) end on such a file with one ``error:`` line and exit code 2, and the file the
  pickle would write is not written (docs/bad_input.md, "Checkpoints and models").
"""

from __future__ import annotations

import builtins
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_table import BadInput, run_case

from vmae_det.formats.safe_pickle import UnsafePickleError, load_pickle, loads_pickle

MARKER = "pwned.txt"  # what the malicious pickles would create in the test's folder


class _Payload:
    """Pickles as ``call(*args)``: what a malicious file makes ``pickle.load`` run."""

    def __init__(self, call, *args):
        self.call, self.args = call, args

    def __reduce__(self):
        return self.call, self.args


def _evil_open(tmp: Path) -> dict:
    return {"model": {"w": _Payload(builtins.open, str(tmp / MARKER), "w")}, "__author__": "evil"}


def _evil_system(tmp: Path) -> dict:
    return {"model": {"w": _Payload(os.system, f"touch {tmp / MARKER}")}, "__author__": "evil"}


def write_evil(tmp: Path, name: str = "evil.pkl", make=_evil_open, protocol: int = pickle.HIGHEST_PROTOCOL) -> Path:
    path = tmp / name
    path.write_bytes(pickle.dumps(make(tmp), protocol=protocol))
    return path


def detectron2_style(rng: np.random.Generator) -> dict:
    """A detectron2 model-zoo file's content: ``{"model": {name: array}, "__author__", "matching_heuristics"}``."""
    model = {
        "backbone.stem.conv1.weight": rng.standard_normal((8, 3, 7, 7)).astype(np.float32),
        "backbone.stem.conv1.norm.bias": rng.standard_normal(8).astype(np.float32),
        "roi_heads.box_predictor.cls_score.weight": np.asfortranarray(rng.standard_normal((4, 6)).astype(np.float32)),
        "proposal_generator.anchor_generator.cell_anchors.0": rng.integers(-9, 9, (3, 4)).astype(np.int64),
        "empty": np.zeros((0, 5), np.float32),
        "num_batches_tracked": np.int64(7),  # a numpy scalar, not an array
    }
    return {"model": model, "__author__": "Detectron2 Model Zoo", "matching_heuristics": True}


def assert_same(loaded, original) -> None:
    assert type(loaded) is type(original)
    if isinstance(original, dict):
        assert list(loaded) == list(original)
        for k in original:
            assert_same(loaded[k], original[k])
    elif isinstance(original, (np.ndarray, np.generic)):
        assert loaded.dtype == original.dtype and loaded.shape == original.shape
        assert np.array_equal(loaded, original)
    else:
        assert loaded == original


# ------------------------------------------------------------------------------------------ the reader
@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_detectron2_style_pkl_loads_to_the_same_arrays(tmp_path, protocol):
    data = detectron2_style(np.random.default_rng(protocol))
    path = tmp_path / "model_final.pkl"
    with open(path, "wb") as f:
        pickle.dump(data, f, protocol=protocol)
    loaded = load_pickle(path)
    assert_same(loaded, data)
    assert_same(loaded, pickle.loads(path.read_bytes(), encoding="latin1"))  # what pickle.load gives (trusted here)
    bare = data["model"]  # a bare dict of arrays (Caffe2 / converted ImageNet backbones)
    assert_same(loads_pickle(pickle.dumps(bare, protocol=protocol)), bare)


def test_numpy_1_names_are_read_too():
    """Files written under numpy 1 name ``numpy.core.multiarray`` (numpy 2: ``numpy._core``)."""
    arr = np.arange(12, dtype=np.float32).reshape(3, 4)
    data = pickle.dumps({"a": arr, "s": np.float32(1.5)}, protocol=2)  # GLOBAL opcodes: plain text names
    old = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"numpy.core.multiarray\n_reconstruct" in old
    assert_same(loads_pickle(old), {"a": arr, "s": np.float32(1.5)})


@pytest.mark.parametrize(
    "make, refused",
    [
        (_evil_open, "'io.open'"),
        (_evil_system, f"'{os.system.__module__}.system'"),
        (lambda tmp: _Payload(eval, f"open({str(tmp / MARKER)!r}, 'w')"), "'builtins.eval'"),
        (lambda tmp: _Payload(np.save, str(tmp / MARKER), np.zeros(1)), "'numpy.save'"),  # numpy, but not an array
    ],
)
@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_pickles_that_run_code_are_refused_before_running(tmp_path, make, refused, protocol):
    path = write_evil(tmp_path, make=make, protocol=protocol)
    refused = refused.replace("builtins.", "__builtin__." if protocol < 3 else "builtins.")  # pickle's names
    with pytest.raises(UnsafePickleError, match=rf"^{path}: refused to unpickle the global {refused}") as e:
        load_pickle(path)
    assert isinstance(e.value, ValueError) and isinstance(e.value, pickle.UnpicklingError)
    assert "\n" not in str(e.value)
    assert not (tmp_path / MARKER).exists(), "the pickle's code ran"


def test_allowed_helpers_refuse_other_arguments():
    """The protocol-2 ``bytes`` helpers cannot be turned into something else (another codec, a huge buffer)."""
    import codecs

    codec = pickle.dumps(_Payload(codecs.encode, "a", "rot13"), protocol=2)  # GLOBAL _codecs encode
    with pytest.raises(UnsafePickleError, match="<bytes>: _codecs.encode is allowed only for latin-1 text"):
        loads_pickle(codec)
    huge = pickle.dumps(_Payload(bytes, 10**15), protocol=2)  # GLOBAL __builtin__ bytes
    with pytest.raises(UnsafePickleError, match="builtins.bytes is allowed only without arguments or on bytes"):
        loads_pickle(huge)


# ------------------------------------------------------------------------------------------ the person detector
@pytest.fixture(scope="module")
def d2_weights(tmp_path_factory):
    """The same random R50-FPN weights as a detectron2 ``.pth`` and as a model-zoo ``.pkl`` of numpy arrays."""
    from detectron2 import model_zoo
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.modeling import build_model

    cfg = model_zoo.get_config("COCO-Detection/faster_rcnn_R_50_FPN_3x.yaml")
    cfg.MODEL.DEVICE = "cpu"
    torch.manual_seed(0)
    model = build_model(cfg)
    out = tmp_path_factory.mktemp("d2_pkl")
    DetectionCheckpointer(model, save_dir=str(out)).save("weights")
    arrays = {k: v.numpy() for k, v in model.state_dict().items()}
    for name, extra in (("zoo.pkl", {}), ("heuristics.pkl", {"matching_heuristics": True})):
        with open(out / name, "wb") as f:
            pickle.dump({"model": arrays, "__author__": "Detectron2 Model Zoo", **extra}, f)
    return out


@pytest.mark.parametrize("name", ["zoo.pkl", "heuristics.pkl"])
def test_detectron2_detector_loads_a_model_zoo_pkl_like_the_pth(d2_weights, name):
    from vmae_det.data.person_detector import build_person_detector

    want = build_person_detector("detectron2", weights=str(d2_weights / "weights.pth")).predictor.model.state_dict()
    got = build_person_detector("detectron2", weights=str(d2_weights / name)).predictor.model.state_dict()
    assert list(got) == list(want)
    for k in want:
        assert torch.equal(got[k], want[k]), k


def test_detectron2_detector_refuses_a_malicious_pkl_or_pth(tmp_path):
    from vmae_det.data.person_detector import DetectorWeightsError, build_person_detector

    for path in (write_evil(tmp_path), write_evil(tmp_path, "evil.pth", _evil_system, protocol=2)):
        with pytest.raises(DetectorWeightsError, match=f"^{path}: "):
            build_person_detector("detectron2", weights=str(path))
        assert not (tmp_path / MARKER).exists(), "the pickle's code ran"


# ------------------------------------------------------------------------------------------ through the tools
@pytest.fixture(scope="module")
def data(tmp_path_factory, tiny_ava_videos) -> Path:
    """A demo config, checkpoint and video, and a tiny AVA root with one validation video."""
    from demo_helpers import CONFIG, make_video

    from vmae_det.modeling.tiny_action_model import TinyActionModel

    d = tmp_path_factory.mktemp("safe_pickle_cli")
    make_video(d / "clip.mp4", 40, size=(64, 48))
    (d / "cfg.py").write_text(CONFIG)
    torch.manual_seed(0)
    torch.save({"model": TinyActionModel(num_classes=3).state_dict()}, d / "w.pth")
    shutil.copytree(tiny_ava_videos, d / "ava")
    return d


DEMO = [
    "--config-file",
    "{data}/cfg.py",
    "--checkpoint",
    "{data}/w.pth",
    "--input",
    "{data}/clip.mp4",
    "--output",
    "{tmp}/out",
    "--device",
    "cpu",
    "--no-progress",
    "--person-detector",
    "detectron2",
]
PROPOSALS = ["--root", "{data}/ava", "--split", "val", "--output", "{tmp}/p.csv", "--detector", "detectron2"]
REFUSED = "refused to unpickle the global"

CASES = [
    BadInput(
        "demo_pkl_open",
        "demo",
        [*DEMO, "--person-weights", "{tmp}/evil.pkl"],
        ["error: {tmp}/evil.pkl: " + REFUSED + " 'io.open'"],
        rc=2,
        setup=lambda t: write_evil(t),
    ),
    BadInput(
        "demo_pkl_system",
        "demo",
        [*DEMO, "--person-weights", "{tmp}/evil.pkl"],
        ["error: {tmp}/evil.pkl: " + REFUSED, "system'"],
        rc=2,
        setup=lambda t: write_evil(t, make=_evil_system, protocol=2),
    ),
    BadInput(
        "make_proposals_pkl_open",
        "make_proposals",
        [*PROPOSALS, "--weights", "{tmp}/evil.pkl"],
        ["error: {tmp}/evil.pkl: " + REFUSED + " 'io.open'"],
        rc=2,
        setup=lambda t: write_evil(t),
    ),
    BadInput(
        "make_proposals_pth_system",
        "make_proposals",
        [*PROPOSALS, "--weights", "{tmp}/evil.pth"],
        ["error: {tmp}/evil.pth: cannot read the person-detector weights"],
        rc=2,
        setup=lambda t: write_evil(t, "evil.pth", _evil_system, protocol=2),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_tools_refuse_a_malicious_pickle(case, tmp_path, data):
    proc = run_case(case, tmp_path, data)
    assert not (tmp_path / MARKER).exists(), "the pickle's code ran"
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and proc.stderr.rstrip().splitlines()[-1] == errors[0], proc.stderr[-2000:]
    assert not (tmp_path / "p.csv").exists() and not (tmp_path / "out").exists()
