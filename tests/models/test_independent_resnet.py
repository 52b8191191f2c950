"""trimkit's ResNet-56 against an independent implementation written here from the
paper: plain functional code over the raw checkpoint, its own data pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import PRETRAINED, SHARED_DATA, requires_shared_data
from trimkit import data, load_weights, models, train


def _reference_forward(state, x, blocks_per_stage=9):
    def bn(t, prefix):
        return F.batch_norm(t, state[f"{prefix}.running_mean"], state[f"{prefix}.running_var"],
                            state[f"{prefix}.weight"], state[f"{prefix}.bias"], False, 0.0, 1e-5)

    out = F.relu(bn(F.conv2d(x, state["conv1.weight"], padding=1), "bn1"))
    for stage, planes in ((1, 16), (2, 32), (3, 64)):
        for block in range(blocks_per_stage):
            prefix = f"layer{stage}.{block}"
            stride = 2 if block == 0 and stage > 1 else 1
            residual = F.relu(bn(F.conv2d(out, state[f"{prefix}.conv1.weight"], stride=stride, padding=1),
                                 f"{prefix}.bn1"))
            residual = bn(F.conv2d(residual, state[f"{prefix}.conv2.weight"], padding=1), f"{prefix}.bn2")
            shortcut = out
            if stride == 2:
                shortcut = F.pad(out[:, :, ::2, ::2], (0, 0, 0, 0, planes // 4, planes // 4))
            out = F.relu(residual + shortcut)
    out = out.mean(dim=(2, 3))
    return F.linear(out, state["linear.weight"], state["linear.bias"])


def _reference_accuracy(count):
    raw = torch.load(PRETRAINED / "resnet56-4bfd9763.th", map_location="cpu", weights_only=True)["state_dict"]
    state = {k.removeprefix("module."): v for k, v in raw.items()}
    with np.load(SHARED_DATA / "cifar10.npz") as archive:
        images, labels = archive["x_test"][:count], archive["y_test"][:count]
    x = torch.from_numpy(images).float().div(255).permute(0, 3, 1, 2)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    x = (x - mean) / std
    correct = 0
    with torch.no_grad():
        for start in range(0, count, 250):
            logits = _reference_forward(state, x[start:start + 250])
            correct += int((logits.argmax(1) == torch.from_numpy(labels[start:start + 250]).long()).sum())
    return 100.0 * correct / count


def _trimkit_accuracy(count):
    model = load_weights(models.create("resnet56"), PRETRAINED / "resnet56-4bfd9763.th")
    dataset = data.load("cifar10", "test", SHARED_DATA, normalization=models.spec("resnet56").normalization())
    return train.evaluate(model, dataset.subset(count) if count < len(dataset) else dataset)["top1"]


@requires_shared_data("cifar10.npz", "pretrained/resnet56-4bfd9763.th")
@pytest.mark.heavy  # pretrained weights on 256 real images (the full test set: the slow test below)
def test_resnet56_agrees_with_independent_implementation_on_256_images():
    model = load_weights(models.create("resnet56"), PRETRAINED / "resnet56-4bfd9763.th").eval()
    dataset = data.load("cifar10", "test", SHARED_DATA, normalization=models.spec("resnet56").normalization())
    images, _ = next(dataset.batches(256))
    raw = torch.load(PRETRAINED / "resnet56-4bfd9763.th", map_location="cpu", weights_only=True)["state_dict"]
    state = {k.removeprefix("module."): v for k, v in raw.items()}
    with torch.no_grad():
        ours, theirs = model(images), _reference_forward(state, images)
    assert torch.allclose(ours, theirs, atol=1e-4)
    assert torch.equal(ours.argmax(1), theirs.argmax(1))


@pytest.mark.slow
@requires_shared_data("cifar10.npz", "pretrained/resnet56-4bfd9763.th")
def test_resnet56_top1_on_the_full_test_set_within_a_tenth_of_a_point():
    assert abs(_trimkit_accuracy(10_000) - _reference_accuracy(10_000)) < 0.1
