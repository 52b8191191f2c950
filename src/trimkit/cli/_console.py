"""Where commands print: tables on stdout, progress and notes on stderr, ``--json`` as
one object. Light: no torch."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

# Piped output (CI logs, `| tee`) gets wide tables rather than rich's 80-column default.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, highlight=False)


def print_json(record: Any) -> None:
    sys.stdout.write(json.dumps(record, indent=2, default=_jsonable) + "\n")


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    if hasattr(value, "to_dict"):
        return value.to_dict()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")
