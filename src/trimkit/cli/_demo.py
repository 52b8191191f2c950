"""`trimkit demo`: the main job on the embedded MNIST subset, end to end, as a recipe.

It runs ``examples/recipes/lenet5-mnist5k.yaml``: train LeNet-5; let the threshold
functions choose the criterion and the threshold; prune the Combine way and fine-tune;
export to ONNX (parity checked); quantise to INT8; then measure the three models side
by side on ONNX Runtime: accuracy as the runtime computes it, size and latency.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Annotated

import typer

from trimkit import pipeline
from trimkit.cli._common import console, print_json
from trimkit.cli._options import JsonOption
from trimkit.cli._run import print_run
from trimkit.errors import TrimkitError
from trimkit.report import write_report

RECIPE = Path(__file__).resolve().parents[3] / "examples" / "recipes" / "lenet5-mnist5k.yaml"
TRAIN_STAGE, FINETUNE_STAGE = 0, 2


def demo_command(
    out: Annotated[Path, typer.Option(help="Run folder of the demo (a previous demo run there is replaced).")]
    = Path("demo-out"),
    epochs: Annotated[int, typer.Option(help="Training epochs for LeNet-5.")] = 30,
    finetune_epochs: Annotated[int, typer.Option(help="Fine-tuning epochs after pruning.")] = 5,
    seed: Annotated[int, typer.Option(help="Seed for the run.")] = 0,
    as_json: JsonOption = False,
) -> None:
    """Train LeNet-5 on embedded MNIST; explore, prune, fine-tune, export, quantise; measure."""
    if not RECIPE.is_file():
        raise TrimkitError(f"the demo recipe {RECIPE} is not here (trimkit was installed without its examples); "
                           "run it from a clone: trimkit run examples/recipes/lenet5-mnist5k.yaml")
    started = time.perf_counter()
    recipe = pipeline.load_recipe(RECIPE, [f"stages.{TRAIN_STAGE}.epochs={epochs}",
                                           f"stages.{FINETUNE_STAGE}.epochs={finetune_epochs}", f"seed={seed}"])
    _clear_previous_demo(out)
    say = (lambda text: None) if as_json else console.print
    say(f"recipe {RECIPE.name}; run folder {out}/")
    result = pipeline.run_recipe(recipe, out, progress=True, say=say)
    report = write_report(out)
    if as_json:
        print_json({"run_dir": str(out), "report": str(report), "records": [record.to_dict() for record in result.log],
                    "seconds": time.perf_counter() - started})
        return
    print_run(result.log)
    console.print(f"demo finished in {time.perf_counter() - started:.1f} s; run folder {out}/ "
                  "(recipe.yaml, log.jsonl, model.pt, model.onnx, stages/)")
    console.print(f"report: {report}  (open it in a browser; it needs no network)")


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
