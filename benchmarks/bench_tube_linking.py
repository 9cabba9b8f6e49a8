"""Tube linking vs MOC-Detector's official BuildTubes (K = 1) + nms3dt, on ~250 k frame detections; both in this
process, same inputs, same machine, timed one after the other.

    python benchmarks/bench_tube_linking.py --official /tmp/moc/src [--rows 250000]

The official reads one pickle per frame (its input layout): writing them is not timed, reading them is. Ours gets
the (N, 8) array. Prints both times, the ratio and whether the tubes are equal.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))
import make_tube_linking_reference as ref  # noqa: E402

from vmae_det.evaluation.tube_linking import link_tubes  # noqa: E402

W, H = 1280.0, 720.0


def build(rows_wanted, n_labels=8, nframes=500, people=3, seed=0):
    """People tracked through every video, each box scored for every class (a single-label head's softmax rows),
    a few missed frames and false boxes."""
    rng = np.random.default_rng(seed)
    per_video = nframes * people * n_labels
    n_videos = max(1, rows_wanted // per_video)
    rows = []
    for iv in range(n_videos):
        for _ in range(people):
            x, y = rng.uniform(0, W - 200), rng.uniform(0, H - 300)
            w, h = rng.uniform(60, 200), rng.uniform(120, 300)
            probs = rng.dirichlet(np.ones(n_labels) * 0.3)
            f = np.arange(1, nframes + 1)
            f = f[rng.random(nframes) > 0.03]
            xy = np.cumsum(rng.normal(0, 3, (len(f), 2)), axis=0) + [x, y]
            box = np.column_stack([xy, xy + [w, h]])
            scores = np.clip(probs + rng.normal(0, 0.03, (len(f), n_labels)), 1e-4, 1)
            for il in range(n_labels):
                rows.append(np.column_stack([np.full(len(f), iv), f, np.full(len(f), il), scores[:, il], box]))
    fd = np.concatenate(rows).astype(np.float32)
    videos = [f"sport/v{i:03d}" for i in range(n_videos)]
    return fd, videos, {v: nframes for v in videos}, n_labels


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--official", required=True, help="MOC-Detector's src folder")
    ap.add_argument("--rows", type=int, default=250_000)
    args = ap.parse_args()
    official = ref.load_official(args.official)
    fd, videos, nframes, n_labels = build(args.rows)
    print(f"{len(fd)} frame detections, {len(videos)} videos x {nframes[videos[0]]} frames, {n_labels} classes")
    with tempfile.TemporaryDirectory() as tmp:
        official.write_inputs(tmp, fd, videos, nframes, n_labels)
        t0 = time.perf_counter()
        theirs = official.run(tmp, videos, nframes, n_labels)
        t_off = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours = link_tubes(fd, videos, nframes, num_labels=n_labels)
    t_ours = time.perf_counter() - t0
    flat = lambda r: [(il, v, float(s), t.tobytes()) for il, lst in r.items() for v, s, t in lst]
    equal = flat(ours) == flat(theirs)
    print(
        f"linking: official {t_off:.2f} s, ours {t_ours:.2f} s, {t_off / t_ours:.1f}x; "
        f"{sum(map(len, ours.values()))} tubes ({'equal' if equal else 'DIFFERENT'})"
    )


if __name__ == "__main__":
    main()
