"""Tube evaluator vs MultiSports' official ``evaluate_multisports.py``, end to end (pickles read, APs computed), on
~250 k frame detections and ~6 k detected tubes; both in this process, same inputs, same machine.

    python benchmarks/bench_tube_eval.py --official /tmp/multisports/evaluate_multisports.py [--rows 250000]

The official file runs with the numpy >= 2.4 fix applied at run time (tests/reference/make_tube_reference.py).
Prints the times, the ratio and both mAPs (they must be equal).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import pickle
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))
import make_tube_reference as ref

from vmae_det.evaluation import tubes
from vmae_det.formats.act import load_groundtruth

W, H = 1280.0, 720.0


def build(rows_wanted, tubes_per_gt=3, seed=0, n_videos=60, n_labels=10, nframes=1500):
    rng = np.random.default_rng(seed)
    videos = [f"vid{i:03d}" for i in range(n_videos)]
    gttubes = {}
    for v in videos:
        gttubes[v] = {}
        for il in range(n_labels):
            k = int(rng.integers(0, 3))
            if k:
                gttubes[v][il] = []
                for _ in range(k):
                    n = int(rng.integers(30, 200))
                    f0 = int(rng.integers(0, nframes - n))
                    x, y = rng.uniform(0, W - 200), rng.uniform(0, H - 200)
                    b = np.array([x, y, x + rng.uniform(50, 200), y + rng.uniform(50, 200)]) + rng.normal(0, 3, (n, 4))
                    gttubes[v][il].append(np.column_stack([np.arange(f0, f0 + n), b]).astype(np.float32))
    gt = {
        "labels": [f"class {i}" for i in range(n_labels)],
        "gttubes": gttubes,
        "nframes": {v: nframes for v in videos},
        "train_videos": [[]],
        "test_videos": [videos],
        "resolution": {v: (int(H), int(W)) for v in videos},
    }
    rows, vd = [], {il: [] for il in range(n_labels)}
    for iv, v in enumerate(videos):
        for il, tl in gttubes[v].items():
            for t in tl:
                for _ in range(2):
                    lab = np.where(rng.random(len(t)) < 0.8, il, rng.integers(0, n_labels, len(t)))
                    rows.append(
                        np.column_stack(
                            [
                                np.full(len(t), iv),
                                t[:, 0],
                                lab,
                                rng.random(len(t)),
                                t[:, 1:5] + rng.normal(0, 15, (len(t), 4)),
                            ]
                        )
                    )
                for _ in range(tubes_per_gt):
                    a, b = sorted(rng.integers(0, len(t), 2))
                    seg = t[a : b + 1]
                    tube = np.column_stack(
                        [seg[:, 0], seg[:, 1:5] + rng.normal(0, 10, (len(seg), 4)), rng.random(len(seg))]
                    ).astype(np.float32)
                    vd[il if rng.random() < 0.8 else int(rng.integers(0, n_labels))].append(
                        (v, float(rng.random()), tube)
                    )
    fd = np.concatenate(rows)
    extra = max(0, rows_wanted - len(fd))
    x, y = rng.uniform(0, W - 200, extra), rng.uniform(0, H - 200, extra)
    fd = np.concatenate(
        [
            fd,
            np.column_stack(
                [
                    rng.integers(0, n_videos, extra),
                    rng.integers(0, nframes, extra),
                    rng.integers(0, n_labels, extra),
                    rng.random(extra),
                    x,
                    y,
                    x + rng.uniform(30, 200, extra),
                    y + rng.uniform(30, 200, extra),
                ]
            ),
        ]
    )
    return gt, fd.astype(np.float32), vd


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--official", default="/tmp/multisports/evaluate_multisports.py")
    ap.add_argument("--rows", type=int, default=250_000)
    ap.add_argument("--tubes-per-gt", type=int, default=10, help="detected tubes per ground-truth tube")
    args = ap.parse_args()
    off = ref.load_official(args.official)
    gt, fd, vd = build(args.rows, args.tubes_per_gt)
    print(
        f"{len(fd)} frame detections, {sum(map(len, vd.values()))} detected tubes, "
        f"{sum(len(t) for v in gt['gttubes'].values() for t in v.values())} ground-truth tubes"
    )
    with tempfile.TemporaryDirectory() as tmp:
        g, f, v = (os.path.join(tmp, n) for n in ("gt.pkl", "fd.pkl", "vd.pkl"))
        for p, obj in ((g, gt), (f, fd), (v, vd)):
            with open(p, "wb") as fh:
                pickle.dump(obj, fh)

        def ours_frame():
            gt_ = load_groundtruth(g)
            return tubes.frame_ap(gt_, tubes.load_frame_detections(f, gt_), 0.5)

        def ours_video():
            gt_ = load_groundtruth(g)
            return tubes.video_ap(gt_, tubes.load_video_detections(v, gt_), 0.5)

        for task, thr, det, ours in (("frameAP", 0.5, f, ours_frame), ("videoAP", 0.5, v, ours_video)):
            t0 = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                official = off[task](g, det, thr, print_info=False)
            t_off = time.perf_counter() - t0
            t0 = time.perf_counter()
            mine = ours()["mAP_percent"]
            t_ours = time.perf_counter() - t0
            print(
                f"{task}@{thr}: official {t_off:.2f} s, ours {t_ours:.2f} s, {t_off / t_ours:.1f}x; "
                f"mAP official {official!r} ours {mine!r} ({'equal' if official == mine else 'DIFFERENT'})"
            )


if __name__ == "__main__":
    main()
