"""A small segmentation set trained from scratch with every setting at its default beats
its majority class: batch-norm statistics are re-estimated after epochs of few steps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from trimkit import data, models, tasks, train


def _voc_shapes(root: Path, count: int = 30, val: int = 6, size: int = 64) -> Path:
    """A VOC-layout folder (VOC's 21 classes, masks using 2): dark noise, and one bright
    rectangle a picture as the foreground."""
    generator = np.random.default_rng(0)
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / folder).mkdir(parents=True)
    names = []
    for index in range(count):
        image = generator.integers(0, 90, (size, size, 3)).astype(np.uint8)
        mask = np.zeros((size, size), np.uint8)
        height, width = generator.integers(size // 4, size // 2, 2)
        top, left = generator.integers(0, size - height), generator.integers(0, size - width)
        mask[top:top + height, left:left + width] = 1
        image[mask == 1] += 120
        name = f"shape{index:03d}"
        Image.fromarray(image).save(root / "JPEGImages" / f"{name}.jpg")
        label = Image.fromarray(mask, mode="P")
        label.putpalette([0, 0, 0, 128, 0, 0] + [0] * 762)
        label.save(root / "SegmentationClass" / f"{name}.png")
        names.append(name)
    (root / "ImageSets/Segmentation/train.txt").write_text("\n".join(names[:-val]) + "\n")
    (root / "ImageSets/Segmentation/val.txt").write_text("\n".join(names[-val:]) + "\n")
    return root


def test_recalibration_sets_batch_norm_statistics_to_the_training_split():
    images = torch.randint(0, 256, (10, 3, 4, 4), dtype=torch.uint8)
    dataset = data.SegmentationDataset("t", "train", images, torch.zeros(10, 4, 4, dtype=torch.uint8), ("a", "b"),
                                       normalization=((0.0,) * 3, (1.0,) * 3))
    task = tasks.segmentation(dataset, dataset)
    norm = torch.nn.BatchNorm2d(3, momentum=0.1)
    model = torch.nn.Sequential(norm).eval()
    assert train.recalibrate_batch_norm(model, task, batch_size=5, device=torch.device("cpu"))
    pixels = images.float().div(255).permute(1, 0, 2, 3).reshape(3, -1)
    # two batches of five, each batch's unbiased variance averaged
    halves = pixels.reshape(3, 2, -1)
    assert torch.allclose(norm.running_mean, pixels.mean(1), atol=1e-6)
    assert torch.allclose(norm.running_var, halves.var(2, unbiased=True).mean(1), atol=1e-6)
    assert norm.momentum == 0.1 and not model.training
    assert not train.recalibrate_batch_norm(torch.nn.Sequential(torch.nn.ReLU()), task, 5, torch.device("cpu"))


def test_lraspp_from_scratch_with_defaults_beats_the_majority_class(tmp_path):
    root = _voc_shapes(tmp_path / "voc")
    train_set, val_set = data.load_segmentation(str(root), "train"), data.load_segmentation(str(root), "val")
    labelled = val_set.masks[val_set.masks != 255].long()
    majority = 100.0 * float(labelled.bincount().max()) / labelled.numel()
    model = models.create("lraspp_mobilenetv3_large", num_classes=train_set.num_classes)
    task = tasks.segmentation(train_set, val_set).prepared_for(model)
    train.seed_everything(0)
    train.fit(model, task, epochs=5, progress=False)
    result = tasks.evaluate(model, task).values
    assert majority == pytest.approx(86.57, abs=0.01)
    # one class everywhere scores the majority's pixel accuracy and half of it as mIoU (two classes)
    assert result["pixel_accuracy"] > majority + 1.0
    assert result["miou"] > majority / 2 + 10.0
