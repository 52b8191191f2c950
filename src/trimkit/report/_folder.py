"""The run folder as the report reads it: :class:`trimkit.runs.RunFolder` with each log
record also as a :class:`Ref` tree, so every figure on the page can say where it came
from. Nothing here loads a model or measures anything."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from trimkit import runs
from trimkit.report._source import Ref


@dataclass
class ReportRun(runs.RunFolder):
    """``refs[i]`` is the log's i-th record as a :class:`Ref` tree."""

    refs: list[Ref] = field(default_factory=list)

    def ref(self, position: int) -> Ref:
        return self.refs[position]


def read_run(run_dir: str | Path) -> ReportRun:
    """The run in ``run_dir``; a folder without ``log.jsonl`` is refused."""
    folder = runs.read_run(run_dir)
    refs = [Ref(record.to_dict(), (index,)) for index, record in enumerate(folder.records)]
    return ReportRun(**vars(folder), refs=refs)
