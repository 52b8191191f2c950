"""The training loop: mixed precision, checkpoints each epoch, exact resume, progress."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch import nn

from trimkit._atomic import atomic_path
from trimkit.data import ImageDataset
from trimkit.errors import TrimkitError
from trimkit.train._device import autocast, resolve_device, resolve_precision
from trimkit.train._evaluate import evaluate
from trimkit.train._schedule import check_schedule, learning_rate, make_optimizer

CHECKPOINT_FORMAT = "trimkit-training-checkpoint"


@dataclass(frozen=True)
class FitConfig:
    epochs: int
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    step_size: int = 30
    gamma: float = 0.1
    seed: int = 0
    precision: str = "auto"
    channels_last: bool | None = None
    augment: bool = True


@dataclass
class FitResult:
    """Per-epoch history (loss, accuracy, learning rate, time) and what ran."""

    history: list[dict[str, float]] = field(default_factory=list)
    device: str = "cpu"
    precision: str = "fp32"
    channels_last: bool = False
    resumed_from_epoch: int = 0

    @property
    def images_per_second(self) -> float:
        timed = [h for h in self.history if h["seconds"] > 0]
        images = sum(h["images"] for h in timed)
        return images / max(sum(h["seconds"] for h in timed), 1e-9)


def fit(
    model: nn.Module,
    train: ImageDataset,
    val: ImageDataset | None = None,
    *,
    epochs: int,
    batch_size: int = 128,
    optimizer: str = "sgd",
    lr: float = 0.05,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    schedule: str = "cosine",
    step_size: int = 30,
    gamma: float = 0.1,
    seed: int = 0,
    device: str | torch.device | None = None,
    precision: str = "auto",
    channels_last: bool | None = None,
    augment: bool = True,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = True,
) -> FitResult:
    """Train ``model`` in place on ``train``; evaluate on ``val`` after each epoch.

    ``precision="auto"`` trains under bf16 autocast on CUDA and on CPUs with native
    bf16, fp32 elsewhere. ``channels_last=None`` turns channels-last on for the CPU,
    where ``benchmarks/train_speed.py`` measured it faster in fp32 and no slower in bf16. With
    ``checkpoint``, the model, optimiser and history are written there (atomically)
    after every epoch; ``resume=True`` continues from it. Shuffling and augmentation
    are seeded per epoch from ``seed``, so a resumed run repeats what the uninterrupted
    run would have done.
    """
    config = FitConfig(epochs, batch_size, optimizer, lr, momentum, weight_decay, schedule, step_size, gamma,
                       seed, precision, channels_last, augment)
    _validate(config)
    target = resolve_device(device)
    resolved_precision = resolve_precision(precision, target)
    use_channels_last = target.type == "cpu" if channels_last is None else channels_last
    model.to(target)
    if use_channels_last:
        model.to(memory_format=torch.channels_last)
    optim = make_optimizer(model.parameters(), optimizer, lr, momentum, weight_decay)
    result = FitResult(device=str(target), precision=resolved_precision, channels_last=use_channels_last)
    start_epoch = 0
    if resume and checkpoint is not None and Path(checkpoint).exists():
        start_epoch = _restore(Path(checkpoint), model, optim, result)
        result.resumed_from_epoch = start_epoch
    loss_fn = loss_fn or F.cross_entropy
    steps_per_epoch = train.num_batches(batch_size, drop_last=len(train) > batch_size)
    try:
        with _progress_bar(progress) as bar:
            for epoch in range(start_epoch, epochs):
                record = _train_one_epoch(model, train, optim, loss_fn, config, epoch, steps_per_epoch,
                                          target, resolved_precision, use_channels_last, bar)
                if val is not None:
                    metrics = evaluate(model, val, device=target, precision="fp32")
                    record.update(val_top1=metrics["top1"], val_loss=metrics["loss"])
                result.history.append(record)
                if progress:
                    bar.console.print(_epoch_line(record, epochs))
                if checkpoint is not None:
                    _save_checkpoint(Path(checkpoint), model, optim, config, result, epoch + 1)
    finally:
        if use_channels_last:
            model.to(memory_format=torch.contiguous_format)
    return result


def _validate(config: FitConfig) -> None:
    if config.epochs < 0:
        raise TrimkitError(f"epochs must be >= 0, got {config.epochs}")
    if config.batch_size < 1:
        raise TrimkitError(f"batch size must be >= 1, got {config.batch_size}")
    if config.lr <= 0:
        raise TrimkitError(f"learning rate must be > 0, got {config.lr}")
    check_schedule(config.schedule)


def _train_one_epoch(model, train, optim, loss_fn, config, epoch, steps, target, precision, channels_last, bar):
    model.train()
    generator = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
    task = bar.add_task(f"epoch {epoch + 1}/{config.epochs}", total=steps, stats="")
    loss_sum, correct, seen = 0.0, 0, 0
    started = time.perf_counter()
    for step, (images, labels) in enumerate(
        train.batches(config.batch_size, shuffle=True, augment=config.augment, generator=generator,
                      drop_last=len(train) > config.batch_size)
    ):
        for group in optim.param_groups:
            group["lr"] = learning_rate(config.schedule, config.lr, epoch + step / steps, config.epochs,
                                        config.step_size, config.gamma)
        images, labels = images.to(target), labels.to(target)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with autocast(target, precision):
            logits = model(images)
            loss = loss_fn(logits.float(), labels)
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        loss_sum += float(loss.detach()) * len(labels)
        correct += int((logits.argmax(1) == labels).sum())
        seen += len(labels)
        bar.update(task, advance=1, stats=f"loss {loss_sum / seen:.3f}  acc {100 * correct / seen:.1f}%")
    seconds = time.perf_counter() - started
    bar.remove_task(task)
    return {
        "epoch": epoch + 1,
        "lr": optim.param_groups[0]["lr"],
        "train_loss": loss_sum / max(seen, 1),
        "train_top1": 100.0 * correct / max(seen, 1),
        "images": seen,
        "seconds": seconds,
    }


def _epoch_line(record: dict, epochs: int) -> str:
    line = (f"epoch {record['epoch']}/{epochs}  loss {record['train_loss']:.4f}  "
            f"train {record['train_top1']:.2f}%")
    if "val_top1" in record:
        line += f"  val {record['val_top1']:.2f}%"
    return line + f"  ({record['seconds']:.1f} s, {record['images'] / max(record['seconds'], 1e-9):.0f} img/s)"


class _NoProgress:
    """Stands in for a rich Progress when progress output is off."""

    console = Console(quiet=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def add_task(self, *args, **kwargs):
        return 0

    def update(self, *args, **kwargs):
        pass

    def remove_task(self, *args):
        pass


def _progress_bar(enabled: bool):
    if not enabled:
        return _NoProgress()
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[stats]}"),
        TimeRemainingColumn(), console=Console(stderr=True), transient=True,
    )


def _save_checkpoint(path: Path, model, optim, config: FitConfig, result: FitResult, epochs_done: int) -> None:
    state = {
        "format": CHECKPOINT_FORMAT,
        "epochs_done": epochs_done,
        "model": model.state_dict(),
        "optimizer": optim.state_dict(),
        "config": json.dumps(asdict(config)),
        "history": json.dumps(result.history),
    }
    with atomic_path(path) as temporary:
        torch.save(state, temporary)


def _restore(path: Path, model, optim, result: FitResult) -> int:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a torn or foreign file: say which and what to do
        raise TrimkitError(f"cannot resume from {path}: {error}; delete it to start afresh") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise TrimkitError(f"{path} is not a trimkit training checkpoint; delete it or choose another --out")
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as error:
        raise TrimkitError(f"checkpoint {path} was written for a different model: {str(error).splitlines()[0]}") from None
    optim.load_state_dict(state["optimizer"])
    result.history = json.loads(state["history"])
    return int(state["epochs_done"])
