"""Progress bars: a task added without stats still renders (the columns show them)."""

from __future__ import annotations

from trimkit._progress import progress_bar


def test_a_task_without_stats_renders():
    with progress_bar(True) as bar:
        task = bar.add_task("work", total=2)
        bar.advance(task)
        bar.refresh()
    assert bar.tasks[0].fields == {"stats": ""} and bar.tasks[0].completed == 1
