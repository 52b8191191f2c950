"""`trimkit demo`: the main job on the embedded MNIST subset, end to end, as a recipe.

It runs ``examples/recipes/vgg-a-mnist5k.yaml``: train Bonsai's model A (at a quarter
of its filters, so it trains in seconds); prune half of every convolution's filters and
fine-tune; export to ONNX (parity checked); then deploy: every runtime, precision and
INT8 recipe timed interleaved at batch 32 beside the unpruned model on ONNX Runtime fp32
(the user's starting point) and scored on the validation images, the fastest within the
allowed drop written as a deployment folder. It ends with where the speed came from:
pruning and deployment, each a ratio of latencies measured in that one run, and their
product against the starting point. A convolution-heavy model is chosen because there
compression pays on a CPU: LeNet-5 runs in microseconds, all overhead.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from trimkit import pipeline, tasks
from trimkit.deploy import computes_in, speed
from trimkit.cli._console import console, print_json
from trimkit.cli._options import JsonOption
from trimkit.cli._run import print_run
from trimkit.errors import TrimkitError
from trimkit.record import metric_title
from trimkit.report import write_report
from trimkit.runs import RunLog

RECIPE = Path(__file__).resolve().parents[3] / "examples" / "recipes" / "vgg-a-mnist5k.yaml"
TRAIN_STAGE, FINETUNE_STAGE = 0, 2


def demo_command(
    out: Annotated[Path, typer.Option(help="Run folder of the demo (a previous demo run there is replaced).")]
    = Path("demo-out"),
    epochs: Annotated[int | None, typer.Option(help="Training epochs (default: the recipe's).")] = None,
    finetune_epochs: Annotated[int | None, typer.Option(help="Fine-tuning epochs after pruning (default: the "
                                                                  "recipe's).")] = None,
    seed: Annotated[int, typer.Option(help="Seed for the run.")] = 0,
    as_json: JsonOption = False,
) -> None:
    """Train a VGG on embedded MNIST; prune, fine-tune, export; deploy the fastest that keeps top-1, measured."""
    if not RECIPE.is_file():
        raise TrimkitError(f"the demo recipe {RECIPE} is not here (trimkit was installed without its examples); "
                           "run it from a clone: trimkit run examples/recipes/vgg-a-mnist5k.yaml")
    started = time.perf_counter()
    overrides = [f"seed={seed}"]
    if epochs is not None:
        overrides.append(f"stages.{TRAIN_STAGE}.epochs={epochs}")
    if finetune_epochs is not None:
        overrides.append(f"stages.{FINETUNE_STAGE}.epochs={finetune_epochs}")
    recipe = pipeline.load_recipe(RECIPE, overrides)
    _clear_previous_demo(out)
    say = (lambda text: None) if as_json else console.print
    say(f"recipe {RECIPE.name}; run folder {out}/")
    result = pipeline.run_recipe(recipe, out, progress=True, say=say)
    report = write_report(out)
    if as_json:
        print_json({"run_dir": str(out), "report": str(report), "records": [record.to_dict() for record in result.log],
                    "seconds": time.perf_counter() - started})
        return
    print_run(result.log, tasks.kind(recipe.task.kind).task_class.primary_metric)
    for line in where_the_speed_came_from(result.log):
        console.print(line)
    console.print(f"demo finished in {time.perf_counter() - started:.1f} s; run folder {out}/ "
                  "(recipe.yaml, log.jsonl, model.pt, model.onnx, stages/)")
    console.print(f"report: {report}  (open it in a browser; it needs no network)")


def where_the_speed_came_from(log: RunLog) -> list[str]:
    """What pruning bought, what the deployment bought on top, and both against the
    starting point, from the deploy stage's record: three latencies of one interleaved
    run (the unpruned and the pruned model on ONNX Runtime fp32, and the chosen
    deployment), so the total is exactly the product of the two steps."""
    record = next((r for r in reversed(log.records) if r.details.get("deployment")), None)
    if record is None:
        return []
    found = record.details["deployment"]
    base, reference, chosen = found.get("baseline"), found.get("onnxruntime_fp32"), found["chosen"]
    if base is None or reference is None:
        return []
    title = metric_title(found["metric"]["name"]).removesuffix(" %")
    unit = " %" if metric_title(found["metric"]["name"]).endswith(" %") else ""
    macs = _macs_ratio(log, record)
    where = f"ONNX Runtime fp32, batch {found['batch_size']}, {_threads(reference['threads'])}"
    pruning, deployment = base["p50_ms"] / reference["p50_ms"], reference["p50_ms"] / chosen["p50_ms"]
    computes = computes_in(chosen["precision"], chosen["precision_reported"])
    return [
        f"[bold]pruning[/]{macs}: {where}: {base['p50_ms']:.3f} -> {reference['p50_ms']:.3f} ms, {speed(pruning)}",
        f"[bold]deployment[/] chosen by measurement: {escape(chosen['label'])} (computes in {computes}): "
        f"{reference['p50_ms']:.3f} -> {chosen['p50_ms']:.3f} ms, {speed(deployment)} than the pruned model on "
        "ONNX Runtime fp32",
        f"[bold]in all[/]: {speed(base['speedup'])} than the starting point (the unpruned fp32 model on ONNX "
        f"Runtime; {pruning:.2f} x {deployment:.2f}, all timed in one interleaved run); {title} "
        f"{base['metric']:.2f}{unit} -> {chosen['metric']:.2f}{unit} ({base['change']:+.2f} points)",
    ]


def _macs_ratio(log: RunLog, deployed) -> str:
    start = next((r for r in log.records if r.stage == "train"), None)
    before, after = (start.measurement.macs if start else None), deployed.measurement.macs
    if not before or not after or before == after:
        return ""
    return f" ({before / after:.1f}x fewer MACs)"


def _threads(count: int) -> str:
    return f"{count} thread{'' if count == 1 else 's'}"


def _clear_previous_demo(out: Path) -> None:
    """Replace an earlier demo run, and nothing else: a folder that is not a run is refused."""
    if not out.exists():
        return
    if out.is_dir() and (out / "recipe.yaml").exists() and (out / "log.jsonl").exists():
        shutil.rmtree(out)
        return
    if out.is_dir() and not any(out.iterdir()):
        return
    raise TrimkitError(f"{out} exists and is not an earlier demo run; choose another --out")
