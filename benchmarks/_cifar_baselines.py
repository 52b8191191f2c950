"""Trained CIFAR-10 baselines for the robots-seed benchmarks, trained once and cached.

The seed (003) starts from LeNet and ResNet-18 trained on CIFAR-10. On this 2-core CPU
they are trained at a reduced budget (a fixed random subset of the train split, a few
epochs); every budget is part of the cache key, so a different budget trains afresh.

    from _cifar_baselines import Budget, cifar10, baseline

    train_set, test_set = cifar10(Budget.quick())
    model, top1 = baseline("lenet5", Budget.quick())

Models are cached as trimkit model files under ``.cache/benchmarks/`` (gitignored).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

import trimkit
from trimkit import data, models, train

CACHE = Path(__file__).resolve().parent.parent / ".cache" / "benchmarks"
DATA_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
ZOO_NAMES = {"lenet5": "lenet5", "lenet": "lenet5", "resnet18": "resnet18"}
DEFAULT_EPOCHS = {"lenet5": 20, "resnet18": 3}


@dataclass(frozen=True)
class Budget:
    """How much CIFAR-10 a benchmark uses: train images (a fixed random subset), test
    images (the first ``test_images`` of a fixed permutation), and epochs per model."""

    train_images: int = 5_000
    test_images: int = 2_000
    epochs: dict[str, int] | None = None
    seed: int = 0

    @staticmethod
    def quick() -> Budget:
        """About a minute once cached (the first call trains ResNet-18 for a few minutes)."""
        return Budget(train_images=2_000, test_images=1_000, epochs={"lenet5": 10, "resnet18": 1})

    @staticmethod
    def default() -> Budget:
        """ResNet-18 trains for about 20-30 minutes on 2 busy cores the first time."""
        return Budget(train_images=5_000, test_images=2_000, epochs=dict(DEFAULT_EPOCHS))

    @staticmethod
    def gpu() -> Budget:
        """For a CUDA machine: 28,000 train images (what fits one transfer to a lent GPU
        machine, losslessly packed), the whole test split, ResNet-18 trained 15 epochs."""
        return Budget(train_images=28_000, test_images=10_000, epochs={"lenet5": 20, "resnet18": 15})

    def epochs_for(self, name: str) -> int:
        return {**DEFAULT_EPOCHS, **(self.epochs or {})}[ZOO_NAMES.get(name, name)]

    def describe(self) -> str:
        epochs = ", ".join(f"{name} {count}" for name, count in {**DEFAULT_EPOCHS, **(self.epochs or {})}.items())
        return (f"CIFAR-10 budget: {self.train_images:,} of 50,000 train images, "
                f"{self.test_images:,} of 10,000 test images; epochs: {epochs}")


def cifar10(budget: Budget, data_dir: Path | None = None) -> tuple[data.ImageDataset, data.ImageDataset]:
    """The (train, test) subsets of CIFAR-10 the budget names, with CIFAR normalisation."""
    root = data_dir or DATA_DIR
    train_set = data.load("cifar10", "train", root).subset(budget.train_images, seed=budget.seed)
    test_set = data.load("cifar10", "test", root).subset(budget.test_images, seed=budget.seed + 1)
    return train_set, test_set


def create(name: str) -> nn.Module:
    """A fresh zoo model for 3-channel 32x32 CIFAR-10 inputs."""
    return models.create(ZOO_NAMES.get(name, name), num_classes=10, in_channels=3)


def fit_settings(name: str) -> dict:
    """The training settings every benchmark uses for ``name`` (so that a student trained
    alone and a distilled student get the same budget)."""
    lr = 0.05 if ZOO_NAMES.get(name, name) == "resnet18" else 0.02
    return {"batch_size": 128, "optimizer": "sgd", "lr": lr, "momentum": 0.9, "weight_decay": 5e-4,
            "schedule": "cosine"}


def baseline(name: str, budget: Budget, *, data_dir: Path | None = None,
             progress: bool = True) -> tuple[nn.Module, float]:
    """The trained baseline ``name`` (``lenet5`` or ``resnet18``) and its top-1 (%) on the
    budget's test subset: loaded from the cache, or trained and cached."""
    zoo = ZOO_NAMES.get(name, name)
    epochs = budget.epochs_for(zoo)
    path = CACHE / f"{zoo}-cifar10-n{budget.train_images}-e{epochs}-s{budget.seed}.pt"
    train_set, test_set = cifar10(budget, data_dir)
    if path.exists():
        model = trimkit.load(path)
    else:
        torch.manual_seed(budget.seed)
        model = create(zoo)
        print(f"training baseline {zoo}: {epochs} epochs on {len(train_set):,} images (cached in {path})",
              file=sys.stderr)
        train.fit(model, train_set, None, epochs=epochs, seed=budget.seed, progress=progress, **fit_settings(zoo))
        path.parent.mkdir(parents=True, exist_ok=True)
        trimkit.save(model.eval(), path, metadata={"benchmark": "cifar baseline", "epochs": epochs,
                                                  "train_images": budget.train_images})
        model.cpu()
    return model.eval(), top1(model, test_set)


def top1(model: nn.Module, test_set: data.ImageDataset, device: str | None = None) -> float:
    """Top-1 (%) on ``test_set``, on ``device`` (default: CUDA where there is one); the
    model is left on the CPU, where pruning and profiling take it."""
    value = float(train.evaluate(model, test_set, device=device)["top1"])
    model.cpu()
    return value


def parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
