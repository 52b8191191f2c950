"""Tracking sequences: frames and one ground-truth box per frame.

Layouts read by :func:`load_sequence` (a folder with one sequence):

- **uniform / OTB**: ``img/*.jpg`` and ``groundtruth_rect.txt`` (``x,y,w,h`` per line,
  commas, tabs or spaces);
- **VOT**: frames in the folder itself (or in ``imgs/``, ``color/``, ``img/``) and
  ``groundtruth.txt``, one region per line: 4 values ``x,y,w,h`` or 8 values, the
  corners of a rotated rectangle. A polygon becomes the **bounding box of its corners**
  (``x = min xi``, ``w = max xi - min xi``; the rule the shared ``groundtruth_rect.txt``
  files use), so scores on a VOT folder and on its converted uniform copy agree;
  :func:`polygon_to_box` also offers SiamFC's area-preserving box (``rule="area"``);
- **GOT-10k**: frames ``00000001.jpg``... in the folder and ``groundtruth.txt`` of
  ``x,y,w,h`` lines (the VOT reader covers it).

:func:`load_sequences` reads a folder of such folders (or one sequence folder). Boxes
are checked against the frames when the sequence is loaded: one box per frame, every
box of positive size and overlapping its image, every frame readable; otherwise one
line naming the file and the fix.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from trimkit.errors import TrimkitError

FRAME_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp"}
FRAME_FOLDERS = ("img", "imgs", "color", ".")
_SEPARATORS = re.compile(r"[,\s]+")


@dataclass
class Sequence:
    """``boxes[i]`` (``x, y, w, h``) is the target in frame ``i``; ``frame(i)`` is an
    ``H x W x 3`` uint8 RGB array, read from ``files`` or held in ``images``."""

    name: str
    boxes: np.ndarray
    files: list[Path] = field(default_factory=list)
    images: list[np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.boxes)

    def frame(self, index: int) -> np.ndarray:
        if self.images is not None:
            return self.images[index]
        return read_frame(self.files[index])

    def head(self, count: int) -> Sequence:
        """The first ``count`` frames."""
        return Sequence(self.name, self.boxes[:count], self.files[:count],
                        None if self.images is None else self.images[:count])


def read_frame(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, ValueError) as error:
        raise TrimkitError(f"frame {path} cannot be read as an image ({error}); replace or remove the file") from None


def polygon_to_box(values: np.ndarray, rule: str = "bounds") -> np.ndarray:
    """An ``x, y, w, h`` box from a VOT region line (4 values pass through).

    ``rule="bounds"``: the bounding box of the 4 corners. ``rule="area"``: SiamFC's
    initialisation box, same centre and aspect as the bounds, shrunk so that its area is
    the rotated rectangle's (``|p1-p2| * |p2-p3|``), plus SiamFC's one pixel.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 4:
        return values.copy()
    xs, ys = values[0::2], values[1::2]
    left, top, right, bottom = xs.min(), ys.min(), xs.max(), ys.max()
    width, height = right - left, bottom - top
    if rule == "bounds":
        return np.array([left, top, width, height])
    if rule != "area":
        raise TrimkitError(f"unknown polygon rule {rule!r}; choose bounds or area")
    sides = np.hypot(np.diff(xs[:3]), np.diff(ys[:3]))
    scale = np.sqrt(sides[0] * sides[1] / max(width * height, 1e-12))
    w, h = scale * width + 1, scale * height + 1
    cx, cy = xs.mean(), ys.mean()
    return np.array([cx - w / 2, cy - h / 2, w, h])


def read_boxes(path: Path, rule: str = "bounds") -> np.ndarray:
    """One box per non-empty line of ``path`` (4 or 8 numbers)."""
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    except UnicodeDecodeError:
        raise TrimkitError(f"{path} is not a text file; expected one x,y,w,h (or 8-value polygon) line per frame") \
            from None
    boxes = []
    for number, line in enumerate(lines, start=1):
        if not line:
            continue
        try:
            values = np.array([float(v) for v in _SEPARATORS.split(line) if v])
        except ValueError:
            raise TrimkitError(f"{path}, line {number}: {line[:40]!r} is not a list of numbers; expected x,y,w,h "
                               "or x1,y1,...,x4,y4") from None
        if values.size not in (4, 8):
            raise TrimkitError(f"{path}, line {number}: {values.size} values; a box is x,y,w,h (4) or a polygon "
                               "x1,y1,...,x4,y4 (8)")
        if not np.all(np.isfinite(values)):
            raise TrimkitError(f"{path}, line {number}: the box is not finite ({line[:40]}); give a box for every "
                               "frame")
        boxes.append(polygon_to_box(values, rule))
    return np.array(boxes, dtype=np.float64).reshape(-1, 4)


def _frames_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in FRAME_SUFFIXES)


def is_sequence(folder: Path) -> bool:
    folder = Path(folder)
    return (folder / "groundtruth_rect.txt").is_file() or (folder / "groundtruth.txt").is_file()


def load_sequence(folder: str | Path, rule: str = "bounds", check: bool = True) -> Sequence:
    """One sequence folder (OTB/uniform, VOT or GOT-10k layout, see the module doc)."""
    root = Path(folder)
    if not root.is_dir():
        raise TrimkitError(f"sequence folder {root} does not exist; give a folder with frames and "
                           "groundtruth_rect.txt (OTB) or groundtruth.txt (VOT, GOT-10k)")
    uniform = root / "groundtruth_rect.txt"
    truth = uniform if uniform.is_file() else root / "groundtruth.txt"
    if not truth.is_file():
        raise TrimkitError(f"{root} has no groundtruth_rect.txt or groundtruth.txt; a sequence folder holds its "
                           "frames and one box per frame")
    files: list[Path] = []
    for name in FRAME_FOLDERS:
        candidate = root / name
        if candidate.is_dir():
            files = _frames_in(candidate)
            if files:
                break
    if not files:
        raise TrimkitError(f"{root} has no frames (.jpg/.png) in img/, imgs/, color/ or the folder itself")
    boxes = read_boxes(truth, rule)
    sequence = Sequence(root.name, boxes, files)
    if check:
        check_sequence(sequence, truth)
    return sequence


def check_sequence(sequence: Sequence, truth: Path | str = "the boxes") -> None:
    """One box per frame, each of positive size and overlapping its readable frame."""
    from PIL import Image

    frames = len(sequence.files) if sequence.images is None else len(sequence.images)
    if len(sequence.boxes) < frames:
        raise TrimkitError(f"{truth}: {len(sequence.boxes)} boxes for {frames} frames; give one box per frame "
                           "(or remove the frames without one)")
    if len(sequence.boxes) > frames:
        raise TrimkitError(f"{truth}: {len(sequence.boxes)} boxes but only {frames} frames; a frame is missing, "
                           "or remove the extra lines")
    for index, box in enumerate(sequence.boxes):
        if sequence.images is not None:
            height, width = sequence.images[index].shape[:2]
        else:
            path = sequence.files[index]
            try:
                with Image.open(path) as image:
                    width, height = image.size
                    image.verify()
            except (OSError, ValueError) as error:
                raise TrimkitError(f"frame {path} cannot be read as an image ({error}); replace or remove the "
                                   "file") from None
        x, y, w, h = box
        if not (w > 0 and h > 0):
            raise TrimkitError(f"{truth}, frame {index + 1}: box {_show(box)} has zero size; boxes are x,y,w,h "
                               "with w and h above 0")
        if x >= width or y >= height or x + w <= 0 or y + h <= 0:
            raise TrimkitError(f"{truth}, frame {index + 1}: box {_show(box)} lies outside the {width}x{height} "
                               "image; boxes are x,y,w,h in pixels from the top-left corner")


def _show(box: np.ndarray) -> str:
    return ",".join(f"{v:g}" for v in box)


def load_sequences(folder: str | Path, rule: str = "bounds", check: bool = True,
                   select: Callable[[str], bool] | None = None) -> list[Sequence]:
    """Every sequence under ``folder`` (its subfolders), or ``folder`` itself if it is
    one; sorted by name. ``select(name)`` keeps some of them."""
    root = Path(folder)
    if not root.is_dir():
        raise TrimkitError(f"tracking data folder {root} does not exist; give a sequence folder or a folder of them")
    if is_sequence(root):
        return [load_sequence(root, rule, check)]
    found = [load_sequence(p, rule, check) for p in sorted(root.iterdir())
             if p.is_dir() and is_sequence(p) and (select is None or select(p.name))]
    if not found:
        raise TrimkitError(f"{root} holds no tracking sequences (subfolders with frames and groundtruth_rect.txt "
                           "or groundtruth.txt)")
    return found
