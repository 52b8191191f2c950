"""An image classification data set held as tensors, batched without per-sample Python."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterator

import torch

from trimkit.data._augment import augment as apply_augmentation

Normalization = tuple[tuple[float, ...], tuple[float, ...]]


@dataclass(frozen=True)
class ImageDataset:
    """Images as a uint8 tensor (N, C, H, W) and labels as int64 (N,).

    Batches come out as float32 in [0, 1], normalised by ``normalization`` (mean, std
    per channel). ``augmentation`` names the standard training augmentation of the
    data set (``"crop_flip"``: pad 4, random crop, horizontal flip; ``"shift"``: pad 2,
    random crop) or is None; it is
    applied only when a caller asks for augmented batches.
    """

    name: str
    split: str
    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    normalization: Normalization
    augmentation: str | None = None

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {self.images.dtype} {tuple(self.images.shape)}")
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError(f"{self.images.shape[0]} images but labels of shape {tuple(self.labels.shape)}")
        mean, std = self.normalization
        if len(mean) != self.channels or len(std) != self.channels:
            raise ValueError(
                f"normalization has {len(mean)} means and {len(std)} stds for {self.channels}-channel images"
            )

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.images.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def with_normalization(self, normalization: Normalization) -> ImageDataset:
        return replace(self, normalization=(tuple(normalization[0]), tuple(normalization[1])))

    def subset(self, count: int, seed: int = 0) -> ImageDataset:
        """A fixed random subset of ``count`` samples (all of them if count >= len)."""
        if count >= len(self):
            return self
        generator = torch.Generator().manual_seed(seed)
        index = torch.randperm(len(self), generator=generator)[:count].sort().values
        return replace(self, images=self.images[index], labels=self.labels[index])

    def normalize(self, images_uint8: torch.Tensor) -> torch.Tensor:
        mean, std = self.normalization
        shape = (1, self.channels, 1, 1)
        images = images_uint8.float().div_(255.0)
        return images.sub_(torch.tensor(mean).view(shape)).div_(torch.tensor(std).view(shape))

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """All samples at once, normalised, without augmentation."""
        return self.normalize(self.images), self.labels

    def example_inputs(self, count: int = 1) -> torch.Tensor:
        return self.normalize(self.images[:count])

    def batches(
        self,
        batch_size: int,
        *,
        shuffle: bool = False,
        augment: bool = False,
        generator: torch.Generator | None = None,
        drop_last: bool = False,
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield (images, labels) batches; augmentation only if asked and the data set has one."""
        order = torch.randperm(len(self), generator=generator) if shuffle else torch.arange(len(self))
        stop = len(self) - (len(self) % batch_size if drop_last else 0)
        for start in range(0, stop, batch_size):
            index = order[start : start + batch_size]
            images = self.images[index]
            if augment and self.augmentation is not None:
                images = apply_augmentation(images, self.augmentation, generator)
            yield self.normalize(images), self.labels[index]

    def num_batches(self, batch_size: int, drop_last: bool = False) -> int:
        return len(self) // batch_size if drop_last else -(-len(self) // batch_size)
