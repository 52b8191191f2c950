"""A small task of each kind, and a zoo model that fits it, for contract tests run over
the task-kind registry: a kind the tests cannot build a task for fails them (add it here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from trimkit import data, models, tasks
from trimkit.tasks import Task

SEGMENTATION_CLASSES = ("sky", "road", "car")


def write_camvid(root: Path, count: int = 4, shape: tuple[int, int] = (16, 24),
                 classes: tuple[str, ...] = SEGMENTATION_CLASSES) -> Path:
    """A CamVid-format folder (train and test, which serves val): blocks of classes, the
    image a colour per class plus noise, so that a model can learn something from it."""
    generator = np.random.default_rng(0)
    colours = generator.integers(0, 256, (len(classes), 3))
    for split in ("train", "test"):
        (root / split).mkdir(parents=True)
        (root / f"{split}annot").mkdir()
        lines = []
        for index in range(count):
            blocks = generator.integers(0, len(classes), (shape[0] // 4, shape[1] // 4))
            mask = np.kron(blocks, np.ones((4, 4), dtype=np.int64))
            image = np.clip(colours[mask] + generator.normal(0, 30, (*shape, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(image).save(root / split / f"f{index}.png")
            Image.fromarray(mask.astype(np.uint8), mode="L").save(root / f"{split}annot" / f"f{index}.png")
            lines.append(f"{split}/f{index}.png {split}annot/f{index}.png")
        (root / f"{split}.txt").write_text("\n".join(lines) + "\n")
    (root / "classes.txt").write_text("\n".join(classes) + "\n")
    return root


def small_task(kind: str, folder: Path) -> tuple[Task, torch.nn.Module] | None:
    """A small task of ``kind`` and a fresh zoo model prepared for it; None for a kind
    whose data the tests do not have here (tracking without ../shared/data)."""
    torch.manual_seed(0)
    if kind == "classification":
        task = tasks.classification(data.load("mnist5k", "train").subset(64), data.load("mnist5k", "val").subset(32))
        model = models.create("lenet5")
        return task.prepared_for(model), model
    if kind == "segmentation":
        spec = tasks.kind(kind).parse_spec({"kind": kind, "data": str(write_camvid(folder / "camvid"))})
        model = models.create("lraspp_mobilenetv3_large", num_classes=len(SEGMENTATION_CLASSES), width=0.25,
                              inter_channels=16)
        return tasks.kind(kind).build(spec, model, 0), model
    if kind == "tracking":
        from conftest import SHARED_DATA

        if not (SHARED_DATA / "tracking").is_dir():
            return None
        spec = tasks.kind(kind).parse_spec({
            "kind": kind, "data_dir": str(SHARED_DATA),
            "tracking": {"pairs_per_epoch": 4, "val_pairs": 4, "eval_frames": 3}})
        model = models.create("siamfc_seed", width=0.25)
        return tasks.kind(kind).build(spec, model, 0), model
    raise AssertionError(f"no small task for kind {kind!r}: add one to tests/support/kinds.py")
