"""VideoMAE self-supervised pretraining (detectron2 CLI conventions).

    python tools/pretrain_mae.py --config-file configs/pretrain/tiny.py           # ~1 min on CPU
    python tools/pretrain_mae.py --config-file configs/pretrain/videomae_vit_b_k400_800ep.py --num-gpus 8
    python tools/pretrain_mae.py --config-file configs/pretrain/tiny.py --videos /path/to/my_videos  # a folder
    python tools/pretrain_mae.py --config-file CONFIG --videos /path/to/train.csv   # a list: "path [label]" per line
    python tools/pretrain_mae.py --config-file CONFIG --resume    # continue from output_dir's last checkpoint
    python tools/pretrain_mae.py --config-file CONFIG --eval-only --resume   # reconstruction loss of it

Trailing ``key=value`` pairs override config entries (e.g. ``train.max_iter=50``); unknown keys and
bad values are an error. Writes checkpoints, metrics.json, a loss curve and reconstruction_<iter>.png
pictures to ``train.output_dir`` (one run at a time per folder). ``--eval-only`` prints the masked
reconstruction loss (loss_mae) of train.init_checkpoint, or with ``--resume`` of the folder's last
checkpoint, on 10 batches of dataloader.train. ``--videos PATH`` replaces the config's training videos
(``dataloader.train.dataset.names``) by a folder (searched recursively) or a list file; a missing path or
a folder without videos is an error naming it.
"""

import sys

import vmae_det  # noqa: F401  (detectron2 shims first)
from vmae_det.cli import run_main
from vmae_det.engine import default_argument_parser, launch_from_args


def main():
    args = default_argument_parser(epilog=__doc__, videos=True).parse_args()
    launch_from_args(args)


def cli() -> int:
    """Console-script entry point: exit code of :func:`main` (2 with one ``error:`` line on bad input)."""
    return run_main(main, interrupted="the checkpoints written so far are whole; --resume continues from the last one")


if __name__ == "__main__":
    sys.exit(cli())
