"""Reference numbers of MultiSports' official ``evaluate_multisports.py`` for tests/evaluation/test_tube_eval.py.

Builds deterministic random and edge-case inputs (:func:`build_cases`: classes without ground truth or detections,
one of the six skipped class names, videos without detections, equal scores, detected tubes shorter / longer than
the ground truth, boxes on the frame border, float32 and float64 arrays), runs the official evaluator on them and
writes ``tests/reference/tube_reference.json`` (numbers only; the official code is not part of this repository).

    git clone https://github.com/MCG-NJU/MultiSports /tmp/multisports
    python tests/reference/make_tube_reference.py --official /tmp/multisports/evaluate_multisports.py

The official file is executed with two changes made at run time only: the numpy >= 2.4 fix of ``iou3dt_voc``
(``int(np.where(...)[0])`` -> ``np.where(...)[0][0]``, see /work/shared/reference-facts.md) and ``videoAP_all``
returning the three means it prints.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import pickle
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "tube_reference.json")
LABELS = ["run", "jump", "aerobic kick jump", "throw", "catch", "empty class"]  # 2: skipped; 5: no GT
W, H = 320.0, 240.0


def _gt_tube(rng, nframes, dtype):
    length = int(rng.integers(3, 25))
    start = int(rng.integers(0, nframes - length))
    x1, y1 = rng.uniform(-10, W - 60), rng.uniform(-10, H - 60)
    w, h = rng.uniform(20, 120), rng.uniform(20, 120)
    rows = []
    for k in range(length):
        dx, dy = rng.normal(0, 3, 2)
        b = np.clip([x1 + dx, y1 + dy, x1 + dx + w, y1 + dy + h], 0, [W, H, W, H])  # border boxes
        rows.append([start + k, *b])
    return np.array(rows, dtype=dtype)


def build_case(seed, n_videos=6, dtype_gt=np.float32, dtype_det=np.float32, ties=False):
    rng = np.random.default_rng(seed)
    videos = [f"v_{seed}_{i}" for i in range(n_videos)]
    nframes = {v: 60 for v in videos}
    gttubes = {}
    for v in videos:
        gttubes[v] = {}
        for il in (0, 1, 2, 3, 4):
            k = int(rng.integers(0, 3))
            if il == 4 and v != videos[0]:
                k = 0  # class 4: ground truth in one video only
            if k:
                gttubes[v][il] = [_gt_tube(rng, 60, dtype_gt) for _ in range(k)]
    gt = {
        "labels": LABELS,
        "gttubes": gttubes,
        "nframes": nframes,
        "train_videos": [[]],
        "test_videos": [videos],
        "resolution": {v: (int(H), int(W)) for v in videos},
    }
    # frame detections: jittered GT boxes (some with a wrong label), random false ones; none in the last video
    rows = []
    for iv, v in enumerate(videos[:-1]):
        for il, tubes in gttubes[v].items():
            for t in tubes:
                for r in t:
                    if rng.random() < 0.8:
                        lab = il if rng.random() < 0.85 else int(rng.integers(0, 5))
                        b = r[1:5] + rng.normal(0, 6, 4)
                        s = rng.random()
                        rows.append([iv, r[0], lab, s, *b])
                        if rng.random() < 0.2:  # duplicate
                            rows.append([iv, r[0], lab, rng.random(), *(b + rng.normal(0, 2, 4))])
        for _ in range(40):
            x, y = rng.uniform(0, W - 30), rng.uniform(0, H - 30)
            rows.append(
                [
                    iv,
                    int(rng.integers(0, 60)),
                    int(rng.integers(0, 5)),
                    rng.random(),
                    x,
                    y,
                    min(x + rng.uniform(10, 100), W),
                    min(y + rng.uniform(10, 100), H),
                ]
            )
    fd = np.array(rows, dtype=dtype_det)
    if ties:
        fd[:, 3] = np.round(fd[:, 3] * 4) / 4
    # video detections: GT tubes trimmed / extended / shifted, and random tubes; none for class 1 in video 0
    vd = {il: [] for il in range(len(LABELS))}
    for v in videos[:-1]:
        for il, tubes in gttubes[v].items():
            if il == 1 and v == videos[0]:
                continue
            for t in tubes:
                for _ in range(int(rng.integers(1, 3))):
                    a, b = int(rng.integers(-4, 4)), int(rng.integers(-4, 4))
                    f0, f1 = int(t[0, 0]) + a, int(t[-1, 0]) + b
                    if f1 < f0:
                        f0, f1 = f1, f0
                    frames = np.arange(f0, f1 + 1)
                    src = t[np.clip(frames - int(t[0, 0]), 0, len(t) - 1), 1:5].astype(np.float64)
                    box = np.clip(src + rng.normal(0, 5, src.shape), 0, [W, H, W, H])
                    tube = np.column_stack([frames, box, rng.random(len(frames))]).astype(dtype_det)
                    lab = il if rng.random() < 0.85 else int(rng.integers(0, 5))
                    score = float(np.round(rng.random() * 4) / 4) if ties else float(rng.random())
                    vd.setdefault(lab, []).append((v, score, tube))
        for _ in range(3):
            f0 = int(rng.integers(0, 50))
            frames = np.arange(f0, f0 + int(rng.integers(1, 10)))
            x, y = rng.uniform(0, W - 100), rng.uniform(0, H - 100)
            box = np.tile([x, y, x + 80, y + 90], (len(frames), 1))
            tube = np.column_stack([frames, box, np.ones(len(frames))]).astype(dtype_det)
            vd[int(rng.integers(0, 5))].append((v, float(rng.random()), tube))
    if seed % 2 == 0:
        vd[3] = []  # a class with ground truth and no detections (a missing key would crash the official)
    return gt, fd, vd


CASES = {
    "random_f32": dict(seed=1),
    "random_f64": dict(seed=2, dtype_gt=np.float64, dtype_det=np.float64),
    "mixed_gt64_det32": dict(seed=3, dtype_gt=np.float64, dtype_det=np.float32),
    "mixed_gt32_det64": dict(seed=6, dtype_gt=np.float32, dtype_det=np.float64),
    "ties_f32": dict(seed=4, ties=True),
    "ties_f64_many_videos": dict(seed=5, n_videos=15, dtype_gt=np.float64, dtype_det=np.float64, ties=True),
}
FRAME_THRS = [0.5, 0.3, 0.75]
VIDEO_THRS = [0.2, 0.5]


def build_edge_case():
    """Hand-made corner cases: one-frame tubes (ACT's temporal IoU 0 / 0 = nan), zero-area boxes (0 / 0 IoU),
    a class with ground truth but no frame detections, detections on frames without ground truth, exact duplicates
    with equal scores, boxes on the frame border, a detected tube covering the whole video."""
    f32 = np.float32
    videos = ["e0", "e1", "e2"]
    gttubes = {
        "e0": {
            0: [
                np.array([[5, 0, 0, W, H]], f32),  # one frame, whole image
                np.array([[k, 10, 10, 50, 50] for k in range(0, 20)], f32),
            ],
            1: [np.array([[k, 100, 100, 100, 140] for k in range(3, 9)], f32)],
        },  # zero width
        "e1": {
            0: [np.array([[k, W - 40, H - 40, W, H] for k in range(10, 30)], f32)],
            3: [np.array([[k, 0, 0, 30, 30] for k in range(0, 5)], f32)],
        },  # no frame detections
        "e2": {},
    }
    gt = {
        "labels": LABELS,
        "gttubes": gttubes,
        "nframes": {v: 40 for v in videos},
        "train_videos": [[]],
        "test_videos": [videos],
        "resolution": {v: (int(H), int(W)) for v in videos},
    }
    rows = [
        [0, 5, 0, 0.9, 0, 0, W, H],
        [0, 5, 0, 0.9, 0, 0, W, H],  # duplicates, equal scores
        [0, 5, 0, 0.9, 10, 10, 50, 50],
        [0, 3, 1, 0.5, 100, 100, 100, 140],  # zero-area match: nan
        [0, 25, 0, 0.7, 10, 10, 50, 50],  # frame without GT
        [1, 12, 0, 0.9, W - 41, H - 41, W, H],
        [1, 12, 0, 0.8, W - 40, H - 40, W, H],
        [2, 0, 0, 0.95, 0, 0, 10, 10],
        [1, 2, 4, 0.3, 0, 0, 10, 10],
    ]
    fd = np.array(rows, dtype=np.float64)
    one = lambda f, b: np.array([[f, *b, 1.0]], f32)
    vd = {
        0: [
            ("e0", 0.9, one(5, [0, 0, W, H])),
            ("e0", 0.9, one(5, [0, 0, W, H])),
            ("e0", 0.8, np.array([[k, 10, 10, 50, 50, 1] for k in range(0, 40)], f32)),  # longer than GT
            ("e1", 0.7, np.array([[k, W - 40, H - 40, W, H, 1] for k in range(15, 20)], f32)),  # shorter
            ("e2", 0.6, one(0, [0, 0, 5, 5])),
        ],
        1: [("e0", 0.5, np.array([[k, 100, 100, 100, 140, 1] for k in range(3, 9)], f32))],
        2: [],
        3: [],
        4: [("e0", 0.1, one(1, [0, 0, 1, 1]))],
        5: [("e1", 0.4, one(3, [0, 0, 1, 1]))],
    }
    return gt, fd, vd


def build_cases():
    cases = {name: build_case(**kw) for name, kw in CASES.items()}
    cases["edge"] = build_edge_case()
    return cases


def load_official(path):
    src = open(path).read()
    src = src.replace("int(np.where(b1[:, 0] == tmin)[0])", "np.where(b1[:, 0] == tmin)[0][0]")
    src = src.replace("int(np.where(b1[:, 0] == tmax)[0])", "np.where(b1[:, 0] == tmax)[0][0]")
    src = src.replace("int(np.where(b2[:, 0] == tmin)[0])", "np.where(b2[:, 0] == tmin)[0][0]")
    src = src.replace("int(np.where(b2[:, 0] == tmax)[0])", "np.where(b2[:, 0] == tmax)[0][0]")
    marker = "    print('VideoAP_0.50:0.95: {:8.2f} \\n'.format(high_ap))"
    assert marker in src and src.count("np.where(") >= 4
    src = src.replace(marker, marker + "\n    return low_ap, all_ap, high_ap")
    ns = {"__name__": "official_multisports"}
    exec(compile(src, path, "exec"), ns)
    ns["ap_calls"] = calls = []
    pr_to_ap_voc = ns["pr_to_ap_voc"]

    def recording(pr):  # records every class AP the official computes (each twice, in its result order)
        ap = pr_to_ap_voc(pr)
        calls.append(float(ap))
        return ap

    ns["pr_to_ap_voc"] = recording
    return ns


def _class_aps(off, fn, *args):
    off["ap_calls"].clear()
    mean = float(fn(*args))
    calls = list(off["ap_calls"])
    return mean, calls[: len(calls) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--official", default="/tmp/multisports/evaluate_multisports.py")
    args = ap.parse_args()
    off = load_official(args.official)
    out = {"numpy": np.__version__, "cases": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (gt, fd, vd) in build_cases().items():
            g, f, v = (os.path.join(tmp, f"{name}_{k}.pkl") for k in ("gt", "fd", "vd"))
            for p, obj in ((g, gt), (f, fd), (v, vd)):
                with open(p, "wb") as fh:
                    pickle.dump(obj, fh, protocol=2)
            res = {}
            with contextlib.redirect_stdout(io.StringIO()):
                for t in FRAME_THRS:
                    res[f"frameAP@{t!r}"], res[f"frameAP_classes@{t!r}"] = _class_aps(
                        off, off["frameAP"], g, f, t, False
                    )
                for t in VIDEO_THRS:
                    res[f"videoAP@{t!r}"], res[f"videoAP_classes@{t!r}"] = _class_aps(
                        off, off["videoAP"], g, v, t, False
                    )
                low, alla, high = off["videoAP_all"](g, v)
            res["videoAP_all"] = {
                "mAP_0.05:0.45": float(low),
                "mAP_0.10:0.90": float(alla),
                "mAP_0.50:0.95": float(high),
            }
            out["cases"][name] = res
            print(name, res)
    with open(OUT, "w") as fh:
        json.dump(out, fh, indent=1)
        fh.write("\n")


if __name__ == "__main__":
    main()
