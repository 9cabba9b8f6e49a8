"""Per-box RoI features of the AVA action detector (the action head's input), for long-term models.

    python tools/extract_features.py --config-file configs/ava/tiny.py \\
        --checkpoint output/ava_tiny/model_final.pth --output output/features_tiny_val --split test

Writes ``.npy`` shards of the pooled RoI feature of every person box the evaluation would classify
(``--split test``: the test loader's proposals; ``--split train``: the training set's ground-truth boxes and
person ids), ``index.csv`` naming each row and ``meta.json``. A stopped run continues with ``--resume`` and
ends with the same bytes as an uninterrupted one. The format is documented in docs/features.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Optional, Sequence

import vmae_det  # noqa: F401  (detectron2 shims first)
from vmae_det.cli import run_main
from vmae_det.resources import cap_workers

__all__ = ["check_arguments", "cli", "main"]

logger = logging.getLogger("vmae_det.extract_features")


def _load_tracker_class():
    """``vmae_det.demo.tracking.PersonTracker`` when installed, else None (ids stay -1)."""
    try:
        from vmae_det.demo.tracking import PersonTracker
    except ImportError as e:
        logger.info(f"no person tracker ({e}): person_id is -1 for proposals")
        return None
    return PersonTracker


def check_arguments(args) -> None:
    """Refuse bad values before anything is loaded."""
    for name in ("batch_size", "shard_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be an integer >= 1, got {value}")
    if args.num_workers is not None and args.num_workers < 0:
        raise ValueError(f"--num-workers must be >= 0, got {args.num_workers}")
    from ..checkpoints import refuse_checkpoint_folder

    refuse_checkpoint_folder(args.checkpoint, "--checkpoint")
    if not os.path.isfile(args.checkpoint):
        raise FileNotFoundError(
            f"--checkpoint {args.checkpoint} does not exist (the action detector's weights, "
            "e.g. output/ava_tiny/model_final.pth)"
        )
    if not os.path.isfile(args.config_file):
        raise FileNotFoundError(f"--config-file {args.config_file} does not exist")
    if os.path.exists(args.output) and not os.path.isdir(args.output):
        raise ValueError(f"--output {args.output} is a file, not a folder")


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config-file", required=True, help="the detector's LazyConfig (e.g. configs/ava/vit_b.py)")
    p.add_argument(
        "--checkpoint", required=True, help="the detector's weights (its model_final.pth or a VMAD AVA checkpoint)"
    )
    p.add_argument("--output", required=True, help="folder for features_NNNNN.npy, index.csv, meta.json")
    p.add_argument(
        "--ava-root",
        default=None,
        help="a folder in the AVA layout (tools/prepare_custom_dataset.py's) instead of the config's datasets, "
        "as tools/train_net.py --ava-root",
    )
    p.add_argument(
        "--split",
        choices=("test", "train"),
        default="test",
        help="test: the evaluation's keyframes and person proposals; train: the training keyframes with "
        "their ground-truth boxes and person ids (default: test)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="keyframes per forward pass (default: dataloader.test.batch_size, so clips are padded "
        "together as in the evaluation)",
    )
    p.add_argument("--shard-size", type=int, default=4096, help="rows (boxes) per shard, at least (default 4096)")
    p.add_argument(
        "--dtype",
        choices=("float32", "float16"),
        default="float32",
        help="feature storage type (default float32: exactly the head's input)",
    )
    p.add_argument(
        "--num-workers", type=int, default=None, help="data-loader workers (default: the config's test loader's)"
    )
    p.add_argument("--resume", action="store_true", help="continue an unfinished extraction in --output")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides key=value (e.g. train.device=cpu)")
    args = p.parse_args(argv)
    check_arguments(args)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from vmae_det.engine.feature_extraction import extract_features
    from vmae_det.engine.train_loop import load_run_config

    cfg = load_run_config(
        argparse.Namespace(
            config_file=args.config_file,
            opts=list(args.opts),
            videos=None,
            ava_root=args.ava_root,
            eval_only=args.split == "test",
        )
    )
    meta = extract_features(
        cfg,
        config_file=args.config_file,
        checkpoint=args.checkpoint,
        output=args.output,
        opts=args.opts,
        ava_root=args.ava_root,
        split=args.split,
        batch_size=args.batch_size,
        shard_size=args.shard_size,
        dtype=args.dtype,
        # capped at the CPU count (the config's value is, by load_run_config's checks)
        num_workers=cap_workers(args.num_workers, "--num-workers") if args.num_workers is not None else None,
        resume=args.resume,
        load_tracker=_load_tracker_class,
    )
    if meta is None:
        print(f"{Path(args.output)} is complete: nothing to do")
        return 0
    print(
        f"wrote {meta['num_rows']} features of dim {meta['feature_dim']} ({args.dtype}) for {meta['num_keyframes']} "
        f"keyframes ({meta['keyframes_without_boxes']} without boxes) in {len(meta['shards'])} shard(s) "
        f"to {Path(args.output)}"
    )
    return 0


def cli() -> int:
    """Console-script entry point: exit code of :func:`main` (2 with one ``error:`` line on bad input)."""
    return run_main(main, interrupted="the shards written so far are whole; --resume continues from the last one")


if __name__ == "__main__":
    sys.exit(cli())
