"""Per-layer times: runtime graph nodes mapped back to trimkit layer names.

Runtimes rename what they fuse. ONNX Runtime names a fused Conv+BN+ReLU in its NCHWc
layout after the ReLU's output tensor (``/layer1/layer1.0/Relu_output_0_nchwc``) and a
fused Gemm+ReLU ``fused /classifier/classifier.1/Gemm``;
OpenVINO keeps the convolution's node name and appends a suffix
(``/layer1/layer1.0/conv1/Conv/WithoutBiases``). Both are traced back to a node of the
exported ONNX graph, whose name is its module path (``/layer1/layer1.0/conv1/Conv`` is
``layer1.0.conv1``). Layout and precision reorders the runtimes insert are one row.
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass
from pathlib import Path

import onnx as onnx_format

from trimkit.measure._backend import NodeTime

REORDERS_ROW = "(reorders)"
REORDER_OPS = frozenset({"ReorderInput", "ReorderOutput", "Reorder"})
# ops a runtime fuses into the convolution or dense layer before them
FUSED_TAIL_OPS = frozenset({"Relu", "Clip", "BatchNormalization", "Add", "Sum", "Sigmoid", "LeakyRelu",
                            "HardSigmoid", "HardSwish", "Tanh", "Mul"})
# how ONNX Runtime renames what it fuses: "fused <node>" (FusedGemm), "<tensor>_nchwc"
_RUNTIME_PREFIXES = ("fused ",)
_RUNTIME_SUFFIXES = ("_nchwc",)
_FUSED_OPS = {"FusedConv": "Conv", "FusedGemm": "Gemm", "FusedMatMul": "MatMul"}
_SEARCH_DEPTH = 4


@dataclass(frozen=True)
class LayerTime:
    name: str
    op: str
    ms: float
    percent: float


def module_path(node_name: str) -> str:
    """The module path in a node name of the TorchScript exporter.

    ``/layer1/layer1.0/conv1/Conv`` -> ``layer1.0.conv1``: the last part is the op, and
    each part either extends the path (``conv1``) or restates it in full (``layer1.0``).
    A name outside any module (``/Flatten``) is the op's name; a name not in this form
    (another exporter's) is returned as it is.
    """
    if not node_name.startswith("/"):
        return node_name
    *scopes, op = node_name[1:].split("/")
    path = ""
    for scope in scopes:
        path = scope if not path or scope.startswith(path + ".") else f"{path}.{scope}"
    return path or op


class LayerNames:
    """Maps a runtime's node names to trimkit layer names through the ONNX graph."""

    def __init__(self, proto: onnx_format.ModelProto) -> None:
        self._nodes = {node.name: node for node in proto.graph.node}
        self._producer = {output: node for node in proto.graph.node for output in node.output}

    @classmethod
    def from_file(cls, path: str | Path) -> LayerNames:
        return cls(onnx_format.load(str(path), load_external_data=False))

    def layer_of(self, runtime_name: str, op: str) -> str:
        if op in REORDER_OPS:
            return REORDERS_ROW
        node = self._graph_node(runtime_name)
        if node is None:
            return runtime_name
        return module_path(self._compute_node(node, _FUSED_OPS.get(op, op)).name)

    def _graph_node(self, runtime_name: str):
        """The ONNX node a runtime name stands for: the node itself, the producer of a
        tensor it is named after, or a node whose name it extends with ``/suffix``."""
        name = runtime_name
        for prefix in _RUNTIME_PREFIXES:
            name = name.removeprefix(prefix)
        for suffix in _RUNTIME_SUFFIXES:
            name = name.removesuffix(suffix)
        candidates = [name] + [name.rsplit("/", cut)[0] for cut in range(1, name.count("/"))]
        for candidate in candidates:
            if candidate in self._nodes:
                return self._nodes[candidate]
            if candidate in self._producer:
                return self._producer[candidate]
        return None

    def _compute_node(self, node, op: str):
        """Walk back from a fused tail (ReLU, Add, ...) to the node of the runtime's op type."""
        if node.op_type == op or node.op_type not in FUSED_TAIL_OPS:
            return node
        queue = deque([(node, 0)])
        while queue:
            current, depth = queue.popleft()
            if current.op_type == op:
                return current
            if depth < _SEARCH_DEPTH and current.op_type in FUSED_TAIL_OPS:
                queue.extend((self._producer[name], depth + 1) for name in current.input if name in self._producer)
        return node


def aggregate_layers(node_times: list[NodeTime], names: LayerNames | None) -> list[LayerTime]:
    """Node times summed per layer, largest first, with each layer's share of the total."""
    ms: dict[str, float] = defaultdict(float)
    ops: dict[str, list[str]] = defaultdict(list)
    for node in node_times:
        layer = names.layer_of(node.name, node.op) if names is not None else node.name
        ms[layer] += node.ms
        if node.op not in ops[layer]:
            ops[layer].append(node.op)
    total = sum(ms.values())
    rows = [LayerTime(layer, "+".join(ops[layer]), value, 100.0 * value / total if total > 0 else 0.0)
            for layer, value in ms.items()]
    return sorted(rows, key=lambda row: row.ms, reverse=True)
