"""Segmentation data: images and per-pixel class-index masks, from CamVid- or VOC-format
folders, held as tensors, with joint augmentation of image and mask.

Layouts, told apart by what the folder holds:

- **CamVid** (the SegNet tutorial's): list files ``train.txt`` / ``val.txt`` /
  ``test.txt``, each line ``images/x.jpg labels/x.png`` relative to the folder (absolute
  upstream paths are matched on their last two parts). Classes: ``classes.txt`` (one name
  a line, in index order) if present, else CamVid's 11; the value just past the last
  class (11 in CamVid) is void.
- **VOC** (PASCAL VOC 2012, and what labelling tools such as CVAT export):
  ``JPEGImages/*.jpg``, ``SegmentationClass/*.png`` and
  ``ImageSets/Segmentation/<split>.txt`` (base names). Classes: ``labelmap.txt`` (CVAT's
  ``name:r,g,b:parts:actions`` lines, in index order) if present, else ``classes.txt``,
  else VOC's 21. Masks are palette or grey PNGs whose values are the class indices, or,
  with a label map, colour PNGs whose colours are the classes'; 255 (VOC's object
  borders) is void.

Void pixels are stored as :data:`VOID` (255) whatever the layout, and ignored by the
loss and the metrics.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F

from trimkit.data._locate import find_first
from trimkit.errors import TrimkitError

Normalization = tuple[tuple[float, ...], tuple[float, ...]]

VOID = 255
CAMVID_CLASSES = ("Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car", "Pedestrian",
                  "Bicyclist")
VOC_CLASSES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
               "tvmonitor")
IMAGENET_NORMALIZATION: Normalization = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
NAMED = {"camvid": ["camvid"], "voc": ["VOCdevkit/VOC2012", "VOC2012", "voc"]}
VOC_DIRS = ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation")


@dataclass(frozen=True)
class SegmentationAugmentation:
    """Joint training augmentation: scale by a random factor in ``scale`` (bilinear for
    the image, nearest for the mask), crop (or pad with void) back to the original size
    at a random place, and flip horizontally with probability ``flip``."""

    scale: tuple[float, float] = (0.5, 2.0)
    flip: float = 0.5


@dataclass(frozen=True)
class SegmentationDataset:
    """Images as uint8 (N, C, H, W), masks as uint8 (N, H, W) holding class indices or
    :data:`VOID`. Batches come out as normalised float32 images and int64 masks."""

    name: str
    split: str
    images: torch.Tensor
    masks: torch.Tensor
    classes: tuple[str, ...]
    normalization: Normalization = IMAGENET_NORMALIZATION
    augmentation: SegmentationAugmentation | None = SegmentationAugmentation()

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {self.images.dtype} {tuple(self.images.shape)}")
        expected = (self.images.shape[0], *self.images.shape[2:])
        if self.masks.dtype != torch.uint8 or tuple(self.masks.shape) != tuple(expected):
            raise ValueError(f"masks must be uint8 {tuple(expected)}, got {self.masks.dtype} {tuple(self.masks.shape)}")

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.images.shape[1:])  # type: ignore[return-value]

    def with_normalization(self, normalization: Normalization) -> SegmentationDataset:
        return replace(self, normalization=(tuple(normalization[0]), tuple(normalization[1])))

    def subset(self, count: int, seed: int = 0) -> SegmentationDataset:
        """A fixed random subset of ``count`` samples (all of them if count >= len)."""
        if count >= len(self):
            return self
        index = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:count].sort().values
        return replace(self, images=self.images[index], masks=self.masks[index])

    def normalize(self, images_uint8: torch.Tensor) -> torch.Tensor:
        mean, std = self.normalization
        shape = (1, self.channels, 1, 1)
        images = images_uint8.float().div_(255.0)
        return images.sub_(torch.tensor(mean).view(shape)).div_(torch.tensor(std).view(shape))

    def example_inputs(self, count: int = 1) -> torch.Tensor:
        return self.normalize(self.images[:count])

    def batches(self, batch_size: int, *, shuffle: bool = False, augment: bool = False,
                generator: torch.Generator | None = None, drop_last: bool = False
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(self), generator=generator) if shuffle else torch.arange(len(self))
        stop = len(self) - (len(self) % batch_size if drop_last else 0)
        for start in range(0, stop, batch_size):
            index = order[start:start + batch_size]
            images, masks = self.images[index], self.masks[index]
            if augment and self.augmentation is not None:
                images, masks = augment_pairs(images, masks, self.augmentation, generator)
            yield self.normalize(images), masks.long()


def augment_pairs(images: torch.Tensor, masks: torch.Tensor, augmentation: SegmentationAugmentation,
                  generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale, crop and flip each image together with its mask (see
    :class:`SegmentationAugmentation`); uint8 in, uint8 out, same sizes."""
    height, width = images.shape[-2:]
    low, high = augmentation.scale
    out_images, out_masks = torch.empty_like(images), torch.full_like(masks, VOID)
    for i in range(len(images)):
        factor = low + (high - low) * float(torch.rand((), generator=generator))
        size = (max(1, round(height * factor)), max(1, round(width * factor)))
        image = F.interpolate(images[i:i + 1].float(), size=size, mode="bilinear", align_corners=False)
        image = image.round_().clamp_(0, 255).to(torch.uint8)[0]
        mask = F.interpolate(masks[i:i + 1, None].float(), size=size, mode="nearest").to(torch.uint8)[0, 0]
        top = int(torch.randint(0, abs(size[0] - height) + 1, (), generator=generator))
        left = int(torch.randint(0, abs(size[1] - width) + 1, (), generator=generator))
        flip = float(torch.rand((), generator=generator)) < augmentation.flip
        if flip:
            image, mask = image.flip(-1), mask.flip(-1)
        canvas_image = torch.zeros_like(images[i])
        source_rows, target_rows = _window(size[0], height, top)
        source_cols, target_cols = _window(size[1], width, left)
        canvas_image[:, target_rows, target_cols] = image[:, source_rows, source_cols]
        out_masks[i, target_rows, target_cols] = mask[source_rows, source_cols]
        out_images[i] = canvas_image
    return out_images, out_masks


def _window(scaled: int, original: int, offset: int) -> tuple[slice, slice]:
    """Source and target slices: crop ``original`` out of ``scaled`` at ``offset`` when it
    is larger, else place it at ``offset`` inside ``original`` (the rest stays padding)."""
    if scaled >= original:
        return slice(offset, offset + original), slice(0, original)
    return slice(0, scaled), slice(offset, offset + scaled)


def segmentation_layout(path: str | os.PathLike) -> str | None:
    """``"camvid"``, ``"voc"`` or None: which segmentation layout folder ``path`` has."""
    root = Path(path)
    if not root.is_dir():
        return None
    if all((root / part).is_dir() for part in VOC_DIRS):
        return "voc"
    for split in ("train", "val", "test"):
        listing = root / f"{split}.txt"
        if listing.is_file():
            first = next((line.split() for line in _lines(listing)), [])
            if len(first) == 2:
                return "camvid"
    return None


def resolve_segmentation_root(name: str, data_dir: str | os.PathLike | None = None) -> Path | None:
    """The folder behind ``name``: a segmentation-layout folder, or ``camvid`` / ``voc``
    found under the data folders; None when ``name`` is neither."""
    if Path(name).is_dir():
        return Path(name) if segmentation_layout(name) else None
    if name in NAMED:
        return find_first(data_dir, name, NAMED[name])
    return None


def is_segmentation_data(name: str | None, data_dir: str | os.PathLike | None = None) -> bool:
    """Whether ``name`` is a segmentation data set (a CamVid- or VOC-format folder, or
    ``camvid`` / ``voc``)."""
    if name is None:
        return False
    return name in NAMED or (Path(name).is_dir() and segmentation_layout(name) is not None)


def segmentation_classes(name: str, data_dir: str | os.PathLike | None = None) -> tuple[str, ...]:
    """The class names of segmentation data ``name``, read from its folder without loading
    an image (what a recipe needs to name a class's metric before the data is loaded)."""
    root = resolve_segmentation_root(name, data_dir)
    if root is None:
        raise TrimkitError(f"{name} is not a segmentation folder (CamVid or VOC format); check the path")
    return _voc_labels(root).classes if segmentation_layout(root) == "voc" else _camvid_classes(root)


@dataclass(frozen=True)
class LabelMap:
    """A VOC-layout folder's classes in index order, and their mask colours where known."""

    classes: tuple[str, ...]
    colours: tuple[tuple[int, int, int], ...] | None = None


def _voc_labels(root: Path) -> LabelMap:
    """``labelmap.txt`` (CVAT), else ``classes.txt``, else VOC's 21 classes."""
    labelmap = root / "labelmap.txt"
    if labelmap.is_file():
        names, colours = [], []
        for number, line in enumerate(labelmap.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            parts = line.split(":")
            try:
                colour = tuple(int(value) for value in parts[1].split(","))
                if len(colour) != 3 or not all(0 <= value <= 255 for value in colour):
                    raise ValueError
            except (IndexError, ValueError):
                raise TrimkitError(f"{labelmap} line {number}: expected name:r,g,b:parts:actions (as CVAT writes "
                                   f"it), got {line.strip()!r}") from None
            names.append(parts[0].strip())
            colours.append(colour)
        if not names:
            raise TrimkitError(f"{labelmap} lists no classes; write one name:r,g,b:: line per class")
        if len(set(colours)) != len(colours):
            raise TrimkitError(f"{labelmap} gives two classes the same colour; each class needs its own")
        return LabelMap(tuple(names), tuple(colours))
    listing = root / "classes.txt"
    if listing.is_file():
        return LabelMap(_camvid_classes(root))
    return LabelMap(VOC_CLASSES)


def load_segmentation(name: str, split: str = "train", data_dir: str | os.PathLike | None = None, *,
                      image_size: tuple[int, int] | None = None) -> SegmentationDataset:
    """Split ``split`` of a segmentation folder (or ``camvid`` / ``voc`` under the data
    folders). ``image_size`` (height, width) resizes images (bilinear) and masks (nearest),
    e.g. to fit a CPU budget; without it every image must have the same size."""
    root = resolve_segmentation_root(name, data_dir)
    if root is None:
        raise TrimkitError(
            f"{name} is not a segmentation folder: expected a CamVid-format folder (train.txt / val.txt / test.txt "
            "listing 'image label' pairs) or a VOC-format folder (JPEGImages/, SegmentationClass/, "
            "ImageSets/Segmentation/<split>.txt); check the path")
    layout = segmentation_layout(root)
    colours = None
    if layout == "voc":
        labels = _voc_labels(root)
        pairs, classes, colours, void_values = _voc_pairs(root, split), labels.classes, labels.colours, (VOID,)
    else:
        pairs, classes = _camvid_pairs(root, split), _camvid_classes(root)
        void_values = (len(classes), VOID)
    images, masks = _read_pairs(pairs, classes, void_values, image_size, colours)
    return SegmentationDataset(root.name, split, images, masks, classes)


def _lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _split_file(root: Path, split: str, candidates: list[Path]) -> Path:
    for path in candidates:
        if path.is_file():
            return path
    raise TrimkitError(f"{root} has no {split} split: {candidates[0]} does not exist; add the list file or choose "
                       "another split")


def _camvid_pairs(root: Path, split: str) -> list[tuple[Path, Path]]:
    fallback = {"val": "test", "test": "val"}.get(split)
    candidates = [root / f"{split}.txt"] + ([root / f"{fallback}.txt"] if fallback else [])
    listing = _split_file(root, split, candidates)
    pairs = []
    for number, line in enumerate(_lines(listing), 1):
        parts = line.split()
        if len(parts) != 2:
            raise TrimkitError(f"{listing} line {number}: expected 'image label', got {line!r}; fix the list file")
        image, label = (_inside(root, part) for part in parts)
        if not image.is_file():
            raise TrimkitError(f"{listing} line {number}: image {image} does not exist; add it or drop the line")
        if not label.is_file():
            raise TrimkitError(f"image {image} has no label PNG ({label} does not exist); add its mask or drop "
                               f"line {number} of {listing}")
        pairs.append((image, label))
    if not pairs:
        raise TrimkitError(f"{listing} lists no images; add 'image label' lines")
    return pairs


def _inside(root: Path, listed: str) -> Path:
    """A listed path relative to ``root``; an absolute one (as upstream lists have) is
    matched on its last two parts (``split/name``)."""
    path = Path(listed)
    if not path.is_absolute():
        return root / path
    return root / Path(*path.parts[-2:])


def _camvid_classes(root: Path) -> tuple[str, ...]:
    listing = root / "classes.txt"
    if not listing.is_file():
        return CAMVID_CLASSES
    names = tuple(_lines(listing))
    if not names:
        raise TrimkitError(f"{listing} lists no classes; write one class name a line, in index order")
    return names


def _voc_pairs(root: Path, split: str) -> list[tuple[Path, Path]]:
    sets = root / "ImageSets" / "Segmentation"
    fallback = {"val": "test", "test": "val"}.get(split)
    listing = _split_file(root, split, [sets / f"{split}.txt"] + ([sets / f"{fallback}.txt"] if fallback else []))
    pairs = []
    for stem in _lines(listing):
        image, label = root / "JPEGImages" / f"{stem}.jpg", root / "SegmentationClass" / f"{stem}.png"
        if not image.is_file():
            raise TrimkitError(f"{listing} lists {stem} but {image} does not exist; add it or drop the line")
        if not label.is_file():
            raise TrimkitError(f"image {image} has no label PNG ({label} does not exist); add its mask or drop "
                               f"{stem} from {listing}")
        pairs.append((image, label))
    if not pairs:
        raise TrimkitError(f"{listing} lists no images; add one base name a line")
    return pairs


def _read_pairs(pairs: list[tuple[Path, Path]], classes: tuple[str, ...], void_values: tuple[int, ...],
                image_size: tuple[int, int] | None, colours: tuple[tuple[int, int, int], ...] | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    from PIL import Image, UnidentifiedImageError

    lookup = np.full(256, -1, dtype=np.int16)
    lookup[:len(classes)] = np.arange(len(classes))
    for value in void_values:
        lookup[value] = VOID
    images, masks, first_size = [], [], None
    for image_path, label_path in pairs:
        try:
            with Image.open(label_path) as label:
                original_size = label.size
                if label.mode in ("L", "P"):
                    mask_array = np.array(label)
                elif label.mode in ("RGB", "RGBA") and colours is not None:
                    mask_array = _colour_indices(np.array(label.convert("RGB")), colours, label_path)
                else:
                    raise TrimkitError(f"label {label_path} is a {label.mode} image; a label PNG holds one class "
                                       "index per pixel (mode L or P), or colours a labelmap.txt beside "
                                       "JPEGImages/ names (as CVAT exports it)")
            with Image.open(image_path) as image:
                if image.size != original_size:
                    raise TrimkitError(f"image {image_path} is {image.size[0]}x{image.size[1]} but its label "
                                       f"{label_path} is {original_size[0]}x{original_size[1]}; they must match")
                if image_size is not None:
                    image.draft("RGB", (image_size[1], image_size[0]))  # JPEG: decode at a reduced scale
                    image = image.convert("RGB").resize((image_size[1], image_size[0]), Image.Resampling.BILINEAR)
                image_array = np.array(image.convert("RGB"))
        except (UnidentifiedImageError, OSError) as error:
            raise TrimkitError(f"cannot read {image_path} or {label_path} ({error}); "
                               "replace the damaged file") from None
        mapped = lookup[mask_array]
        if (mapped < 0).any():
            bad = int(mask_array[mapped < 0].max())
            voids = " or ".join(str(v) for v in void_values)
            raise TrimkitError(f"label {label_path} has value {bad} but the data set has {len(classes)} classes "
                               f"(0..{len(classes) - 1}) and void {voids}; fix the label, or list every class in "
                               "classes.txt")
        mapped = mapped.astype(np.uint8)
        if image_size is not None:
            mapped = np.array(Image.fromarray(mapped).resize((image_size[1], image_size[0]), Image.Resampling.NEAREST))
        image_tensor = torch.from_numpy(image_array).permute(2, 0, 1).contiguous()
        mask_tensor = torch.from_numpy(mapped)
        if image_size is None and first_size is None:
            first_size = (tuple(image_tensor.shape[1:]), image_path)
        elif image_size is None and tuple(image_tensor.shape[1:]) != first_size[0]:
            raise TrimkitError(f"images differ in size ({first_size[1]} is {first_size[0][1]}x{first_size[0][0]}, "
                               f"{image_path} is {image_tensor.shape[2]}x{image_tensor.shape[1]}); give an image "
                               "size (image_size=(H, W), --image-size HxW) to resize them all")
        images.append(image_tensor)
        masks.append(mask_tensor)
    return torch.stack(images), torch.stack(masks)


def _colour_indices(pixels: np.ndarray, colours: tuple[tuple[int, int, int], ...], path: Path) -> np.ndarray:
    """Class indices of a colour mask, by the label map's colours; a colour it does not
    list is one line naming the colour and the file."""
    codes = (pixels[..., 0].astype(np.int32) << 16) | (pixels[..., 1].astype(np.int32) << 8) | pixels[..., 2]
    known = np.array([(r << 16) | (g << 8) | b for r, g, b in colours], dtype=np.int32)
    order = np.argsort(known)
    position = np.clip(np.searchsorted(known[order], codes), 0, len(known) - 1)
    found = known[order][position] == codes
    if not found.all():
        code = int(codes[~found][0])
        raise TrimkitError(f"label {path} has colour {code >> 16},{(code >> 8) & 255},{code & 255}, which "
                           "labelmap.txt does not list; add its class to labelmap.txt or fix the mask")
    return order[position].astype(np.uint8)
