#!/usr/bin/env python
"""AVA action detector throughput on a config (default: the tiny quick-start one), side by side:

* inference clips/s at batch 1 vs batch B (ratio = batching gain);
* training iterations/s with the real data pipeline (loader + model + optimizer) vs the model step
  alone on a fixed batch (ratio = how much the data pipeline costs);
* peak memory of one (steady-state) training step, in a fresh subprocess: CUDA ``max_memory_allocated``
  growth on a GPU; on CPU the growth of the resident set sampled every 0.5 ms during the step.

Timings are interleaved and medians reported. Needs the tiny dataset (``python datasets/make_tiny_ava.py``).
Benchmark, not a test: it prints numbers.

    python benchmarks/bench_detector.py [--config-file configs/ava/tiny.py] [--batch 8] [--iters 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from detectron2.config import instantiate

import vmae_det  # noqa: F401
import vmae_det.data  # noqa: F401  (registers datasets)
from vmae_det.config import load_config
from vmae_det.engine.train_loop import resolve_device

REPO = Path(__file__).resolve().parents[1]


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device) -> float:
    _sync(device)
    t = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t


def build(cfg):
    device = resolve_device(cfg.train.device)
    model = instantiate(cfg.model).to(device)
    cfg.optimizer.model = model
    return model, instantiate(cfg.optimizer), device


def peak_step_memory_mb(config_file: str, batch: int) -> dict:
    """One training step in a fresh process; report the peak-memory growth it caused."""
    code = f"""
import json, torch, vmae_det, vmae_det.data
from detectron2.config import instantiate
from vmae_det.config import load_config
from vmae_det.engine.train_loop import resolve_device
cfg = load_config({config_file!r}, ["dataloader.train.total_batch_size={batch}", "dataloader.train.num_workers=0"])
dev = resolve_device(cfg.train.device)
model = instantiate(cfg.model).to(dev).train(); cfg.optimizer.model = model
opt = instantiate(cfg.optimizer)
data = next(iter(instantiate(cfg.dataloader.train)))
import os, threading
page = os.sysconf("SC_PAGE_SIZE")
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * page
def step():
    loss = sum(model(data).values()); opt.zero_grad(); loss.backward(); opt.step()
step()  # allocate optimizer state first: measure a steady-state step
if dev.type == "cuda":
    torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats(); base = torch.cuda.memory_allocated()
    step(); torch.cuda.synchronize(); peak = torch.cuda.max_memory_allocated()
else:
    # The CPU allocator has no peak counter: sample the resident set every 0.5 ms during the step.
    base, samples, done = rss(), [], threading.Event()
    def poll():
        while not done.is_set():
            samples.append(rss()); done.wait(0.0005)
    t = threading.Thread(target=poll); t.start(); step(); done.set(); t.join()
    peak = max(samples + [rss()])
print(json.dumps({{"device": dev.type, "step_peak_mb": (peak - base) / 2**20, "process_peak_mb": peak / 2**20}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", default=str(REPO / "configs/ava/tiny.py"))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("opts", nargs="*", help="config overrides key=value")
    args = parser.parse_args()

    cfg = load_config(args.config_file, [f"dataloader.train.total_batch_size={args.batch}", *args.opts])
    model, optimizer, device = build(cfg)
    print(f"config {args.config_file} | device {device} | batch {args.batch} | threads {torch.get_num_threads()}")

    # ---- inference: batch 1 vs batch B (clips from the test loader, boxes from proposals)
    test_inputs = []
    for batch in instantiate(cfg.dataloader.test):
        test_inputs.extend(batch)
        if len(test_inputs) >= args.batch:
            break
    test_inputs = test_inputs[: args.batch]
    model.eval()

    def infer_b1():
        with torch.no_grad():
            for d in test_inputs:
                model([d])

    def infer_bb():
        with torch.no_grad():
            model(test_inputs)

    infer_b1(), infer_bb()
    t1, tb = [], []
    for _ in range(max(3, args.iters // 4)):
        t1.append(timed(infer_b1, device))
        tb.append(timed(infer_bb, device))
    cps1 = len(test_inputs) / statistics.median(t1)
    cpsb = len(test_inputs) / statistics.median(tb)

    # ---- training: full pipeline vs model step on a fixed batch
    model.train()
    loader = iter(instantiate(cfg.dataloader.train))
    fixed = next(loader)

    def step(data):
        loss = sum(model(data).values())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step(fixed)
    tf, tm = [], []
    for _ in range(args.iters):
        tf.append(timed(lambda: step(next(loader)), device))
        tm.append(timed(lambda: step(fixed), device))
    itf, itm = 1 / statistics.median(tf), 1 / statistics.median(tm)

    mem = peak_step_memory_mb(args.config_file, args.batch)

    print(f"inference clips/s   batch 1: {cps1:8.2f}   batch {args.batch}: {cpsb:8.2f}   ratio {cpsb / cps1:.2f}x")
    print(f"training it/s       with data loading: {itf:6.2f}   model step only: {itm:6.2f}   ratio {itf / itm:.2f}")
    print(f"training clips/s    {itf * args.batch:.1f} (batch {args.batch})")
    what = "CUDA max_memory_allocated growth" if mem["device"] == "cuda" else "peak resident-set growth (CPU)"
    print(
        f"one training step   {what}: {mem['step_peak_mb']:.1f} MB   (process at peak {mem['process_peak_mb']:.0f} MB)"
    )


if __name__ == "__main__":
    main()
