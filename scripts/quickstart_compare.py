#!/usr/bin/env python
"""Fine-tune the tiny AVA detector from an MAE checkpoint and from scratch, over several seeds, and print both.

The comparison step of `make quickstart-compare` (scripts/quickstart_compare.sh, docs/quickstart.md): the
same config, data and fine-tuning budget for both arms; only ``train.init_checkpoint`` (the MAE checkpoint,
or none) and ``train.seed`` change. Each run's frame-mAP is the evaluation after its last iteration
(``inference/ava_metrics.json``), never the best of several evaluations. At least 2 distinct seeds: the
result is a mean ± sample std over seeds, never one run. A finished run is reused when it was made with
the same checkpoint (its sha256), config, dataset and overrides (``run.json`` in its folder), so an
interrupted comparison continues where it stopped; anything else is rerun (``--force`` reruns everything)::

    python scripts/quickstart_compare.py --pretrained output/quickstart_compare/pretrain/model_final.pth \\
        --ava-root datasets/tiny_ava_few --output-dir output/quickstart_compare/compare --seeds 0 1 2

Prints one line per run and then ``pretrained: x ± s, scratch: y ± s (mean ± sample std over N seeds)``;
writes the same to ``<output-dir>/summary.json``. Trailing ``key=value`` pairs are passed to every
fine-tuning run (e.g. ``train.max_iter=100``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

REPO = Path(__file__).resolve().parents[1]
ARMS = ("pretrained", "scratch")


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    p.add_argument("--pretrained", required=True, help="MAE checkpoint (tools/pretrain_mae.py's model_final.pth)")
    p.add_argument("--ava-root", required=True, help="labelled AVA-layout dataset to fine-tune and evaluate on")
    p.add_argument("--config-file", default="configs/ava/tiny.py")
    p.add_argument("--output-dir", default="output/quickstart_compare/compare")
    p.add_argument("--seeds", nargs="+", default=["0", "1", "2"], help="fine-tuning seeds (at least 2)")
    p.add_argument("--python", default=sys.executable, help="interpreter that runs tools/train_net.py")
    p.add_argument("--force", action="store_true", help="rerun runs that already have metrics")
    p.add_argument("opts", nargs=argparse.REMAINDER, metavar="key=value", help="overrides for every run")
    args = p.parse_args(argv)
    # "--seeds 0 1 train.max_iter=600": the overrides after the seeds belong to opts
    args.opts = [v for v in args.seeds if "=" in v] + list(args.opts)
    try:
        args.seeds = [int(v) for v in args.seeds if "=" not in v]
    except ValueError:
        p.error(f"--seeds: integers expected, got {[v for v in args.seeds if '=' not in v]}")
    if len(set(args.seeds)) != len(args.seeds) or len(args.seeds) < 2:
        p.error(f"--seeds: need at least 2 distinct seeds (a spread needs several), got {args.seeds}")
    if not Path(args.pretrained).is_file():
        p.error(f"--pretrained: checkpoint '{args.pretrained}' does not exist (run tools/pretrain_mae.py first)")
    if not (Path(args.ava_root) / "annotations").is_dir():
        p.error(f"--ava-root: '{args.ava_root}' has no annotations/ folder (datasets/make_tiny_ava.py writes one)")
    bad = [o for o in args.opts if "=" not in o]
    if bad:
        p.error(f"overrides must be key=value, got {bad}")
    return args


def mean_std(values: Sequence[float]) -> tuple:
    """Mean and sample standard deviation (n - 1); std is nan for fewer than 2 values."""
    n = len(values)
    if n == 0:
        return float("nan"), float("nan")
    m = sum(values) / n
    s = math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1)) if n > 1 else float("nan")
    return m, s


def run_dir(output_dir: Path, arm: str, seed: int) -> Path:
    return output_dir / f"{arm}_seed{seed}"


def run_key(args: argparse.Namespace, arm: str, seed: int) -> dict:
    """What a run's result depends on besides the code: reused only when all of it is the same."""
    init = ""
    if arm == "pretrained":
        init = hashlib.sha256(Path(args.pretrained).read_bytes()).hexdigest()
    return {
        "arm": arm,
        "seed": seed,
        "init_sha256": init,
        "config_file": args.config_file,
        "ava_root": str(Path(args.ava_root).resolve()),
        "overrides": list(args.opts),
    }


def finished_map(folder: Path, key: dict) -> Optional[float]:
    """The run's frame-mAP if it finished with exactly ``key`` (see :func:`run_key`), else None."""
    try:
        same = json.loads((folder / "run.json").read_text()) == key
    except (OSError, json.JSONDecodeError):
        same = False
    return read_map(folder) if same else None


def read_map(folder: Path) -> Optional[float]:
    path = folder / "inference" / "ava_metrics.json"
    if not path.is_file():
        return None
    try:
        return float(json.loads(path.read_text())["mAP"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: not an AVA metrics file ({e}); delete it or pass --force") from e


def fine_tune(args: argparse.Namespace, arm: str, seed: int, folder: Path, key: dict) -> float:
    init = str(Path(args.pretrained).resolve()) if arm == "pretrained" else ""
    cmd = [
        args.python,
        str(REPO / "tools" / "train_net.py"),
        "--config-file",
        args.config_file,
        "--ava-root",
        args.ava_root,
        f"train.init_checkpoint={init}",
        f"train.seed={seed}",
        f"train.output_dir={folder}",
        *args.opts,
    ]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "run.json").unlink(missing_ok=True)
    (folder / "inference" / "ava_metrics.json").unlink(missing_ok=True)  # no stale result if this run fails
    with open(folder / "stdout.log", "w") as log:
        rc = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    if rc != 0:
        raise RuntimeError(f"fine-tuning ({arm}, seed {seed}) failed with exit code {rc}; see {folder / 'stdout.log'}")
    value = read_map(folder)
    if value is None:
        raise RuntimeError(f"fine-tuning ({arm}, seed {seed}) wrote no {folder / 'inference/ava_metrics.json'}")
    (folder / "run.json").write_text(json.dumps(key, indent=2) + "\n")
    return value


def summary_line(results: Dict[str, List[float]]) -> str:
    parts = []
    for arm in ARMS:
        m, s = mean_std(results[arm])
        parts.append(f"{arm}: {m:.3f} ± {s:.3f}")
    n = len(results[ARMS[0]])
    return f"frame-mAP {', '.join(parts)} (mean ± sample std over {n} fine-tuning seeds)"


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    out = Path(args.output_dir)
    results: Dict[str, List[float]] = {arm: [] for arm in ARMS}
    total, done, t0 = 2 * len(args.seeds), 0, time.time()
    for seed in args.seeds:
        for arm in ARMS:
            folder = run_dir(out, arm, seed)
            key = run_key(args, arm, seed)
            value = None if args.force else finished_map(folder, key)
            how = "reused"
            if value is None:
                value, how = fine_tune(args, arm, seed, folder, key), "trained"
            done += 1
            results[arm].append(value)
            eta = (time.time() - t0) / done * (total - done)
            print(
                f"[{done}/{total}] {arm:10s} seed {seed}: frame-mAP {value:.4f} ({how}, {folder}; ETA {eta:.0f}s)",
                flush=True,
            )
    line = summary_line(results)
    print(line)
    summary = {
        "seeds": args.seeds,
        "config_file": args.config_file,
        "ava_root": args.ava_root,
        "pretrained_checkpoint": args.pretrained,
        "overrides": args.opts,
        **{
            arm: {"mAP": results[arm], "mean": mean_std(results[arm])[0], "std": mean_std(results[arm])[1]}
            for arm in ARMS
        },
        "summary": line,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    from vmae_det.cli import run_main

    sys.exit(run_main(lambda: main()))
