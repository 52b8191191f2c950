"""CIFAR-10 from ``cifar10.npz`` or the original python batches."""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np
import torch

from trimkit.data._arrays import check_images_and_labels, read_npz
from trimkit.data._dataset import ImageDataset
from trimkit.data._locate import find_first
from trimkit.errors import TrimkitError

CIFAR_NORMALIZATION = ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def load_cifar10(split: str, data_dir: str | os.PathLike | None) -> ImageDataset:
    path = find_first(data_dir, "cifar10", ["cifar10.npz", "cifar-10-batches-py"])
    if path.suffix == ".npz":
        key = "train" if split == "train" else "test"
        images, labels = read_npz(path, (f"x_{key}", f"y_{key}"))
        check_images_and_labels(path, images, labels)
        if images.ndim == 4 and images.shape[-1] == 3:
            images = images.transpose(0, 3, 1, 2)
    else:
        names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
        parts = [_read_python_batch(path / name) for name in names]
        images = np.concatenate([p[0] for p in parts]).reshape(-1, 3, 32, 32)
        labels = np.concatenate([p[1] for p in parts])
    images_tensor = torch.from_numpy(np.ascontiguousarray(images, dtype=np.uint8))
    labels_tensor = torch.from_numpy(np.asarray(labels, dtype=np.int64).reshape(-1))
    augmentation = "crop_flip" if split == "train" else None
    return ImageDataset("cifar10", split, images_tensor, labels_tensor, CLASSES, CIFAR_NORMALIZATION, augmentation)


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """The CIFAR python batches are pickles; allow only what they hold (numpy arrays,
    lists, dicts, bytes) so a tampered file cannot run code."""

    ALLOWED = frozenset({
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    })

    def find_class(self, module: str, name: str):  # type: ignore[override]
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _read_python_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.exists():
        raise TrimkitError(f"CIFAR-10 batch {path} is missing; the folder needs data_batch_1..5 and test_batch")
    try:
        batch = _ArrayOnlyUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError) as error:
        raise TrimkitError(f"cannot read CIFAR-10 batch {path}: {error}") from None
    return np.asarray(batch[b"data"], dtype=np.uint8), np.asarray(batch[b"labels"], dtype=np.int64)
