"""Latency lookup tables: each layer shape timed alone on the target, at the channel
counts pruning may leave (HALP's latency tables, NetAdapt's empirical layer latency).

A table belongs to one machine and one runtime setting (backend and its version,
precision, batch, threads); it is cached on disk under that key and reused by later runs.
Its prediction for a pruned model is the sum of its layers' entries (bilinear between
measured counts) plus a constant measured once on the whole unpruned model: what is not
a prunable layer (pooling, adds, the runtime's own overhead).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from trimkit._atomic import write_text_atomic
from trimkit._progress import progress_bar
from trimkit.errors import TrimkitError
from trimkit.measure._options import RuntimeOptions
from trimkit.measure._profile import ExampleInputs
from trimkit.measure._registry import get_backend
from trimkit.measure._timer import LocalTimer, Timer
from trimkit.measure._timing import TimingPlan
from trimkit.measure._unit_onnx import unit_onnx
from trimkit.measure._units import UnitShape, layer_units

FORMAT = 1
CHUNK = 12  # sessions open and timed interleaved at once
TABLE_PLAN = TimingPlan(warmup=3, min_time_s=0.05, min_iters=7, max_iters=2_000, round_s=0.01)


def count_step(channels: int) -> int:
    """Channel counts the table measures for a layer of ``channels``: every 4th up to 32
    channels, every 8th up to 128, every 16th up to 512, then every 32nd (and the full
    count), enough to see the vector widths and blocked layouts kernels are written for."""
    for limit, step in ((32, 4), (128, 8), (512, 16)):
        if channels <= limit:
            return step
    return 32


def table_counts(channels: int) -> list[int]:
    step = count_step(channels)
    counts = list(range(step, channels, step))
    return [*counts, channels] if channels not in counts else counts


@dataclass(frozen=True)
class TableSettings:
    """What a table's times hold for: the machine and how the runtime ran."""

    backend: str
    backend_version: str
    precision: str
    batch_size: int
    threads: int
    machine: str  # CPU model, its instruction sets, CPUs available

    @classmethod
    def of(cls, options: RuntimeOptions, batch_size: int, timer: Timer | None = None) -> TableSettings:
        """The settings of tables ``timer`` (by default this machine) measures."""
        machine = (timer or LocalTimer()).machine(options)
        return cls(options.backend, machine.backend_version, options.precision, batch_size, machine.threads,
                   machine.fingerprint)

    @property
    def key(self) -> str:
        text = json.dumps(self.__dict__, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def describe(self) -> str:
        return (f"{self.backend} ({self.backend_version}), {self.precision}, batch {self.batch_size}, "
                f"{self.threads} threads, on {self.machine}")


@dataclass
class LatencyTable:
    """Measured milliseconds per (layer shape, input channels, output channels)."""

    settings: TableSettings
    points: dict[str, dict[tuple[int, int], float]] = field(default_factory=dict)
    constant_ms: dict[str, float] = field(default_factory=dict)  # per model: what is not a layer
    scale: dict[str, float] = field(default_factory=dict)  # per model: its layers' isolated times to in-model
    build_s: float = 0.0

    def layer_ms(self, unit: UnitShape, in_count: int, out_count: int) -> float:
        """The layer's time at these counts: bilinear between the measured counts."""
        measured = self.points.get(unit.key)
        if not measured:
            raise TrimkitError(f"the latency table has no entry for a layer of shape {unit.key}; build it for "
                               "this model first")
        ins = sorted({i for i, _ in measured})
        outs = sorted({o for _, o in measured})
        (i0, i1, wi), (o0, o1, wo) = _bracket(ins, in_count), _bracket(outs, out_count)
        corners = [measured.get(pair) for pair in ((i0, o0), (i0, o1), (i1, o0), (i1, o1))]
        if any(value is None for value in corners):
            raise TrimkitError(f"the latency table misses counts near ({in_count}, {out_count}) for {unit.key}")
        a, b, c, d = corners
        return (1 - wi) * ((1 - wo) * a + wo * b) + wi * ((1 - wo) * c + wo * d)

    def predict_ms(self, units: Mapping[str, UnitShape], counts: Mapping[str, tuple[int, int]],
                   model_key: str) -> float:
        """The whole model's time with layers at ``counts`` (name -> (in, out))."""
        constant, scale = self.calibration(model_key)
        return constant + scale * sum(self.layer_ms(unit, *counts[name]) for name, unit in units.items())

    def calibration(self, model_key: str) -> tuple[float, float]:
        """(constant, scale): the model's time is ``constant + scale * sum(layer times)``."""
        constant = self.constant_ms.get(model_key)
        if constant is None:
            raise TrimkitError("the latency table has no measured constant for this model; build it for the model")
        return constant, self.scale.get(model_key, 1.0)

    def to_json(self) -> str:
        return json.dumps({
            "format": FORMAT, "settings": self.settings.__dict__, "build_s": self.build_s,
            "constant_ms": self.constant_ms, "scale": self.scale,
            "points": {key: [[i, o, ms] for (i, o), ms in sorted(values.items())]
                       for key, values in self.points.items()},
        }, indent=1)

    @classmethod
    def from_json(cls, text: str, source: str = "latency table") -> LatencyTable:
        try:
            data = json.loads(text)
            settings = TableSettings(**data["settings"])
            points = {key: {(int(i), int(o)): float(ms) for i, o, ms in values}
                      for key, values in data["points"].items()}
            return cls(settings, points, {k: float(v) for k, v in data.get("constant_ms", {}).items()},
                       {k: float(v) for k, v in data.get("scale", {}).items()}, float(data.get("build_s", 0.0)))
        except (ValueError, KeyError, TypeError) as error:
            raise TrimkitError(f"{source} is not a trimkit latency table ({error}); build it again") from None


def _bracket(values: list[int], wanted: int) -> tuple[int, int, float]:
    """The measured counts around ``wanted`` and its weight between them (clamped)."""
    if wanted <= values[0]:
        return values[0], values[0], 0.0
    if wanted >= values[-1]:
        return values[-1], values[-1], 0.0
    upper = next(v for v in values if v >= wanted)
    lower = max(v for v in values if v <= wanted)
    if upper == lower:
        return lower, upper, 0.0
    return lower, upper, (wanted - lower) / (upper - lower)


def cache_folder() -> Path:
    root = os.environ.get("TRIMKIT_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME")
                                                           or os.path.expanduser("~/.cache"), "trimkit")
    return Path(root) / "latency"


def load_table(path: str | os.PathLike, settings: TableSettings | None = None) -> LatencyTable:
    """A table from a file; with ``settings``, one that must hold for them."""
    path = Path(path)
    if not path.is_file():
        raise TrimkitError(f"latency table {path} does not exist")
    table = LatencyTable.from_json(path.read_text(), str(path))
    if settings is not None and table.settings != settings:
        differ = [name for name in settings.__dict__ if getattr(settings, name) != getattr(table.settings, name)]
        raise TrimkitError(f"latency table {path} was measured for {table.settings.describe()}, not for "
                           f"{settings.describe()} ({', '.join(differ)} differ); build a table here")
    return table


def model_key(model: nn.Module, units: Mapping[str, UnitShape]) -> str:
    """Names the unpruned model a constant belongs to: its layer shapes, in order."""
    text = "|".join(f"{name}:{unit.key}" for name, unit in units.items()) + f"|{type(model).__name__}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def build_table(model: nn.Module, example_inputs: ExampleInputs, options: RuntimeOptions | None = None, *,
                batch_size: int = 1, counts: Mapping[str, tuple[Iterable[int], Iterable[int]]] | None = None,
                cache: str | os.PathLike | bool | None = True, table_path: str | os.PathLike | None = None,
                progress: bool = False,
                calibrate: Callable[[LatencyTable, dict[str, UnitShape]], tuple[float, float]] | None = None,
                timer: Timer | None = None) -> tuple[LatencyTable, dict[str, UnitShape]]:
    """The latency table of ``model``'s layers on the runtime ``options`` name, and the
    layers it covers. ``counts`` (layer -> (input counts, output counts)) says which
    counts to measure; by default every ``table_counts`` of both. Points already in the
    cache are not measured again; ``cache`` is a folder, True (the default folder,
    ``$TRIMKIT_CACHE`` or ``~/.cache/trimkit``) or False; ``table_path`` names the file
    itself (it must hold for this machine and these settings, and is extended).

    A layer alone costs more than inside the model (each call converts its input to the
    runtime's blocked layout and back: on an AMD EPYC without AMX, OpenVINO at batch 32
    timed ResNet-56's 16-channel layers alone at 2.7 ms, 7x its 64-channel layers of as
    many MACs, and the layers' sum exceeded the whole model by 52 ms), so the table's sum
    is calibrated to the whole model: ``calibrate(table, units)`` returns (constant,
    scale); by default the whole model is timed once (:func:`fit_calibration` of one
    point).

    ``timer`` says where the layers are timed: this machine (the default), or a device's
    benchmark worker (:class:`~trimkit.measure._timer.RemoteTimer`); the table is then
    keyed by that device's fingerprint."""
    import time

    options = RuntimeOptions.of(options)
    timer = timer or LocalTimer()
    if get_backend(options.backend).model_format != "onnx":
        raise TrimkitError(f"latency tables are measured on ONNX runtimes; {options.backend} runs PyTorch modules "
                           "(use onnxruntime or openvino)")
    settings = TableSettings.of(options, batch_size, timer)
    folder = cache_folder() if cache is True else (Path(cache) if cache else None)
    path = folder / f"{settings.key}.json" if folder is not None else None
    if table_path is not None:
        path = Path(table_path)
        if path.exists():
            load_table(path, settings)  # one line if it is for another machine or setting
    table = load_table(path, settings) if path is not None and path.is_file() else LatencyTable(settings)
    units = layer_units(model, example_inputs)
    wanted: dict[str, set[tuple[int, int]]] = {}
    for name, unit in units.items():
        ins, outs = counts[name] if counts is not None and name in counts else (
            table_counts(unit.in_channels), table_counts(unit.out_channels))
        pairs = {(c, c) for c in outs} if unit.depthwise else {(i, o) for i in ins for o in outs}
        wanted.setdefault(unit.key, set()).update(pairs - set(table.points.get(unit.key, {})))
    shapes = {unit.key: unit for unit in units.values()}
    todo = [(shapes[key], pair) for key, pairs in wanted.items() for pair in sorted(pairs)]
    started = time.perf_counter()
    if todo:
        _measure(table, todo, options, batch_size, progress, timer)
    key = model_key(model, units)
    if key not in table.constant_ms:
        if calibrate is not None:
            table.constant_ms[key], table.scale[key] = calibrate(table, units)
        else:
            whole = _whole_model_ms(model, options, batch_size, example_inputs, timer)
            full = sum(table.layer_ms(unit, unit.in_channels, unit.out_channels) for unit in units.values())
            table.constant_ms[key], table.scale[key] = fit_calibration([(whole, full)])
    table.build_s = time.perf_counter() - started
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, table.to_json())
    return table, units


def _measure(table: LatencyTable, todo: list[tuple[UnitShape, tuple[int, int]]], options: RuntimeOptions,
             batch_size: int, progress: bool, timer: Timer) -> None:
    with tempfile.TemporaryDirectory(prefix="trimkit-table-") as workdir, progress_bar(progress) as bar:
        task = bar.add_task("latency table", total=len(todo))
        for start in range(0, len(todo), timer.files_per_call):
            chunk = todo[start:start + timer.files_per_call]
            paths = []
            for index, (unit, (i, o)) in enumerate(chunk):
                path = Path(workdir) / f"{start + index}.onnx"
                path.write_bytes(unit_onnx(unit, i, o).SerializeToString())
                paths.append(path)
            times = timer.time_files(paths, options, batch_size, TABLE_PLAN, group=CHUNK)
            for (unit, pair), measured in zip(chunk, times, strict=True):
                table.points.setdefault(unit.key, {})[pair] = measured.p50_ms
            for path in paths:
                path.unlink()
            bar.advance(task, len(chunk))


def fit_calibration(points: list[tuple[float, float]]) -> tuple[float, float]:
    """(constant, scale) with ``whole = constant + scale * layers`` through (whole, sum of
    layer times) points: two fix both; one fixes the constant at scale 1. A constant
    below zero (the layers alone cost more than the model) is set to zero and the scale
    taken from the largest point; a scale that is not positive (noise between close
    points) falls back to one point."""
    (whole, layers), *others = sorted(points, key=lambda point: -point[1])
    if others:
        other_whole, other_layers = others[0]
        if layers - other_layers > 1e-9:
            scale = (whole - other_whole) / (layers - other_layers)
            constant = whole - scale * layers
            if scale > 0 and constant >= 0:
                return constant, scale
    if whole >= layers:
        return whole - layers, 1.0
    return 0.0, whole / layers


def _whole_model_ms(model: nn.Module, options: RuntimeOptions, batch_size: int, example_inputs: ExampleInputs,
                    timer: Timer) -> float:
    from trimkit.measure._profile import as_input_tuple

    shapes = [tuple(t.shape[1:]) for t in as_input_tuple(example_inputs)]
    timed = options.model_copy(update={"min_time_s": max(options.min_time_s, 0.5)})
    return timer.time_models([model], timed, batch_size, shapes)[0].p50_ms
