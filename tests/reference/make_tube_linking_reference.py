"""Reference tubes of MOC-Detector's official linking for tests/evaluation/test_tube_linking.py.

Builds deterministic per-frame detections (:func:`build_cases`: people moving through the video with a score for
every class, false boxes, frames without detections, exact duplicates and equal scores, more than ``top_k`` boxes
in a frame, low-score and short tracks, detections on the first and last frame, a video without detections, float32
and float64 arrays), runs the official linking on them (MOC-Detector ``src/ACT_utils/ACT_build.py`` ``BuildTubes``
with K = 1, then the per-video ``nms3dt(tubes, 0.3)`` of ``src/ACT.py`` ``videoAP``) and writes
``tests/reference/tube_linking_reference.npz`` (numbers only; the official code is not part of this repository).

    git clone https://github.com/MCG-NJU/MOC-Detector /tmp/moc
    python tests/reference/make_tube_linking_reference.py --official /tmp/moc/src

The official files run unchanged, except the numpy >= 2.4 fix of ``iou3dt`` (``int(np.where(...)[0])`` ->
``np.where(...)[0][0]``) applied at run time, with stand-ins for their dataset class, options and progress bar.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import pickle
import re
import sys
import tempfile
import types

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "tube_linking_reference.npz")
W, H = 320.0, 240.0


def build_case(seed, n_videos=4, nframes=70, n_labels=4, dtype=np.float32, ties=False, crowd=False):
    """``(frame_dets (N, 8), videos, nframes, n_labels)``: the official frame-detection layout."""
    rng = np.random.default_rng(seed)
    videos = [f"sport/v_{seed}_{i}" for i in range(n_videos)]
    rows = []
    for iv in range(n_videos - 1):  # the last video has no detections
        for person in range(int(rng.integers(3, 6))):  # people; the first one scored low (tubes under min_score)
            start = int(rng.integers(1, nframes // 2))
            end = int(rng.integers(start + 5, nframes + 1))
            x, y = rng.uniform(-5, W - 80), rng.uniform(-5, H - 100)
            w, h = rng.uniform(30, 90), rng.uniform(40, 110)
            probs = rng.dirichlet(np.ones(n_labels) * 0.5)
            for f in range(start, end + 1):
                if rng.random() < 0.06:
                    continue  # a missed frame ends the official's tube (K = 1)
                x, y = x + rng.normal(0, 4), y + rng.normal(0, 4)
                box = np.clip([x, y, x + w, y + h], 0, [W, H, W, H])
                scores = np.clip(probs + rng.normal(0, 0.05, n_labels), 0.001, 1)
                if person == 0:
                    scores = rng.uniform(0.001, 0.008, n_labels)
                if ties:
                    scores = np.round(scores, 1) + 0.05
                for il in range(n_labels):
                    rows.append([iv, f, il, scores[il], *box])
                if rng.random() < 0.1:  # an exact duplicate: equal boxes, equal scores
                    rows.append(list(rows[-1]))
        for _ in range(int(rng.integers(20, 60))):  # false boxes
            f = int(rng.integers(1, nframes + 1))
            x, y = rng.uniform(0, W - 50), rng.uniform(0, H - 50)
            s = round(rng.random(), 1) if ties else rng.random() * 0.3
            rows.append([iv, f, int(rng.integers(0, n_labels)), s, x, y, x + rng.uniform(10, 50), y + 40])
        rows.append([iv, 1, 0, 0.5, 0, 0, 20, 20])  # first and last frame
        rows.append([iv, nframes, 0, 0.5, 0, 0, 20, 20])
    if crowd:  # more than top_k = 10 boxes of one class in a frame, many overlapping (soft-NMS weights)
        for f in range(10, 40):
            for k in range(25):
                x = 5.0 * k + rng.normal(0, 1)
                s = round(rng.random(), 1) if ties else rng.random()
                rows.append([0, f, 1, s, x, 50, x + 60, 150])
    order = rng.permutation(len(rows))
    fd = np.array(rows, dtype=np.float64)[order].astype(dtype)
    return fd, videos, {v: nframes for v in videos}, n_labels


CASES = {
    "random_f32": dict(seed=1),
    "random_f64": dict(seed=2, dtype=np.float64),
    "ties_f32": dict(seed=3, ties=True),
    "crowd_f32": dict(seed=4, crowd=True),
    "crowd_ties_f64": dict(seed=5, crowd=True, ties=True, dtype=np.float64),
    "long_f32": dict(seed=6, n_videos=3, nframes=400, n_labels=3),
}


def build_cases():
    return {name: build_case(**kw) for name, kw in CASES.items()}


def load_official(src):
    """``.link(frame_dets, videos, nframes, n_labels)``: the official BuildTubes (K = 1) and per-video nms3dt;
    ``.write_inputs(folder, ...)`` and ``.run(folder, videos, nframes, n_labels)``, its two halves."""
    utils = types.ModuleType("ACT_utils_official")
    code = open(os.path.join(src, "ACT_utils", "ACT_utils.py")).read()
    code = re.sub(r"int\((np\.where\([^()]*\)\[0\])\)", r"\1[0]", code)  # numpy >= 2.4
    exec(compile(code, "ACT_utils.py", "exec"), utils.__dict__)
    build = open(os.path.join(src, "ACT_utils", "ACT_build.py")).read()
    build = build.replace("from progress.bar import Bar", "").replace(
        "from datasets.init_dataset import get_dataset", ""
    )
    build = build.replace("from .ACT_utils import nms2d, nms_tubelets, iou2d", "")

    class Bar:
        suffix = ""
        elapsed_td = eta_td = 0

        def __init__(self, *a, **k):
            pass

        def next(self):
            pass

        def finish(self):
            pass

    def write_inputs(folder, frame_dets, videos, nframes, n_labels):
        """The per-frame tubelet pickles the official reads (K = 1): ``{label + 1: (n, 5) x1 y1 x2 y2 score}``."""
        for iv, v in enumerate(videos):
            os.makedirs(os.path.join(folder, v), exist_ok=True)
            dv = frame_dets[frame_dets[:, 0] == iv]
            for f in range(1, nframes[v] + 1):
                df = dv[dv[:, 1] == f]
                per_label = {il + 1: df[df[:, 2] == il][:, [4, 5, 6, 7, 3]] for il in range(n_labels)}
                with open(os.path.join(folder, v, f"{f:05d}.pkl"), "wb") as fh:
                    pickle.dump(per_label, fh)

    def run(folder, videos, nframes, n_labels):
        class Dataset:
            def __init__(self, opt, split):
                self._test_videos = [list(videos)]
                self._nframes = dict(nframes)
                self.labels = [f"c{i}" for i in range(n_labels)]

        ns = dict(utils.__dict__, Bar=Bar, get_dataset=lambda name: Dataset, __name__="ACT_build_official")
        exec(compile(build, "ACT_build.py", "exec"), ns)
        opt = types.SimpleNamespace(redo=True, dataset="x", inference_dir=folder, K=1, split=1)
        with contextlib.redirect_stdout(io.StringIO()):
            ns["BuildTubes"](opt)
        alldets = {il: [] for il in range(n_labels)}
        for v in videos:  # src/ACT.py videoAP
            with open(os.path.join(folder, v + "_tubes.pkl"), "rb") as fh:
                tubes = pickle.load(fh)
            for il in range(n_labels):
                ltubes = tubes[il]
                idx = utils.nms3dt(ltubes, 0.3)
                alldets[il] += [(v, ltubes[i][1], ltubes[i][0]) for i in idx]
        return alldets

    def link(frame_dets, videos, nframes, n_labels):
        with tempfile.TemporaryDirectory() as tmp:
            write_inputs(tmp, frame_dets, videos, nframes, n_labels)
            return run(tmp, videos, nframes, n_labels)

    return types.SimpleNamespace(link=link, write_inputs=write_inputs, run=run)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--official", required=True, help="MOC-Detector's src folder")
    args = ap.parse_args()
    link = load_official(args.official).link
    out = {}
    for name, case in build_cases().items():
        res = link(*case)
        videos = case[1]
        # one row per tube: label, video index, score, number of rows; then all tubes' rows
        out[name + "/tubes"] = np.array(
            [[il, videos.index(v), score, len(t)] for il, lst in res.items() for v, score, t in lst], np.float64
        ).reshape(-1, 4)
        out[name + "/rows"] = np.concatenate([t for lst in res.values() for _, _, t in lst] or [np.zeros((0, 6))])
        print(name, {il: len(lst) for il, lst in res.items()}, file=sys.stderr)
    np.savez_compressed(OUT, **out)


if __name__ == "__main__":
    main()
