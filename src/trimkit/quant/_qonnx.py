"""The QONNX file as the ``qonnx`` package (and FINN after it) reads it.

Brevitas' QONNX graph needs two changes before ``qonnx.core.onnx_exec.execute_onnx``
runs it unmodified:

- **static shapes**: qonnx reads a dimension's ``dim_value``, so a named (dynamic)
  batch dimension reads as 0 and every input is refused as the wrong shape. FINN
  builds hardware for one fixed shape and streams frames through it, so the file
  declares a fixed batch (1 by default) and every intermediate tensor's shape
  (``value_info``), which qonnx's executor requires;
- **initializers are not graph inputs**: Brevitas' TorchScript export lists every
  weight and quantiser constant among the graph inputs as well; qonnx treats graph
  inputs as values to feed (its ``RemoveStaticGraphInputs`` cleanup exists for this),
  so they are dropped from the input list.

Shapes are inferred with ONNX's own inference, each QONNX operator (``Quant``,
``BipolarQuant``, ``Trunc``: all keep their input's shape) standing in as an
``Identity`` meanwhile, which is also how qonnx infers them.

:func:`qonnx_parity` runs a written file through qonnx itself (``ModelWrapper``, its
cleanup transforms, ``execute_onnx``) and compares it with the fake-quantised PyTorch
model. qonnx is the optional ``finn`` extra (``pip install 'trimkit[finn]'``): only
the FPGA path needs it, and the export's own check (:mod:`trimkit.quant._lower`'s
emulation in ONNX Runtime) needs nothing beyond trimkit's dependencies.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import onnx
import torch
from onnx import helper
from torch import nn

from trimkit._running import eval_mode
from trimkit.errors import TrimkitError
from trimkit.quant._parity import RELATIVE_TOLERANCE, Parity, Prediction, compare_outputs

QONNX_DOMAINS = ("qonnx.custom_op.general", "finn.custom_op.general")
SHAPE_KEEPING_OPS = ("Quant", "BipolarQuant", "Trunc")
INSTALL_HINT = "install it with: pip install 'trimkit[finn]' (or pip install qonnx)"


def qonnx_ready(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of Brevitas' QONNX ``model`` that qonnx loads and executes as it is:
    initializers dropped from the graph inputs, every tensor's shape inferred.
    The batch dimension must already be static (see ``qonnx_graph(batch=...)``)."""
    ready = onnx.ModelProto()
    ready.CopyFrom(model)
    graph = ready.graph
    for value in graph.input:
        dims = value.type.tensor_type.shape.dim
        if any(dim.dim_value <= 0 for dim in dims):
            raise ValueError(f"input {value.name} has a dynamic or zero dimension; export with a static batch")
    initializers = {init.name for init in graph.initializer}
    inputs = [value for value in graph.input if value.name not in initializers]
    del graph.input[:]
    graph.input.extend(inputs)
    del graph.value_info[:]
    return _infer_shapes(ready)


def _infer_shapes(model: onnx.ModelProto) -> onnx.ModelProto:
    hidden: dict[int, onnx.NodeProto] = {}
    for index, node in enumerate(model.graph.node):
        if node.domain in QONNX_DOMAINS:
            if node.op_type not in SHAPE_KEEPING_OPS:
                raise TrimkitError(f"unsupported QONNX operator {node.op_type} in {node.name}")
            original = onnx.NodeProto()
            original.CopyFrom(node)
            hidden[index] = original
            node.CopyFrom(helper.make_node("Identity", [node.input[0]], [node.output[0]], name=node.name))
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    for index, original in hidden.items():
        inferred.graph.node[index].CopyFrom(original)
    return inferred


def qonnx_parity(model: nn.Module, path: str | os.PathLike, inputs: torch.Tensor | tuple[torch.Tensor, ...], *,
                 cleanup: bool = True, tolerance: float | None = None,
                 prediction: Prediction | None = None) -> Parity:
    """Run the QONNX file at ``path`` with the ``qonnx`` package's executor, one batch
    of the file's size at a time, and compare it with ``model`` (fake-quantised
    PyTorch) on ``inputs``. With ``cleanup``, the file first goes through qonnx's
    ``cleanup_model`` (shape inference, constant folding, renaming), as a FINN flow
    does."""
    ModelWrapper, execute_onnx, cleanup_model = _qonnx()
    wrapper = ModelWrapper(str(path))
    if cleanup:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wrapper = cleanup_model(wrapper)
    tensors = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    names = [value.name for value in wrapper.graph.input]
    if len(names) != len(tensors):
        raise TrimkitError(f"{path} takes {len(names)} input(s), {len(tensors)} given")
    batch = wrapper.get_tensor_shape(names[0])[0]
    output_name = wrapper.graph.output[0].name
    outputs = []
    for start in range(0, len(tensors[0]), batch):
        chunk = [tensor[start:start + batch].detach().float().cpu().numpy() for tensor in tensors]
        if len(chunk[0]) < batch:
            raise TrimkitError(f"{path} has a batch of {batch}; give a multiple of {batch} samples")
        outputs.append(execute_onnx(wrapper, dict(zip(names, chunk)))[output_name])
    with eval_mode(model), torch.no_grad():
        reference = model(*tensors).float().numpy()
    return compare_outputs(np.concatenate(outputs), reference, tolerance=tolerance or RELATIVE_TOLERANCE,
                           prediction=prediction)


def _qonnx():
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from qonnx.core.modelwrapper import ModelWrapper
            from qonnx.core.onnx_exec import execute_onnx
            from qonnx.util.cleanup import cleanup_model
    except ImportError as error:
        raise TrimkitError(f"running a QONNX file needs the qonnx package ({error}); {INSTALL_HINT}") from None
    return ModelWrapper, execute_onnx, cleanup_model
