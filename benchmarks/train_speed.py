"""Training throughput of the trimkit trainer: fp32, bf16, bf16 + channels-last.

Each configuration trains the same model for two short epochs on the same 2,560
CIFAR-sized images (content does not change speed); the second epoch is timed. The
three runs of a model go side by side in one process, so their ratios are comparable.

    python benchmarks/train_speed.py [--models resnet20,resnet56] [--images 2560]
"""

from __future__ import annotations

import argparse

import torch
from rich.console import Console
from rich.table import Table

from trimkit import models, train
from trimkit.data import ImageDataset

CONFIGS = [("fp32", "fp32", False), ("fp32 + channels-last", "fp32", True), ("bf16", "bf16", False),
           ("bf16 + channels-last", "bf16", True)]


def synthetic_cifar(count: int) -> ImageDataset:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (count, 3, 32, 32), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 10, (count,), generator=generator)
    return ImageDataset("synthetic", "train", images, labels, tuple(map(str, range(10))),
                        ((0.5,) * 3, (0.25,) * 3), "crop_flip")


def measure(name: str, precision: str, channels_last: bool, dataset: ImageDataset) -> float:
    train.seed_everything(0)
    model = models.create(name)
    result = train.fit(model, dataset, epochs=2, batch_size=128, precision=precision, channels_last=channels_last,
                       progress=False)
    last = result.history[-1]
    return last["images"] / last["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet20,resnet56")
    parser.add_argument("--images", type=int, default=2560)
    args = parser.parse_args()
    dataset = synthetic_cifar(args.images)
    console = Console()
    console.print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
                  f"native bf16: {train.cpu_has_native_bf16()}, batch 128")
    table = Table(title="training images/s (second epoch)")
    table.add_column("model")
    for label, _, _ in CONFIGS:
        table.add_column(label, justify="right")
    table.add_column("best / fp32", justify="right")
    for name in args.models.split(","):
        rates = [measure(name, precision, channels_last, dataset) for _, precision, channels_last in CONFIGS]
        table.add_row(name, *(f"{rate:,.0f}" for rate in rates), f"{max(rates) / rates[0]:.2f}x")
    console.print(table)


if __name__ == "__main__":
    main()
