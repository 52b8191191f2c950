"""Stages ``train`` and ``finetune``: :func:`trimkit.train.fit` on the run's task, with an
optional schedule of pruners and lr schedulers fired by epoch."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator
from torch import nn

from trimkit import prune, tasks, train
from trimkit._registry import closest
from trimkit.pipeline._context import Context
from trimkit.pipeline._distill_options import TeacherOptions, distillation
from trimkit.pipeline._registry import register_stage
from trimkit.pipeline._schedule import LrSchedulerSpec, PolicySpec, PrunerSpec, agp_sparsity, lr_factor, step_ratio
from trimkit.train import FitOptions


class TrainOptions(FitOptions, TeacherOptions):
    """A training stage: :class:`~trimkit.train.FitOptions`, a teacher (distillation) and
    a schedule of pruners and lr schedulers fired by epoch."""

    allow_failure: bool = False
    pruners: dict[str, PrunerSpec] = Field(default_factory=dict)
    lr_schedulers: dict[str, LrSchedulerSpec] = Field(default_factory=dict)
    policies: list[PolicySpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _policies_fit(self) -> TrainOptions:
        fired_pruners: dict[int, str] = {}
        lr_epochs: dict[int, str] = {}
        for index, policy in enumerate(self.policies):
            where = f"policies[{index}]"
            name = policy.pruner or policy.lr_scheduler
            known = self.pruners if policy.pruner else self.lr_schedulers
            kind = "pruner" if policy.pruner else "lr_scheduler"
            if name not in known:
                raise ValueError(f"{where}: no {kind} named {name!r}{closest(name, known)}; "
                                 f"define it under {kind}s")
            epochs = policy.firing_epochs()
            if not epochs:
                raise ValueError(f"{where}: fires in no epoch; check starting_epoch, ending_epoch and frequency")
            if epochs[-1] >= self.epochs:
                raise ValueError(f"{where}: fires in epoch {epochs[-1]}, but the stage trains epochs 0 to "
                                 f"{self.epochs - 1}")
            table = fired_pruners if policy.pruner else lr_epochs
            for epoch in epochs:
                if epoch in table:
                    raise ValueError(f"{where}: overlaps {table[epoch]!r} in epoch {epoch}; one {kind} per epoch")
                table[epoch] = name  # type: ignore[assignment]
        if self.pruners and (self.hints or self.attention):
            raise ValueError("hints and attention follow named layers, which a pruning schedule replaces; "
                             "distil from the outputs only (drop hints and attention) or prune in a stage before")
        used = {p.pruner for p in self.policies}
        for name in self.pruners:
            if name not in used:
                raise ValueError(f"pruners.{name}: no policy fires it; add a policy with pruner: {name}")
        return self


class _ScheduledPruning:
    """The epoch hook that fires the schedule's pruners, each cut verified."""

    def __init__(self, options: TrainOptions, ctx: Context) -> None:
        self.options = options
        self.ctx = ctx
        self.steps: list[dict[str, Any]] = []
        self.plan: dict[int, tuple[str, PrunerSpec, int, int]] = {}
        for policy in options.policies:
            if policy.pruner is None:
                continue
            epochs = policy.firing_epochs()
            for step, epoch in enumerate(epochs):
                self.plan[epoch] = (policy.pruner, options.pruners[policy.pruner], step, len(epochs))

    def __call__(self, epoch: int, model: nn.Module) -> nn.Module | None:
        if epoch not in self.plan:
            return None
        name, spec, step, steps = self.plan[epoch]
        cut = prune.CutOptions.of(spec)
        target = None
        if spec.kind == "agp":
            final = spec.final_sparsity or 0.0
            target = agp_sparsity(spec.initial_sparsity, final, step, steps)
            # the steps before this one reached their targets (the ramp rises), also in a resumed run
            current = agp_sparsity(spec.initial_sparsity, final, step - 1, steps) if step else 0.0
            ratio = step_ratio(current, target)
            if ratio <= 0.0:
                return None
            cut = prune.CutOptions.of(cut, ratio=ratio)
        result = prune.structured(model, self.ctx.example_inputs(4), cut,
                                  calibration=_calibration(self.ctx, spec.calibration_samples, spec.criterion))
        self.steps.append({"epoch": epoch, "pruner": name, "ratio": cut.ratio, "target_sparsity": target,
                           "filters_pruned": result.filters_pruned, "macs_before": result.macs_before,
                           "macs_after": result.macs_after, "frozen": len(result.frozen)})
        self.ctx.say(f"   epoch {epoch}: pruner {name} cut {result.groups_pruned} groups, MACs "
                     f"{result.macs_before:,} -> {result.macs_after:,}")
        return result.model


def _calibration(ctx: Context, samples: int, criterion: str):
    """A batch of the task's training data for a criterion that needs data, else None."""
    if not prune.criteria.get(criterion).needs_data:
        return None
    batch = next(ctx.task.subset("train", samples, ctx.seed).batches("train", samples))
    return (*batch.inputs, batch.targets)


@register_stage("train", TrainOptions, "train the model on the task (optionally with a pruning schedule)")
def train_stage(model: nn.Module, ctx: Context, options: TrainOptions) -> nn.Module:
    hook = _ScheduledPruning(options, ctx) if options.pruners else None
    resolved = options.for_model(model, ctx.task)  # optimiser, lr and batch as fit resolves them
    rate = None
    if options.lr_schedulers:
        peak = resolved.lr
        rate = lambda progress: peak * lr_factor(int(progress), options.lr_schedulers, options.policies)  # noqa: E731
    checkpoint = ctx.checkpoint()
    resuming = ctx.resume and checkpoint is not None and checkpoint.exists()
    task = ctx.task
    primary = task.primary_metric
    judged = options.epochs > 0 and _has_eval_split(task)
    start = None if resuming or not judged else float(tasks.evaluate(model, task).values[primary])
    chance_metrics = train.chance_level(task) if judged else None
    chance = chance_metrics.get(primary) if chance_metrics else None
    fine_tuning = start is not None and chance is not None and start > chance + 2 * train.CHANCE_MARGIN
    trained_at = train.input_sizes(task)
    batch = resolved.batch_size
    with distillation(options, ctx, model, student_start=start if fine_tuning else None,
                      chance=chance) as distiller:
        ctx.say(f"   training at {', '.join(trained_at)} ({task.size('train')} samples, batch {batch})")
        try:
            fitted = train.fit(model, task, options=options, seed=ctx.seed, lr_schedule=rate,
                               on_epoch_start=hook, checkpoint=checkpoint, resume=resuming,
                               progress=ctx.progress, loss_fn=distiller,
                               extra_modules=[distiller.adapters] if distiller else ())
        except train.TrainingFailed as error:
            if not options.allow_failure:
                raise
            ctx.say(f"   [yellow]warning:[/] {error} (allow_failure: the run goes on)")
            ctx.add(input_size=trained_at, training={"start": start, "chance": chance, "problem": str(error)})
            return model
    steps = sum(int(h["images"]) for h in fitted.history) // batch
    problem = train.training_problem(fitted.history, primary, higher_is_better=task.higher_is_better, start=start,
                                     chance=chance, steps=steps)
    warning = train.short_run_warning(fitted.history, primary, higher_is_better=task.higher_is_better,
                                      chance=chance, steps=steps)
    ctx.add(input_size=trained_at, history=fitted.history, precision=fitted.precision,
            channels_last=fitted.channels_last, images_per_second=fitted.images_per_second,
            resumed_from_epoch=fitted.resumed_from_epoch, pruning_steps=hook.steps if hook else [],
            training={"start": start, "chance": chance, "problem": problem, "warning": warning})
    if warning is not None:
        ctx.say(f"   [yellow]warning:[/] {warning}")
    if problem is not None:
        cause = train.likely_cause(model, options, distilling=distiller is not None, fine_tuning=fine_tuning,
                                   task=task)
        message = f"training failed: {problem}; {cause}"
        if not options.allow_failure:
            raise train.TrainingFailed(f"{message} (set allow_failure: true to keep going)")
        ctx.say(f"   [yellow]warning:[/] {message} (allow_failure: the run goes on)")
    return fitted.model


def _has_eval_split(task) -> bool:
    return task is not None and any(name in task.splits for name in ("val", "test"))


register_stage("finetune", TrainOptions, "fine-tune the model (the train stage under its usual name)")(train_stage)
