"""Catalog helpers of every dataset family: the datasets root, a registration's metadata, and names checked against
detectron2's catalog before any work, so a typo is one clear error."""

from __future__ import annotations

import difflib
import os

__all__ = ["UnknownDatasetError", "check_dataset_name", "datasets_root", "set_metadata"]


def datasets_root() -> str:
    """Root of the built-in datasets: ``$VMAE_DET_DATASETS``, default ``./datasets``."""
    return os.environ.get("VMAE_DET_DATASETS", "datasets")


def set_metadata(name: str, metadata_class: type, **meta) -> None:
    """Set ``meta`` on dataset ``name``'s metadata, made a ``metadata_class`` (a lazy reader) first."""
    from detectron2.data import MetadataCatalog

    if not isinstance(MetadataCatalog.get(name), metadata_class):
        MetadataCatalog[name] = metadata_class(name=name)
    MetadataCatalog.get(name).set(**meta)


class UnknownDatasetError(ValueError):
    """A dataset name that is not registered in detectron2's ``DatasetCatalog``."""


def check_dataset_name(name: str, what: str = "--dataset") -> None:
    """Raise :class:`UnknownDatasetError` naming ``what`` unless ``name`` is a registered dataset."""
    from detectron2.data import DatasetCatalog

    from .. import data  # noqa: F401  (registers the built-in datasets)

    registered = list(DatasetCatalog.list())
    if name in registered:
        return
    close = difflib.get_close_matches(str(name), registered, n=3)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    raise UnknownDatasetError(
        f"{what}: dataset {name!r} is not registered.{hint} (the built-in ones are ava_v2.2_*, ava_tiny_*, "
        "tiny_ava_videos, ava_kinetics_*, ucf24_*, jhmdb_*, multisports_*, ...; a dataset of your own: register it "
        "in the config file, or pass --ava-root ROOT / --videos PATH to the training tools)"
    )
