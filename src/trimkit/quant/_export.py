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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from torch import nn

from trimkit._atomic import atomic_path
from trimkit._running import eval_mode
from trimkit.errors import TrimkitError
from trimkit.quant._convert import plan_of, quant_layers
from trimkit.quant._lower import lower_qonnx
from trimkit.quant._parity import RELATIVE_TOLERANCE, Parity, Prediction, compare_outputs
from trimkit.quant._plan import ExampleInputs, default_example_inputs
from trimkit.quant._qonnx import qonnx_ready

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # brevitas warns at import about an optional CUDA kernel package
    from brevitas.export import export_qonnx as _brevitas_export_qonnx

OPSET = 17


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
                 check: bool = True, prediction: Prediction | None = None, batch: int = 1) -> QuantExport:
    """Write ``model`` as QONNX that the ``qonnx`` package (and FINN) loads and runs as
    it is: a static batch of ``batch`` (FINN builds hardware for one shape), every
    tensor's shape declared, no initializer among the graph inputs (see
    :mod:`trimkit.quant._qonnx`). With ``check``, compare it (run through standard ONNX
    operators by ONNX Runtime, ``batch`` samples at a time) with the PyTorch model on
    ``example_inputs``; :func:`trimkit.quant.qonnx_parity` runs it in qonnx itself."""
    if batch < 1:
        raise TrimkitError(f"QONNX batch must be at least 1, got {batch}")
    inputs = _inputs(model, example_inputs)
    graph = qonnx_ready(qonnx_graph(model, inputs, batch=batch))
    _save(graph, path)
    parity = check_parity(model, lower_qonnx(graph, "emulate"), inputs, prediction=prediction) if check else None
    return QuantExport(Path(path), "qonnx", Path(path).stat().st_size, parity)


def export_qcdq(model: nn.Module, path: str | os.PathLike, example_inputs: ExampleInputs | None = None, *,
                check: bool = True, prediction: Prediction | None = None) -> QuantExport:
    """Write ``model`` as QCDQ ONNX (QuantizeLinear/Clip/DequantizeLinear, int8 weight
    codes, batch dimension dynamic) that ONNX Runtime runs; formats of at most 8 bits
    and no binary activations."""
    inputs = _inputs(model, example_inputs)
    graph = lower_qonnx(qonnx_graph(model, inputs), "qcdq")
    _save(graph, path)
    parity = check_parity(model, graph, inputs, prediction=prediction) if check else None
    return QuantExport(Path(path), "qcdq", Path(path).stat().st_size, parity)


def qonnx_graph(model: nn.Module, inputs: tuple[torch.Tensor, ...], *, batch: int | None = None) -> onnx.ModelProto:
    """The QONNX graph Brevitas writes for ``model`` (a quantised model, or a part of one
    such as a tracker's backbone): batch dimension dynamic, or fixed at ``batch``."""
    if plan_of(model) is None and not quant_layers(model):
        raise TrimkitError("QONNX export needs a quantised model: run trimkit.quant.qat or trimkit.quant.quantize")
    input_names = _input_names(len(inputs))
    if batch is None:
        trace = tuple(tensor[:1] for tensor in inputs)  # the batch size is dynamic; one sample traces faster
        dynamic = {name: {0: "batch"} for name in (*input_names, "output")}
    else:
        trace = tuple(tensor[:1].expand(batch, *tensor.shape[1:]).contiguous() for tensor in inputs)
        dynamic = None
    with eval_mode(model), tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        target = Path(folder) / "model.onnx"
        _brevitas_export_qonnx(model, args=trace if len(trace) > 1 else trace[0], export_path=str(target),
                               dynamo=False, input_names=input_names, output_names=["output"],
                               dynamic_axes=dynamic, opset_version=OPSET)
        return onnx.load(str(target))


def check_parity(model: nn.Module, graph: onnx.ModelProto, inputs: tuple[torch.Tensor, ...], *,
                 tolerance: float = RELATIVE_TOLERANCE, optimize: bool = False,
                 prediction: Prediction | None = None) -> Parity:
    """Run ``graph`` in ONNX Runtime and ``model`` in PyTorch on ``inputs``; compare
    values and the predictions a task makes from them (``prediction``, default: the
    class index, argmax over dimension 1). A graph of a static batch runs that many
    samples at a time (``inputs`` a multiple of it).
    ONNX Runtime's graph optimisations are off unless ``optimize``: the check is of what
    the file means, not of how one runtime rewrites it."""
    with eval_mode(model), torch.no_grad():
        reference = model(*inputs).float().numpy()
    options = ort.SessionOptions()
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(graph.SerializeToString(), options, providers=["CPUExecutionProvider"])
    names = _input_names(len(inputs))
    step = _static_batch(graph) or len(inputs[0])
    if len(inputs[0]) % step:
        raise TrimkitError(f"the exported model takes batches of {step}; give a multiple of {step} samples")
    exported = np.concatenate([
        session.run(None, {name: tensor[start:start + step].numpy() for name, tensor in zip(names, inputs)})[0]
        for start in range(0, len(inputs[0]), step)
    ])
    return compare_outputs(exported, reference, tolerance=tolerance, prediction=prediction)


def _static_batch(graph: onnx.ModelProto) -> int | None:
    dims = graph.graph.input[0].type.tensor_type.shape.dim
    return dims[0].dim_value if dims and dims[0].dim_value > 0 else None


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
