"""The `trimkit` command: one sub-command per job, each a thin layer over the API.

``trimkit``, ``trimkit --help`` and ``trimkit --version`` answer from this module alone,
without importing torch (under a second); everything else builds the application in
:mod:`trimkit.cli._app`, whose errors are one line each (see there).
"""

from __future__ import annotations

import sys
from typing import Any, NamedTuple


class Command(NamedTuple):
    module: str
    function: str
    summary: str


#: every command, in the order ``--help`` lists them: the module under ``trimkit.cli`` and the
#: function that implement it (imported on first use), and the first line of its help (a
#: test checks these against the commands' own docstrings)
COMMANDS: dict[str, Command] = {
    "run": Command("_run", "run_command",
                      "Run a recipe: each stage's record is appended to RUN_DIR/log.jsonl as it ends."),
    "report": Command("_report", "report_command",
                      "Write an HTML report of a run: summary, stages, charts and comparisons, read from "
                      "recipe.yaml and log.jsonl (no model is loaded, nothing is measured again)."),
    "models": Command("_info", "models_command",
                      "List the zoo: input shape, parameters, MACs and default data of every model."),
    "profile": Command("_info", "profile_command",
                      "Parameters, MACs and FLOPs per layer and in total, for one input image."),
    "train": Command("_train", "train_command",
                      "Train a zoo model; checkpoint every epoch to OUT.ckpt (--resume continues)."),
    "eval": Command("_train", "eval_command",
                      "Top-1, top-5 and loss of a model on a data split (an .onnx file is scored by ONNX "
                      "Runtime)."),
    "track": Command("_track", "track_command",
                      "Track the target of a sequence from its first box; print or write one box per frame."),
    "demo": Command("_demo", "demo_command",
                      "Train a VGG on embedded MNIST; prune, fine-tune, export; deploy the fastest that keeps "
                      "top-1, measured."),
    "export": Command("_export", "export_command",
                      "Export to ONNX; ONNX Runtime must match PyTorch within 1e-4 relative, or nothing is "
                      "written."),
    "bench": Command("_bench", "bench_command",
                      "Latency percentiles, throughput and (--per-layer) the slowest layers on a runtime "
                      "backend."),
    "deploy": Command("_deploy", "deploy_command",
                      "Choose the fastest runtime, precision and threads that keep the metric, by measurement; write "
                      "the deployment."),
    "bench-worker": Command("_bench_worker", "bench_worker_command",
                      "Measure the ONNX files producers queue for this device, one at a time, until Ctrl-C "
                      "or SIGTERM."),
    "compare": Command("_bench", "compare_command",
                      "Measure models side by side, interleaved in one run: params, MACs, bytes, latency as"
                      " ratios to the first."),
    "quantize": Command("_quant", "quantize_command",
                      "Quantise by a per-layer policy (QAT) or to INT8 for CPUs (PTQ); write the files and "
                      "measure them."),
    "size": Command("_quant", "size_command",
                      "Sizes under a policy, without training: analytic bits per layer, packed file bytes, "
                      "convolution memory."),
    "prune": Command("_prune", "prune_command",
                      "Remove filters and neurons for real, verify every cut, and save the smaller model."),
    "explore": Command("_explore", "explore_command",
                      "Threshold functions of several criteria (Algorithm 2), their AUC, the best one and "
                      "the threshold at the end of its plateau."),
    "sensitivity": Command("_explore", "sensitivity_command",
                      "Prune each channel group alone at each sparsity and measure the metric and MACs."),
    "search": Command("_search", "search_command",
                      "Search a recipe's parameters with Optuna: each trial runs the recipe; latency, "
                      "metric and size are measured."),
}
SUMMARY = "trimkit: compress trained PyTorch CNNs for edge inference, and measure what it bought."


def top_level_help() -> str:
    width = max(map(len, COMMANDS))
    lines = ["Usage: trimkit [--help] [--version] COMMAND [ARGS]...", "", SUMMARY, "", "Commands:"]
    lines += [f"  {name.ljust(width)}  {command.summary}" for name, command in COMMANDS.items()]
    lines += ["", "trimkit COMMAND --help shows a command's options."]
    return "\n".join(lines)


def main() -> None:
    arguments = sys.argv[1:]
    if arguments in ([], ["--help"], ["-h"]):
        print(top_level_help())
        return
    if arguments == ["--version"]:
        from trimkit import __version__

        print(f"trimkit {__version__}")
        return
    from trimkit.cli._app import app

    app()


def __getattr__(name: str) -> Any:
    if name == "app":  # the typer application, built on first use (it imports torch)
        from trimkit.cli._app import app

        return app
    raise AttributeError(f"module 'trimkit.cli' has no attribute {name!r}")
