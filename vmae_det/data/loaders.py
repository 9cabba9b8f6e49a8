"""A batched inference loader: detectron2 v0.6's ``build_detection_test_loader`` is fixed at batch 1,
which leaves a GPU idle on AVA's 50k validation keyframes."""

from __future__ import annotations

from typing import Callable, List, Optional, Union

import torch.utils.data as torchdata
from detectron2.data import DatasetFromList, MapDataset
from detectron2.data.build import trivial_batch_collator
from detectron2.data.samplers import InferenceSampler

__all__ = ["build_batched_test_loader"]


def build_batched_test_loader(
    dataset: Union[List, torchdata.Dataset],
    *,
    mapper: Optional[Callable],
    batch_size: int = 1,
    num_workers: int = 0,
) -> torchdata.DataLoader:
    """Like detectron2's test loader (each process sees its shard, in order) with a batch size."""
    if isinstance(dataset, list):
        dataset = DatasetFromList(dataset, copy=False)
    if mapper is not None:
        dataset = MapDataset(dataset, mapper)
    return torchdata.DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=InferenceSampler(len(dataset)),
        num_workers=num_workers,
        collate_fn=trivial_batch_collator,
        drop_last=False,
    )
