"""`trimkit demo`: the main job on the embedded MNIST subset, end to end, as a recipe.

It runs ``examples/recipes/vgg-a-mnist5k.yaml``: train Bonsai's model A (at a quarter
of its filters, so it trains in seconds); let the threshold functions choose the
criterion and the threshold; prune the Combine way and fine-tune; export to ONNX (parity
checked); quantise to INT8; then measure the three models side by side on ONNX Runtime:
accuracy as the runtime computes it, size and latency. A convolution-heavy model is
chosen because there compression pays on a CPU: LeNet-5 runs in microseconds, all
overhead, and neither pruning nor INT8 makes it faster.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Annotated

import typer

from trimkit import pipeline, tasks
from trimkit.cli._console import console, print_json
from trimkit.cli._options import JsonOption
from trimkit.cli._run import print_run
from trimkit.errors import TrimkitError
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
    """Train a VGG on embedded MNIST; explore, prune, fine-tune, export, quantise; measure."""
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
    """One line per runtime: what pruning bought (fewer MACs) and what INT8 bought on top,
    at the largest batch the demo timed, from the comparisons in the log."""
    lines = []
    for record in log:
        comparisons = record.details.get("comparisons") or []
        if not comparisons:
            continue
        rows = comparisons[-1]["models"]
        if len(rows) != 3:
            continue
        base, pruned, int8 = (row["latency"] for row in rows)
        macs = rows[0]["macs"] / max(rows[1]["macs"] or 1, 1)
        lines.append(
            f"[bold]{base['backend']}, batch {base['batch_size']}:[/] pruning cut the MACs {macs:.1f}x "
            f"and made the model {_speed(base['p50_ms'] / pruned['p50_ms'])}; INT8 made the pruned model "
            f"{_speed(pruned['p50_ms'] / int8['p50_ms'])} ({_speed(base['p50_ms'] / int8['p50_ms'])} in all)")
    return lines


def _speed(ratio: float) -> str:
    return f"{ratio:.2f}x faster" if ratio >= 1 else f"{1 / ratio:.2f}x slower"


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
