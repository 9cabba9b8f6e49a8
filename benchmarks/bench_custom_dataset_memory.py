#!/usr/bin/env python
"""Peak memory of large CSVs: ``prepare_custom_dataset`` on a 2M-row annotation CSV, and the demo's ``--boxes``
reader on a 2M-row AVA CSV with few rows of its video, each beside the import it needs.

    python benchmarks/bench_custom_dataset_memory.py [--rows 2000000] [--videos 4] [--seconds 10] \
        [--other-tree /path/to/another/checkout] [--skip-demo] [--keep DIR]

Each measurement runs in a fresh process, so its peak RSS (``ru_maxrss``) is its own: the import alone
(the baseline), then the tool's ``main`` on the generated files (wall and CPU time: CPU time, the
process's threads together, is the steadier one on a busy machine). ``--other-tree`` runs the
same in another checkout (e.g. ``git archive <commit> | tar -x -C /tmp/old``) and checks that both wrote
byte-identical annotation files. The videos are tiny (64x48), so the CSV, not the conversion, dominates.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ACTIONS = ("walk", "stand", "sit", "talk", "wave", "run")

# Run in a child: the tree's vmae_det first on sys.path, then either the import alone or the work.
_CHILD = r"""
import json, logging, resource, sys, time
sys.path.insert(0, sys.argv[1])
case, args = sys.argv[2], json.loads(sys.argv[3])
import vmae_det
if case == "prepare":
    from vmae_det.tools.prepare_custom_dataset import main as work
    logging.disable(logging.INFO)  # one INFO line per duplicate row: not what is measured
else:
    try:
        from vmae_det.demo.box_files import CsvBoxSource
    except ImportError:  # another checkout (--other-tree) may keep it in person_boxes
        from vmae_det.demo.person_boxes import CsvBoxSource
    work = lambda a: CsvBoxSource(*a)
t0, c0 = time.perf_counter(), time.process_time()
if args:
    work(args)
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
print(json.dumps({"rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "wall_s": wall,
                  "cpu_s": cpu, "module": vmae_det.__file__}))
"""


def make_videos(folder: Path, n: int, seconds: int) -> None:
    import cv2
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    for v in range(n):
        w = cv2.VideoWriter(str(folder / f"vid{v}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 25, (64, 48))
        for i in range(25 * seconds):
            w.write(np.full((48, 64, 3), (7 * i + 40 * v) % 256, np.uint8))
        w.release()


def make_annotations(path: Path, rows: int, videos: int, seconds: int) -> None:
    """``rows`` rows over ``videos`` videos (even ones train, odd ones val), interleaved, so every chunk of the
    file holds every video; one box per (video, second, person), one row in 500 an exact duplicate, one in
    50 a box sticking out of the frame (clipped)."""
    with open(path, "w") as f:
        f.write("video,split,time,x1,y1,x2,y2,action,person\n")
        line = ""
        for i in range(rows):
            if i % 500 == 499:
                f.write(line)
                continue
            v = i % videos
            t = (i // videos) % seconds
            p = i // (videos * seconds)
            x1, y1 = p % 40, p % 30
            x2 = x1 + 10 + p % 13 + (30 if i % 50 == 7 else 0)
            line = f"vid{v},{'train' if v % 2 == 0 else 'val'},{t},{x1},{y1},{x2},{y1 + 12 + p % 11},"
            line += f"{ACTIONS[(i * 7) % len(ACTIONS)]},{p}\n"
            f.write(line)


def make_boxes_csv(path: Path, rows: int, mine: int = 11) -> None:
    """An AVA ground-truth CSV of ``rows`` rows, ``mine`` of them for video ``target`` (spread out)."""
    step = rows // mine
    with open(path, "w") as f:
        for i in range(rows):
            vid = "target" if i % step == 0 and i // step < mine else f"movie{i % 300:03d}"
            ts = 902 + (i // step if vid == "target" else i % 890)
            f.write(f"{vid},{ts:04d},0.1000,0.2000,0.5000,0.9000,{1 + i % 80},{i % 7}\n")


def run(tree: Path, case: str, args) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(tree), case, json.dumps(args)],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=2_000_000)
    p.add_argument("--videos", type=int, default=4)
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--other-tree", default=None, help="another checkout to run beside this one")
    p.add_argument("--skip-demo", action="store_true")
    p.add_argument("--keep", default=None, help="write the generated files here (kept) instead of a temp folder")
    a = p.parse_args()
    trees = [("this tree", ROOT)] + ([("other tree", Path(a.other_tree).resolve())] if a.other_tree else [])
    work = Path(a.keep or tempfile.mkdtemp(prefix="bench_custom_"))
    make_videos(work / "videos", a.videos, a.seconds)
    make_annotations(work / "ann.csv", a.rows, a.videos, a.seconds)
    print(f"{a.rows:,} annotation rows over {a.videos} videos of {a.seconds} s; load {os.getloadavg()[0]:.1f}")
    outputs = []
    for name, tree in trees:
        out = work / f"out_{len(outputs)}"
        cmd = ["--videos", str(work / "videos"), "--annotations", str(work / "ann.csv"), "--output", str(out)]
        base = run(tree, "prepare", [])
        r = run(tree, "prepare", cmd + ["--quiet"])
        print(
            f"prepare_custom_dataset, {name} ({Path(r['module']).parent}): peak RSS {r['rss_mb']:,.0f} MB "
            f"(import alone {base['rss_mb']:,.0f} MB, +{r['rss_mb'] - base['rss_mb']:,.0f} MB), "
            f"{r['wall_s']:.1f} s ({r['cpu_s']:.1f} s CPU), load {os.getloadavg()[0]:.1f}"
        )
        outputs.append(out / "annotations")
    if len(outputs) == 2:
        names = sorted(os.listdir(outputs[0]))
        _, diff, missing = filecmp.cmpfiles(outputs[0], outputs[1], names, shallow=False)
        print("annotation files", "byte-identical" if not (diff or missing) else f"DIFFER: {diff + missing}")
    if not a.skip_demo:
        boxes = work / "boxes.csv"
        make_boxes_csv(boxes, a.rows)
        for name, tree in trees:
            base = run(tree, "boxes", [])
            r = run(tree, "boxes", [str(boxes), "target"])
            print(
                f"demo --boxes ({a.rows:,} rows, 11 of its video), {name}: peak RSS {r['rss_mb']:,.0f} MB "
                f"(import alone {base['rss_mb']:,.0f} MB, +{r['rss_mb'] - base['rss_mb']:,.0f} MB), "
                f"{r['wall_s']:.1f} s ({r['cpu_s']:.1f} s CPU)"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
