"""The `trimkit` command: one sub-command per job, each a thin layer over the API.

A :class:`~trimkit.errors.TrimkitError` raised anywhere below becomes one line on
stderr and exit code 2, with no traceback.
"""

from __future__ import annotations

import typer
from typer.core import TyperGroup

from trimkit.cli._bench import bench_command, compare_command
from trimkit.cli._common import fail
from trimkit.cli._demo import demo_command
from trimkit.cli._explore import explore_command, sensitivity_command
from trimkit.cli._export import export_command
from trimkit.cli._info import models_command, profile_command
from trimkit.cli._prune import prune_command
from trimkit.cli._quant import quantize_command, size_command
from trimkit.cli._run import run_command
from trimkit.cli._train import eval_command, train_command
from trimkit.errors import TrimkitError


class _Group(TyperGroup):
    def invoke(self, ctx):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except TrimkitError as error:
            fail(str(error))
        except KeyboardInterrupt:
            typer.echo("interrupted; what finished is kept (a run continues with --resume)", err=True)
            raise typer.Exit(130) from None


app = typer.Typer(
    cls=_Group,
    help="trimkit: compress trained PyTorch CNNs for edge inference, and measure what it bought.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("run")(run_command)
app.command("models")(models_command)
app.command("profile")(profile_command)
app.command("train")(train_command)
app.command("eval")(eval_command)
app.command("demo")(demo_command)
app.command("export")(export_command)
app.command("bench")(bench_command)
app.command("compare")(compare_command)
app.command("quantize")(quantize_command)
app.command("size")(size_command)
app.command("prune")(prune_command)
app.command("explore")(explore_command)
app.command("sensitivity")(sensitivity_command)


def main() -> None:
    app()
