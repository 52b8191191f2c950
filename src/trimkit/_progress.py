"""Progress bars on stderr (so ``--json`` output on stdout stays clean), or nothing."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


class NoProgress:
    """Stands in for a rich Progress when progress output is off."""

    console = Console(quiet=True)

    def __enter__(self) -> NoProgress:
        return self

    def __exit__(self, *exc) -> bool:
        return False

    def add_task(self, *args, **kwargs) -> int:
        return 0

    def update(self, *args, **kwargs) -> None:
        pass

    def advance(self, *args, **kwargs) -> None:
        pass

    def remove_task(self, *args) -> None:
        pass


class StatsProgress(Progress):
    """A rich Progress whose tasks always have the ``stats`` field its columns show."""

    def add_task(self, *args, **fields) -> int:
        fields.setdefault("stats", "")
        return super().add_task(*args, **fields)


def progress_bar(enabled: bool) -> Progress | NoProgress:
    """A transient bar with a count, free-form ``stats`` and the time left."""
    if not enabled:
        return NoProgress()
    return StatsProgress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[stats]}"),
        TimeRemainingColumn(), console=Console(stderr=True), transient=True,
    )
