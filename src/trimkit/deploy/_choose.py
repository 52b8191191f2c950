"""``choose``: the fastest runtime, precision and thread count that keep the metric,
found by measurement, and written as a deployment folder.

1. Plan the candidates (:func:`plan_candidates`: each installed runtime x each precision
   this CPU runs natively x each INT8 recipe x each thread count).
2. Make their files once each: fp32 ONNX, the INT8 files, OpenVINO IRs.
3. Score each distinct (runtime, file, precision) on the evaluation split *in* that
   runtime and precision, and ONNX Runtime fp32 as the reference of every drop.
4. Time every candidate interleaved in one loop (``measure.measure_runs``), with ONNX
   Runtime fp32 at the most threads (the reference of every speed-up) and, if given,
   the user's starting point beside them; or on another device through its benchmark
   worker (``trimkit bench-worker``).
5. Decide (:func:`decide`), and write the folder (:func:`write_deployment`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trimkit import export, measure, models
from trimkit._cpu import cpu_flags, cpu_model
from trimkit._progress import progress_bar
from trimkit.deploy._artifacts import build_files, needed_files
from trimkit.deploy._candidates import BF16_FLAGS, Candidate, CandidatePlan, plan_candidates
from trimkit.deploy._decide import Decision, Outcome, decide, drop_of
from trimkit.deploy._folder import artifact_name, check_deployment_output, write_deployment
from trimkit.deploy._manifest import Scored, manifest_of
from trimkit.deploy._options import DeployOptions
from trimkit.deploy._remote import time_remotely
from trimkit.deploy._timing import Timed, time_locally
from trimkit.errors import TrimkitError
from trimkit.measure import ModelOrPath
from trimkit.record import LatencyRecord
from trimkit.tasks import Task, as_split_task

SCORE_BATCH = 100


@dataclass(frozen=True)
class Baseline:
    """The user's starting point (an unpruned fp32 model on ONNX Runtime), timed in the
    same loop as the candidates and scored on the same images: ``speedup`` is its p50
    over the chosen deployment's, ``change`` the chosen one's metric minus its."""

    label: str
    latency: LatencyRecord
    metric: float
    speedup: float
    change: float

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "runtime": "onnxruntime", "precision": "fp32", "threads": self.latency.threads,
                "p50_ms": self.latency.latency_ms, "p90_ms": self.latency.p90_ms,
                "throughput": self.latency.throughput, "metric": self.metric, "speedup": self.speedup,
                "change": self.change}


@dataclass(frozen=True)
class Deployment:
    """What :func:`choose` found: the decision (every candidate's row), the manifest, the
    folder written (None without ``out``), notes on what was left out, and the baseline."""

    decision: Decision
    manifest: dict[str, Any]
    folder: Path | None
    notes: tuple[str, ...]
    baseline: Baseline | None = None


def choose(model: ModelOrPath, data: Any = None, options: DeployOptions | None = None, *, task: Task | None = None,
           out: str | os.PathLike | None = None, baseline: ModelOrPath | None = None, baseline_label: str = "baseline",
           keep_files: str | os.PathLike | None = None, progress: bool = False,
           say: Callable[[str], None] | None = None, **settings: Any) -> Deployment:
    """Choose how to deploy ``model`` (a module, a trimkit ``.pt`` or an fp32 ``.onnx``
    file) by measurement, scored on ``data`` (a data set) or ``task`` (its evaluation
    split; calibration from its training split). ``options``: a :class:`DeployOptions`,
    or its fields as keywords. With ``out``, the deployment folder is written there.
    With ``baseline`` (a model), the user's starting point is timed beside the candidates
    on ONNX Runtime fp32 and the speed-up over it reported. ``keep_files`` names a folder
    to keep every candidate's file in (``fp32.onnx``, ``int8-*.onnx``, ``*.xml``). Raises :class:`TrimkitError`
    when no candidate keeps the metric within ``max_drop`` (naming the closest)."""
    options = DeployOptions.of(options, **settings)
    say = say or (lambda text: None)
    task, split = _scoring_task(data, task, options.samples)
    if out is not None:
        check_deployment_output(Path(out))
    plan = _plan(options, task)
    say(f"{plural(len(plan.candidates), 'candidate')}: {_summary(plan.candidates)}")
    for note in plan.notes:
        say(f"note: {note}")
    work_parent = Path(out).resolve().parent if out is not None else None
    if work_parent is not None:
        work_parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".trimkit-deploy-", dir=work_parent) as folder:
        work = Path(folder)
        shapes = [tuple(x.shape[1:]) for x in task.example_inputs(1)]
        fp32 = _fp32_file(model, work, shapes)
        base_file = _fp32_file(baseline, work / "baseline", shapes) if baseline is not None else None
        with progress_bar(progress) as bar:
            files = _build(fp32, plan, task, work, options, bar, say)
            scores = _score_all(plan, files, task, split, base_file, bar, say)
            timed = _time_all(plan, files, fp32, base_file, options, bar, say)
        reference = scores[REFERENCE_KEY]
        if isinstance(reference, str):
            raise TrimkitError(f"ONNX Runtime could not score the fp32 model, the reference of every drop: {reference}")
        outcomes = [_outcome(candidate, files, scores, timed) for candidate in plan.candidates]
        higher = task.primary_metric not in task.minimised_metrics
        decision = decide(outcomes, metric=task.primary_metric, reference=reference[0], max_drop=options.max_drop,
                          higher_is_better=higher, reference_latency=timed.reference)
        chosen_file = files[decision.chosen.candidate.artifact]
        compared = _baseline(baseline_label, timed.baseline, scores.get(BASELINE_KEY), decision, higher)
        manifest = manifest_of(
            decision, artifact=artifact_name(chosen_file), source=_source(model), io=_inputs_outputs(fp32),
            scored=Scored(task.primary_metric, split, task.size(split), task.data_name(split)), env=timed.env,
            runtime_version=_runtime_version(decision.chosen.candidate.runtime),
            runtime_settings=_runtime_settings(decision.chosen.candidate), notes=list(plan.notes),
            baseline=None if compared is None else compared.to_dict(), device=options.device_name)
        written = write_deployment(out, chosen_file, manifest) if out is not None else None
        if keep_files is not None:
            _keep(files, Path(keep_files))
    return Deployment(decision, manifest, written, plan.notes, compared)


REFERENCE_KEY = ("onnxruntime", "fp32.onnx", "fp32")
BASELINE_KEY = ("onnxruntime", "baseline", "fp32")


def _keep(files: dict[str, Path | str], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for path in files.values():
        if isinstance(path, Path):
            shutil.copyfile(path, folder / path.name)
            if path.suffix == ".xml":
                shutil.copyfile(path.with_suffix(".bin"), folder / path.with_suffix(".bin").name)


def _scoring_task(data: Any, task: Task | None, samples: int | None) -> tuple[Task, str]:
    if data is not None and task is not None:
        raise TrimkitError("give deploy data (a data set) or a task, not both")
    if data is None and task is None:
        raise TrimkitError("deploy scores every candidate on validation data: give data (a data set or a task); "
                           "on the command line, --data")
    if task is None:
        task, _ = as_split_task(data)
    if "runtime_scoring" not in task.capabilities:
        raise TrimkitError(f"deploy scores candidates batch by batch in their runtime, which a {task.name} task "
                           "does not offer")
    try:
        split = task.eval_split()
    except ValueError:
        raise TrimkitError(f"the data has no validation split to score candidates on (it has "
                           f"{', '.join(task.splits)}); give data with a val or test split") from None
    if samples is not None and samples < task.size(split):
        task = task.subset(split, samples, seed=0)
    return task, split


def _plan(options: DeployOptions, task: Task) -> CandidatePlan:
    precisions, flags, notes = options.precisions, cpu_flags(), ()
    if options.queue is not None:
        if options.threads is None:
            raise TrimkitError("timing on another device needs its thread counts: --threads (e.g. 1,4), as this "
                               "machine's CPUs say nothing of the device's")
        # the device's CPU decides: its runtime reports the precision it really computed in
        flags = flags | set(BF16_FLAGS)
        notes = ("timed on the device; precisions are planned as if it had native bf16 (its runtime reports what it "
                 "computed in) and scored on this machine",)
    plan = plan_candidates(flags=frozenset(flags), cpu=cpu_model(), cpus=measure.available_cpus(),
                           backends=options.backends, precisions=precisions, recipes=options.int8_recipes,
                           threads=options.threads)
    plan = CandidatePlan(plan.candidates, (*plan.notes, *notes))
    if "train" in task.splits or not any(c.precision == "int8" for c in plan.candidates):
        return plan
    if precisions is not None and "int8" in precisions:
        raise TrimkitError("INT8 candidates are calibrated on the data's training split, which this data lacks; "
                           "leave int8 out of --precisions or give data with a train split")
    kept = tuple(c for c in plan.candidates if c.precision != "int8")
    return CandidatePlan(kept, (*plan.notes, "INT8 left out: the data has no training split to calibrate on"))


def _summary(candidates: tuple[Candidate, ...]) -> str:
    kinds = dict.fromkeys(f"{c.runtime} {(c.recipe and 'int8 ' + c.recipe) or c.precision}" for c in candidates)
    threads = sorted({c.threads for c in candidates})
    return f"{', '.join(kinds)}; threads {', '.join(map(str, threads))}"


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _fp32_file(model: ModelOrPath, folder: Path, shapes: list[tuple[int, ...]]) -> Path:
    """``model`` as an fp32 ONNX file in ``folder``: exported (parity checked) from a
    module or ``.pt`` file, copied from an ``.onnx`` file."""
    if isinstance(model, (str, os.PathLike)) and Path(model).suffix == ".xml":
        raise TrimkitError(f"{model} is an OpenVINO IR; deploy starts from a PyTorch model or an fp32 .onnx file")
    folder.mkdir(parents=True, exist_ok=True)
    target = measure.resolve_target(model, folder / "export", need_onnx=True, input_shapes=shapes)
    path = folder / "fp32.onnx"
    shutil.copyfile(target.onnx_path, path)
    return path


def _build(fp32: Path, plan: CandidatePlan, task: Task, work: Path, options: DeployOptions, bar,
           say: Callable[[str], None]) -> dict[str, Path | str]:
    names = [name for name in needed_files(plan.candidates) if name != "fp32.onnx"]
    if not names:
        return {"fp32.onnx": fp32}
    say(f"making {plural(len(names), 'file')}: {', '.join(names)}")
    step = bar.add_task("deploy: making files", total=len(names), stats="")
    files = build_files(fp32, names, task, work, calibration_samples=options.calibration_samples,
                        on_file=lambda name: bar.update(step, advance=1, stats=name))
    bar.remove_task(step)
    return files


def _score_all(plan: CandidatePlan, files: dict[str, Path | str], task: Task, split: str, base_file: Path | None,
               bar, say: Callable[[str], None]) -> dict[tuple[str, str, str], tuple[float, str] | str]:
    """The metric (and the precision the runtime reports) per (runtime, file,
    precision), or why it could not be scored."""
    keys = list(dict.fromkeys([REFERENCE_KEY, *(c.scoring_key for c in plan.candidates)]))
    jobs = [(key, files.get(key[1], f"{key[1]} was not made")) for key in keys]
    if base_file is not None:
        jobs.append((BASELINE_KEY, base_file))
    threads = max(c.threads for c in plan.candidates)
    say(f"scoring {plural(len(jobs), 'file')} in their runtime and precision on {task.size(split):,} {split} "
        "samples")
    step = bar.add_task("deploy: scoring", total=len(jobs), stats="")
    scores: dict[tuple[str, str, str], tuple[float, str] | str] = {}
    for key, file in jobs:
        scores[key] = file if isinstance(file, str) else _score(file, key, task, split, threads)
        bar.update(step, advance=1, stats=f"{key[0]} {key[1]} {key[2]}")
    bar.remove_task(step)
    return scores


def _score(path: Path, key: tuple[str, str, str], task: Task, split: str, threads: int) -> tuple[float, str] | str:
    runtime, _, precision = key
    try:
        scored = measure.runtime_evaluation(path, task, split, backend=runtime, precision=precision, threads=threads,
                                            batch_size=min(SCORE_BATCH, task.size(split)))
    except Exception as error:  # a runtime that cannot compile or run the file: that candidate fails, named
        return f"{runtime} cannot run {path.name} in {precision}: {measure.runtime_error_line(error)}"
    return scored.value, scored.precision


def _time_all(plan: CandidatePlan, files: dict[str, Path | str], fp32: Path, base_file: Path | None,
              options: DeployOptions, bar, say: Callable[[str], None]) -> Timed:
    if options.queue is not None:
        return time_remotely(plan, files, fp32, base_file, options, say)
    return time_locally(plan, files, fp32, base_file, options, bar, say)


def _outcome(candidate: Candidate, files: dict[str, Path | str], scores: dict, timed: Timed) -> Outcome:
    score = scores.get(candidate.scoring_key)
    latency = timed.by_candidate.get(candidate)
    if isinstance(score, str):
        return Outcome(candidate, None, None, score)
    if isinstance(latency, str) or latency is None:
        return Outcome(candidate, None, score[0], latency or "not timed")
    return Outcome(candidate, latency, score[0])


def _baseline(label: str, latency: LatencyRecord | None, score: tuple[float, str] | str | None, decision: Decision,
              higher: bool) -> Baseline | None:
    if latency is None or score is None:
        return None
    if isinstance(score, str):
        raise TrimkitError(f"the baseline could not be scored on ONNX Runtime: {score}")
    chosen = decision.chosen.outcome
    return Baseline(label, latency, score[0], latency.latency_ms / chosen.latency.latency_ms,
                    -drop_of(chosen.metric, score[0], higher))


def _inputs_outputs(fp32: Path) -> dict[str, Any]:
    """Inputs (name, shape with ``None`` for the batch, dtype) and outputs of the model,
    and the normalisation trimkit recorded at export, for the manifest."""
    proto = export.read_onnx(fp32)
    initializers = {tensor.name for tensor in proto.graph.initializer}

    def shape(value) -> list[int | None]:
        return [dim.dim_value if dim.HasField("dim_value") else None for dim in value.type.tensor_type.shape.dim]

    inputs = [{"name": value.name, "shape": [None, *shape(value)[1:]],
               "dtype": str(measure.onnx_dtype(value.type.tensor_type.elem_type))}
              for value in proto.graph.input if value.name not in initializers]
    outputs = [{"name": value.name, "shape": [None, *shape(value)[1:]]} for value in proto.graph.output]
    metadata = export.read_metadata(proto)
    return {"inputs": inputs, "outputs": outputs, "normalization": metadata.get("normalization"),
            "model": {key: metadata[key] for key in ("model", "kwargs", "factory") if key in metadata}}


def _source(model: ModelOrPath) -> str:
    if isinstance(model, (str, os.PathLike)):
        return str(model)
    origin = models.origin(model)
    return origin.label if origin is not None else type(model).__name__


def _runtime_version(runtime: str) -> str:
    return measure.get_backend(runtime).versions().get(runtime, "")


def _runtime_settings(candidate: Candidate) -> dict[str, Any]:
    if candidate.runtime == "openvino":
        return {**measure.openvino_compile_config(candidate.threads, candidate.runtime_precision), "device": "CPU"}
    return {"intra_op_num_threads": candidate.threads, **measure.ONNXRUNTIME_SESSION_SETTINGS}
