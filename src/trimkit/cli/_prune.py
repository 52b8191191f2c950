"""`trimkit prune`: structured pruning, optionally evaluated and fine-tuned on data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

import trimkit
from trimkit import prune, train
from trimkit.cli._common import console, print_json, prune_data, resolve_model
from trimkit.cli._prune_unstructured import run_unstructured
from trimkit.cli._options import (DataDirOption, JsonOption, NumClassesOption, TrustOption, WeightsOption,
                                  parse_layers, stage_options)
from trimkit._outputs import check_output
from trimkit.errors import TrimkitError
from trimkit.pipeline.stages.prune import PruneOptions
from trimkit.pipeline.stages.train import TrainOptions

VERIFY_BATCH = 4


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
    model: Annotated[str, typer.Argument(help="Zoo name or trimkit model file.")],
    out: Annotated[Path, typer.Option(help="Where to write the pruned model (.pt).")],
    weights: WeightsOption = None,
    ratio: Annotated[Optional[str], typer.Option(help="Fraction to remove: 0.5, or PATTERN=R,...")] = None,
    threshold: Annotated[Optional[float], typer.Option(help="Combine threshold on normalised scores.")] = None,
    criterion: Annotated[str, typer.Option(help=f"One of {', '.join(prune.criteria.names())}.")] = "l1",
    mode: Annotated[str, typer.Option(help="static or progressive.")] = "progressive",
    layers: Annotated[str, typer.Option(help="conv, dense, both, or layer names and globs (a,b.*).")] = "conv",
    scope: Annotated[str, typer.Option(help="layer or global.")] = "layer",
    normalize: Annotated[Optional[str], typer.Option(help="rank, percentile, max, mean or none.")] = None,
    round_to: Annotated[Optional[int], typer.Option(help="Keep channel counts at multiples of K.")] = None,
    data: Annotated[Optional[str], typer.Option("--data", help="Evaluate (and fine-tune) on this data set.")] = None,
    data_dir: DataDirOption = None,
    finetune_epochs: Annotated[int, typer.Option(help="Fine-tuning epochs after pruning (needs --data).")] = 0,
    lr: Annotated[float, typer.Option(help="Fine-tuning learning rate (SGD, cosine).")] = 0.01,
    num_classes: NumClassesOption = 10,
    trust_checkpoint: TrustOption = False,
    resume: Annotated[bool, typer.Option(help="Resume fine-tuning from OUT.ckpt.")] = False,
    unstructured: Annotated[Optional[str], typer.Option(
        help="Zero single weights instead: random, layer (class-uniform) or global (class-blind).")] = None,
    sparsity: Annotated[Optional[float], typer.Option(help="With --unstructured: fraction of weights to zero.")] = None,
    include: Annotated[Optional[str], typer.Option(help="With --unstructured: only these layers (names, globs).")] = None,
    skip: Annotated[Optional[str], typer.Option(help="With --unstructured: leave these layers (names, globs).")] = None,
    remove_dead: Annotated[bool, typer.Option(
        help="With --unstructured: remove the neurons the zeros left dead (exact; verified).")] = True,
    as_json: JsonOption = False,
) -> None:
    """Remove filters and neurons for real, verify every cut, and save the smaller model."""
    check_output(out)
    if unstructured is not None:
        if ratio is not None or threshold is not None:
            raise TrimkitError("--unstructured takes --sparsity, not --ratio or --threshold; drop one of them")
        if finetune_epochs and data is None:
            raise TrimkitError("--finetune-epochs needs --data to train on")
        run_unstructured(model=model, out=out, weights=weights, method=unstructured, sparsity=sparsity,
                         include=include, skip=skip, remove_dead=remove_dead, data=data, data_dir=data_dir,
                         finetune_epochs=finetune_epochs, lr=lr, num_classes=num_classes, trusted=trust_checkpoint,
                         resume=resume, as_json=as_json)
        return
    if sparsity is not None or include is not None or skip is not None:
        raise TrimkitError("--sparsity, --include and --skip go with --unstructured METHOD; for structured "
                           "pruning give --ratio or --threshold")
    if ratio is None and threshold is None:
        raise TrimkitError("say how much to prune: --ratio R or --threshold T")
    if finetune_epochs and data is None:
        raise TrimkitError("--finetune-epochs needs --data to train on")
    options = stage_options(PruneOptions, criterion=criterion, threshold=threshold,
                            ratio=parse_ratio(ratio) if ratio is not None else None, scope=scope,
                            layers=parse_layers(layers), mode=mode, normalize=normalize, round_to=round_to)
    finetune = stage_options(TrainOptions, {"epochs": "--finetune-epochs"}, epochs=finetune_epochs, lr=lr,
                             weight_decay=5e-4)
    loaded = resolve_model(model, weights, num_classes=num_classes, trusted=trust_checkpoint)
    train_set, val_set, example = prune_data(loaded, data, data_dir, VERIFY_BATCH)
    calibration = None
    if train_set is not None:
        images, labels = next(train_set.subset(options.calibration_samples).batches(options.calibration_samples))
        calibration = (images, labels)
    record: dict = {}
    if val_set is not None:
        record["top1_before"] = train.evaluate(loaded.model, val_set)["top1"]
    result = prune.structured(loaded.model, example, **options.structured_kwargs(), calibration=calibration)
    if val_set is not None:
        record["top1_pruned"] = train.evaluate(result.model, val_set)["top1"]
        if finetune_epochs:
            train.fit(result.model, train_set, val_set, **finetune.fit_kwargs(),
                      checkpoint=out.with_suffix(out.suffix + ".ckpt"), resume=resume, progress=True)
        record["top1_after"] = train.evaluate(result.model, val_set)["top1"]
    settings = {**options.model_dump(mode="json", include={"criterion", "ratio", "threshold", "mode", "layers",
                                                           "scope", "round_to", "normalize"}),
                "finetune_epochs": finetune_epochs, "data": data}
    trimkit.save(result.model, out, metadata={"pruning": settings, **record})
    record = {**result.to_dict(), **record, "out": str(out)}
    if as_json:
        print_json(record)
    else:
        _print_tables(loaded.label, result, record)


def _print_tables(label: str, result: prune.PruneResult, record: dict) -> None:
    table = Table(title=f"{label}: before and after pruning")
    for column in ("", "before", "after", "after / before"):
        table.add_column(column, justify="right" if column else "left")
    for name, before, after in (("params", result.params_before, result.params_after),
                                ("MACs", result.macs_before, result.macs_after),
                                ("FLOPs", result.flops_before, result.flops_after)):
        table.add_row(name, f"{before:,}", f"{after:,}", f"{after / max(before, 1):.3f}")
    if "top1_before" in record:
        table.add_row("top-1 % (pruned, not fine-tuned)", f"{record['top1_before']:.2f}",
                      f"{record['top1_pruned']:.2f}", "")
        table.add_row("top-1 % (after fine-tuning)", f"{record['top1_before']:.2f}", f"{record['top1_after']:.2f}",
                      f"{record['top1_after'] - record['top1_before']:+.2f} pts")
    console.print(table)
    layers = Table(title="channels per layer")
    for column in ("layer", "kept", "removed"):
        layers.add_column(column, justify="left" if column == "layer" else "right")
    for name, change in result.layers.items():
        layers.add_row(name, str(change.kept), str(change.removed))
    console.print(layers)
    for frozen in result.frozen:
        console.print(f"[yellow]frozen[/] {frozen.group}: {frozen.reason}")
    console.print(f"{result.groups_pruned} groups cut and verified in {result.seconds:.1f} s; saved {record['out']}")
