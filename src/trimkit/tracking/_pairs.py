"""Training pairs for a Siamese tracker: an exemplar crop and a search crop of one target.

Two sources:

- **sequences**: the exemplar from frame ``i``, the search region from frame ``j`` with
  ``|i - j| <= max_gap`` (SiamFC's pairs from videos);
- **still objects**: an image and a box (e.g. the cars, pedestrians, cyclists and signs
  of CamVid's label maps, :func:`camvid_objects`): exemplar and search are two
  augmentations of the same image, for when sequences are scarce.

Crops take SiamFC's context (see ``_crop``). The search crop is shifted by a random
offset of up to ``max_shift`` search-crop pixels (always: a fully convolutional network
has no notion of the centre, but a fixed-centre label would let the window do all the
work), and the target's offset in the search crop is the pair's target. With
``augment``, the search crop's scale is jittered, both crops' brightness and contrast,
and the pair is mirrored half the time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from trimkit.tracking._crop import crop, exemplar_side, frame_tensor
from trimkit.tracking._sequence import Sequence

CAMVID_OBJECT_CLASSES = (6, 8, 9, 10)  # SignSymbol, Car, Pedestrian, Bicyclist


@dataclass(frozen=True)
class PairConfig:
    """How pairs are cut: crop sizes, context, frame gap, shift, augmentation strength."""

    exemplar_size: int = 127
    search_size: int = 255
    context: float = 0.5
    max_gap: int = 50
    max_shift: float = 32.0
    scale_jitter: float = 0.08
    still_scale_jitter: float = 0.15
    colour_jitter: float = 0.2
    still_fraction: float = 0.5


@dataclass
class StillObject:
    """One target in one still image (``box`` is ``x, y, w, h``)."""

    image: np.ndarray
    box: np.ndarray
    name: str = ""


@dataclass
class PairSource:
    """Sequences and still objects that pairs are drawn from; frames are decoded once
    and kept (the shared sequences hold a few hundred frames)."""

    sequences: list[Sequence] = field(default_factory=list)
    stills: list[StillObject] = field(default_factory=list)
    config: PairConfig = field(default_factory=PairConfig)
    _frames: dict[tuple[int, int], torch.Tensor] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._lengths = np.array([len(s) for s in self.sequences], dtype=np.float64)

    @property
    def empty(self) -> bool:
        return not self.sequences and not self.stills

    def _frame(self, sequence: int, index: int) -> torch.Tensor:
        key = (sequence, index)
        if key not in self._frames:
            self._frames[key] = frame_tensor(self.sequences[sequence].frame(index))
        return self._frames[key]

    def pair(self, seed: int, augment: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Pair number ``seed``: exemplar (``3 x 127 x 127``), search (``3 x 255 x 255``),
        both 0..255, and the target's offset (dx, dy) from the search crop's centre."""
        rng = np.random.default_rng(seed)
        c = self.config
        use_still = bool(self.stills) and (not self.sequences or rng.random() < c.still_fraction)
        if use_still:
            still = self.stills[int(rng.integers(len(self.stills)))]
            first = second = frame_tensor(still.image)
            box_z = box_x = np.asarray(still.box, dtype=np.float64)
            jitter = c.still_scale_jitter
        else:
            which = int(rng.choice(len(self.sequences), p=self._lengths / self._lengths.sum()))
            sequence = self.sequences[which]
            i = int(rng.integers(len(sequence)))
            j = int(np.clip(i + rng.integers(-c.max_gap, c.max_gap + 1), 0, len(sequence) - 1))
            first, second = self._frame(which, i), self._frame(which, j)
            box_z, box_x = sequence.boxes[i], sequence.boxes[j]
            jitter = c.scale_jitter
        z_side = exemplar_side(box_z[2], box_z[3], c.context)
        exemplar = crop(first, box_z[:2] + box_z[2:] / 2, z_side, c.exemplar_size)
        x_side = exemplar_side(box_x[2], box_x[3], c.context) * c.search_size / c.exemplar_size
        if augment:
            x_side *= float(np.exp(rng.uniform(-jitter, jitter)))
        shift = rng.uniform(-c.max_shift, c.max_shift, 2)
        centre = box_x[:2] + box_x[2:] / 2 + shift * x_side / c.search_size
        search = crop(second, centre, x_side, c.search_size)
        offset = torch.tensor(-shift, dtype=torch.float32)
        if augment:
            exemplar, search = _colour(exemplar, rng, c.colour_jitter), _colour(search, rng, c.colour_jitter)
            if rng.random() < 0.5:
                exemplar, search = exemplar.flip(-1), search.flip(-1)
                offset = offset * torch.tensor([-1.0, 1.0])
        return exemplar, search, offset


def _colour(image: torch.Tensor, rng: np.random.Generator, strength: float) -> torch.Tensor:
    if strength <= 0:
        return image
    gain = 1 + rng.uniform(-strength, strength)
    bias = 255 * rng.uniform(-strength, strength) / 2
    mean = image.mean()
    return ((image - mean) * gain + mean + bias).clamp(0, 255)


def camvid_objects(root: str | Path, split: str = "train", *, min_side: int = 16, min_area: int = 600,
                   limit: int | None = None) -> list[StillObject]:
    """Boxes of the cars, pedestrians, cyclists and signs in CamVid's label maps
    (connected components of one class, at least ``min_side`` pixels wide and high)."""
    from PIL import Image
    from scipy import ndimage

    folder = Path(root)
    objects: list[StillObject] = []
    for image_path in sorted((folder / split).glob("*.jpg")):
        label_path = folder / f"{split}annot" / f"{image_path.stem}.png"
        if not label_path.is_file():
            continue
        labels = np.asarray(Image.open(label_path))
        image = None
        for cls in CAMVID_OBJECT_CLASSES:
            components, _count = ndimage.label(labels == cls)
            for sl in ndimage.find_objects(components):
                if sl is None:
                    continue
                h, w = sl[0].stop - sl[0].start, sl[1].stop - sl[1].start
                if min(w, h) < min_side or w * h < min_area:
                    continue
                if image is None:
                    with Image.open(image_path) as opened:
                        image = np.asarray(opened.convert("RGB"))
                objects.append(StillObject(image, np.array([sl[1].start, sl[0].start, w, h], dtype=np.float64),
                                           f"{image_path.stem}:{cls}"))
        if limit is not None and len(objects) >= limit:
            return objects[:limit]
    return objects
