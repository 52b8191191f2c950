"""The baseline: the model compression starts from, by one definition that the run
result, the report's summary and a search's ``drop`` all read."""

from __future__ import annotations

from collections.abc import Sequence

from trimkit.runs._log import StageRecord

INPUT = "input"
#: stages that make the model a run then compresses: a run that begins by training compares against the trained model
TRAINING = ("train",)


def baseline_position(records: Sequence[StageRecord]) -> int | None:
    """The position in ``records`` of the baseline: the ``input`` record, advanced past the
    training stages the run begins with. A log without an input record (damaged, or written
    by hand) falls back to its first record with a metric, else its first record; an empty
    log has none."""
    if not records:
        return None
    position = next((i for i, record in enumerate(records) if record.stage == INPUT), None)
    if position is None:
        return next((i for i, record in enumerate(records) if record.measurement.metrics), 0)
    while position + 1 < len(records) and records[position + 1].stage in TRAINING:
        position += 1
    return position


def baseline(records: Sequence[StageRecord]) -> StageRecord:
    """The baseline record (see :func:`baseline_position`); an empty log is an error."""
    position = baseline_position(records)
    if position is None:
        raise ValueError("the log holds no records, so it has no baseline")
    return records[position]
