"""Run a recipe: build the model and the task, run each stage, and keep the run folder.

``RUN_DIR/`` holds ``recipe.yaml`` (the resolved recipe), ``log.jsonl`` (one record a
line, appended as each stage ends), ``original.pt``, ``stages/NN-NAME/`` (each stage's
output ``model.pt``, its checkpoints and files), and at the end ``model.pt`` and its
ONNX export. ``resume=True`` continues a run where it stopped: finished stages are never
redone (their models are loaded from their folders), and a training stage continues
from its last epoch's checkpoint.

Between stages the model is saved and loaded back, so a resumed run and an
uninterrupted one hand each stage the same model; each stage is seeded with
``seed + index``.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from torch import nn

from trimkit import models, tasks
from trimkit._atomic import atomic_path
from trimkit._model_file import load, load_weights, read_header, save
from trimkit._outputs import check_folder_output
from trimkit.errors import TrimkitError
from trimkit.pipeline._context import Context
from trimkit.pipeline._recipe import ModelSpec, Recipe, RecipeError, StageEntry, dump_recipe
from trimkit.pipeline._registry import StageOptions, get_stage, unsupported
from trimkit.pipeline._subjects import record_task_input
from trimkit.pipeline.stages.export import export_model
from trimkit.record import Measurement
from trimkit.runs import (LOG, MODEL, ONNX, ORIGINAL, RECIPE, RunLog, StageRecord, baseline, from_run, in_run,
                          stage_folder)
from trimkit.tasks import Task, TaskSpec
from trimkit.train import seed_everything

INPUT_INDEX = -1


@dataclass
class RunResult:
    """The final model, the log's records, and where the run folder is."""

    model: nn.Module
    log: RunLog
    run_dir: Path | None
    context: Context

    @property
    def baseline(self) -> Measurement:
        """The model compression started from (:func:`trimkit.runs.baseline`)."""
        return baseline(self.log.records).measurement

    @property
    def final(self) -> Measurement:
        return self.log.records[-1].measurement


def build_model(spec: ModelSpec, *, weights_flag: str = "model.weights", model_flag: str = "model.name",
                search: tuple[str, ...] = ()) -> nn.Module:
    """The model a recipe's ``model:`` (or a command's MODEL and --weights) names: a
    trimkit model file, a factory's model (its module looked for in the working folder,
    then in ``search``), or a zoo model with fresh weights, a checkpoint's, or a trimkit
    file's of the same zoo model. ``weights_flag`` and ``model_flag`` word the errors."""
    if spec.file is not None:
        return load(spec.file, trusted=spec.trust_checkpoint)
    if spec.factory is not None:
        model = models.from_factory(spec.factory, input_shape=spec.input_shape, normalization=spec.normalization,
                                    search=search, **spec.kwargs)
        if spec.weights is not None:
            load_weights(model, spec.weights, trusted=spec.trust_checkpoint)
        return model
    if spec.weights is not None:
        header = read_header(spec.weights, trusted=spec.trust_checkpoint)
        if header is not None:
            saved = (header.get("model") or {}).get("name")
            if saved != spec.name:
                raise RecipeError(f"{weights_flag}: {spec.weights} holds a {saved} model, not {spec.name}; give "
                                  f"{model_flag} {saved}, or the file itself as the model")
            return load(spec.weights, trusted=spec.trust_checkpoint)
    try:
        model = models.create(spec.name, num_classes=spec.num_classes, in_channels=spec.in_channels, **spec.kwargs)
    except TypeError as error:
        raise RecipeError(f"model.kwargs: {spec.name} does not take {sorted(spec.kwargs)} ({error})") from None
    if spec.weights is not None:
        load_weights(model, spec.weights, trusted=spec.trust_checkpoint)
    return model


def build_task(spec: TaskSpec, model: nn.Module, seed: int) -> Task:
    """The task of a recipe's task block, by its kind's builder, prepared for ``model``; a
    model of the user's own learns its input shape and normalisation from the data."""
    task = tasks.kind(spec.kind).build(spec, model, seed)
    record_task_input(model, task)
    return task


def run_recipe(recipe: Recipe, run_dir: str | Path | None = None, *, resume: bool = False, progress: bool = True,
               say: Callable[[str], None] = lambda text: None) -> RunResult:
    """Run ``recipe``; with ``run_dir``, keep everything there (see the module docstring)."""
    folder = Path(run_dir) if run_dir is not None else None
    resolved = dump_recipe(recipe)
    if folder is not None:
        _check_folder(folder, resolved, resume)
    seed_everything(recipe.seed)
    model = build_model(recipe.model, search=(recipe.folder,) if recipe.folder else ())
    task = build_task(recipe.task, model, recipe.seed)
    log = RunLog(folder / LOG if folder is not None else None)
    if folder is not None and not (folder / RECIPE).exists():
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / RECIPE) as temporary:
            temporary.write_text(resolved, encoding="utf-8")
    ctx = Context(task=task, original=model, seed=recipe.seed, run_dir=folder, log=log, progress=progress, say=say,
                  resume=resume, trusted=recipe.model.trust_checkpoint)
    if log.done(INPUT_INDEX) is None:
        original_file = _save(model, folder, ORIGINAL)
        log.append(StageRecord("input", INPUT_INDEX, 0.0, ctx.measure(model, "original"), input_details(model),
                               model_file=original_file))
    elif folder is not None:
        model = ctx.original = ctx.models["original"] = _load(folder, ORIGINAL, model)
    for index, entry in enumerate(recipe.stages):
        done = log.done(index)
        if done is not None:
            # a finished stage's model is read back only where something still needs it:
            # the next stage (not done yet), a later stage by name, or the result
            needed = log.done(index + 1) is None or index + 1 == len(recipe.stages) or bool(entry.save_as)
            model = _restore(done, folder, model, ctx, load=needed)
            say(f"[bold]{index + 1}. {entry.stage}[/] done before (resumed), {done.seconds:.1f} s")
            continue
        say(f"[bold]{index + 1}. {entry.stage}[/]")
        model = _run_stage(model, ctx, index, entry, folder)
    final_index = len(recipe.stages)
    if log.done(final_index) is None:
        log.append(_finish(model, ctx, folder, recipe.export, final_index))
    return RunResult(model, log, folder, ctx)


@dataclass
class JobResult:
    """What a command's stages did: the model they end with, one record per stage (after
    the ``input`` record, where the job measured it), and the context."""

    model: nn.Module
    records: list[StageRecord]
    context: Context

    def record(self, stage: str) -> StageRecord:
        """The last record of ``stage`` (or ``input``)."""
        return next(record for record in reversed(self.records) if record.stage == stage)


def run_job(model: nn.Module, task: Task | None, stages: Sequence[tuple[str, StageOptions]], *, seed: int = 0,
            measure_input: bool = True, progress: bool = True, say: Callable[[str], None] = lambda text: None,
            **context: Any) -> JobResult:
    """Run ``stages`` (name and options) on ``model`` without a run folder: what a single
    command (``trimkit train``, ``prune``, ``quantize``, ``export``) does, by the same stage
    functions, seeds and records as a recipe run. ``context`` sets the
    :class:`Context` fields a command fills: ``output`` (its ``--out``),
    ``checkpoint_file``, ``resume``, ``examples`` (inputs when there is no data) and
    ``trusted``."""
    seed_everything(seed)
    ctx = Context(task=task, original=model, seed=seed, progress=progress, say=say, **context)
    if measure_input:
        ctx.log.append(StageRecord("input", INPUT_INDEX, 0.0, ctx.measure(model, "original"), input_details(model)))
    for index, (name, options) in enumerate(stages):
        entry = StageEntry(stage=name, options=options)
        model = _run_stage(model, ctx, index, entry, None)
    return JobResult(model, list(ctx.log.records), ctx)


def input_details(model: nn.Module) -> dict[str, Any]:
    """What the run started from, as the input record keeps it: the zoo name or factory,
    the arguments, and the factory's source file with its SHA-256 (or the pickle's)."""
    origin = models.origin(model)
    if origin is None:
        return {"model": {"class": f"{type(model).__module__}.{type(model).__qualname__}"}}
    shape = origin.input_shape()
    return {"model": {**origin.to_header(), "input_shape": None if shape is None else list(shape)}}


def _run_stage(model: nn.Module, ctx: Context, index: int, entry: StageEntry, folder: Path | None) -> nn.Module:
    stage = get_stage(entry.stage)
    if ctx.task is not None:
        problem = unsupported(entry.options, ctx.task.capabilities, ctx.task.name)
        if problem:
            raise TrimkitError(f"stage {entry.stage} {problem}")
    stage_dir = folder / stage_folder(index, entry.stage) if folder is not None else None
    ctx.begin(index, stage_dir)
    seed_everything(ctx.seed + index)
    started = time.perf_counter()
    model = stage.run(model, ctx, entry.options)
    seconds = time.perf_counter() - started
    label = entry.save_as or entry.stage
    if ctx.unchanged and ctx.log.records:
        previous = ctx.log.records[-1]
        # the stage measured or wrote something but left the model as it was: the figures
        # of the model stand, and are not measured again
        model_file = previous.model_file
        measurement = copy.deepcopy(previous.measurement).renamed(label)
    else:
        model_file = None
        if folder is not None:
            model_file = _save(model, folder, f"{stage_folder(index, entry.stage)}/{MODEL}")
            model = _load(folder, model_file, model)
        measurement = ctx.measure(model, label)
    if entry.save_as:
        ctx.models[entry.save_as] = model
    if ctx.report is not None:
        measurement = measurement.merge(ctx.report.renamed(label))
    details = {**ctx.details, "artifacts": in_run(ctx.artifacts, folder), "save_as": entry.save_as,
               "named_files": in_run({k: v for k, v in ctx.models.items() if isinstance(v, str)}, folder)}
    record = StageRecord(entry.stage, index, seconds, measurement, details, model_file)
    ctx.log.append(record)
    return model


def _restore(record: StageRecord, folder: Path | None, model: nn.Module, ctx: Context, *, load: bool) -> nn.Module:
    if folder is None or record.model_file is None:
        raise TrimkitError(f"stage {record.index} ({record.stage}) was done without a run folder; cannot resume it")
    if load:
        model = _load(folder, record.model_file, model)
    ctx.artifacts.update(from_run(record.details.get("artifacts") or {}, folder))
    ctx.models.update(from_run(record.details.get("named_files") or {}, folder))
    if record.details.get("save_as"):
        ctx.models[record.details["save_as"]] = model
    return model


def _finish(model: nn.Module, ctx: Context, folder: Path | None, export: bool, index: int) -> StageRecord:
    started = time.perf_counter()
    # the last stage's model, measured there (a copy: that stage's record stays as logged)
    measurement = copy.deepcopy(ctx.log.records[-1].measurement).renamed("final")
    details: dict = {"artifacts": in_run(ctx.artifacts, folder)}
    model_file = None
    if folder is not None:
        model_file = _save(model, folder, MODEL)
        measurement.size_bytes["model_file"] = (folder / model_file).stat().st_size
        if export:
            path, size, parity = export_model(model, ctx, folder / ONNX)
            measurement.size_bytes["onnx"] = size
            details.update(onnx=str(Path(path).relative_to(folder)), parity=parity)
    return StageRecord("final", index, time.perf_counter() - started, measurement, details, model_file)


def _save(model: nn.Module, folder: Path | None, relative: str) -> str | None:
    if folder is None:
        return None
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    save(model, path)
    return relative


def _load(folder: Path, relative: str, fallback: nn.Module) -> nn.Module:
    """The saved model; a model from outside the zoo is filled into ``fallback``'s architecture."""
    header = read_header(folder / relative)
    return load(folder / relative, model=None if header and header.get("model") else fallback)


def _check_folder(folder: Path, resolved: str, resume: bool) -> None:
    check_folder_output(folder, flag="run folder")
    recipe_file = folder / RECIPE
    if resume:
        if not recipe_file.exists():
            raise TrimkitError(f"{folder} holds no run to resume (no recipe.yaml); drop --resume to start one")
        if recipe_file.read_text(encoding="utf-8") != resolved:
            raise TrimkitError(f"{folder} was started with another recipe (see its recipe.yaml); resume with the "
                               "same recipe and --set values, or start a new run with another --out")
        return
    if folder.exists() and any(folder.iterdir()):
        raise TrimkitError(f"{folder} already holds a run; pass --resume to continue it, or choose another --out")

