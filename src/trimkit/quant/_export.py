"""Export a quantised model to QONNX (FPGA flows such as FINN) and to QCDQ ONNX (ONNX
Runtime), each checked against the fake-quantised PyTorch model.

Brevitas writes the QONNX graph with PyTorch's TorchScript exporter: measured here it
takes 0.13 s where the dynamo exporter takes 2.7 s for a 3-layer model, and it writes
IR version 9, which ONNX Runtime and QONNX tools read (the dynamo path writes IR 14,
which ONNX Runtime 1.31 refuses). QONNX keeps float weights beside ``Quant`` nodes, so
the file does not shrink with the bit width; the QCDQ file stores 8-bit codes, and
:func:`trimkit.quant.save_packed` stores the real widths.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from trimkit._atomic import atomic_path
from trimkit._running import eval_mode
from trimkit.errors import TrimkitError
from trimkit.quant._convert import plan_of
from trimkit.quant._lower import lower_qonnx
from trimkit.quant._plan import ExampleInputs, default_example_inputs

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # brevitas warns at import about an optional CUDA kernel package
    from brevitas.export import export_qonnx as _brevitas_export_qonnx

RELATIVE_TOLERANCE = 1e-2
MIN_AGREEMENT = 99.0
Prediction = Callable[[torch.Tensor], torch.Tensor]
OPSET = 17


@dataclass(frozen=True)
class Parity:
    """Exported model vs PyTorch on the same inputs.

    Exact equality is not to be had: the two runtimes sum a convolution in different
    orders, and a value that lands within float error of a rounding boundary takes the
    neighbouring integer code in one of them; the flip then travels to the output.
    Measured on CIFAR ResNet-20 (256 images): mean relative difference 0.07-0.3 % and
    100 % top-1 agreement for int4-int8 activations; exact for ternary weights with int2
    activations, whose sums are exact. A wrong scale, range or sign shows far above
    that, so the check passes when the mean relative difference is at most
    ``tolerance`` (1 %) and the task's predictions (class indices by default; the
    task's ``prediction``: per-pixel labels, peak positions) agree on at least 99 % of
    their elements.
    """

    max_abs_diff: float
    mean_relative_diff: float
    agreement: float
    samples: int
    tolerance: float

    @property
    def passed(self) -> bool:
        return self.mean_relative_diff <= self.tolerance and self.agreement >= MIN_AGREEMENT

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


@dataclass(frozen=True)
class QuantExport:
    path: Path
    format: str
    size_bytes: int
    parity: Parity | None

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "format": self.format, "size_bytes": self.size_bytes,
                "parity": None if self.parity is None else self.parity.to_dict()}


def export_qonnx(model: nn.Module, path: str | os.PathLike, example_inputs: ExampleInputs | None = None, *,
                 check: bool = True, prediction: Prediction | None = None) -> QuantExport:
    """Write ``model`` as QONNX; with ``check``, compare it (run through standard ONNX
    operators by ONNX Runtime) with the PyTorch model on ``example_inputs``."""
    inputs = _inputs(model, example_inputs)
    graph = qonnx_graph(model, inputs)
    _save(graph, path)
    parity = check_parity(model, lower_qonnx(graph, "emulate"), inputs, prediction=prediction) if check else None
    return QuantExport(Path(path), "qonnx", Path(path).stat().st_size, parity)


def export_qcdq(model: nn.Module, path: str | os.PathLike, example_inputs: ExampleInputs | None = None, *,
                check: bool = True, prediction: Prediction | None = None) -> QuantExport:
    """Write ``model`` as QCDQ ONNX (QuantizeLinear/Clip/DequantizeLinear, int8 weight
    codes) that ONNX Runtime runs; formats of at most 8 bits and no binary activations."""
    inputs = _inputs(model, example_inputs)
    graph = lower_qonnx(qonnx_graph(model, inputs), "qcdq")
    _save(graph, path)
    parity = check_parity(model, graph, inputs, prediction=prediction) if check else None
    return QuantExport(Path(path), "qcdq", Path(path).stat().st_size, parity)


def qonnx_graph(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> onnx.ModelProto:
    """The QONNX graph Brevitas writes for ``model``, batch dimension dynamic."""
    if plan_of(model) is None:
        raise TrimkitError("QONNX export needs a quantised model: run trimkit.quant.qat or trimkit.quant.quantize")
    input_names = _input_names(len(inputs))
    dynamic = {name: {0: "batch"} for name in (*input_names, "output")}
    with eval_mode(model), tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        target = Path(folder) / "model.onnx"
        trace = tuple(tensor[:1] for tensor in inputs)  # the batch size is dynamic; one sample traces faster
        _brevitas_export_qonnx(model, args=trace if len(trace) > 1 else trace[0], export_path=str(target),
                               dynamo=False, input_names=input_names, output_names=["output"],
                               dynamic_axes=dynamic, opset_version=OPSET)
        return onnx.load(str(target))


def check_parity(model: nn.Module, graph: onnx.ModelProto, inputs: tuple[torch.Tensor, ...], *,
                 tolerance: float = RELATIVE_TOLERANCE, optimize: bool = False,
                 prediction: Prediction | None = None) -> Parity:
    """Run ``graph`` in ONNX Runtime and ``model`` in PyTorch on ``inputs``; compare
    values and the predictions a task makes from them (``prediction``, default: the
    class index, argmax over dimension 1).
    ONNX Runtime's graph optimisations are off unless ``optimize``: the check is of what
    the file means, not of how one runtime rewrites it."""
    with eval_mode(model), torch.no_grad():
        reference = model(*inputs).float().numpy()
    options = ort.SessionOptions()
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(graph.SerializeToString(), options, providers=["CPUExecutionProvider"])
    feeds = {name: tensor.numpy() for name, tensor in zip(_input_names(len(inputs)), inputs)}
    exported = session.run(None, feeds)[0]
    difference = np.abs(exported - reference)
    mean_relative = float(difference.mean() / max(float(np.abs(reference).mean()), 1e-12))
    decide = prediction or _class_index
    same = decide(torch.from_numpy(exported)) == decide(torch.from_numpy(reference))
    agreement = 100.0 * float(same.float().mean())
    return Parity(float(difference.max()), mean_relative, agreement, len(reference), tolerance)


def _class_index(outputs: torch.Tensor) -> torch.Tensor:
    return outputs.reshape(len(outputs), -1).argmax(1) if outputs.dim() == 2 else outputs.argmax(1)


def _inputs(model: nn.Module, example_inputs: ExampleInputs | None) -> tuple[torch.Tensor, ...]:
    if example_inputs is None:
        example_inputs = default_example_inputs(model, batch=8)
    inputs = tuple(example_inputs) if isinstance(example_inputs, (tuple, list)) else (example_inputs,)
    return tuple(tensor.detach().float().cpu() for tensor in inputs)


def _input_names(count: int) -> list[str]:
    return ["input"] if count == 1 else [f"input{index}" for index in range(count)]


def _save(graph: onnx.ModelProto, path: str | os.PathLike) -> None:
    with atomic_path(path) as temporary:
        onnx.save(graph, str(temporary))
