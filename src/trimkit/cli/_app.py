"""The `trimkit` application: the command group and its sub-commands.

Commands are loaded on first use: ``trimkit report`` imports the report and nothing of
torch, ``trimkit train`` imports training and not Optuna. Each command names its module in
:data:`trimkit.cli.COMMANDS`; the group imports that module only when the command is
invoked or its help is shown.

A :class:`~trimkit.errors.TrimkitError` raised anywhere below, a usage mistake (unknown
option, missing value) and an operating-system error on a file each become one line on
stderr and exit code 2, with no traceback. Anything else is a trimkit bug: one line and
exit code 1, with the traceback when ``TRIMKIT_DEBUG=1``.
"""

from __future__ import annotations

import importlib
import os
import sys

import typer
from typer._click import exceptions as click_exceptions
from typer.core import TyperGroup
from typer.models import CommandInfo

from trimkit.cli import COMMANDS
from trimkit.errors import TrimkitError


def fail(message: str, code: int = 2) -> None:
    """Print one error line and exit with ``code`` (2: bad input; 3: training that failed)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


class _Group(TyperGroup):
    def list_commands(self, ctx) -> list[str]:  # type: ignore[override]
        return list(COMMANDS)

    def get_command(self, ctx, cmd_name: str):  # type: ignore[override]
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            entry = COMMANDS[cmd_name]
            callback = getattr(importlib.import_module(f"trimkit.cli.{entry.module}"), entry.function)
            self.commands[cmd_name] = typer.main.get_command_from_info(
                CommandInfo(name=cmd_name, callback=callback), pretty_exceptions_short=True,
                rich_markup_mode=self.rich_markup_mode)
        return self.commands.get(cmd_name)

    def invoke(self, ctx):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except TrimkitError as error:
            fail(str(error), getattr(error, "exit_code", 2))
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
            first = str(error).splitlines()[0][:200] if str(error) else ""
            typer.echo(f"error: internal error ({type(error).__name__}: {first}); "
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


@app.callback()
def _root() -> None:
    """trimkit: compress trained PyTorch CNNs for edge inference, and measure what it bought."""
