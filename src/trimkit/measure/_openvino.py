"""OpenVINO's CPU plugin, an optional backend (``pip install trimkit[openvino]``).

The plugin picks its own inference precision: on a CPU with native bf16 (AVX512-BF16
or AMX) it computes an f32 model in bf16 unless told otherwise. ``auto`` leaves that
choice to it; the precision it reports after compiling, and the precision each
convolution and dense layer really runs in, are what the record states.
"""

from __future__ import annotations

import importlib
import statistics
from collections import Counter, defaultdict
from typing import TYPE_CHECKING

import numpy as np

from trimkit.errors import TrimkitError
from trimkit.measure._backend import Backend, NodeTime, Session, random_inputs
from trimkit.record import precision_name

if TYPE_CHECKING:
    from trimkit.measure._target import ModelTarget

COMPUTE_LAYER_TYPES = frozenset({"Convolution", "GroupConvolution", "Deconvolution", "FullyConnected", "MatMul"})


def _openvino():
    try:
        return importlib.import_module("openvino")
    except ImportError:
        raise TrimkitError("the openvino backend needs OpenVINO: pip install 'trimkit[openvino]'") from None


def compile_config(threads: int, precision: str) -> dict[str, object]:
    """How trimkit compiles for OpenVINO's CPU plugin (timed, scored, or deployed by
    ``trimkit.deploy.load``): ``threads`` threads, one stream, the latency hint, and the
    inference precision asked (``auto`` leaves it to the plugin)."""
    config: dict[str, object] = {"INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY"}
    if precision != "auto":
        config["INFERENCE_PRECISION_HINT"] = {"fp32": "f32"}.get(precision, precision)
    return config


class OpenVinoSession(Session):
    def __init__(self, ov, target: ModelTarget, batch_size: int, threads: int, precision: str, profile: bool) -> None:
        core = ov.Core()
        model = core.read_model(str(target.model_file))
        model.reshape({port.get_any_name(): [batch_size, *shape]
                       for port, shape in zip(model.inputs, target.input_shapes, strict=True)})
        config = {**compile_config(threads, precision), "PERF_COUNT": profile}
        self._status_executed = ov.ProfilingInfo.Status.EXECUTED
        self._compiled = core.compile_model(model, "CPU", config)
        self._request = self._compiled.create_infer_request()
        for index, array in enumerate(random_inputs(target, batch_size)):
            self._request.set_input_tensor(index, ov.Tensor(array))
        self.precision = precision_name(self._compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name())
        self.compute_precisions = _compute_precisions(self._compiled)

    def run(self) -> None:
        self._request.infer()

    def infer(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        results = self._request.infer(arrays)
        return [np.array(results[port]) for port in self._compiled.outputs]

    def node_times(self, iterations: int) -> list[NodeTime]:
        """Median time per node; the counters OpenVINO keeps are those of the last inference."""
        per_run_s: dict[str, list[float]] = defaultdict(list)
        ops: dict[str, str] = {}
        for _ in range(iterations):
            self._request.infer()
            for node in self._request.get_profiling_info():
                if node.status == self._status_executed:
                    per_run_s[node.node_name].append(node.real_time.total_seconds())
                    ops[node.node_name] = node.node_type
        return [NodeTime(name, ops[name], statistics.median(seconds) * 1e3) for name, seconds in per_run_s.items()]


def _compute_precisions(compiled) -> dict[str, int]:
    """How many convolution and dense layers of the compiled graph run in each precision."""
    counts: Counter[str] = Counter()
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        if "layerType" in info and info["layerType"].astype(str) in COMPUTE_LAYER_TYPES:
            counts[precision_name(info["runtimePrecision"].astype(str))] += 1
    return dict(counts)


class OpenVinoBackend(Backend):
    """OpenVINO, CPU plugin, one stream, latency hint, the thread count given."""

    name = "openvino"
    model_format = "onnx"

    def open(self, target: ModelTarget, *, batch_size: int, threads: int, precision: str,
             profile: bool = False) -> Session:
        return OpenVinoSession(_openvino(), target, batch_size, threads, precision, profile)

    def versions(self) -> dict[str, str]:
        return {"openvino": _openvino().get_version()}
