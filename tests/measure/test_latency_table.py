"""Latency tables: the layers of a model as timed units, their ONNX, the table's
interpolation and prediction, its cache and its refusal of another machine's table.
Times are faked where they would be measured: tests time nothing."""

from __future__ import annotations

import numpy as np
import onnxruntime
import pytest
import torch

from trimkit import models
from trimkit.errors import TrimkitError
from trimkit.measure import _latency_table as tables
from trimkit.measure import profile
from trimkit.measure._latency_table import LatencyTable, TableSettings, build_table, load_table, table_counts
from trimkit.measure._unit_onnx import unit_onnx
from trimkit.measure._units import UnitShape, layer_units


def fake_ms(unit: UnitShape, in_count: int, out_count: int) -> float:
    return 0.001 * unit.macs(in_count, out_count) / 1000 + 0.01


@pytest.fixture
def fake_timing(monkeypatch):
    """Tables filled from fake_ms instead of a runtime; counts how many points were timed."""
    timed = []

    def measure(table, todo, options, batch_size, progress, timer):
        for unit, (i, o) in todo:
            table.points.setdefault(unit.key, {})[(i, o)] = fake_ms(unit, i, o)
        timed.extend(todo)

    monkeypatch.setattr(tables, "_measure", measure)
    return timed


def test_units_of_a_resnet_are_its_convs_and_classifier_with_their_input_sizes():
    model = models.create("resnet20").eval()
    units = layer_units(model, torch.randn(2, 3, 32, 32))
    assert len(units) == 20
    assert units["conv1"] == UnitShape("conv", (3, 3), (1, 1), (1, 1), (1, 1), False, (32, 32), 3, 16)
    assert units["layer2.0.conv1"].stride == (2, 2) and units["layer2.0.conv1"].spatial == (32, 32)
    assert units["linear"] == UnitShape("dense", in_channels=64, out_channels=10)
    assert len({unit.key for unit in units.values()}) == 7  # shapes timed once each
    layers = {layer.name: layer for layer in profile(model, torch.randn(1, 3, 32, 32)).layers}
    for name, unit in units.items():
        assert unit.macs(unit.in_channels, unit.out_channels) == layers[name].macs, name


def test_a_depthwise_conv_is_a_unit_and_a_grouped_one_is_not():
    model = torch.nn.Sequential(torch.nn.Conv2d(8, 8, 3, groups=8), torch.nn.Conv2d(8, 8, 1, groups=2))
    units = layer_units(model, torch.randn(1, 8, 6, 6))
    assert list(units) == ["0"] and units["0"].depthwise
    assert units["0"].macs(8, 6) == 4 * 4 * 6 * 9 and units["0"].params(8, 6) == 6 * 9 + 6


@pytest.mark.parametrize("unit, counts, expected", [
    (UnitShape("conv", (3, 3), (2, 2), (1, 1), (1, 1), False, (9, 9), 16, 32), (12, 20), (2, 20, 5, 5)),
    (UnitShape("conv", (3, 3), (1, 1), (1, 1), (1, 1), True, (8, 8), 16, 16), (16, 12), (2, 12, 8, 8)),
    (UnitShape("dense", in_channels=64, out_channels=10), (40, 10), (2, 10)),
])
def test_a_unit_onnx_runs_at_the_counts_asked(unit, counts, expected):
    proto = unit_onnx(unit, *counts)
    session = onnxruntime.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    shape = session.get_inputs()[0].shape
    arguments = [2 if not isinstance(s, int) else s for s in shape]
    output = session.run(None, {"input": np.random.randn(*arguments).astype(np.float32)})[0]
    assert output.shape == expected and output.min() >= 0  # the fused ReLU


def test_table_counts_step_with_the_width():
    assert table_counts(16) == [4, 8, 12, 16]
    assert table_counts(40) == [8, 16, 24, 32, 40]
    assert table_counts(100)[:3] == [8, 16, 24] and table_counts(100)[-1] == 100
    assert table_counts(600)[:2] == [32, 64]


def test_table_interpolates_between_counts_and_predicts_the_sum_plus_the_constant(tmp_path, fake_timing):
    model = models.create("lenet5").eval()
    table, units = build_table(model, torch.randn(1, 1, 28, 28), cache=tmp_path, calibrate=lambda t, u: (5.0, 1.0))
    conv, dense = units["features.3"], units["classifier.1"]  # 6 -> 16 channels; 400 -> 120
    assert table.layer_ms(conv, 4, 14) == pytest.approx((fake_ms(conv, 4, 12) + fake_ms(conv, 4, 16)) / 2)
    corners = [fake_ms(conv, i, o) for i in (4, 6) for o in (12, 16)]  # inputs are measured at 4 and 6
    assert table.layer_ms(conv, 5, 14) == pytest.approx(sum(corners) / 4)
    assert table.layer_ms(conv, 1, 2) == pytest.approx(fake_ms(conv, 4, 4))  # clamped to the smallest counts
    full = {name: (u.in_channels, u.out_channels) for name, u in units.items()}
    key = tables.model_key(model, units)
    layers = sum(fake_ms(u, u.in_channels, u.out_channels) for u in units.values())
    assert table.predict_ms(units, full, key) == pytest.approx(5.0 + layers)
    smaller = {**full, "features.3": (6, 8), "classifier.1": (200, 120)}
    saved = (fake_ms(conv, 6, 16) - fake_ms(conv, 6, 8)) + (fake_ms(dense, 400, 120) - fake_ms(dense, 200, 120))
    assert table.predict_ms(units, smaller, key) == pytest.approx(5.0 + layers - saved)
    table.scale[key] = 0.5
    assert table.predict_ms(units, smaller, key) == pytest.approx(5.0 + 0.5 * (layers - saved))


@pytest.mark.parametrize("points, expected", [
    ([(10.0, 8.0)], (2.0, 1.0)),  # one point: what is not a layer is the constant
    ([(10.0, 20.0)], (0.0, 0.5)),  # layers alone cost more than the model: scaled, no constant
    ([(10.0, 20.0), (6.0, 12.0)], (0.0, 0.5)),
    ([(12.0, 20.0), (7.0, 10.0)], (2.0, 0.5)),  # two points fix both, in any order
    ([(7.0, 10.0), (12.0, 20.0)], (2.0, 0.5)),
    ([(12.0, 20.0), (13.0, 10.0)], (0.0, 0.6)),  # a scale below zero is noise: one point
])
def test_calibration_fits_a_constant_and_a_scale(points, expected):
    assert tables.fit_calibration(points) == pytest.approx(expected)


def test_a_table_is_calibrated_by_the_whole_model_timed_once(tmp_path, fake_timing, monkeypatch):
    monkeypatch.setattr(tables, "_whole_model_ms", lambda *args: 0.001)
    model = models.create("lenet5").eval()
    table, units = build_table(model, torch.randn(1, 1, 28, 28), cache=tmp_path)
    layers = sum(fake_ms(u, u.in_channels, u.out_channels) for u in units.values())
    assert table.calibration(tables.model_key(model, units)) == pytest.approx((0.0, 0.001 / layers))


def test_a_cached_table_is_not_measured_again_and_another_machines_is_refused(tmp_path, fake_timing):
    model = models.create("lenet5").eval()
    build_table(model, torch.randn(1, 1, 28, 28), cache=tmp_path, calibrate=lambda t, u: (5.0, 1.0))
    first = len(fake_timing)
    assert first > 0
    build_table(model, torch.randn(1, 1, 28, 28), cache=tmp_path, calibrate=lambda t, u: (5.0, 1.0))
    assert len(fake_timing) == first
    (path,) = tmp_path.glob("*.json")
    table = load_table(path)
    other = LatencyTable(TableSettings(**{**table.settings.__dict__, "machine": "Intel Xeon [amx] x2"}),
                         table.points, table.constant_ms, table.scale)
    foreign = tmp_path / "foreign.json"
    foreign.write_text(other.to_json())
    with pytest.raises(TrimkitError, match=r"^latency table .*foreign.json was measured for onnxruntime .* on Intel "
                                           r"Xeon \[amx\] x2, not for .* \(machine differ\); build a table here$"):
        build_table(model, torch.randn(1, 1, 28, 28), table_path=foreign)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(TrimkitError, match="is not a trimkit latency table"):
        load_table(broken)
