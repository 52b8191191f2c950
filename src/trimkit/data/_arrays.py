"""Reading arrays from ``.npz`` files with errors that say what is wrong with the file."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from trimkit.errors import TrimkitError


def read_npz(path: Path, keys: tuple[str, ...]) -> tuple[np.ndarray, ...]:
    """The arrays ``keys`` of ``path``; never unpickles (object arrays are refused)."""
    with open(path, "rb") as handle:
        if handle.read(4) != b"PK\x03\x04":
            raise TrimkitError(f"{path} is not an .npz file (those are ZIP archives of arrays); replace it with a file "
                               "written by numpy.savez")
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in keys if key not in archive.files]
            if missing:
                raise TrimkitError(f"{path} lacks {', '.join(missing)} "
                                   f"(it holds {', '.join(archive.files) or 'nothing'});"
                                   f" a data file needs {', '.join(keys)}")
            return tuple(archive[key] for key in keys)
    except TrimkitError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as error:
        raise TrimkitError(f"{path} is not a readable .npz file ({str(error).splitlines()[0][:100]}); "
                           "replace it with an np.savez file") from None


def check_images_and_labels(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    if images.ndim not in (3, 4) or labels.reshape(-1).shape[0] != images.shape[0]:
        raise TrimkitError(f"{path}: {images.shape[0] if images.ndim else 0} images of shape {images.shape} but "
                           f"labels of shape {labels.shape}; expected (N, H, W[, C]) images and N labels")
