#!/usr/bin/env python
"""Demo overhead beyond model inference: ``run_demo`` wall time against the model's own forward time.

    OMP_NUM_THREADS=1 python benchmarks/bench_demo_overhead.py [--video ../shared/videos/vtest.avi] \
        [--config-file configs/ava/vit_s.py] [--max-seconds 20] [--threads 1] [--model-alone] [--profile 25]

The detector is the config's model with random weights (seed 0), saved as a checkpoint and loaded through
``ActionPredictor.from_config``, as ``tools/demo.py --checkpoint`` does. Person detection is excluded: boxes
come from a box CSV (``--boxes``, or five synthetic walkers per keyframe written in the demo's CSV format).

Prints the model time (the sum of ``model.forward`` over the run's batches), the demo's wall time
(``run_demo``, model already loaded), overhead = total - model and overhead / model (goal: <= 15 %), and
the time of each stage, timed by wrapping the demo's own methods in this process: decode (incl. RGB
conversion), preprocessing (the per-frame test transform), clip assembly, model I/O (the predictor's
call around the forward), tracking, drawing, encoding, CSV/JSON. ``--model-alone`` runs the forward again
on the same batches outside the demo; ``--profile N`` prints cProfile's top ``N`` functions by own time.
Exits 1 when the overhead passes ``--max-overhead`` (15 %) of the model's wall time.
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import io
import math
import os
import pstats
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VIDEO = REPO.parent / "shared" / "videos" / "vtest.avi"


class StageTimes:
    """Wall and CPU seconds per stage, accumulated by :meth:`wrap`-ed methods.

    CPU is the process's (all its threads), so it is less sensitive than wall time to other work on a
    shared machine.
    """

    def __init__(self) -> None:
        self.seconds = defaultdict(float)
        self.cpu = defaultdict(float)
        self.calls = defaultdict(int)

    def _add(self, stage: str, t: float, c: float) -> None:
        self.seconds[stage] += time.perf_counter() - t
        self.cpu[stage] += time.process_time() - c

    def wrap(self, owner, name: str, stage: str) -> None:
        fn = getattr(owner, name)

        def timed(*args, **kwargs):
            t, c = time.perf_counter(), time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                self._add(stage, t, c)
                self.calls[stage] += 1

        setattr(owner, name, timed)

    def wrap_iter(self, owner, name: str, stage: str) -> None:
        """Time each ``next()`` of the iterator ``owner.name(...)`` returns."""
        fn = getattr(owner, name)

        def timed(*args, **kwargs):
            it = iter(fn(*args, **kwargs))
            while True:
                t, c = time.perf_counter(), time.process_time()
                try:
                    item = next(it)
                except StopIteration:
                    return
                finally:
                    self._add(stage, t, c)
                self.calls[stage] += 1
                yield item

        setattr(owner, name, timed)


def synthetic_boxes(path: str, video_id: str, seconds: float) -> None:
    """Five people walking across the frame, one row each per whole second, in the detections format."""
    with open(path, "w", newline="") as f:
        rows = csv.writer(f)
        for s in range(math.ceil(seconds)):
            for p in range(5):
                x = (0.05 + 0.18 * p + 0.01 * s * (1 if p % 2 else -1)) % 0.85
                y = 0.08 + 0.1 * p
                rows.writerow([video_id, s, f"{x:.4f}", f"{y:.4f}", f"{x + 0.09:.4f}", f"{y + 0.35:.4f}", "", "0.95"])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--video", default=str(VIDEO))
    p.add_argument("--config-file", default=str(REPO / "configs" / "ava" / "vit_s.py"))
    p.add_argument("--boxes", default=None, help="a box CSV (default: synthetic walkers)")
    p.add_argument("--max-seconds", type=float, default=20.0, help="seconds of the video (0: all of it)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--device", default="cpu")
    p.add_argument("--model-alone", action="store_true", help="time the forward again on the same batches")
    p.add_argument("--profile", type=int, default=0, metavar="N", help="print cProfile's top N by own time")
    p.add_argument("--max-overhead", type=float, default=15.0, help="fail above this %% of the model's wall time")
    args = p.parse_args()
    if not os.path.exists(args.video):
        print(f"no video at {args.video} (see ../shared/videos/README.md)", file=sys.stderr)
        return 2

    import torch

    import vmae_det  # noqa: F401  (detectron2 shims first)
    from vmae_det.config import load_config
    from vmae_det.demo import (
        ActionPredictor,
        DemoSettings,
        VideoStreamReader,
        clip_buffer,
        keyframe_batches,
        outputs,
        pipeline,
        run_demo,
        tracking,
        visualizer,
    )
    from vmae_det.formats.video_writer import VideoWriter

    torch.set_num_threads(args.threads)
    import av  # noqa: F401  (first import costs ~40 ms: kept out of the timings)
    from detectron2.config import instantiate

    reader = VideoStreamReader(args.video)
    fps, width, height = reader.fps, reader.width, reader.height
    seconds = args.max_seconds or (reader.estimated_num_frames or 36000) / fps
    reader.close()
    stages = StageTimes()
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        checkpoint = os.path.join(tmp, "random.pth")
        torch.save({"model": instantiate(load_config(args.config_file, []).model).state_dict()}, checkpoint)
        t = time.perf_counter()
        predictor = ActionPredictor.from_config(args.config_file, checkpoint, device=args.device)
        load_s = time.perf_counter() - t
        video_id = Path(args.video).stem
        boxes = args.boxes
        if boxes is None:
            boxes = os.path.join(tmp, "boxes.csv")
            synthetic_boxes(boxes, video_id, seconds)

        batches = []
        model_forward = predictor.model.forward
        if args.model_alone:

            def recording_forward(inputs):
                batches.append(inputs)
                return model_forward(inputs)

            predictor.model.forward = recording_forward
        stages.wrap(predictor.model, "forward", "model forward")
        stages.wrap(ActionPredictor, "__call__", "predictor call")
        stages.wrap_iter(VideoStreamReader, "__iter__", "decode")
        stages.wrap(clip_buffer.ClipFrameBuffer, "push", "preprocess")
        stages.wrap(keyframe_batches.KeyframeFinder, "push", "person boxes (CSV)")
        stages.wrap(keyframe_batches.KeyframeBatcher, "_request", "clip assembly")
        stages.wrap(tracking.PersonTracker, "update", "tracking")
        stages.wrap(pipeline, "top_labels", "labels")
        stages.wrap(visualizer.ActionVisualizer, "draw", "draw")
        stages.wrap(VideoWriter, "write", "encode")
        stages.wrap(VideoWriter, "close", "encode")
        stages.wrap(outputs.DetectionWriter, "write", "CSV/JSON")

        settings = DemoSettings(
            args.video,
            os.path.join(tmp, "out"),
            batch_size=args.batch_size,
            max_seconds=args.max_seconds or None,
            progress=False,
        )
        load = os.getloadavg()[0]
        profiler = cProfile.Profile() if args.profile else None
        t, c = time.perf_counter(), time.process_time()
        if profiler is not None:
            profiler.enable()
        summary = run_demo(settings, predictor, boxes)
        if profiler is not None:
            profiler.disable()
        total, total_cpu = time.perf_counter() - t, time.process_time() - c
        load = max(load, os.getloadavg()[0])

    s, cpu = stages.seconds, stages.cpu
    model, model_cpu = s["model forward"], cpu["model forward"]
    overhead, overhead_cpu = total - model, total_cpu - model_cpu
    print(
        f"{os.cpu_count()} CPUs, {args.threads} torch thread(s), load average {load:.2f}; "
        f"{Path(args.config_file).name} on {args.device} (loaded in {load_s:.1f} s, not counted)"
    )
    print(
        f"{Path(args.video).name} {width}x{height} @ {fps:g} fps: {summary['num_frames']} frames, "
        f"{summary['num_keyframes']} keyframes, {summary['num_boxes']} boxes, batch {args.batch_size}"
    )
    print(f"{'':<28} {'wall s':>8} {'CPU s':>8}")
    print(f"{'model (forward, %d batches)' % stages.calls['model forward']:<28} {model:8.2f} {model_cpu:8.2f}")
    print(f"{'demo total (run_demo)':<28} {total:8.2f} {total_cpu:8.2f}")
    print(f"{'overhead = total - model':<28} {overhead:8.2f} {overhead_cpu:8.2f}")
    print(
        f"overhead / model: {100 * overhead / model:.2f} % wall, {100 * overhead_cpu / model_cpu:.2f} % CPU "
        f"(goal <= 15 %)"
    )
    per_frame = 1e3 / max(summary["num_frames"], 1)
    rows = [(k, s[k], cpu[k]) for k in s if k not in ("model forward", "predictor call")]
    io_row = ("model I/O (predictor call - forward)", s["predictor call"] - model, cpu["predictor call"] - model_cpu)
    rows.insert(2, io_row)
    rows.append(
        ("other (open, finish, glue)", overhead - sum(r[1] for r in rows), overhead_cpu - sum(r[2] for r in rows))
    )
    print(f"{'stage':<38} {'wall s':>7} {'ms/frame':>9} {'% of model':>10} {'CPU s':>7} {'% of model CPU':>14}")
    for name, v, c in rows:
        print(f"{name:<38} {v:7.3f} {v * per_frame:9.2f} {100 * v / model:10.2f} {c:7.3f} {100 * c / model_cpu:14.2f}")
    if args.model_alone:
        t, c = time.perf_counter(), time.process_time()
        with torch.no_grad():
            for inputs in batches:
                model_forward(inputs)
        alone, alone_cpu = time.perf_counter() - t, time.process_time() - c
        print(
            f"model forward again, alone on the same {len(batches)} batches: {alone:.2f} s wall, {alone_cpu:.2f} s "
            f"CPU; overhead / that: {100 * overhead / alone:.2f} % wall, {100 * overhead_cpu / alone_cpu:.2f} % CPU"
        )
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(args.profile)
        print(out.getvalue())
    return 1 if 100 * overhead / model > args.max_overhead else 0


if __name__ == "__main__":
    sys.exit(main())
