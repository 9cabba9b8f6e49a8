r"""Train or evaluate an action detector: AVA, AVA-Kinetics, UCF101-24, JHMDB-21, MultiSports (detectron2 CLI
conventions).

    python tools/train_net.py --config-file configs/ava/vit_b.py [--num-gpus 8] \
        train.init_checkpoint=/path/to/videomae_vit_b_k400_pretrain_finetune.pth
    python tools/train_net.py --config-file configs/ava/vit_b.py --ava-root datasets/my_ava \
        train.init_checkpoint=/path/to/videomae_pretrain.pth   # your own dataset in the AVA layout
    python tools/train_net.py --config-file CONFIG --eval-only train.init_checkpoint=output/model_final.pth
    python tools/train_net.py --config-file configs/ava/vit_s.py --eval-only \
        train.init_checkpoint=vmad_ava_vit_s.pth   # an official VideoMAE-Action-Detection AVA checkpoint
    python tools/train_net.py --config-file CONFIG --resume        # continue after an interruption
    python tools/train_net.py --config-file CONFIG --eval-only --resume   # evaluate output_dir's last checkpoint

Trailing ``key=value`` pairs override config entries; unknown keys and bad values are an error.
One run at a time per train.output_dir (a second one is refused). ``--ava-root ROOT`` trains on the
``train`` split of an AVA-layout folder (tools/prepare_custom_dataset.py writes one from your videos) and
evaluates on its ``val`` split, with the action head as wide as its label map.
"""

import sys

import vmae_det  # noqa: F401  (detectron2 shims first)
from vmae_det.cli import run_main
from vmae_det.engine import default_argument_parser, launch_from_args


def main():
    args = default_argument_parser(epilog=__doc__, ava_root=True).parse_args()
    launch_from_args(args)


def cli() -> int:
    """Console-script entry point: exit code of :func:`main` (2 with one ``error:`` line on bad input)."""
    return run_main(main, interrupted="the checkpoints written so far are whole; --resume continues from the last one")


if __name__ == "__main__":
    sys.exit(cli())
