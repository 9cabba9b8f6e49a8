#!/usr/bin/env python
"""Demo benchmark: end-to-end vs decode-only frames/s, and peak memory vs video length.

    python benchmarks/bench_demo.py [--minutes 1 10] [--size 64 48] [--fps 30] \
        [--config-file C --checkpoint W] [--keyframe-interval N] [--batch-size 4]

For each length it generates a synthetic video (cv2, mp4v) and runs, each in a fresh process so
peak RSS (``ru_maxrss``) belongs to that run alone:
  1. decode-only: iterate the frames with the demo's reader;
  2. end to end: ``run_demo`` (detect -> classify -> render -> encode H.264 -> CSV/JSON).
Person boxes come from a fixed two-box stand-in detector (the person detector's own cost is not
measured). The action model is the tiny random :class:`TinyActionModel` unless a config and
checkpoint are given. Prints frames/s for both, their ratio, and peak RSS per length.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np


def make_video(path: str, seconds: float, size, fps: float) -> None:
    import cv2

    w, h = size
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    base = np.tile(np.linspace(0, 255, w, dtype=np.uint8)[None, :, None], (h, 1, 3))
    for i in range(int(round(seconds * fps))):
        frame = base.copy()
        x = (2 * i) % max(w - 8, 1)
        frame[h // 4: 3 * h // 4, x:x + 8] = (40, 180, 240)
        writer.write(frame)
    writer.release()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def child(args) -> dict:
    """One measurement in this (fresh) process; returns a JSON-able dict."""
    import torch

    import vmae_det  # noqa: F401
    from vmae_det.demo import ActionPredictor, VideoStreamReader, run_demo
    from vmae_det.demo.testing import TinyActionModel

    torch.set_num_threads(1)
    if args.mode == "decode":
        t = time.perf_counter()
        n = sum(1 for _ in VideoStreamReader(args.video))
        return {"frames": n, "fps": n / (time.perf_counter() - t), "peak_rss_mb": peak_rss_mb()}
    if args.config_file:
        predictor = ActionPredictor.from_config(args.config_file, args.checkpoint, device=args.device)
    else:
        torch.manual_seed(0)
        predictor = ActionPredictor(TinyActionModel(num_classes=5), num_frames=16, sampling_rate=4,
                                    test_short_side=48, device=args.device or "cpu")
    w, h = args.size

    def two_people(frame):
        return (np.array([[0.1 * w, 0.2 * h, 0.4 * w, 0.9 * h], [0.5 * w, 0.1 * h, 0.9 * w, 0.8 * h]], np.float32),
                np.array([0.95, 0.9], np.float32))

    rss_before = peak_rss_mb()
    with tempfile.TemporaryDirectory() as out:
        summary = run_demo(args.video, out, predictor, two_people, keyframe_interval=args.keyframe_interval,
                           batch_size=args.batch_size, render_min_short_side=0, progress=False, preview=False)
    return {"frames": summary["num_frames"], "fps": summary["frames_per_second"],
            "keyframes": summary["num_keyframes"], "max_frames_in_memory": summary["max_frames_in_memory"],
            "peak_rss_mb": peak_rss_mb(), "rss_before_run_mb": rss_before}


def run_child(mode: str, video: str, args) -> dict:
    cmd = [sys.executable, __file__, "--child", mode, "--video", video, "--size", *map(str, args.size),
           "--batch-size", str(args.batch_size)]
    for flag in ("keyframe_interval", "config_file", "checkpoint", "device"):
        value = getattr(args, flag)
        if value is not None:
            cmd += [f"--{flag.replace('_', '-')}", str(value)]
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, nargs="+", default=[1.0, 10.0])
    p.add_argument("--size", type=int, nargs=2, default=[64, 48], metavar=("W", "H"))
    p.add_argument("--fps", type=float, default=30.0)
    p.add_argument("--keyframe-interval", type=float, default=None, help="frames (default: fps)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--config-file", default=None)
    p.add_argument("--checkpoint", default=None)
    p.add_argument("--device", default=None)
    p.add_argument("--child", choices=("decode", "demo"), default=None, help=argparse.SUPPRESS)
    p.add_argument("--video", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        args.mode = args.child
        print(json.dumps(child(args)))
        return 0

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in args.minutes:
            video = os.path.join(tmp, f"synthetic_{minutes:g}min.mp4")
            t = time.perf_counter()
            make_video(video, minutes * 60, args.size, args.fps)
            print(f"[{minutes:g} min] generated {args.size[0]}x{args.size[1]} @ {args.fps:g} fps "
                  f"in {time.perf_counter() - t:.1f}s", flush=True)
            decode = run_child("decode", video, args)
            demo = run_child("demo", video, args)
            results.append((minutes, decode, demo))
            print(f"[{minutes:g} min] frames {demo['frames']}, keyframes {demo['keyframes']}: "
                  f"decode-only {decode['fps']:.0f} frames/s, end-to-end {demo['fps']:.0f} frames/s, "
                  f"ratio end-to-end/decode = {demo['fps'] / decode['fps']:.3f}", flush=True)
            print(f"[{minutes:g} min] peak RSS: decode-only {decode['peak_rss_mb']:.0f} MB, demo "
                  f"{demo['peak_rss_mb']:.0f} MB (before run {demo['rss_before_run_mb']:.0f} MB), "
                  f"max frames held {demo['max_frames_in_memory']}", flush=True)
    if len(results) > 1:
        (m0, _, d0), (m1, _, d1) = results[0], results[-1]
        print(f"peak RSS {m0:g} min: {d0['peak_rss_mb']:.0f} MB vs {m1:g} min: {d1['peak_rss_mb']:.0f} MB "
              f"(growth {d1['peak_rss_mb'] - d0['peak_rss_mb']:+.1f} MB for {m1 / m0:g}x the frames)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
