"""ONNX Runtime's CPU execution provider, the default backend."""

from __future__ import annotations

import bisect
import json
import statistics
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from trimkit.errors import TrimkitError
from trimkit.measure._backend import Backend, NodeTime, Session, random_inputs

if TYPE_CHECKING:
    from trimkit.measure._target import ModelTarget


def session_options(threads: int):
    """The session options every ONNX Runtime session of trimkit runs with (timed, scored,
    or deployed by ``trimkit.deploy.load``): ``threads`` for each operator, one for the
    graph (sequential), every graph optimisation. ``ORT_ENABLE_ALL`` is the level where
    fp32 convolutions get NCHWc kernels and QDQ convolutions fuse into ``QLinearConv``
    with NHWC layout: ResNet-56's U8S8 file then holds 55 ``QLinearConv``, 27
    ``QLinearAdd`` and 2 transposes, nothing left in float between Q/DQ pairs."""
    import onnxruntime  # imported when a session opens: 0.3 s that most commands never spend

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    return options


#: :func:`session_options` in words, for a deployment's manifest
SESSION_SETTINGS = {"inter_op_num_threads": 1, "execution_mode": "ORT_SEQUENTIAL",
                    "graph_optimization_level": "ORT_ENABLE_ALL", "providers": ["CPUExecutionProvider"]}


class OnnxRuntimeSession(Session):
    def __init__(self, target: ModelTarget, batch_size: int, threads: int, profile: bool) -> None:
        import onnxruntime

        options = session_options(threads)
        self._profile_dir = tempfile.TemporaryDirectory(prefix="trimkit-ort-") if profile else None
        if self._profile_dir is not None:
            options.enable_profiling = True
            options.profile_file_prefix = str(Path(self._profile_dir.name) / "profile")
        self._session = onnxruntime.InferenceSession(str(target.onnx_path), options,
                                                     providers=["CPUExecutionProvider"])
        self._names = [node.name for node in self._session.get_inputs()]
        self._feed = dict(zip(self._names, random_inputs(target, batch_size), strict=True))
        self.precision = "fp32"

    def run(self) -> None:
        self._session.run(None, self._feed)

    def infer(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        return self._session.run(None, dict(zip(self._names, arrays, strict=True)))

    def node_times(self, iterations: int) -> list[NodeTime]:
        if self._profile_dir is None:
            raise RuntimeError("node_times needs a session opened with profile=True")
        for _ in range(iterations):
            self.run()
        events = json.loads(Path(self._session.end_profiling()).read_text())
        return _kernel_times(events, iterations)

    def close(self) -> None:
        if self._profile_dir is not None:
            self._profile_dir.cleanup()


def _kernel_times(events: list[dict], iterations: int) -> list[NodeTime]:
    """Median kernel time per node over the last ``iterations`` runs of a profile.

    The profile also holds the warm-up runs made before; only node events that start
    inside one of the last ``iterations`` ``model_run`` events count.
    """
    runs = sorted((event for event in events if event.get("name") == "model_run"), key=lambda event: event["ts"])
    kept = runs[-iterations:]
    starts = [run["ts"] for run in kept]
    per_run_us: dict[str, list[float]] = defaultdict(lambda: [0.0] * len(kept))
    ops: dict[str, str] = {}
    for event in events:
        name = event.get("name", "")
        if event.get("cat") != "Node" or not name.endswith("_kernel_time"):
            continue
        window = bisect.bisect_right(starts, event["ts"]) - 1
        if window < 0 or event["ts"] > starts[window] + kept[window]["dur"]:
            continue
        node = name.removesuffix("_kernel_time")
        per_run_us[node][window] += event["dur"]
        ops[node] = event.get("args", {}).get("op_name", "")
    return [NodeTime(node, ops[node], statistics.median(micros) / 1e3) for node, micros in per_run_us.items()]


class OnnxRuntimeBackend(Backend):
    """ONNX Runtime, CPU execution provider, sequential executor, all graph optimisations.

    It computes in fp32 (``auto`` means fp32); its CPU provider has no bf16 mode.
    """

    name = "onnxruntime"
    model_format = "onnx"

    def open(self, target: ModelTarget, *, batch_size: int, threads: int, precision: str,
             profile: bool = False) -> Session:
        if target.onnx_path is None:
            raise TrimkitError(f"{target.label} is an OpenVINO IR, which only OpenVINO runs: use --backend openvino, "
                               "or give the ONNX file")
        if precision == "bf16":
            raise TrimkitError("onnxruntime's CPU provider computes in fp32 only; for bf16 use --backend openvino "
                               "or torch")
        return OnnxRuntimeSession(target, batch_size, threads, profile)

    def versions(self) -> dict[str, str]:
        import onnxruntime

        return {"onnxruntime": onnxruntime.__version__}
