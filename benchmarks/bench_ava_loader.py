"""AVA training-clip loading: clips/s of the AVA recipe's train mapper on a long video, with a per-clip
breakdown (decode, transform, batch) for the videos layout and the frames (JPEG) layout.

With ``--baseline DIR`` (another checkout of this project, e.g. an older commit: ``git worktree add
/tmp/base <rev>``) the same measurement runs there too, in a fresh process on the same files, and the
ratio is printed: the clips/s of the two trees side by side in one run. Single process, one thread
(a data-loader worker's view). A benchmark, not a test: it prints numbers.

    python benchmarks/bench_ava_loader.py [--minutes 5] [--clips 40] [--baseline /tmp/base]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def make_video(path: str, minutes: float, fps: int = 30, size=(360, 640)) -> int:
    """A synthetic 360p H.264 video (moving gradients: real decoding work, no static frames)."""
    import av

    h, w = size
    n = int(minutes * 60 * fps)
    yy, xx = np.mgrid[0:h, 0:w]
    with av.open(path, "w") as out:
        s = out.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"preset": "veryfast", "g": "60", "crf": "20"}
        for i in range(n):
            img = np.stack([(xx + 3 * i) % 256, (yy + i) % 256, ((xx + yy) // 2 + 2 * i) % 256], -1).astype(np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    return n


def make_frames(video: str, folder: str, vid: str, count: int) -> None:
    """The first ``count`` frames as ``<vid>_<n:06d>.jpg`` (AVA's frames layout)."""
    import av
    import cv2

    os.makedirs(folder, exist_ok=True)
    with av.open(video) as c:
        for i, frame in enumerate(c.decode(video=0)):
            if i >= count:
                break
            cv2.imwrite(os.path.join(folder, f"{vid}_{i + 1:06d}.jpg"), frame.to_ndarray(format="bgr24"))


def measure(args) -> dict:
    """Runs in the tree on ``sys.path``: clips/s of the recipe's train mapper (+ breakdown if available)."""
    import torch

    torch.set_num_threads(1)
    from detectron2.config import instantiate
    from detectron2.data.build import trivial_batch_collator

    import vmae_det  # noqa: F401
    from vmae_det.config import load_config

    cfg = load_config(os.path.join(args.tree, "configs/ava/vit_b.py"))
    mapper = instantiate(cfg.dataloader.train.mapper)
    mapper.video_backend = getattr(mapper, "video_backend", "auto")
    rng = random.Random(0)
    results = {}
    for layout, seconds in (("videos", args.seconds), ("frames", args.frame_seconds)):
        dicts = []
        for _ in range(args.clips):
            ts = 902 + rng.randint(0, seconds - 5)
            d = {
                "video_id": "long",
                "timestamp": ts,
                "fps": 30,
                "annotations": [
                    {"bbox": [0.1, 0.2, 0.4, 0.9], "actions": [12, 80], "person_id": 0},
                    {"bbox": [0.5, 0.1, 0.8, 0.95], "actions": [14], "person_id": 1},
                ],
                "proposals": {"boxes": np.zeros((0, 4), np.float32), "scores": np.zeros((0,), np.float32)},
            }
            d["video_path" if layout == "videos" else "frames_dir"] = args.video if layout == "videos" else args.frames
            dicts.append(d)
        mapper(dicts[0])  # warm-up (e.g. a decoder's index cache)
        times, batch_times = [], []
        for i in range(0, len(dicts), 4):
            t0 = time.perf_counter()
            outs = [mapper(d) for d in dicts[i : i + 4]]
            t1 = time.perf_counter()
            trivial_batch_collator(outs)
            times.append((t1 - t0) / len(outs))
            batch_times.append((time.perf_counter() - t1) / len(outs))
        per_clip = statistics.median(times)
        entry = {
            "clips_per_s": 1 / per_clip,
            "ms_per_clip": 1e3 * per_clip,
            "batch_ms": 1e3 * statistics.median(batch_times),
        }
        try:  # the breakdown needs this tree's mapper pieces
            from vmae_det.data.ava.clip_source import clip_indices, clip_source_for
            from vmae_det.data.transforms import apply_augmentations_to_clip

            dec, tra = [], []
            for d in dicts:
                t0 = time.perf_counter()
                with clip_source_for(d) as src:
                    frames = src.get_frames(clip_indices((d["timestamp"] - 900) * 30, 16, 4, src.num_frames))
                t1 = time.perf_counter()
                apply_augmentations_to_clip(mapper.augmentations, frames, np.array([[64, 72, 256, 324]], np.float32))
                dec.append(t1 - t0)
                tra.append(time.perf_counter() - t1)
            entry.update(decode_ms=1e3 * statistics.median(dec), transform_ms=1e3 * statistics.median(tra))
        except Exception as e:  # an older tree: totals only
            entry["breakdown"] = f"unavailable ({type(e).__name__})"
        results[layout] = entry
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--frame-seconds", type=int, default=60, help="length of the JPEG frames layout")
    ap.add_argument("--clips", type=int, default=40)
    ap.add_argument("--baseline", default=None, help="another checkout to measure side by side")
    ap.add_argument("--workdir", default=None, help="keep the synthetic video/frames here")
    ap.add_argument("--measure-json", default=None, help=argparse.SUPPRESS)  # internal: child mode
    ap.add_argument("--tree", default=REPO, help=argparse.SUPPRESS)
    ap.add_argument("--video", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--frames", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--seconds", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.measure_json:
        with open(args.measure_json, "w") as f:
            json.dump(measure(args), f)
        return

    work = args.workdir or tempfile.mkdtemp(prefix="bench_ava_loader_")
    video = os.path.join(work, "long.mp4")
    frames = os.path.join(work, "frames", "long")
    if not os.path.exists(video):
        print(f"writing a {args.minutes}-minute 360p H.264 video to {video} ...", flush=True)
        make_video(video, args.minutes)
    if not os.path.isdir(frames):
        make_frames(video, frames, "long", args.frame_seconds * 30 + 60)
    print(
        f"video {os.path.getsize(video) / 2**20:.0f} MiB, {args.minutes} min; frames layout "
        f"{args.frame_seconds} s of JPEGs; {args.clips} clips of 16 frames at stride 4, ViT-B recipe mapper, 1 thread"
    )
    trees = {"this tree": REPO}
    if args.baseline:
        trees["baseline"] = os.path.abspath(args.baseline)
    measured = {}
    for name, tree in trees.items():
        out = os.path.join(work, f"{name.replace(' ', '_')}.json")
        env = {**os.environ, "PYTHONPATH": tree, "OMP_NUM_THREADS": "1"}
        cmd = [
            sys.executable,
            os.path.abspath(__file__),
            "--measure-json",
            out,
            "--tree",
            tree,
            "--video",
            video,
            "--frames",
            frames,
            "--seconds",
            str(int(args.minutes * 60)),
            "--frame-seconds",
            str(args.frame_seconds),
            "--clips",
            str(args.clips),
        ]
        subprocess.run(cmd, env=env, check=True)
        measured[name] = json.load(open(out))
    for layout in ("videos", "frames"):
        for name, res in measured.items():
            r = res[layout]
            parts = (
                f"decode {r['decode_ms']:.1f} ms + transform {r['transform_ms']:.1f} ms + batch {r['batch_ms']:.2f} ms"
                if "decode_ms" in r
                else r.get("breakdown", "")
            )
            print(f"{layout:7s} {name:10s} {r['clips_per_s']:6.1f} clips/s ({r['ms_per_clip']:.1f} ms/clip: {parts})")
        if "baseline" in measured:
            ratio = measured["this tree"][layout]["clips_per_s"] / measured["baseline"][layout]["clips_per_s"]
            print(f"{layout:7s} ratio this tree / baseline: {ratio:.2f}x")


if __name__ == "__main__":
    main()
