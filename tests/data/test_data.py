from __future__ import annotations

import gzip
import pickle

import numpy as np
import pytest
import torch

from conftest import SHARED_DATA, requires_shared_data
from trimkit import data
from trimkit.data._augment import random_crop_flip
from trimkit.errors import TrimkitError


def test_mnist5k_split_is_fixed_disjoint_and_stratified():
    train, val = data.load("mnist5k", "train"), data.load("mnist5k", "val")
    assert (len(train), len(val)) == (4000, 1000)
    assert train.labels.bincount().tolist() == [400] * 10
    assert val.labels.bincount().tolist() == [100] * 10
    assert train.image_shape == (1, 28, 28)
    flat_train = {bytes(img.numpy()) for img in train.images}
    assert not any(bytes(img.numpy()) in flat_train for img in val.images[:200])
    again = data.load("mnist5k", "val")
    assert torch.equal(again.images, val.images) and torch.equal(again.labels, val.labels)
    assert torch.equal(data.load("mnist5k", "test").images, val.images)


def test_batches_are_normalised_and_cover_every_sample_once():
    dataset = data.load("mnist5k", "val")
    generator = torch.Generator().manual_seed(1)
    seen = torch.cat([labels for _, labels in dataset.batches(300, shuffle=True, generator=generator)])
    assert seen.sort().values.tolist() == dataset.labels.sort().values.tolist()
    images, _ = next(dataset.batches(1000))
    mean, std = dataset.normalization
    expected = (dataset.images.float() / 255 - mean[0]) / std[0]
    assert torch.allclose(images, expected)


def test_crop_flip_shifts_and_mirrors_exactly():
    images = torch.arange(2 * 1 * 4 * 4, dtype=torch.uint8).reshape(2, 1, 4, 4)
    generator = torch.Generator().manual_seed(3)
    out = random_crop_flip(images, padding=1, flip=True, generator=generator)
    generator = torch.Generator().manual_seed(3)
    offset_y = torch.randint(0, 3, (2,), generator=generator)
    offset_x = torch.randint(0, 3, (2,), generator=generator)
    flipped = torch.rand(2, generator=generator) < 0.5
    padded = torch.nn.functional.pad(images, (1, 1, 1, 1))
    for i in range(2):
        crop = padded[i, :, offset_y[i] : offset_y[i] + 4, offset_x[i] : offset_x[i] + 4]
        if flipped[i]:
            crop = crop.flip(-1)
        assert torch.equal(out[i], crop)


def _write_idx(path, array, compress):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(str(path) + ".gz", "wb") as handle:
            handle.write(payload)
    else:
        path.write_bytes(payload)


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_reads_idx_files(tmp_path, compress):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", images, compress)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels, compress)
    dataset = data.load("mnist", "test", tmp_path)
    assert torch.equal(dataset.images[:, 0], torch.from_numpy(images))
    assert dataset.labels.tolist() == [3, 1, 4, 1, 5]


def test_truncated_idx_file_is_a_clear_error(tmp_path):
    _write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((5, 28, 28), np.uint8), False)
    raw = (tmp_path / "t10k-images-idx3-ubyte").read_bytes()
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(raw[:-10])
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(5, np.uint8), False)
    with pytest.raises(TrimkitError, match="truncated"):
        data.load("mnist", "test", tmp_path)


def _cifar_batch(rng, count):
    return {b"data": rng.integers(0, 256, (count, 3072), dtype=np.uint8),
            b"labels": rng.integers(0, 10, count).tolist()}


def test_cifar_reads_python_batches(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    batches = {name: _cifar_batch(rng, 4) for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]}
    for name, batch in batches.items():
        (folder / name).write_bytes(pickle.dumps(batch))
    train = data.load("cifar10", "train", tmp_path)
    assert train.images.shape == (20, 3, 32, 32)
    assert torch.equal(train.images[4].flatten(), torch.from_numpy(batches["data_batch_2"][b"data"][0]))
    assert train.labels.tolist() == [label for i in range(1, 6) for label in batches[f"data_batch_{i}"][b"labels"]]
    assert train.augmentation == "crop_flip"
    assert data.load("cifar10", "test", tmp_path).augmentation is None


class _Exploit:
    def __reduce__(self):
        return (print, ("pwned",))


def test_cifar_batches_that_would_run_code_are_refused(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": _Exploit(), b"labels": []}))
    with pytest.raises(TrimkitError, match=r"refusing to load builtins\.print"):
        data.load("cifar10", "test", tmp_path)


def test_cifar_npz_is_read_as_nchw(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    np.savez(tmp_path / "cifar10.npz", x_train=images, y_train=np.array([0, 1, 2]), x_test=images[:1],
             y_test=np.array([9]))
    dataset = data.load("cifar10", "train", tmp_path)
    assert torch.equal(dataset.images, torch.from_numpy(images).permute(0, 3, 1, 2))
    assert data.load("cifar10", "val", tmp_path).labels.tolist() == [9]


def test_missing_data_names_the_flag_and_the_variable(tmp_path):
    with pytest.raises(TrimkitError, match=r"not found.*--data-dir DIR or set TRIMKIT_DATA=DIR"):
        data.load("cifar10", "test", tmp_path)


def test_environment_variable_points_at_the_data(tmp_path, monkeypatch):
    np.savez(tmp_path / "mnist.npz", x_train=np.zeros((2, 28, 28), np.uint8), y_train=np.array([1, 2]),
             x_test=np.zeros((1, 28, 28), np.uint8), y_test=np.array([7]))
    monkeypatch.setenv("TRIMKIT_DATA", str(tmp_path))
    assert data.load("mnist", "test").labels.tolist() == [7]


def test_image_folder_with_class_subfolders(tmp_path):
    from PIL import Image

    for label, colour in (("cats", 200), ("dogs", 30)):
        (tmp_path / label).mkdir()
        for i in range(5):
            Image.fromarray(np.full((6, 8, 3), colour + i, np.uint8)).save(tmp_path / label / f"{i}.png")
    train, val = data.load(str(tmp_path), "train"), data.load(str(tmp_path), "val")
    assert train.classes == ("cats", "dogs")
    assert (len(train), len(val)) == (8, 2)
    assert train.image_shape == (3, 6, 8)
    assert val.labels.tolist() == [0, 1]
    assert int(val.images[1, 0, 0, 0]) in range(30, 35)


def test_image_folder_of_mixed_sizes_asks_for_a_size(tmp_path):
    from PIL import Image

    (tmp_path / "a").mkdir()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "a" / "0.png")
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(tmp_path / "a" / "1.png")
    with pytest.raises(TrimkitError, match="image_size"):
        data.load(str(tmp_path), "train")
    assert data.load(str(tmp_path), "train", image_size=(3, 3)).image_shape == (1, 3, 3)


def test_unknown_data_set_and_split_are_clear_errors():
    with pytest.raises(TrimkitError, match=r"unknown data set 'imagenet'.*cifar10, mnist, mnist5k"):
        data.load("imagenet", "train")
    with pytest.raises(TrimkitError, match="unknown split 'dev'"):
        data.load("mnist5k", "dev")


@requires_shared_data("cifar10.npz", "mnist.npz")
def test_shared_data_sets_have_their_documented_sizes():
    cifar = data.load("cifar10", "test", SHARED_DATA)
    mnist = data.load("mnist", "train", SHARED_DATA)
    assert (len(cifar), cifar.image_shape) == (10_000, (3, 32, 32))
    assert cifar.labels.bincount().tolist() == [1000] * 10
    assert (len(mnist), mnist.image_shape) == (60_000, (1, 28, 28))
