"""Image folders: one subfolder per class, optionally under train/ val/ test/."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from trimkit.data._dataset import ImageDataset
from trimkit.data._splits import stratified_split
from trimkit.errors import TrimkitError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
FOLDER_SPLIT_SEED = 0


def load_image_folder(root: Path, split: str, image_size: tuple[int, int] | None = None) -> ImageDataset:
    """Load ``root/<split>/<class>/*`` if that split folder exists, else ``root/<class>/*``
    split 80 / 20 per class with a fixed seed. Images are resized to ``image_size`` if
    given; otherwise they must all have the same size. Grey images stay one-channel."""
    split_dir = root / split
    if not split_dir.is_dir() and split in ("val", "test"):
        split_dir = root / ("test" if split == "val" else "val")
    split_folders_exist = split_dir.is_dir()
    class_root = split_dir if split_folders_exist else root
    classes = sorted(p.name for p in class_root.iterdir() if p.is_dir())
    if not classes:
        raise TrimkitError(f"image folder {root} has no class subfolders; expected {root}/<class>/<image files>")
    files, labels = [], []
    for label, name in enumerate(classes):
        for path in sorted((class_root / name).iterdir()):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                files.append(path)
                labels.append(label)
    if not files:
        raise TrimkitError(f"image folder {class_root} has class subfolders but no images "
                           f"({', '.join(sorted(IMAGE_SUFFIXES))})")
    label_array = np.asarray(labels, dtype=np.int64)
    if not split_folders_exist:
        train_index, val_index = stratified_split(label_array, 0.2, FOLDER_SPLIT_SEED)
        chosen = train_index if split == "train" else val_index
        files = [files[i] for i in chosen]
        label_array = label_array[chosen]
        if not files:
            raise TrimkitError(f"image folder {root} is too small to split off a {split} set (a fifth of each class "
                               "is held out); add images, or give train/ and val/ subfolders")
    images = _read_images(files, image_size)
    mean = tuple(float(v) for v in images.float().div(255).mean(dim=(0, 2, 3)))
    std = tuple(max(float(v), 1e-3) for v in images.float().div(255).std(dim=(0, 2, 3)))
    return ImageDataset(root.name, split, images, torch.from_numpy(label_array), tuple(classes), (mean, std))


def _read_images(files: list[Path], image_size: tuple[int, int] | None) -> torch.Tensor:
    from PIL import Image

    mode = None
    arrays = []
    for path in files:
        try:
            with Image.open(path) as image:
                mode = mode or ("L" if image.mode in ("L", "1", "I;16", "I") else "RGB")
                image = image.convert(mode)
                if image_size is not None:
                    image = image.resize((image_size[1], image_size[0]))
                arrays.append(np.asarray(image, dtype=np.uint8))
        except (OSError, ValueError, SyntaxError) as error:  # PIL's UnidentifiedImageError is an OSError
            raise TrimkitError(f"{path} is not a readable image ({type(error).__name__}); "
                               "remove or replace it") from None
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise TrimkitError(
            f"images in the folder have different sizes ({', '.join(str(s) for s in sorted(shapes)[:3])}); "
            "resize them to one size (in Python, load(..., image_size=(H, W)) resizes them)"
        )
    stacked = np.stack(arrays)
    stacked = stacked[:, None] if stacked.ndim == 3 else stacked.transpose(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(stacked))
