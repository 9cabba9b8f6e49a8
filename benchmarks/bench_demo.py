#!/usr/bin/env python
"""Demo benchmark: end-to-end vs decode-only frames/s per video length, and peak memory per frame size.

    python benchmarks/bench_demo.py [--minutes 1 10] [--size 64 48] [--fps 30] \
        [--frame-sizes 320x240 3840x2160] [--frame-size-frames 180] [--frame-size-short-side 256] \
        [--config-file C --checkpoint W] [--keyframe-interval N] [--batch-size 4]

Two cases, each measurement in a fresh process so peak RSS (``ru_maxrss``) belongs to that run alone:

* **length** (``--minutes``): a synthetic ``--size`` video (cv2, mp4v) per length; decode-only (iterate
  the frames with the demo's reader) and end to end (``run_demo``: detect -> classify -> render ->
  encode H.264 -> CSV/JSON). Prints frames/s of both, their ratio per length, and how the ratio and the
  per-frame cost change from the shortest to the longest video (flat: 1.0).
* **frame size** (``--frame-sizes``): a short H.264 clip (PyAV, ``--frame-size-frames`` frames) per
  size, the model fed clips with short side ``--frame-size-short-side`` (256 as AVA's test transform);
  prints peak RSS and the full-resolution frames the demo held at once, and the largest size's peak
  over the smallest's (flat: 1.0).

Also printed per run: process CPU seconds per frame (user + system; less sensitive than wall time to
other work on the machine) and the load average when it ran (above the core count, rerun).
Person boxes come from a fixed two-box stand-in detector (the person detector's own cost is not
measured). The action model is the tiny random :class:`TinyActionModel` unless a config and
checkpoint are given.
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
    """A gradient with a moving block, written by OpenCV (mp4v)."""
    import cv2

    w, h = size
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    base = np.tile(np.linspace(0, 255, w, dtype=np.uint8)[None, :, None], (h, 1, 3))
    for i in range(int(round(seconds * fps))):
        frame = base.copy()
        x = (2 * i) % max(w - 8, 1)
        frame[h // 4 : 3 * h // 4, x : x + 8] = (40, 180, 240)
        writer.write(frame)
    writer.release()


def make_h264_clip(path: str, num_frames: int, size, fps: float) -> None:
    """The same picture as :func:`make_video` at any size (4K included), H.264 by PyAV (libx264 ultrafast)."""
    from fractions import Fraction

    import av

    w, h = size
    block = max(8, w // 40)
    base = np.tile(np.linspace(0, 255, w, dtype=np.uint8)[None, :, None], (h, 1, 3))
    with av.open(path, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": "23", "preset": "ultrafast"}
        for i in range(num_frames):
            img = base.copy()
            x = (block // 4 * i) % max(w - block, 1)
            img[h // 4 : 3 * h // 4, x : x + block] = (40, 180, 240)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def child(args) -> dict:
    """One measurement in this (fresh) process; returns a JSON-able dict."""
    import torch

    import vmae_det  # noqa: F401
    from vmae_det.demo import ActionPredictor, DemoSettings, VideoStreamReader, run_demo
    from vmae_det.modeling.tiny_action_model import TinyActionModel

    torch.set_num_threads(1)
    import av  # noqa: F401  (40 ms the first time: a process start-up cost, kept out of both timings)

    load = os.getloadavg()[0]
    if args.mode == "decode":
        t, c = time.perf_counter(), cpu_seconds()
        n = sum(1 for _ in VideoStreamReader(args.video))
        seconds, cpu = time.perf_counter() - t, cpu_seconds() - c
        return {
            "frames": n,
            "fps": n / seconds,
            "seconds": seconds,
            "cpu_us_per_frame": cpu / n * 1e6,
            "peak_rss_mb": peak_rss_mb(),
            "load": load,
        }
    if args.config_file:
        predictor = ActionPredictor.from_config(args.config_file, args.checkpoint, device=args.device)
    else:
        torch.manual_seed(0)
        predictor = ActionPredictor(
            TinyActionModel(num_classes=5),
            num_frames=16,
            sampling_rate=4,
            test_short_side=args.short_side,
            device=args.device or "cpu",
        )
    w, h = args.size

    def two_people(frame):
        return (
            np.array([[0.1 * w, 0.2 * h, 0.4 * w, 0.9 * h], [0.5 * w, 0.1 * h, 0.9 * w, 0.8 * h]], np.float32),
            np.array([0.95, 0.9], np.float32),
        )

    rss_before = peak_rss_mb()
    c = cpu_seconds()
    with tempfile.TemporaryDirectory() as out:
        settings = DemoSettings(
            args.video,
            out,
            keyframe_interval=args.keyframe_interval,
            batch_size=args.batch_size,
            render_min_short_side=0,
            progress=False,
            preview=False,
        )
        summary = run_demo(settings, predictor, two_people)
    cpu = cpu_seconds() - c
    return {
        "frames": summary["num_frames"],
        "fps": summary["frames_per_second"],
        "seconds": summary["seconds"],
        "cpu_us_per_frame": cpu / summary["num_frames"] * 1e6,
        "keyframes": summary["num_keyframes"],
        "max_frames_in_memory": summary["max_frames_in_memory"],
        "max_model_frames_in_memory": summary.get("max_model_frames_in_memory"),
        "render_source": summary.get("render_source", "frames held"),
        "early_batches": summary.get("early_batches", 0),
        "peak_rss_mb": peak_rss_mb(),
        "rss_before_run_mb": rss_before,
        "load": load,
    }


def run_child(mode: str, video: str, size, short_side: int, args) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        mode,
        "--video",
        video,
        "--size",
        *map(str, size),
        "--batch-size",
        str(args.batch_size),
        "--short-side",
        str(short_side),
    ]
    for flag in ("keyframe_interval", "config_file", "checkpoint", "device"):
        value = getattr(args, flag)
        if value is not None:
            cmd += [f"--{flag.replace('_', '-')}", str(value)]
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def length_case(args, tmp: str) -> None:
    w, h = args.size
    print(f"== video length: {w}x{h} @ {args.fps:g} fps (mp4v), model short side {args.short_side}", flush=True)
    print(
        f"{'length':>8} {'frames':>7} {'decode f/s':>11} {'demo f/s':>9} {'ratio':>6} {'demo CPU us/f':>14} "
        f"{'decode CPU us/f':>16} {'CPU ratio':>9} {'peak RSS MB':>11} {'frames held':>11} {'load':>5}"
    )
    rows = []
    for minutes in args.minutes:
        video = os.path.join(tmp, f"synthetic_{minutes:g}min.mp4")
        make_video(video, minutes * 60, args.size, args.fps)
        decode = run_child("decode", video, args.size, args.short_side, args)
        demo = run_child("demo", video, args.size, args.short_side, args)
        ratio = demo["fps"] / decode["fps"]
        cpu_ratio = decode["cpu_us_per_frame"] / demo["cpu_us_per_frame"]
        rows.append((minutes, ratio, cpu_ratio, demo, decode))
        print(
            f"{minutes:>6g} m {demo['frames']:>7} {decode['fps']:>11.0f} {demo['fps']:>9.0f} {ratio:>6.3f} "
            f"{demo['cpu_us_per_frame']:>14.0f} {decode['cpu_us_per_frame']:>16.0f} {cpu_ratio:>9.3f} "
            f"{demo['peak_rss_mb']:>11.0f} {demo['max_frames_in_memory']:>11} "
            f"{max(decode['load'], demo['load']):>5.2f}",
            flush=True,
        )
    if len(rows) > 1:
        (m0, r0, _, d0, e0), (m1, r1, _, d1, e1) = rows[0], rows[-1]
        print(
            f"end-to-end / decode-only frames/s: {r0:.3f} at {m0:g} min, {r1:.3f} at {m1:g} min "
            f"({r1 / r0:.2f}x from {m0:g} to {m1:g} min; flat = 1.00)"
        )
        # The frames the longer video adds over the shorter one, without the costs paid once per video.
        extra = d1["frames"] - d0["frames"]
        if extra > 0:
            demo_fps = extra / max(d1["seconds"] - d0["seconds"], 1e-9)
            decode_fps = extra / max(e1["seconds"] - e0["seconds"], 1e-9)
            print(
                f"frames {m0:g} -> {m1:g} min only (per-video costs cancel): decode-only {decode_fps:.0f} f/s, "
                f"end-to-end {demo_fps:.0f} f/s, ratio {demo_fps / decode_fps:.3f}"
            )
        print(
            f"demo CPU per frame: {d0['cpu_us_per_frame']:.0f} us at {m0:g} min, {d1['cpu_us_per_frame']:.0f} us "
            f"at {m1:g} min ({d1['cpu_us_per_frame'] / d0['cpu_us_per_frame']:.2f}x); peak RSS "
            f"{d0['peak_rss_mb']:.0f} MB vs {d1['peak_rss_mb']:.0f} MB "
            f"({d1['peak_rss_mb'] - d0['peak_rss_mb']:+.0f} MB for {m1 / m0:g}x the frames)",
            flush=True,
        )


def frame_size_case(args, tmp: str) -> None:
    n = args.frame_size_frames
    print(
        f"== frame size: {n} frames @ {args.fps:g} fps (H.264), model short side {args.frame_size_short_side}",
        flush=True,
    )
    print(
        f"{'size':>10} {'decode f/s':>11} {'demo f/s':>9} {'ratio':>6} {'decode RSS MB':>13} {'demo RSS MB':>11} "
        f"{'full frames held':>16} {'model frames':>12} {'frames for rendering':>22} {'load':>5}"
    )
    rows = []
    for spec in args.frame_sizes:
        w, h = (int(v) for v in spec.lower().split("x"))
        video = os.path.join(tmp, f"clip_{w}x{h}.mp4")
        make_h264_clip(video, n, (w, h), args.fps)
        decode = run_child("decode", video, (w, h), args.frame_size_short_side, args)
        demo = run_child("demo", video, (w, h), args.frame_size_short_side, args)
        rows.append((spec, demo))
        print(
            f"{spec:>10} {decode['fps']:>11.1f} {demo['fps']:>9.1f} {demo['fps'] / decode['fps']:>6.3f} "
            f"{decode['peak_rss_mb']:>13.0f} {demo['peak_rss_mb']:>11.0f} {demo['max_frames_in_memory']:>16} "
            f"{demo['max_model_frames_in_memory']!s:>12} {demo['render_source']:>22} "
            f"{max(decode['load'], demo['load']):>5.2f}",
            flush=True,
        )
    if len(rows) > 1:
        (s0, d0), (s1, d1) = rows[0], rows[-1]
        print(
            f"peak RSS: {d0['peak_rss_mb']:.0f} MB at {s0}, {d1['peak_rss_mb']:.0f} MB at {s1} "
            f"({d1['peak_rss_mb'] / d0['peak_rss_mb']:.2f}x; flat = 1.00; before the run, imports and model: "
            f"{d1['rss_before_run_mb']:.0f} MB)",
            flush=True,
        )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=float, nargs="*", default=[1.0, 10.0], help="video lengths (none: skip)")
    p.add_argument("--size", type=int, nargs=2, default=[64, 48], metavar=("W", "H"))
    p.add_argument("--fps", type=float, default=30.0)
    p.add_argument("--short-side", type=int, default=48, help="model input short side for the length case")
    p.add_argument("--frame-sizes", nargs="*", default=["320x240", "3840x2160"], help="WxH (none: skip)")
    p.add_argument("--frame-size-frames", type=int, default=180)
    p.add_argument("--frame-size-short-side", type=int, default=256)
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

    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the start", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        if args.minutes:
            length_case(args, tmp)
        if args.frame_sizes:
            frame_size_case(args, tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
