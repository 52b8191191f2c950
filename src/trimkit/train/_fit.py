"""The training loop: mixed precision, checkpoints each epoch, exact resume, progress."""

from __future__ import annotations

import itertools
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
from torch import nn

from trimkit._atomic import atomic_path
from trimkit._device import autocast, resolve_device, resolve_precision
from trimkit._masks import MaskKeeper
from trimkit._model_file import model_from_payload, model_payload
from trimkit._progress import progress_bar
from trimkit.errors import TrimkitError
from trimkit.tasks import Task, as_task, evaluate
from trimkit.train._health import TrainingFailed, has_normalization, likely_cause
from trimkit.train._options import FitOptions
from trimkit.train._schedule import learning_rate, make_optimizer

LossFn = Callable[[tuple[torch.Tensor, ...], Any, Any], torch.Tensor]
EpochHook = Callable[[int, nn.Module], "nn.Module | None"]

CHECKPOINT_FORMAT = "trimkit-training-checkpoint"


@dataclass(frozen=True)
class _Config:
    """What a checkpoint must match to be resumed: the options, the seed, the layout."""

    options: FitOptions
    seed: int
    channels_last: bool | None

    def recorded(self) -> dict[str, Any]:
        return {**self.options.fit_settings(), "seed": self.seed, "channels_last": self.channels_last}


@dataclass
class FitResult:
    """Per-epoch history (loss, the task's metrics, learning rate, time), what ran, and
    the trained ``model`` (the one passed in, unless an epoch hook replaced it)."""

    model: nn.Module | None = None
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
    train: Task | Any,
    val: Any | None = None,
    options: FitOptions | None = None,
    *,
    seed: int = 0,
    device: str | torch.device | None = None,
    channels_last: bool | None = None,
    loss_fn: LossFn | None = None,
    lr_schedule: Callable[[float], float] | None = None,
    on_epoch_start: EpochHook | None = None,
    extra_modules: Sequence[nn.Module] = (),
    eval_split: str | None = "auto",
    checkpoint: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = True,
    **settings: Any,
) -> FitResult:
    """Train ``model`` in place on a task's ``train`` split; evaluate after each epoch.

    ``train`` is a :class:`~trimkit.tasks.Task`, or a data set (with ``val``) that is
    judged as the task of its kind. ``options`` (a :class:`FitOptions`) say how; the
    same fields may be given as keywords (``epochs=3, lr=0.01``), validated alike.
    ``eval_split="auto"`` evaluates on the task's ``val`` (else ``test``) split when it
    has one; None skips it. ``loss_fn(inputs, outputs, targets)`` replaces the task's
    loss (it sees the inputs, so it can run a teacher). ``lr_schedule(epoch_progress) ->
    lr`` replaces the schedule. ``on_epoch_start(epoch, model)`` runs before each epoch
    and may return a new model (a pruning step): training goes on with it and a fresh
    optimiser, and ``FitResult.model`` is the last one. ``extra_modules`` are trained
    with the model (a distiller's adapters: the loss uses them); they are checkpointed
    with it.

    A loss that is not finite stops training at once with :class:`TrainingFailed`
    (the checkpoints of the epochs before stay). ``max_grad_norm="auto"`` clips the
    gradients of models without normalisation layers (see :class:`FitOptions`).

    ``precision="auto"`` trains under bf16 autocast on CUDA and on CPUs with native
    bf16, fp32 elsewhere. ``channels_last=None`` turns channels-last on for the CPU,
    where ``benchmarks/train_speed.py`` measured it faster in fp32 and no slower in bf16. With
    ``checkpoint``, the model, optimiser and history are written there (atomically)
    after every epoch; ``resume=True`` continues from it. Shuffling and augmentation
    are seeded per epoch from ``seed``, so a resumed run repeats what the uninterrupted
    run would have done.
    """
    task = as_task(train, val)
    options = FitOptions.of(options, **settings).for_model(model, task)
    config = _Config(options, seed, channels_last)
    split = _eval_split(task, eval_split)
    target = resolve_device(device)
    resolved_precision = resolve_precision(options.precision, target)
    use_channels_last = target.type == "cpu" if channels_last is None else channels_last
    result = FitResult(device=str(target), precision=resolved_precision, channels_last=use_channels_last)
    start_epoch = 0
    optim_state = None
    if resume and checkpoint is not None and Path(checkpoint).exists():
        start_epoch, model, optim_state = _restore(Path(checkpoint), model, result, config, extra_modules)
        result.resumed_from_epoch = start_epoch
    model.to(target)
    for extra in extra_modules:
        extra.to(target).train()

    def trained():
        return itertools.chain(model.parameters(), *(extra.parameters() for extra in extra_modules))

    optim = make_optimizer(trained(), options.optimizer, options.lr, options.momentum, options.weight_decay)
    if optim_state is not None:
        optim.load_state_dict(optim_state)
    rate = lr_schedule or (lambda progress: learning_rate(options.schedule, options.lr, progress, options.epochs,
                                                          options.step_size, options.gamma))
    loss_fn = loss_fn or task.loss
    drop_last = task.size("train") > options.batch_size
    steps_per_epoch = task.num_batches("train", options.batch_size, drop_last=drop_last)
    result.model = model
    try:
        with progress_bar(progress) as bar:
            for epoch in range(start_epoch, options.epochs):
                if on_epoch_start is not None:
                    replaced = on_epoch_start(epoch, model)
                    if replaced is not None and replaced is not model:
                        model.to(memory_format=torch.contiguous_format)
                        model = replaced.to(target)
                        optim = make_optimizer(trained(), options.optimizer, options.lr, options.momentum,
                                               options.weight_decay)
                        result.model = model
                if use_channels_last:
                    model.to(memory_format=torch.channels_last)
                record = _train_one_epoch(model, task, optim, loss_fn, rate, config, epoch, steps_per_epoch,
                                          drop_last, target, resolved_precision, use_channels_last, bar)
                if options.recalibrates_bn(steps_per_epoch):
                    recalibrate_batch_norm(model, task, options.batch_size, target, resolved_precision,
                                           use_channels_last)
                if split is not None:
                    scored = evaluate(model, task, split, device=target, precision="fp32")
                    record.update({f"val_{name}": value for name, value in scored.values.items() if name != "n"})
                result.history.append(record)
                if progress:
                    bar.console.print(_epoch_line(record, options.epochs, task.primary_metric))
                if checkpoint is not None:
                    _save_checkpoint(Path(checkpoint), model, optim, config, result, epoch + 1, extra_modules)
    finally:
        if use_channels_last:
            model.to(memory_format=torch.contiguous_format)
    return result


@torch.no_grad()
def recalibrate_batch_norm(model: nn.Module, task: Task, batch_size: int, device: torch.device,
                           precision: str = "fp32", channels_last: bool = False) -> bool:
    """Re-estimate every batch-norm layer's running mean and variance as the plain average
    over the training split (no augmentation, no weight update): the statistics of the
    weights as they are now. Returns whether the model had batch norm."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    if not norms:
        return False
    momenta = [norm.momentum for norm in norms]
    was_training = model.training
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average over the batches
    model.train()
    try:
        for batch in task.batches("train", batch_size):
            batch = batch.to(device, channels_last=channels_last)
            with autocast(device, precision):
                model(*batch.inputs)
    finally:
        for norm, momentum in zip(norms, momenta):
            norm.momentum = momentum
        model.train(was_training)
    return True


def input_sizes(task: Task, split: str = "train") -> list[str]:
    """The size of each model input as ``split`` feeds it, without the batch (``3x32x32``):
    what a model was trained at, for logs and reports."""
    batch = next(iter(task.batches(split, 1)), None)
    if batch is None:
        return []
    return ["x".join(str(int(side)) for side in tensor.shape[1:]) for tensor in batch.inputs]


def _eval_split(task: Task, eval_split: str | None) -> str | None:
    if eval_split != "auto":
        return eval_split
    return next((name for name in ("val", "test") if name in task.splits), None)


def _train_one_epoch(model, task: Task, optim, loss_fn, rate, config, epoch, steps, drop_last, target, precision,
                     channels_last, bar):
    model.train()
    generator = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
    progress_task = bar.add_task(f"epoch {epoch + 1}/{config.options.epochs}", total=steps, stats="")
    masks = MaskKeeper(model)  # unstructured pruning's zeros stay zero
    clip = config.options.grad_norm_limit(has_normalization(model))
    primary = task.primary_metric
    metrics = task.metric_state()
    loss_sum, seen = 0.0, 0
    started = time.perf_counter()
    for step, batch in enumerate(task.batches("train", config.options.batch_size, shuffle=True,
                                              augment=config.options.augment,
                                              generator=generator, drop_last=drop_last)):
        for group in optim.param_groups:
            group["lr"] = rate(epoch + step / steps)
        batch = batch.to(target, channels_last=channels_last)
        with autocast(target, precision):
            outputs = model(*batch.inputs)
            loss = loss_fn(batch.inputs, outputs, batch.targets)
        optim.zero_grad(set_to_none=True)
        if not torch.isfinite(loss.detach()):
            raise TrainingFailed(f"training stopped: the loss is {float(loss.detach())} in epoch {epoch + 1}, "
                                 f"step {step + 1} "
                                 f"(lr {optim.param_groups[0]['lr']:.3g}); "
                                 f"{likely_cause(model, config.options, task=task)}")
        loss.backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_([p for group in optim.param_groups for p in group["params"]], clip)
        masks.step(optim)
        count = len(batch)
        loss_sum += float(loss.detach()) * count
        seen += count
        metrics.update(_detached(outputs), batch.targets)
        bar.update(progress_task, advance=1,
                   stats=f"loss {loss_sum / seen:.3f}  {primary} {metrics.result()[primary]:.2f}")
    seconds = time.perf_counter() - started
    bar.remove_task(progress_task)
    return {
        "epoch": epoch + 1,
        "lr": optim.param_groups[0]["lr"],
        "train_loss": loss_sum / max(seen, 1),
        f"train_{primary}": float(metrics.result()[primary]) if seen else 0.0,
        "images": seen,
        "seconds": seconds,
    }


def _detached(outputs: Any) -> Any:
    if isinstance(outputs, torch.Tensor):
        return outputs.detach().float()
    if isinstance(outputs, (tuple, list)):
        return type(outputs)(_detached(o) for o in outputs)
    return outputs


def _epoch_line(record: dict, epochs: int, primary: str) -> str:
    line = (f"epoch {record['epoch']}/{epochs}  loss {record['train_loss']:.4f}  "
            f"train {primary} {record[f'train_{primary}']:.2f}")
    if f"val_{primary}" in record:
        line += f"  val {record[f'val_{primary}']:.2f}"
    return line + f"  ({record['seconds']:.1f} s, {record['images'] / max(record['seconds'], 1e-9):.0f} img/s)"


def _save_checkpoint(path: Path, model, optim, config: _Config, result: FitResult, epochs_done: int,
                     extra_modules: Sequence[nn.Module] = ()) -> None:
    state = {
        "format": CHECKPOINT_FORMAT,
        "epochs_done": epochs_done,
        "model": model_payload(model),
        "optimizer": optim.state_dict(),
        "config": json.dumps(config.recorded()),
        "history": json.dumps(result.history),
        "extra_modules": [extra.state_dict() for extra in extra_modules],
    }
    with atomic_path(path) as temporary:
        torch.save(state, temporary)


def _restore(path: Path, model: nn.Module, result: FitResult, config: _Config,
             extra_modules: Sequence[nn.Module] = ()) -> tuple[int, nn.Module, dict]:
    """The epochs done, the model as it was then (its architecture too, if an epoch hook
    changed it), and the optimiser state."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a torn or foreign file: say which and what to do
        raise TrimkitError(f"cannot resume from {path}: {error}; delete it to start afresh") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise TrimkitError(f"{path} is not a trimkit training checkpoint; delete it or choose another --out")
    saved = json.loads(state.get("config") or "{}")
    recorded = config.recorded()
    changed = [key for key, value in recorded.items() if key in saved and saved[key] != value]
    if changed:
        was = ", ".join(f"{key}={saved[key]}" for key in changed)
        now = ", ".join(f"{key}={recorded[key]}" for key in changed)
        raise TrimkitError(f"cannot resume from {path}: it was written with {was}, and now {now}; resume with the "
                           "same options, or delete it to start afresh")
    try:
        model = model_from_payload(state["model"], model)
    except TrimkitError as error:
        raise TrimkitError(f"checkpoint {path} was written for a different model: {error}") from None
    for extra, extra_state in zip(extra_modules, state.get("extra_modules", [])):
        extra.load_state_dict(extra_state)
    result.history = json.loads(state["history"])
    return int(state["epochs_done"]), model, state["optimizer"]
