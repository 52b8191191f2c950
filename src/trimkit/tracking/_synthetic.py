"""Generated sequences: a real image patch moving over a real background, with exact boxes.

For fast tests and smoke runs: the object is a patch of one image, pasted (resized to
its current size) onto a crop of another that stays still, moving along a smooth random
path that keeps it inside the frame, its size drifting by up to ``size_drift``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from trimkit.tracking._sequence import Sequence


def _resize(patch: np.ndarray, width: int, height: int) -> np.ndarray:
    tensor = torch.from_numpy(np.require(patch, requirements=["C", "W"])).permute(2, 0, 1).float()[None]
    resized = F.interpolate(tensor, size=(height, width), mode="bilinear", align_corners=False)[0]
    return resized.round().clamp(0, 255).byte().permute(1, 2, 0).numpy()


def generate_sequence(background: np.ndarray, target: np.ndarray, *, frames: int = 40,
                      size: tuple[int, int] = (320, 240), object_size: tuple[int, int] = (48, 40),
                      speed: float = 4.0, size_drift: float = 0.15, seed: int = 0,
                      name: str = "generated") -> Sequence:
    """A ``frames``-long sequence of ``size`` (W, H) frames: ``target`` (an image, or a
    patch of one) moving over ``background`` at about ``speed`` pixels per frame."""
    rng = np.random.default_rng(seed)
    width, height = size
    back = _resize(background, width, height)
    base_w, base_h = object_size
    margin = np.array([base_w, base_h]) * (1 + size_drift)
    position = np.array([width / 2, height / 2]) + rng.uniform(-0.2, 0.2, 2) * [width, height]
    angle = rng.uniform(0, 2 * np.pi)
    images, boxes = [], []
    for index in range(frames):
        angle += rng.normal(0, 0.25)
        step = speed * np.array([np.cos(angle), np.sin(angle)])
        proposed = position + step
        low, high = margin / 2 + 1, np.array([width, height]) - margin / 2 - 1
        if np.any(proposed < low) or np.any(proposed > high):
            angle += np.pi  # bounce off the border
            proposed = np.clip(position - step, low, high)
        position = proposed
        scale = 1 + size_drift * np.sin(2 * np.pi * index / max(frames, 2))
        w, h = max(int(round(base_w * scale)), 4), max(int(round(base_h * scale)), 4)
        x, y = int(round(position[0] - w / 2)), int(round(position[1] - h / 2))
        frame = back.copy()
        frame[y:y + h, x:x + w] = _resize(target, w, h)
        images.append(frame)
        boxes.append([x, y, w, h])
    return Sequence(name, np.array(boxes, dtype=np.float64), [], images)


