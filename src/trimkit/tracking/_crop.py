"""Square crops around a target, as SiamFC takes them.

The exemplar's side covers the target plus a margin of context: with ``p = context *
(w + h)``, the side is ``sqrt((w + p) * (h + p))`` (context 0.5 in SiamFC), resized to
127; the search region is the same crop scaled by 255/127. Pixels outside the frame are
filled with the frame's mean colour.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F


def exemplar_side(width: float, height: float, context: float = 0.5) -> float:
    """Side (pixels) of the exemplar crop of a ``width x height`` target."""
    pad = context * (width + height)
    return math.sqrt((width + pad) * (height + pad))


def frame_tensor(frame: np.ndarray) -> torch.Tensor:
    """``H x W x 3`` uint8 -> ``3 x H x W`` float32 (0..255)."""
    return torch.from_numpy(np.require(frame, requirements=["C", "W"])).permute(2, 0, 1).float()


def crop(frame: torch.Tensor, centre: Sequence[float], side: float, out: int,
         fill: torch.Tensor | None = None) -> torch.Tensor:
    """The ``side x side`` square at ``centre`` (x, y) of ``frame`` (``3 x H x W``),
    resized to ``out x out`` (bilinear); outside the frame, ``fill`` (default the mean)."""
    _, height, width = frame.shape
    side = max(float(side), 1.0)
    left = int(round(centre[0] - side / 2))
    top = int(round(centre[1] - side / 2))
    size = max(int(round(side)), 1)
    right, bottom = left + size, top + size
    inside = frame[:, max(top, 0):min(bottom, height), max(left, 0):min(right, width)]
    if left < 0 or top < 0 or right > width or bottom > height or inside.numel() == 0:
        colour = frame.mean(dim=(1, 2)) if fill is None else fill
        patch = colour.view(3, 1, 1).expand(3, size, size).clone()
        if inside.numel():
            y0, x0 = max(-top, 0), max(-left, 0)
            patch[:, y0:y0 + inside.shape[1], x0:x0 + inside.shape[2]] = inside
    else:
        patch = inside
    if patch.shape[-1] == out and patch.shape[-2] == out:
        return patch.clone()
    return F.interpolate(patch[None], size=(out, out), mode="bilinear", align_corners=False)[0]


def normalize(images: torch.Tensor, normalization: tuple[tuple[float, ...], tuple[float, ...]]) -> torch.Tensor:
    """0..255 crops -> the model's input (per-channel mean and std of 0..1 images)."""
    mean = torch.tensor(normalization[0], dtype=images.dtype).view(-1, 1, 1) * 255
    std = torch.tensor(normalization[1], dtype=images.dtype).view(-1, 1, 1) * 255
    return (images - mean) / std
