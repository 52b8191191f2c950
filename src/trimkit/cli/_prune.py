"""`trimkit prune`: the prune stage (or prune_unstructured), then the finetune stage where
asked, on the command's model and data; the smaller model saved."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

import trimkit
from trimkit import pipeline, prune
from trimkit._outputs import check_output
from trimkit.cli._common import example_batch, resolve_model
from trimkit.cli._console import console, err_console, print_json
from trimkit.cli._options import (DataDirOption, InputShapeOption, JsonOption, ModelArgument, NumClassesOption,
                                  TrustOption, WeightsOption, parse_input_shape, parse_layers, stage_options)
from trimkit.cli._prune_unstructured import print_unstructured, unstructured_options
from trimkit.errors import TrimkitError
from trimkit.pipeline.stages.prune import PruneOptions
from trimkit.pipeline.stages.train import TrainOptions
from trimkit.tasks import metric_title

VERIFY_BATCH = 4
EXAMPLE_BATCH = 8
#: keys of a stage record's details that are the run's bookkeeping, not the stage's result
BOOKKEEPING = ("artifacts", "save_as", "named_files", "settings", "chosen")


def parse_ratio(text: str) -> float | dict[str, float]:
    """``0.5`` or ``layer1.*=0.3,layer2.*=0.5``."""
    try:
        if "=" not in text:
            return float(text)
        pairs = [item.split("=", 1) for item in text.split(",") if item.strip()]
        return {pattern.strip(): float(value) for pattern, value in pairs}
    except ValueError:
        raise TrimkitError(f"cannot read --ratio {text!r}; give a number such as 0.5, or PATTERN=R,PATTERN=R") from None


def prune_command(
    model: ModelArgument,
    out: Annotated[Path, typer.Option(help="Where to write the pruned model (.pt).")],
    weights: WeightsOption = None,
    ratio: Annotated[str | None, typer.Option(help="Fraction to remove: 0.5, or PATTERN=R,...")] = None,
    threshold: Annotated[float | None, typer.Option(help="Combine threshold on normalised scores.")] = None,
    criterion: Annotated[str, typer.Option(help=f"One of {', '.join(prune.criteria.names())}.")] = "l1",
    mode: Annotated[str, typer.Option(help="static or progressive.")] = "progressive",
    layers: Annotated[str, typer.Option(help="conv, dense, both, or layer names and globs (a,b.*).")] = "conv",
    scope: Annotated[str, typer.Option(help="layer or global.")] = "layer",
    normalize: Annotated[str | None, typer.Option(help="rank, percentile, max, mean or none.")] = None,
    round_to: Annotated[str | None, typer.Option(
        help="Keep channel counts at multiples of K, or auto: counts the --backend's kernels run fast (the "
             "default when --backend is given).")] = None,
    latency_ms: Annotated[float | None, typer.Option(
        help="Prune to this latency (ms) on --backend at --batch-size, measured.")] = None,
    speedup: Annotated[float | None, typer.Option(
        help="Prune to this speed-up over the unpruned model on --backend at --batch-size, measured.")] = None,
    macs: Annotated[int | None, typer.Option(help="Prune to at most this many MACs per image.")] = None,
    params: Annotated[int | None, typer.Option(help="Prune to at most this many parameters.")] = None,
    backend: Annotated[str | None, typer.Option(
        help="Runtime of a latency budget or of round_to auto: onnxruntime or openvino.")] = None,
    batch_size: Annotated[int, typer.Option(help="Batch size a latency budget is measured at.")] = 1,
    threads: Annotated[int | None, typer.Option(help="Threads a latency budget is measured with.")] = None,
    latency_table: Annotated[Path | None, typer.Option(
        help="Latency table file to use and extend (default: a cache keyed by machine and runtime).")] = None,
    queue: Annotated[str | None, typer.Option(
        help="Time a latency budget on another device: the PostgreSQL URL of its benchmark queue (see trimkit "
             "bench-worker).")] = None,
    device_name: Annotated[str | None, typer.Option(help="That device's queue name.")] = None,
    data: Annotated[str | None, typer.Option("--data", help="Evaluate (and fine-tune) on this data set.")] = None,
    data_dir: DataDirOption = None,
    finetune_epochs: Annotated[int, typer.Option(help="Fine-tuning epochs after pruning (needs --data).")] = 0,
    lr: Annotated[float, typer.Option(help="Fine-tuning learning rate (SGD, cosine).")] = 0.01,
    num_classes: NumClassesOption = 10,
    input_shape: InputShapeOption = None,
    trust_checkpoint: TrustOption = False,
    resume: Annotated[bool, typer.Option(help="Resume fine-tuning from OUT.ckpt.")] = False,
    unstructured: Annotated[str | None, typer.Option(
        help="Zero single weights instead: random, layer (class-uniform) or global (class-blind).")] = None,
    sparsity: Annotated[float | None, typer.Option(help="With --unstructured: fraction of weights to zero.")] = None,
    include: Annotated[str | None, typer.Option(help="With --unstructured: only these layers (names, globs).")] = None,
    skip: Annotated[str | None, typer.Option(help="With --unstructured: leave these layers (names, globs).")] = None,
    remove_dead: Annotated[bool, typer.Option(
        help="With --unstructured: remove the neurons the zeros left dead (exact; verified).")] = True,
    as_json: JsonOption = False,
) -> None:
    """Remove filters and neurons for real, verify every cut, and save the smaller model."""
    check_output(out)
    if unstructured is not None:
        if ratio is not None or threshold is not None:
            raise TrimkitError("--unstructured takes --sparsity, not --ratio or --threshold; drop one of them")
        stage = ("prune_unstructured", unstructured_options(unstructured, sparsity, include, skip, remove_dead))
    else:
        if sparsity is not None or include is not None or skip is not None:
            raise TrimkitError("--sparsity, --include and --skip go with --unstructured METHOD; for structured "
                               "pruning give --ratio or --threshold")
        target = _target(latency_ms, speedup, macs, params, backend, batch_size, threads, latency_table)
        if queue is not None or device_name is not None:
            if target is None:
                raise TrimkitError("--queue and --device-name time a latency budget on another device; give "
                                   "--latency-ms or --speedup and --backend")
            target.update(queue=queue, device_name=device_name)
        if ratio is None and threshold is None and not (target and target.get("budget")):
            raise TrimkitError("say how much to prune: --ratio R, --threshold T, or a budget (--latency-ms, "
                               "--speedup, --macs, --params)")
        if target:
            target.pop("budget")
        stage = ("prune", stage_options(PruneOptions, criterion=criterion, threshold=threshold,
                                        ratio=parse_ratio(ratio) if ratio is not None else None, scope=scope,
                                        layers=parse_layers(layers), mode=mode, normalize=normalize,
                                        round_to=_round_to(round_to), target=target))
    if finetune_epochs and data is None:
        raise TrimkitError("--finetune-epochs needs --data to train on")
    finetune = stage_options(TrainOptions, {"epochs": "--finetune-epochs"}, epochs=finetune_epochs, lr=lr,
                             weight_decay=5e-4)
    subject = resolve_model(model, weights, num_classes=num_classes, trusted=trust_checkpoint,
                            input_shape=parse_input_shape(input_shape))
    task = pipeline.command_task(subject, data, data_dir, ("train", "val")) if data is not None else None
    examples = (example_batch(subject, EXAMPLE_BATCH if unstructured else VERIFY_BATCH),)
    stages = [stage] + ([("finetune", finetune)] if finetune_epochs else [])
    job = pipeline.run_job(subject.model, task, stages, checkpoint_file=out.with_suffix(out.suffix + ".ckpt"),
                           resume=resume, examples=examples, trusted=trust_checkpoint, say=err_console.print)
    cut = job.records[1]
    scores = _scores(job, task)
    trimkit.save(job.model, out, metadata={"pruning": {**cut.details["settings"], "finetune_epochs": finetune_epochs,
                                                       "data": data}, **scores})
    result = {key: value for key, value in cut.details.items() if key not in BOOKKEEPING}
    if unstructured is not None:
        summary = {"measurement": job.records[-1].measurement.to_dict(), **result, **scores,
                   "nonzero_params_final": prune.nonzero_parameters(job.model), "out": str(out)}
        if as_json:
            print_json(summary)
        else:
            print_unstructured(subject.label, summary, job.model, task)
        return
    record = {**result, **scores, "out": str(out)}
    if as_json:
        print_json(record)
    else:
        _print_tables(subject.label, record, task)


def _round_to(value: str | None) -> int | str | None:
    if value is None or value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise TrimkitError(f"--round-to {value!r} is neither a number of channels nor auto") from None


def _target(latency_ms, speedup, macs, params, backend, batch_size, threads, table) -> dict[str, Any] | None:
    """The prune stage's target from the budget options, or None where none is given."""
    budgets = {"latency_ms": latency_ms, "speedup": speedup, "macs": macs, "params": params}
    given = {name: value for name, value in budgets.items() if value is not None}
    if len(given) > 1:
        raise TrimkitError(f"give one budget, not {' and '.join('--' + n.replace('_', '-') for n in given)}")
    if not given and backend is None:
        return None
    return {**given, "backend": backend or "onnxruntime", "batch_size": batch_size, "threads": threads,
            "table": str(table) if table is not None else None, "budget": bool(given)}


def _scores(job: pipeline.JobResult, task: Any) -> dict[str, float]:
    """The task's primary metric before pruning, after it, and after fine-tuning (where
    the job had data), as ``top1_before``, ``top1_pruned``, ``top1_after``."""
    if task is None:
        return {}
    primary = task.primary_metric
    before, cut, last = job.records[0], job.records[1], job.records[-1]
    return {f"{primary}_before": before.measurement.metric(primary).value,
            f"{primary}_pruned": cut.measurement.metric(primary).value,
            f"{primary}_after": last.measurement.metric(primary).value}


def _print_tables(label: str, record: dict, task: Any) -> None:
    table = Table(title=f"{label}: before and after pruning")
    for column in ("", "before", "after", "after / before"):
        table.add_column(column, justify="right" if column else "left")
    for name, key in (("params", "params"), ("MACs", "macs"), ("FLOPs", "flops")):
        before, after = record[f"{key}_before"], record[f"{key}_after"]
        table.add_row(name, f"{before:,}", f"{after:,}", f"{after / max(before, 1):.3f}")
    if task is not None:
        primary = task.primary_metric
        title = metric_title(primary)
        before, pruned, after = (record[f"{primary}_{when}"] for when in ("before", "pruned", "after"))
        table.add_row(f"{title} (pruned, not fine-tuned)", f"{before:.2f}", f"{pruned:.2f}", "")
        table.add_row(f"{title} (after fine-tuning)", f"{before:.2f}", f"{after:.2f}", f"{after - before:+.2f} pts")
    console.print(table)
    layers = Table(title="channels per layer")
    for column in ("layer", "kept", "removed"):
        layers.add_column(column, justify="left" if column == "layer" else "right")
    for name, change in record["layers"].items():
        layers.add_row(name, str(change["kept"]), str(change["removed"]))
    console.print(layers)
    for frozen in record["frozen"]:
        console.print(f"[yellow]frozen[/] {frozen['group']}: {frozen['reason']}")
    console.print(f"{record['groups_pruned']} groups cut and verified in {record['seconds']:.1f} s; saved "
                  f"{record['out']}")
