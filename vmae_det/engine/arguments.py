"""The command line of ``tools/train_net.py`` and ``tools/pretrain_mae.py``: detectron2's flags with
LazyConfig help and a required ``--config-file`` (detectron2's help text is from its yacs era)."""

from __future__ import annotations

import argparse
import os
import sys

__all__ = ["default_argument_parser"]

_EPILOG = """
Overrides: trailing key=value pairs change config entries, e.g.
    train.max_iter=100 train.output_dir=output/run1 optimizer.lr=1e-4
An unknown key is an error (with a suggestion); every train.* key, its default and allowed values are in
vmae_det/config_schema.py.

Several machines (NCCL with GPUs, gloo without; HOST: machine 0's address, PORT: a free port there):
    (machine 0)$ {prog} --config-file CONFIG --num-gpus 8 --num-machines 2 --machine-rank 0 --dist-url tcp://HOST:PORT
    (machine 1)$ {prog} --config-file CONFIG --num-gpus 8 --num-machines 2 --machine-rank 1 --dist-url tcp://HOST:PORT
or with torchrun (the processes and machines come from torchrun; leave --num-gpus/--num-machines out):
    $ torchrun --nnodes 2 --node-rank R --nproc-per-node 8 --master-addr HOST --master-port PORT \\
        {prog} --config-file CONFIG
SLURM, one task per machine: see the README (Usage, "Several machines").
"""


def _int_at_least(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {value}")
        return value

    parse.__name__ = f"integer >= {low}"
    return parse


class _Parser(argparse.ArgumentParser):
    def parse_args(self, args=None, namespace=None):
        ns = super().parse_args(args, namespace)
        flags = [o for o in ns.opts or () if o.startswith("-")]
        if flags:
            self.error(f"{' '.join(flags)}: flags must come before the key=value overrides")
        return ns


def default_argument_parser(epilog=None, *, videos: bool = False, ava_root: bool = False) -> argparse.ArgumentParser:
    """The flags of detectron2's ``default_argument_parser``, ``--config-file`` required.

    Args:
        epilog: the tool's usage text, shown before the flags.
        videos, ava_root: also ``--videos PATH`` / ``--ava-root ROOT`` (:mod:`vmae_det.engine.data_flags`).
    """
    parser = _Parser(
        description=epilog,
        epilog=_EPILOG.format(prog=os.path.basename(sys.argv[0]) or "tool.py"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config-file",
        required=True,
        metavar="FILE",
        help="LazyConfig Python file, e.g. configs/ava/vit_b.py or configs/pretrain/tiny.py",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue from the last intact checkpoint in train.output_dir (weights, optimizer, LR schedule, "
        "iteration, best-checkpoint record); a new run starts, with a warning, when there is none. "
        "With --eval-only: evaluate that checkpoint",
    )
    parser.add_argument(
        "--eval-only",
        action="store_true",
        help="evaluate train.init_checkpoint (or, with --resume, the last checkpoint of "
        "train.output_dir) and exit; for MAE pretraining configs: the reconstruction "
        "loss on a few batches",
    )
    parser.add_argument(
        "--num-gpus",
        type=_int_at_least(1),
        default=1,
        help="processes per machine, one per GPU (without CUDA: CPU processes with gloo)",
    )
    parser.add_argument("--num-machines", type=_int_at_least(1), default=1, help="total number of machines")
    parser.add_argument(
        "--machine-rank", type=_int_at_least(0), default=0, help="the rank of this machine, 0 .. num-machines - 1"
    )
    parser.add_argument(
        "--dist-url",
        default="auto",
        help="torch.distributed init URL; 'auto' (default): a free port on this machine, or the "
        "environment when started by torchrun. Several machines need tcp://HOST:PORT of "
        "machine 0; env://: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT as torchrun sets",
    )
    if videos:
        parser.add_argument(
            "--videos",
            metavar="PATH",
            default=None,
            help="pretrain on these videos: a folder (searched recursively) or a list file "
            "('path [label]' per line, relative paths from the list's folder); sets "
            "dataloader.train.dataset.names",
        )
    if ava_root:
        parser.add_argument(
            "--ava-root",
            metavar="ROOT",
            default=None,
            help="train and evaluate on a dataset in the AVA layout (annotations/, frames/ or "
            "videos/; tools/prepare_custom_dataset.py writes it): its train and val splits, "
            "and model/mapper num_classes from its label map",
        )
    parser.add_argument(
        "opts",
        nargs=argparse.REMAINDER,
        default=None,
        metavar="key=value",
        help="config overrides, e.g. train.max_iter=100 (see below)",
    )
    return parser
