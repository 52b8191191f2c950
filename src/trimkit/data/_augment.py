"""Batched training augmentation: one tensor operation per batch, no Python per image."""

from __future__ import annotations

import torch
import torch.nn.functional as F

AUGMENTATIONS = {
    "crop_flip": {"padding": 4, "flip": True},  # the standard CIFAR augmentation
    "shift": {"padding": 2, "flip": False},  # small translations for digits
}


def augment(images: torch.Tensor, name: str, generator: torch.Generator | None = None) -> torch.Tensor:
    return random_crop_flip(images, generator=generator, **AUGMENTATIONS[name])


def random_crop_flip(
    images: torch.Tensor, padding: int = 4, flip: bool = True, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Zero-pad by ``padding``, crop back to the original size at a random offset per
    image, and, if ``flip``, flip half of the images horizontally."""
    count, channels, height, width = images.shape
    padded = F.pad(images, (padding, padding, padding, padding))
    offset_y = torch.randint(0, 2 * padding + 1, (count,), generator=generator)
    offset_x = torch.randint(0, 2 * padding + 1, (count,), generator=generator)
    rows = (offset_y[:, None] + torch.arange(height)[None, :])[:, None, :, None]
    cols = (offset_x[:, None] + torch.arange(width)[None, :])[:, None, None, :]
    if flip:
        flipped = torch.rand(count, generator=generator) < 0.5
        cols = torch.where(flipped[:, None, None, None], cols.flip(-1), cols)
    batch_index = torch.arange(count)[:, None, None, None]
    channel_index = torch.arange(channels)[None, :, None, None]
    return padded[batch_index, channel_index, rows, cols]
