"""The `trimkit` application: the command group and its sub-commands.

A :class:`~trimkit.errors.TrimkitError` raised anywhere below, a usage mistake (unknown
option, missing value) and an operating-system error on a file each become one line on
stderr and exit code 2, with no traceback. Anything else is a trimkit bug: one line and
exit code 1, with the traceback when ``TRIMKIT_DEBUG=1``.
"""

from __future__ import annotations

import os
import sys

import typer
from typer._click import exceptions as click_exceptions
from typer.core import TyperGroup

from trimkit.cli._bench import bench_command, compare_command
from trimkit.cli._bench_worker import bench_worker_command
from trimkit.cli._common import fail
from trimkit.cli._demo import demo_command
from trimkit.cli._explore import explore_command, sensitivity_command
from trimkit.cli._export import export_command
from trimkit.cli._info import models_command, profile_command
from trimkit.cli._prune import prune_command
from trimkit.cli._quant import quantize_command, size_command
from trimkit.cli._report import report_command
from trimkit.cli._run import run_command
from trimkit.cli._search import search_command
from trimkit.cli._track import track_command
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
        except OSError as error:
            where = f": {error.filename}" if getattr(error, "filename", None) else ""
            fail(f"{error.strerror or error}{where}; check the path, its permissions and the free disk space")
        except (typer.Exit, click_exceptions.ClickException, typer.Abort):
            raise
        except Exception as error:  # a bug: say so in one line, traceback on request
            if os.environ.get("TRIMKIT_DEBUG"):
                raise
            typer.echo(f"error: internal error ({type(error).__name__}: {str(error).splitlines()[0][:200] if str(error) else ''}); "
                       "this is a trimkit bug: rerun with TRIMKIT_DEBUG=1 and report the traceback", err=True)
            raise typer.Exit(1) from None

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):  # type: ignore[override]
        """Usage mistakes as one line (click prints a box of several)."""
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click_exceptions.NoArgsIsHelpError:
            code = 0  # the help is printed already
        except click_exceptions.UsageError as error:
            command = error.ctx.command_path if error.ctx else "trimkit"
            typer.echo(f"error: {error.format_message()} (see {command} --help)", err=True)
            code = 2
        except click_exceptions.ClickException as error:
            typer.echo(f"error: {error.format_message()}", err=True)
            code = error.exit_code
        except typer.Abort:
            code = 130
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)


app = typer.Typer(
    cls=_Group,
    help="trimkit: compress trained PyTorch CNNs for edge inference, and measure what it bought.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("run")(run_command)
app.command("report")(report_command)
app.command("models")(models_command)
app.command("profile")(profile_command)
app.command("train")(train_command)
app.command("eval")(eval_command)
app.command("track")(track_command)
app.command("demo")(demo_command)
app.command("export")(export_command)
app.command("bench")(bench_command)
app.command("bench-worker")(bench_worker_command)
app.command("compare")(compare_command)
app.command("quantize")(quantize_command)
app.command("size")(size_command)
app.command("prune")(prune_command)
app.command("explore")(explore_command)
app.command("sensitivity")(sensitivity_command)
app.command("search")(search_command)
