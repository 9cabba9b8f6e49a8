"""Checks of a loaded config against the machine and the datasets, run before anything is built (the checks of
single ``train.*`` values are ``vmae_det.config.load_config``'s)."""

from __future__ import annotations

from typing import Iterator, Tuple

import torch
from omegaconf import DictConfig, ListConfig

from ..cli import with_context

__all__ = ["check_run", "check_num_classes", "check_loaders", "check_eval_sources"]


def _dataset_names(cfg) -> Iterator[Tuple[str, str]]:
    """``(where, dataset name)`` for every dataset the config's loaders and evaluator name."""
    loaders = cfg.get("dataloader")
    if not isinstance(loaders, DictConfig):
        return
    for split, loader in loaders.items():
        if not isinstance(loader, DictConfig):
            continue
        if split == "evaluator" or "dataset_name" in loader:
            name = loader.get("dataset_name")
            if isinstance(name, str):
                yield f"dataloader.{split}.dataset_name", name
        dataset = loader.get("dataset")
        names = dataset.get("names") if isinstance(dataset, DictConfig) else None
        if isinstance(names, str):
            names = [names]
        if isinstance(names, (list, tuple, ListConfig)):
            for n in names:
                if isinstance(n, str):
                    yield f"dataloader.{split}.dataset.names", n


def check_num_classes(cfg) -> None:
    """``model.num_classes`` (the head's width; column ``k`` is action id ``k + 1``) must cover the largest
    action id of every label map the config's datasets use, and equal each mapper's ``num_classes``."""
    model = cfg.get("model")
    num_classes = model.get("num_classes") if isinstance(model, DictConfig) else None
    if not isinstance(num_classes, int) or isinstance(num_classes, bool):
        return
    if num_classes < 1:
        raise ValueError(f"model.num_classes={num_classes} is not valid: expected an integer >= 1")
    from detectron2.data import DatasetCatalog, MetadataCatalog

    from .. import data  # noqa: F401  (registers the built-in datasets)

    registered = set(DatasetCatalog.list())
    for where, name in _dataset_names(cfg):
        if name not in registered:
            continue
        meta = MetadataCatalog.get(name)
        names = meta.get("class_names", None) if hasattr(meta, "get") else None
        largest = max(names) if names else meta.get("num_classes", None)
        if isinstance(largest, int) and num_classes < largest:
            label_map = meta.get("label_map_file", None)
            source = f"the label map {label_map}" if names and label_map else "its metadata"
            raise ValueError(
                f"model.num_classes={num_classes} is smaller than the largest action id {largest} of dataset "
                f"'{name}' ({where}; {source}): actions above {num_classes} would have no output. Set "
                f"model.num_classes={largest} and dataloader.*.mapper.num_classes={largest}."
            )
    loaders = cfg.get("dataloader")
    for split, loader in loaders.items() if isinstance(loaders, DictConfig) else ():
        mapper = loader.get("mapper") if isinstance(loader, DictConfig) else None
        width = mapper.get("num_classes") if isinstance(mapper, DictConfig) else None
        if width is not None and width != num_classes:
            raise ValueError(
                f"dataloader.{split}.mapper.num_classes={width} differs from model.num_classes={num_classes}: "
                "the labels and the action head must have the same width; set both to the same value."
            )


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_loaders(cfg, args=None) -> None:
    """Check each ``dataloader.<split>``'s batch sizes, worker count (capped at the CPU count, in ``cfg``) and
    dataset names."""
    from ..data.catalog_names import check_dataset_name
    from ..resources import cap_workers

    loaders = cfg.get("dataloader")
    if not isinstance(loaders, DictConfig):
        return
    world = int(getattr(args, "num_gpus", 1) or 1) * int(getattr(args, "num_machines", 1) or 1) if args else 1
    for split, loader in loaders.items():
        if not isinstance(loader, DictConfig):
            continue
        for key in ("total_batch_size", "batch_size"):
            value = loader.get(key) if key in loader else None
            if value is not None and not (_is_int(value) and value >= 1):
                raise ValueError(f"dataloader.{split}.{key}={value!r} is not valid: expected an integer >= 1")
        total = loader.get("total_batch_size") if "total_batch_size" in loader else None
        if total is not None and total % world:
            raise ValueError(
                f"dataloader.{split}.total_batch_size={total} is not a multiple of the {world} "
                "processes (--num-gpus x --num-machines) that share it"
            )
        workers = loader.get("num_workers") if "num_workers" in loader else None
        if workers is not None:
            if not (_is_int(workers) and workers >= 0):
                raise ValueError(f"dataloader.{split}.num_workers={workers!r} is not valid: expected an integer >= 0")
            loader.num_workers = cap_workers(workers, f"dataloader.{split}.num_workers")
    for where, name in _dataset_names(cfg):
        check_dataset_name(name, where)


def check_eval_sources(cfg) -> None:
    """The videos of the datasets the config evaluates on exist (existence checks, nothing decoded): a missing
    ACT-format test video would end the run at its first evaluation, after training."""
    from ..data.act.catalog import check_act_sources

    seen = set()
    for where, name in _dataset_names(cfg):
        if where.startswith("dataloader.train.") or name in seen:
            continue
        seen.add(name)
        try:
            check_act_sources(name)
        except (OSError, ValueError) as e:
            raise with_context(e, f"{where}={name}") from None


def check_run(cfg, args=None) -> None:
    """Everything about ``cfg`` that can be refused before a model or a loader is built."""
    device = str(cfg.train.device)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"train.device={device} but CUDA is not available here: use train.device=auto or cpu")
    if args is not None and torch.cuda.is_available() and getattr(args, "num_gpus", 1) > torch.cuda.device_count():
        raise ValueError(f"--num-gpus {args.num_gpus} but this machine has {torch.cuda.device_count()} GPU(s)")
    if args is not None and getattr(args, "machine_rank", 0) >= getattr(args, "num_machines", 1):
        raise ValueError(f"--machine-rank {args.machine_rank} must be below --num-machines {args.num_machines}")
    check_loaders(cfg, args)
    check_num_classes(cfg)
    check_eval_sources(cfg)
