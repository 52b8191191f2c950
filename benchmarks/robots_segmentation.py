"""The robots seed's segmentation experiment (Table 3, Figures 5 and 6c) on CamVid, on this CPU.

1. Teacher: FCN on a dilated ResNet-18 at output stride 16 (the seed's is FCN ResNet-101
   at output stride 8, 54.3 M parameters, too slow to train here). Student: DeepLabV3 on
   MobileNetV3-Large (the seed's), with a narrower ASPP (``--aspp``, 64 channels by default;
   the published head has 256) so the student is a fraction of the teacher as in the seed.
2. Both trained from scratch (no ImageNet weights exist on this machine) on CamVid's 367
   training images at reduced resolution, with the same budget: Adam, cosine schedule,
   scale/crop/flip augmentation. The student is trained alone, and again distilled from
   the teacher (Hinton KD per pixel, T=4, alpha=0.5: trimkit.distill).
3. The distilled student is pruned class-blind (global magnitude, trimkit.prune.unstructured)
   at 10 ... 90 %, scored before and after a short fine-tune (masks held), and
   structurally (global L1 filter pruning, trimkit.prune.structured) at two ratios.
4. Scored on CamVid's 233 test images at the same resolution, void ignored: global pixel
   accuracy (the seed's metric) and mIoU over the 11 classes. Compression = parameters
   (nonzero, after dead-neuron removal) of the compressed student over the teacher's.

    python benchmarks/robots_segmentation.py [--quick] [--size 60x80] [--teacher-epochs 3] [--student-epochs 3]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

import trimkit
from trimkit import data, models, prune, tasks, train

console = Console(width=150)
CAMVID_CLASSES = 11
SEED_FIGURES = {  # the robots seed, Table 3 and Section 5.3 (VOC / COCO, torchvision's pretrained models)
    "teacher": "82.4 (FCN ResNet-101, VOC and COCO)",
    "student": "88.06 VOC / 90.68 COCO (DeepLabV3-MobileNetV3, distilled)",
    "params": "54.3 M -> 11.1 M",
    "pruning": "significant drop above 20 % pruning; >80 % accuracy needs compression <= 85 % (10 % pruning)",
}


def parse_size(text: str) -> tuple[int, int]:
    height, width = (int(v) for v in text.lower().split("x"))
    return height, width


def fit_options(epochs: int, quick: bool) -> dict:
    return dict(epochs=epochs, batch_size=8, optimizer="adam", lr=2e-3, weight_decay=1e-4, schedule="cosine",
                eval_split=None, progress=not quick, seed=0)


def score(model: torch.nn.Module, task: tasks.SegmentationTask) -> dict[str, float]:
    return tasks.evaluate(model, task, "test", batch_size=16).values


def nonzero(model: torch.nn.Module) -> int:
    return prune.nonzero_parameters(model)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="about a minute: tiny subset, 1 epoch each")
    parser.add_argument("--size", default="60x80", help="HxW the images are resized to (CamVid is 360x480)")
    parser.add_argument("--teacher-stride", type=int, default=16, help="output stride of the teacher (FCN: 8)")
    parser.add_argument("--teacher-epochs", type=int, default=3)
    parser.add_argument("--student-epochs", type=int, default=3)
    parser.add_argument("--finetune-epochs", type=int, default=1)
    parser.add_argument("--aspp", type=int, default=64, help="ASPP channels of the student (published: 256)")
    parser.add_argument("--sparsities", default="0.1,0.3,0.5,0.7,0.9")
    parser.add_argument("--structured", default="0.5", help="global L1 filter ratios, comma-separated")
    parser.add_argument("--data-dir", default=None, help="folder holding camvid/ (default: ../shared/data)")
    args = parser.parse_args()
    size = parse_size(args.size)
    sparsities = [float(v) for v in args.sparsities.split(",")]
    train_images, test_images = None, None
    if args.quick:
        size, train_images, test_images = (48, 64), 24, 16
        args.teacher_epochs = args.student_epochs = args.finetune_epochs = 1
        sparsities, args.structured = [0.5], "0.5"
    console.print(f"load average at start {os.getloadavg()[0]:.2f}; torch threads {torch.get_num_threads()}")
    console.print(f"CamVid (11 classes, void ignored) resized to {size[0]}x{size[1]} (from 360x480) for this CPU; "
                  f"teacher {args.teacher_epochs} epochs, students {args.student_epochs} epochs, fine-tune "
                  f"{args.finetune_epochs} epoch(s), batch 8, Adam 2e-3 cosine; from scratch, no ImageNet weights: "
                  "expect figures far below the seed's pretrained models" + (" [--quick: 24 train / 16 test images]"
                                                                            if args.quick else ""))
    started = time.time()
    train_set = data.load_segmentation("camvid", "train", args.data_dir, image_size=size)
    test_set = data.load_segmentation("camvid", "test", args.data_dir, image_size=size)
    if train_images:
        train_set, test_set = train_set.subset(train_images), test_set.subset(test_images)
    task = tasks.SegmentationTask({"train": train_set, "test": test_set})

    rows: list[tuple] = []
    train.seed_everything(0)
    teacher = models.create("fcn_resnet18", num_classes=CAMVID_CLASSES, output_stride=args.teacher_stride)
    train.fit(teacher, task, **fit_options(args.teacher_epochs, args.quick))
    teacher_params = sum(p.numel() for p in teacher.parameters())

    def row(name: str, model: torch.nn.Module, result: dict[str, float], seed: str = "") -> None:
        params = nonzero(model)
        rows.append((name, params, 100.0 * (1 - params / teacher_params), result["pixel_accuracy"], result["miou"],
                     seed))

    row(f"teacher FCN-ResNet-18 (output stride {args.teacher_stride})", teacher, score(teacher, task),
        SEED_FIGURES["teacher"])

    def student() -> torch.nn.Module:
        train.seed_everything(1)
        return models.create("deeplabv3_mobilenetv3_large", num_classes=CAMVID_CLASSES, aspp_channels=args.aspp)

    alone = student()
    train.fit(alone, task, **fit_options(args.student_epochs, args.quick))
    row("student alone", alone, score(alone, task))

    from trimkit import distill

    distilled = student()
    _, distiller = distill.distill(distilled, teacher, task, temperature=4.0, alpha=0.5,
                                   **fit_options(args.student_epochs, args.quick))
    distilled_scores = score(distilled, task)
    row(f"student distilled (teacher in {distiller.precision.precision})", distilled, distilled_scores,
        SEED_FIGURES["student"])

    example = task.example_inputs(2)
    for sparsity in sparsities:
        pruned = prune.unstructured(distilled, method="global", sparsity=sparsity, example_inputs=example)
        kept = pruned.dead.model if pruned.dead is not None else pruned.model
        row(f"distilled + class-blind {sparsity:.0%}", kept, score(pruned.model, task))
        tuned = pruned.model
        train.fit(tuned, task, **{**fit_options(args.finetune_epochs, args.quick), "lr": 5e-4})
        row(f"  + fine-tune {args.finetune_epochs} ep", kept, score(tuned, task))
    for ratio in (float(v) for v in args.structured.split(",") if v):
        cut = prune.structured(distilled, example, ratio=ratio, scope="global").model
        row(f"distilled + structured L1 {ratio:.0%} filters", cut, score(cut, task))
        train.fit(cut, task, **{**fit_options(args.finetune_epochs, args.quick), "lr": 5e-4})
        row(f"  + fine-tune {args.finetune_epochs} ep", cut, score(cut, task))

    table = Table(title=f"CamVid test ({len(test_set)} images, {size[0]}x{size[1]}): compression vs accuracy")
    for column in ("model", "params (nonzero)", "compression vs teacher %", "pixel acc %", "mIoU %", "seed"):
        table.add_column(column, justify="left" if column in ("model", "seed") else "right")
    for name, params, compression, accuracy, miou, seed in rows:
        table.add_row(name, f"{params:,}", f"{compression:.1f}", f"{accuracy:.2f}", f"{miou:.2f}", seed)
    console.print(table)
    console.print(f"seed: parameters {SEED_FIGURES['params']}; pruning: {SEED_FIGURES['pruning']}")
    console.print("params of pruned rows: nonzero weights after dead-neuron removal (unstructured) or after "
                  "surgery (structured); pixel accuracy of unstructured rows is the masked model's")
    console.print(f"load average at end {os.getloadavg()[0]:.2f}; {time.time() - started:.0f} s in all")
    Path("runs").mkdir(exist_ok=True)
    if not args.quick:
        trimkit.save(teacher, Path("runs") / f"camvid-fcn_resnet18-{size[0]}x{size[1]}.pt",
                     metadata={"benchmark": "robots_segmentation teacher", "epochs": args.teacher_epochs})


if __name__ == "__main__":
    main()
