"""Write SlowFast-style AVA person proposals with an off-the-shelf COCO person detector.

For every video of a dataset root (``frames/<id>/`` or ``videos/<id>.*``) and every keyframe second
from 902 whose frame exists, runs the detector on the keyframe and writes
``video_id,timestamp,x1,y1,x2,y2,,score`` rows (boxes normalised, person class only,
``score >= --min-score``) — the format of SlowFast's ``ava_{train,val}_predicted_boxes.csv``.

A video of ``--split`` with neither frames nor a video file, or one that cannot be decoded, stops
the tool with ``error: ...`` naming it (exit code 2): proposals that silently miss a video lower
its mAP without a word. ``--skip-bad-videos`` skips such videos instead, each logged and counted in
the summary line. The work is done by ``vmae_det.data.proposals``.

``--dataset NAME`` (a registered ACT-format dataset: ``ucf24_test``, ``jhmdb_test_split1``, ...) writes its person
boxes instead, on every frame of its split's videos (or every ``--frame-stride``-th), as MultiSports' person-box
pickle, which the registration reads as the dataset's ``proposal_file`` (docs/datasets.md). An AVA-Kinetics name
(``kinetics_ava_val``, ...) writes the person boxes of its Kinetics keyframes, on the frame each keyframe's clip
is centred on, as AVA's predicted-boxes CSV with the annotation file's timestamps
(``annotations/kinetics_<split>_predicted_boxes.csv``, docs/ava_kinetics.md); keyframes whose clip is missing are
skipped and counted. Finished videos (clips) are kept in ``<output>.partial`` every few minutes; ``--resume`` goes
on from there. The work is done by ``vmae_det.data.act.proposals`` / ``vmae_det.data.ava.kinetics_proposals``.

Examples::

    python tools/make_proposals.py --root datasets/tiny_ava --split val \\
        --detector torchvision --weights fasterrcnn_resnet50_fpn_coco.pth \\
        --output datasets/tiny_ava/annotations/ava_val_predicted_boxes.csv
    python tools/make_proposals.py --dataset ucf24_test --detector torchvision --device cuda \\
        --output datasets/ucf24/person_boxes/test.pkl
    python tools/make_proposals.py --dataset kinetics_ava_val --detector torchvision --device cuda \\
        --output datasets/ava_kinetics/annotations/kinetics_val_predicted_boxes.csv
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path
from typing import Optional, Sequence

import vmae_det  # noqa: F401  (shims before detectron2)
from vmae_det.cli import check_output_file, run_main
from vmae_det.constants import AVA_FIRST_KEYFRAME_SEC, AVA_START_SEC
from vmae_det.data.person_detector import DETECTORS, build_person_detector
from vmae_det.data.proposals import collect_videos, make_proposals

__all__ = ["collect_videos", "make_proposals", "main", "check_arguments", "dataset_kind"]


def dataset_kind(name: str) -> str:
    """``"act"`` or ``"ava_kinetics"``: which registered-dataset mode ``--dataset name`` runs."""
    from vmae_det.data.act.proposals import act_dataset_names
    from vmae_det.data.ava.kinetics_proposals import ava_kinetics_dataset_names

    act, kinetics = act_dataset_names(), ava_kinetics_dataset_names()
    if name in act:
        return "act"
    if name in kinetics:
        return "ava_kinetics"
    raise KeyError(
        f"--dataset {name!r} is not a registered ACT-format dataset (UCF101-24, JHMDB-21, MultiSports) nor an "
        f"AVA-Kinetics one; registered: {', '.join(act + kinetics)}"
    )


def check_arguments(args) -> None:
    """Refuse bad values (``--min-score nan`` included) before any video is opened."""
    from vmae_det.resources import check_device

    if not (math.isfinite(args.min_score) and 0.0 <= args.min_score <= 1.0):
        raise ValueError(f"--min-score must be a finite number in [0, 1], got {args.min_score}")
    if args.dataset is None:
        for flag, value in (("--frame-stride", args.frame_stride), ("--resume", args.resume)):
            if value not in (None, False):
                raise ValueError(f"{flag} goes with --dataset (an ACT-format dataset), not with --root")
    else:
        source = None if args.source == "auto" else args.source
        for flag, value in (
            ("--root", args.root),
            ("--split", args.split),
            ("--first-sec", args.first_sec),
            ("--source", source),
        ):
            if value is not None:
                raise ValueError(
                    f"--dataset {args.dataset} takes its videos and frames from its registration; drop {flag}"
                )
        if args.frame_stride is not None and args.frame_stride < 1:
            raise ValueError(f"--frame-stride must be an integer >= 1, got {args.frame_stride}")
        if args.frame_stride is not None and dataset_kind(args.dataset) == "ava_kinetics":
            raise ValueError(
                f"--frame-stride goes with an ACT-format --dataset; {args.dataset} is AVA-Kinetics (one frame per "
                "keyframe)"
            )
    if args.first_sec is not None and args.first_sec < AVA_START_SEC:
        raise ValueError(
            f"--first-sec must be an AVA second >= {AVA_START_SEC} (frame 0 of the videos), got {args.first_sec}"
        )
    check_device(args.device, "--device")
    check_output_file(args.output, "--output")


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--root", default=None, help="AVA-layout dataset root with frames/ or videos/ (default datasets/tiny_ava)"
    )
    p.add_argument("--split", default=None, help="only videos of annotations/ava_<split>_v2.2.csv")
    p.add_argument("--source", choices=("auto", "frames", "videos"), default="auto")
    p.add_argument("--detector", choices=DETECTORS, default="torchvision")
    p.add_argument("--weights", default=None, help="local weights file (default: library download/cache)")
    p.add_argument("--min-score", type=float, default=0.5)
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--first-sec", type=int, default=None, help=f"first keyframe second (default {AVA_FIRST_KEYFRAME_SEC})"
    )
    p.add_argument("--output", required=True)
    p.add_argument(
        "--skip-bad-videos",
        action="store_true",
        help="skip (log and count) videos of the split that are missing or cannot be decoded "
        "instead of stopping with an error",
    )
    act = p.add_argument_group("registered datasets: ACT-format (UCF101-24, JHMDB-21, MultiSports), AVA-Kinetics")
    act.add_argument(
        "--dataset",
        default=None,
        help="a registered name (ucf24_test, kinetics_ava_val, ...): write its person-box pickle (ACT) or its Kinetics "
        "keyframes' predicted-boxes CSV (AVA-Kinetics)",
    )
    act.add_argument("--frame-stride", type=int, default=None, help="every N-th frame, 1 + k * N (default 1: all)")
    act.add_argument("--resume", action="store_true", help="keep the videos done in --output or its .partial file")
    args = p.parse_args(argv)
    check_arguments(args)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.dataset is not None:
        return _kinetics_main(args) if dataset_kind(args.dataset) == "ava_kinetics" else _act_main(args)
    args.root = args.root or "datasets/tiny_ava"
    args.first_sec = AVA_FIRST_KEYFRAME_SEC if args.first_sec is None else args.first_sec
    # Every video is checked before the detector is built: a bad input ends in seconds.
    videos = collect_videos(Path(args.root), args.split, args.source, args.skip_bad_videos)
    detector = build_person_detector(
        args.detector, weights=args.weights, device=args.device, score_threshold=args.min_score
    )
    n = make_proposals(
        Path(args.root),
        Path(args.output),
        detector,
        split=args.split,
        source=args.source,
        first_sec=args.first_sec,
        min_score=args.min_score,
        skip_bad_videos=args.skip_bad_videos,
        videos=videos,
    )
    print(f"wrote {n} proposals to {args.output}")
    return 0


def _act_main(args) -> int:
    from vmae_det.data.act.proposals import collect_act_videos, make_act_person_boxes

    # Every video is checked before the detector is built: a bad input ends in seconds.
    videos = collect_act_videos(args.dataset, args.frame_stride or 1, args.skip_bad_videos)
    detector = build_person_detector(
        args.detector, weights=args.weights, device=args.device, score_threshold=args.min_score
    )
    n_videos, n_frames, n_boxes = make_act_person_boxes(
        args.dataset,
        args.output,
        detector,
        min_score=args.min_score,
        resume=args.resume,
        skip_bad_videos=args.skip_bad_videos,
        videos=videos,
    )
    print(f"wrote {n_boxes} person boxes on {n_frames} frames of {n_videos} videos of {args.dataset} to {args.output}")
    return 0


def _kinetics_main(args) -> int:
    from vmae_det.data.ava.kinetics_proposals import collect_kinetics_keyframes, make_kinetics_person_boxes

    # The clips are listed (missing ones counted) before the detector is built.
    jobs = collect_kinetics_keyframes(args.dataset)
    detector = build_person_detector(
        args.detector, weights=args.weights, device=args.device, score_threshold=args.min_score
    )
    n = make_kinetics_person_boxes(
        args.dataset,
        args.output,
        detector,
        min_score=args.min_score,
        resume=args.resume,
        skip_bad_videos=args.skip_bad_videos,
        jobs=jobs,
    )
    print(
        f"wrote {n['boxes']} person boxes on {n['detected_keyframes']} of the {n['keyframes']} Kinetics keyframes "
        f"({n['clips']} clips) of {args.dataset} to {args.output}; skipped: {n['skipped_keyframes']} keyframe(s) of "
        f"{n['missing_clips']} missing clip(s), {n['skipped_clips']} undecodable clip(s)"
    )
    return 0


def cli() -> int:
    """Console-script entry point: exit code of :func:`main` (2 with one ``error:`` line on bad input)."""
    return run_main(
        main,
        interrupted="no proposals file written (an earlier --output is untouched; with --dataset the finished videos "
        "are in <output>.partial, which --resume goes on from)",
    )


if __name__ == "__main__":
    sys.exit(cli())
