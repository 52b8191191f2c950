"""The run log: one JSON record a line, appended and synced as each stage ends, so a
killed run keeps every stage it finished and a reader never sees half a record."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from trimkit.errors import TrimkitError
from trimkit.record import Measurement


@dataclass
class StageRecord:
    """What one stage did: its name and place in the recipe, how long it took, the
    model's :class:`~trimkit.record.Measurement` after it, stage-specific ``details``
    (history, frozen groups, chosen ratios, file paths), and the model file it left."""

    stage: str
    index: int
    seconds: float
    measurement: Measurement
    details: dict[str, Any] = field(default_factory=dict)
    model_file: str | None = None
    status: str = "done"

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "index": self.index, "status": self.status, "seconds": self.seconds,
                "measurement": self.measurement.to_dict(), "details": self.details, "model_file": self.model_file}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StageRecord:
        return cls(stage=data["stage"], index=int(data["index"]), seconds=float(data.get("seconds", 0.0)),
                   measurement=Measurement.from_dict(data.get("measurement") or {}),
                   details=dict(data.get("details") or {}), model_file=data.get("model_file"),
                   status=data.get("status", "done"))


class RunLog:
    """Records in memory, and in ``path`` (a ``.jsonl`` file) when there is one."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.records: list[StageRecord] = []
        if path is not None and path.exists():
            self.records = list(read_log(path))

    def append(self, record: StageRecord) -> None:
        self.records.append(record)
        if self.path is None:
            return
        line = json.dumps(record.to_dict(), default=_jsonable) + "\n"
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())

    def done(self, index: int) -> StageRecord | None:
        return next((r for r in self.records if r.index == index and r.status == "done"), None)

    def __iter__(self) -> Iterator[StageRecord]:
        return iter(self.records)


def read_log(path: Path) -> Iterator[StageRecord]:
    """The records of a log file; a torn last line (a run killed while writing) is skipped."""
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            yield StageRecord.from_dict(json.loads(line))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            if number == len(lines):
                return
            raise TrimkitError(f"{path}:{number} is not a run-log record ({error}); the log is damaged") from None


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (tuple, set)):
        return list(value)
    if hasattr(value, "to_dict"):
        return value.to_dict()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")
