"""A trial's latency: timed on its exported ONNX (``estimate: measure``), or predicted by
the latency table of the baseline's model (``estimate: table``), in which case the trials
the search reports are timed for real when it ends.

The table is built once per search and kept as ``RUN_DIR/latency_table.json`` (built from
this machine's table cache, under a lock so that the workers here build it once); every
worker and every resume reads that file, so all the estimates of a study share one
calibration. A model the table cannot stand for is timed instead, and says why: a
quantised model (other kernels), a layer the table does not hold or whose shape changed
other than in its channels, more channels than the baseline, a grouped or reused layer
(which the table leaves in its constant) that pruning changed. Unstructured sparsity leaves
every shape as it was and the runtimes run dense kernels, so it is predicted as dense.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trimkit._atomic import write_text_atomic
from trimkit.errors import TrimkitError
from trimkit.record import LatencyRecord
from trimkit.search._spec import LatencySpec
from trimkit.search._trial import Figures, locked

if TYPE_CHECKING:
    import torch
    from optuna.trial import FrozenTrial
    from torch import nn

    from trimkit.measure import LatencyTable, UnitShape

TABLE_FILE = "latency_table.json"
BASELINE_ONNX = "baseline.onnx"
_MEASURED = "latency_measured."  # + a trial's number: a study attribute, the reported trial timed for real


def measured_key(number: int) -> str:
    """The study attribute that holds a reported trial's real latency (its trial's own
    attributes cannot change once it has ended)."""
    return f"{_MEASURED}{number}"


def measure_latency(onnx_path: Path, latency: LatencySpec) -> LatencyRecord:
    """The exported file timed here, or by a benchmark worker on the device its queue serves."""
    from trimkit import measure

    if latency.queue is not None:
        from trimkit.measure.remote import measure_remote

        return measure_remote(onnx_path, latency, queue_url=latency.queue, queue_name=latency.queue_name or "",
                              batch_size=latency.batch_size, timeout_s=latency.timeout_s)
    timed = measure.latency(str(onnx_path), latency, batch_size=latency.batch_size)
    return measure.latency_record(timed)


def example_inputs(model: nn.Module, model_file: Path, batch: int = 1) -> torch.Tensor:
    """Random inputs of the shape ``model`` records (a trimkit model file's origin)."""
    import torch

    from trimkit import models

    origin = models.origin(model)
    shape = origin.input_shape() if origin is not None else None
    if shape is None:
        raise TrimkitError(f"{model_file}: its input shape is not recorded, so the baseline cannot be timed; give "
                           "model.input_shape in the recipe")
    return torch.randn(batch, *shape)


def export_baseline(model_file: Path, path: Path) -> Path:
    """The baseline model (a trimkit model file) as ONNX, for the latency figures a
    hybrid objective compares against; made once per run folder."""
    if path.exists():
        return path
    from trimkit import export
    from trimkit._model_file import load

    model = load(model_file)
    export.onnx(model.eval(), example_inputs(model, model_file, batch=2), path)
    return path


class Unpredictable(Exception):
    """The table cannot stand for this model; the reason says why."""


@dataclasses.dataclass
class TableEstimate:
    """The latency table of the baseline's model and what it predicts for a pruned one."""

    table: LatencyTable
    units: dict[str, UnitShape]
    model_key: str
    uncovered: dict[str, tuple[int, ...]]  # weight shapes of the conv and dense layers no unit covers
    inputs: torch.Tensor

    @classmethod
    def build(cls, model_file: Path, latency: LatencySpec, run_dir: Path,
              say: Callable[[str], None] = lambda text: None) -> TableEstimate:
        from trimkit import measure, prune
        from trimkit._model_file import load

        model = load(model_file).eval()
        inputs = example_inputs(model, model_file)
        runtime = {"backend": latency.backend, "batch_size": latency.batch_size, "threads": latency.threads,
                   "precision": latency.precision, "queue": latency.queue, "device_name": latency.queue_name,
                   "timeout_s": latency.timeout_s}
        kept = run_dir / TABLE_FILE
        with locked(run_dir / f"{TABLE_FILE}.lock"):
            if kept.exists():
                try:
                    table = prune.latency_table(model, inputs, table=str(kept), **runtime)
                except TrimkitError as error:
                    raise TrimkitError(f"{error}; estimate: table needs every worker of a run folder on one "
                                       "machine (or use estimate: measure)") from None
            else:
                say(f"latency table of {model_file} on {latency.backend}, batch {latency.batch_size} (built once, "
                    f"kept in {kept})")
                table = prune.latency_table(model, inputs, **runtime)
                write_text_atomic(kept, table.to_json())
        units = measure.layer_units(model, inputs)
        return cls(table, units, measure.model_key(model, units), _uncovered(model, units), inputs)

    def predict_ms(self, model: nn.Module) -> float:
        """The table's latency of ``model``, a pruned version of the baseline's, read from
        its layers' channel counts; :class:`Unpredictable` where the table cannot say."""
        from trimkit import measure

        if getattr(model, "trimkit_quant_plan", None) is not None:
            raise Unpredictable("a quantised model runs other kernels than the table timed")
        try:
            found = measure.layer_units(model, self.inputs)
        except RuntimeError as error:
            raise Unpredictable(f"it does not run on the baseline's inputs ({str(error).splitlines()[0]})") from None
        counts = {}
        for name, unit in self.units.items():
            pruned = found.pop(name, None)
            if pruned is None:
                raise Unpredictable(f"layer {name} is no longer a plain conv or dense layer")
            if dataclasses.replace(pruned, in_channels=unit.in_channels, out_channels=unit.out_channels) != unit:
                raise Unpredictable(f"layer {name} changed more than its channels")
            if pruned.in_channels > unit.in_channels or pruned.out_channels > unit.out_channels:
                raise Unpredictable(f"layer {name} has more channels than the baseline's")
            counts[name] = (pruned.in_channels, pruned.out_channels)
        if found:
            raise Unpredictable(f"layer {next(iter(found))} is not in the baseline's table")
        uncovered = _uncovered(model, self.units)
        changed = [name for name, shape in uncovered.items() if self.uncovered.get(name) != shape]
        if changed or set(self.uncovered) - set(uncovered):
            raise Unpredictable(f"layer {(changed or sorted(self.uncovered))[0]} is left out of the table (grouped "
                                "or run twice) and pruning changed it")
        return self.table.predict_ms(self.units, counts, self.model_key)

    def unpruned_ms(self) -> float:
        """The table's latency of the baseline's model itself."""
        counts = {name: (unit.in_channels, unit.out_channels) for name, unit in self.units.items()}
        return self.table.predict_ms(self.units, counts, self.model_key)

    def describe(self) -> dict[str, Any]:
        return {"settings": self.table.settings.describe(), "layers": len(self.units),
                "points": sum(len(points) for points in self.table.points.values())}


def _uncovered(model: nn.Module, units: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    from torch import nn

    kinds = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d, nn.Linear)
    return {name: tuple(module.weight.shape) for name, module in model.named_modules()
            if isinstance(module, kinds) and name not in units}


class Latencies:
    """One worker's latency figures for the baseline and each trial, as ``latency`` says:
    timed, or estimated by the table of the baseline's model (built with the baseline's
    figures, before any trial is estimated)."""

    def __init__(self, latency: LatencySpec | None, run_dir: Path, say: Callable[[str], None] = lambda text: None):
        self.latency = latency
        self.run_dir = run_dir
        self.say = say
        self.estimate: TableEstimate | None = None

    @property
    def from_table(self) -> bool:
        return self.latency is not None and self.latency.estimate == "table"

    def of_baseline(self, figures: Figures, model_file: Path | None, known: Mapping[str, Any] | None = None
                    ) -> Figures:
        """The baseline's latency; with the table, its estimate (the scale trials are on)
        and, for reference, its real one (taken from ``known``, the study's baseline, where
        a worker already timed it)."""
        if self.latency is None or model_file is None:
            return figures
        if not self.from_table:
            return self.measured(figures, export_baseline(model_file, self.run_dir / BASELINE_ONNX))
        self.estimate = TableEstimate.build(model_file, self.latency, self.run_dir, self.say)
        record = (known or {}).get("latency") if (known or {}).get("latency_source") == "table" else None
        if record is None:
            figures = self.measured(figures, export_baseline(model_file, self.run_dir / BASELINE_ONNX))
        else:
            figures.latency, figures.latency_measured_ms = record, record["latency_ms"]
        return _estimated(figures, self.estimate.unpruned_ms())

    def of_trial(self, figures: Figures, onnx: Path | None, model_file: Path | None) -> Figures:
        """A trial's latency: the table's estimate of its model, or its export timed (where
        the table cannot predict it, saying why)."""
        if self.latency is None or onnx is None:
            return figures
        if self.from_table:
            from trimkit._model_file import load

            try:
                if self.estimate is None or model_file is None:
                    raise Unpredictable("the baseline's model file is missing")
                return _estimated(figures, self.estimate.predict_ms(load(model_file)))
            except Unpredictable as reason:
                figures.latency_note = f"timed: the table cannot predict it ({reason})"
        return self.measured(figures, onnx)

    def measured(self, figures: Figures, onnx: Path) -> Figures:
        assert self.latency is not None
        record = measure_latency(onnx, self.latency)
        figures.latency_ms = figures.latency_measured_ms = record.latency_ms
        figures.latency = dataclasses.asdict(record)
        figures.latency_source = "measured"
        return figures


def _estimated(figures: Figures, estimate_ms: float) -> Figures:
    figures.latency_ms = figures.latency_estimate_ms = estimate_ms
    figures.latency_source = "table"
    return figures


def measure_reported(study: Any, reported: list[FrozenTrial], latency: LatencySpec, run_dir: Path,
                     say: Callable[[str], None] = lambda text: None) -> list[int]:
    """Time for real each reported trial whose latency is the table's estimate, once: the
    record goes into the study (``measured_key``), so a resumed search or another worker
    does not time it again. A trial whose export is on another machine is left to the
    worker that ran it. Returns the numbers of the trials timed here."""
    timed = []
    with locked(run_dir / "reported.lock"):
        done = study.user_attrs
        todo = [trial for trial in reported if trial.user_attrs.get("latency_source") == "table"
                and measured_key(trial.number) not in done and Path(trial.user_attrs.get("onnx") or "").is_file()]
        if todo:
            say(f"timing the {len(todo)} reported trials whose latency is the table's estimate")
        for trial in todo:
            record = measure_latency(Path(trial.user_attrs["onnx"]), latency)
            study.set_user_attr(measured_key(trial.number), dataclasses.asdict(record))
            timed.append(trial.number)
    return timed


def estimate_error(estimate_ms: float | None, measured_ms: float | None) -> float | None:
    """How far the estimate is from the real latency: (estimate - measured) / measured."""
    if estimate_ms is None or not measured_ms:
        return None
    return estimate_ms / measured_ms - 1.0
