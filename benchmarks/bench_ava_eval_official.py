"""AVA frame-mAP end to end: ``python -m vmae_det.evaluation.ava_cli`` against ActivityNet's official
``get_ava_performance.py``, each from process start to printed mAP (CSV parsing included), same files,
same machine, one run. Prints wall time, CPU time (user + system: less sensitive than wall time to other
processes on a shared machine), peak RSS, the ratios, the load average after each size, and checks that both
mAPs are equal to the last digit (ours as printed, and in ``ava_metrics.json`` from a second, untimed run with
``--output-dir``).

The official code is not part of this project: pass a checkout of its ``Evaluation`` folder
(https://github.com/activitynet/ActivityNet, ``Evaluation/get_ava_performance.py`` + ``Evaluation/ava``).
It is run as its docstring's example usage runs it: ``python -O get_ava_performance.py -l LABELMAP -g GT -d DET``
(``-O``: its per-row ``assert`` is off), from the ``Evaluation`` folder with ``ava`` on the path (its modules
import each other by bare name), on the same label map (AVA v2.1's 60 classes) as ours.
It predates NumPy 1.24, so it runs with a ``sitecustomize`` that restores the removed ``np.float``/
``np.int``/``np.bool`` aliases (nothing else). Its current script is the 2020 protocol (keys with six
decimals, no excluded timestamps), so ours runs with ``--protocol 2020``.

    python benchmarks/bench_ava_eval_official.py --official /path/to/ActivityNet/Evaluation \
        [--sizes 300000 10000000] [--keep-files DIR]

Sizes are detection rows: 50 per keyframe for the small case (the official per-keyframe cap), and for a
full AVA-val-sized file 3 boxes x 60 classes = 180 rows per keyframe (~57k keyframes for 10 M rows).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIM = """import numpy as np
for _n, _t in (("float", float), ("int", int), ("bool", bool), ("object", object)):
    if not hasattr(np, _n):
        setattr(np, _n, _t)
"""


def label_map_ids(path: str) -> list:
    return [int(m) for m in re.findall(r"(?:label_id|id):\s*(\d+)", open(path).read())]


def synth(folder: str, rows: int, seed: int = 0) -> tuple:
    """Ground truth (1-5 people, 1-3 actions each) and detections near the people, 60 classes."""
    from vmae_det.evaluation.ava_io import DEFAULT_LABEL_MAP

    ids = np.array(label_map_ids(DEFAULT_LABEL_MAP))
    per_kf = 50 if rows <= 1_000_000 else 180
    keyframes = -(-rows // per_kf)
    rng = np.random.default_rng(seed)
    gt_path, det_path = os.path.join(folder, "gt.csv"), os.path.join(folder, "det.csv")
    with open(gt_path, "w") as fg, open(det_path, "w") as fd:
        for start in range(0, keyframes, 2000):
            n = min(2000, keyframes - start)
            kf = np.arange(start, start + n)
            vids = [f"vid{k // 900:07d}" for k in kf]  # 11 characters, as AVA's ids
            stamps = [f"{902 + k % 900:04d}" for k in kf]
            people = rng.integers(1, 6, n)
            gt_lines, det_lines = [], []
            for i in range(n):
                x1, y1 = rng.uniform(0, 0.7, people[i]), rng.uniform(0, 0.5, people[i])
                box = np.stack(
                    [x1, y1, x1 + rng.uniform(0.1, 0.3, people[i]), y1 + rng.uniform(0.2, 0.5, people[i])], 1
                )
                for p in range(people[i]):
                    for a in rng.choice(ids, rng.integers(1, 4), replace=False):
                        coords = ",".join(f"{v:.3f}" for v in box[p])
                        gt_lines.append(f"{vids[i]},{stamps[i]},{coords},{a},{p}\n")
                which = rng.integers(0, people[i], per_kf)
                jit = np.clip(box[which] + rng.normal(0, 0.03, (per_kf, 4)), 0, 1)
                acts = rng.choice(ids, per_kf) if per_kf == 50 else np.tile(ids, per_kf // len(ids) + 1)[:per_kf]
                sc = rng.random(per_kf)
                det_lines += [
                    f"{vids[i]},{stamps[i]},{b[0]:.3f},{b[1]:.3f},{b[2]:.3f},{b[3]:.3f},{a},{s:.4f}\n"
                    for b, a, s in zip(jit.tolist(), acts.tolist(), sc.tolist())
                ]
            fg.writelines(gt_lines)
            fd.writelines(det_lines[: max(0, rows - start * per_kf)])
    return gt_path, det_path


def timed(cmd, env=None, cwd=None) -> tuple:
    """(wall seconds, CPU seconds, peak RSS MiB, stdout) of one child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    out = proc.stdout.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{cmd[:3]} failed:\n{out[-3000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--official", required=True, help="ActivityNet's Evaluation folder")
    ap.add_argument("--sizes", type=int, nargs="+", default=[300_000, 10_000_000])
    ap.add_argument("--keep-files", default=None, help="write the synthetic CSVs here instead of a temp folder")
    args = ap.parse_args()
    script = os.path.join(args.official, "get_ava_performance.py")
    if not os.path.isfile(script):
        sys.exit(f"error: {script} not found (pass ActivityNet's Evaluation folder)")
    from vmae_det.evaluation.ava_io import DEFAULT_LABEL_MAP

    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "sitecustomize.py"), "w") as f:
            f.write(SHIM)
        official_env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.join(args.official, "ava"), tmp])}
        print(
            f"official: python -O {script} -l LABELMAP -g GT -d DET (its example usage); "
            f"ours: python -m vmae_det.evaluation.ava_cli --protocol 2020; load average {os.getloadavg()[0]:.2f}"
        )
        print(
            f"{'rows':>10} {'official s':>11} {'ours s':>8} {'ratio':>7} {'CPU s off/ours':>13} {'CPU ratio':>9} "
            f"{'official MiB':>13} {'ours MiB':>9} {'load':>5}  mAP"
        )
        for rows in args.sizes:
            folder = args.keep_files or tmp
            os.makedirs(folder, exist_ok=True)
            gt, det = synth(folder, rows)
            t_off, c_off, m_off, out_off = timed(
                [sys.executable, "-O", script, "-l", DEFAULT_LABEL_MAP, "-g", gt, "-d", det],
                env=official_env,
                cwd=args.official,
            )
            # its pprint of np.float64 is the shortest repr, so float() gives back the exact value
            found = re.search(r"'PascalBoxes_Precision/mAP@0\.5IOU':\s*(?:np\.float64\()?([-0-9.eE+]+|nan)", out_off)
            if not found:
                raise RuntimeError(f"no mAP in the official output:\n{out_off[-2000:]}")
            official_map = float(found.group(1))
            ours_cmd = [
                sys.executable,
                "-m",
                "vmae_det.evaluation.ava_cli",
                "-l",
                DEFAULT_LABEL_MAP,
                "-g",
                gt,
                "-d",
                det,
                "--protocol",
                "2020",
            ]
            t_ours, c_ours, m_ours, out_ours = timed(ours_cmd, cwd=REPO)
            ours_map = float(re.search(r"mAP \(fraction, all digits\): (\S+)", out_ours).group(1))
            out_dir = os.path.join(tmp, "ours")
            timed(ours_cmd + ["--output-dir", out_dir], cwd=REPO)
            json_map = json.load(open(os.path.join(out_dir, "ava_metrics.json")))["mAP"]
            same = (
                "equal"
                if ours_map == official_map == json_map
                else f"DIFFERENT ({ours_map!r}, json {json_map!r} vs official {official_map!r})"
            )
            print(
                f"{rows:>10} {t_off:>11.2f} {t_ours:>8.2f} {t_off / t_ours:>6.1f}x {c_off:>6.1f}/{c_ours:<6.2f} "
                f"{c_off / c_ours:>8.1f}x {m_off:>13.0f} {m_ours:>9.0f} {os.getloadavg()[0]:>5.2f}  "
                f"{official_map!r} {same}"
            )
            if not ours_map == official_map == json_map:
                sys.exit(1)


if __name__ == "__main__":
    main()
