"""Export a PyTorch model to ONNX, checked against PyTorch by ONNX Runtime.

The TorchScript-based exporter of ``torch.onnx.export(dynamo=False)`` is used, not the
``torch.export``-based one that torch 2.13 makes the default. Measured here, both
export every zoo model (the F.pad option-A ResNets included) and a two-input Siamese
model with the same parity, and ONNX Runtime runs both files equally fast (ResNet-56,
batch 1: 2.8 vs 2.9 ms). The differences that decide:

- speed: ResNet-56 exports in 0.4 s against 5.8 s (ResNet-110: 0.7 s against 9.2 s),
  and a search exports one model per trial;
- names: its nodes carry the module path (``/layer1/layer1.0/conv1/Conv``), which is
  how per-layer times map back to trimkit layer names; the other exporter folds each
  BatchNorm into its convolution and labels the result with the BatchNorm's path.

Its cost is a DeprecationWarning; torch is pinned (2.13), and moving to the other
exporter means reading layer paths from its ``pkg.torch.onnx.name_scopes`` metadata.
"""

from __future__ import annotations

import io
import json
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import onnx as onnx_format
import torch
from torch import nn

from trimkit import models
from trimkit._atomic import atomic_path
from trimkit._inputs import ExampleInputs, as_input_tuple
from trimkit._running import eval_mode
from trimkit.errors import TrimkitError
from trimkit.export._parity import PARITY_RTOL, parity, torch_outputs

MIN_OPSET = 11
MAX_OPSET = 20
METADATA_KEY = "trimkit"


class ParityError(TrimkitError):
    """The exported file computes something else than the PyTorch model."""


@dataclass(frozen=True)
class ExportResult:
    path: Path
    size_bytes: int
    opset: int
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]
    dynamic_batch: bool
    max_abs_err: float
    max_rel_err: float

    def to_dict(self) -> dict:
        record = asdict(self)
        record["path"] = str(self.path)
        return record


def export_onnx(
    model: nn.Module,
    example_inputs: ExampleInputs,
    path: str | os.PathLike,
    *,
    opset: int | None = None,
    dynamic_batch: bool = True,
) -> ExportResult:
    """Write ``model`` to ``path`` as ONNX, atomically, after checking it against PyTorch.

    ``example_inputs`` is a tensor, or a tuple for a model with several inputs; the first
    dimension of each is the batch. With ``dynamic_batch`` the file takes any batch size,
    and parity is checked at the example batch and at one more. Raises
    :class:`ParityError` when ONNX Runtime and PyTorch differ by more than 1e-4 relative
    to the output's magnitude; the file is then not written.
    """
    if opset is not None and not MIN_OPSET <= opset <= MAX_OPSET:
        raise TrimkitError(f"opset {opset} is not supported; choose {MIN_OPSET} to {MAX_OPSET}, or leave it out")
    inputs = as_input_tuple(example_inputs)
    input_names = _names("input", len(inputs))
    output_names = _names("output", len(torch_outputs(model, inputs)))
    proto = _trace(model, inputs, input_names, output_names, opset, dynamic_batch)
    _add_metadata(proto, model)
    with atomic_path(path) as temporary:
        onnx_format.save(proto, temporary)
        checked = parity(temporary, model, inputs, other_batch=dynamic_batch)
        if checked.max_rel_err > PARITY_RTOL:
            raise ParityError(
                f"ONNX export of {type(model).__name__} disagrees with PyTorch: max relative error "
                f"{checked.max_rel_err:.2e} (> {PARITY_RTOL:.0e}), max absolute {checked.max_abs_err:.2e}; "
                "the model uses an operation the exporter translates wrongly"
            )
        size = temporary.stat().st_size
    return ExportResult(Path(path), size, _opset_of(proto), tuple(input_names), tuple(output_names), dynamic_batch,
                        checked.max_abs_err, checked.max_rel_err)


def read_onnx(path: str | os.PathLike) -> onnx_format.ModelProto:
    """The graph of an ``.onnx`` file (weights left on disk); a file that is not ONNX is a
    one-line error that says so."""
    source = Path(path)
    if not source.is_file():
        raise TrimkitError(f"ONNX file {source} does not exist; check the path")
    try:
        proto = onnx_format.load(str(source), load_external_data=False)
    except Exception as error:  # protobuf raises DecodeError, RuntimeWarning-born errors and others
        kind = type(error).__name__
        raise TrimkitError(f"{source} is not an ONNX model (it cannot be parsed: {kind}); give an .onnx file "
                           "written by trimkit export or another ONNX exporter") from None
    if not proto.graph.node:
        raise TrimkitError(f"{source} holds no ONNX graph; give an .onnx file written by trimkit export or another "
                           "ONNX exporter")
    return proto


def read_metadata(proto: onnx_format.ModelProto) -> dict:
    """What trimkit recorded in a file it exported (zoo name, input shape, normalisation), or {}."""
    for entry in proto.metadata_props:
        if entry.key == METADATA_KEY:
            return json.loads(entry.value)
    return {}


def _trace(model: nn.Module, inputs: tuple[torch.Tensor, ...], input_names: list[str], output_names: list[str],
           opset: int | None, dynamic_batch: bool) -> onnx_format.ModelProto:
    dynamic_axes = {name: {0: "batch"} for name in input_names + output_names} if dynamic_batch else None
    buffer = io.BytesIO()
    with eval_mode(model), warnings.catch_warnings():
        # the chosen exporter's deprecation (see the module docstring), said by it and inside it
        warnings.filterwarnings("ignore", message="You are using the legacy TorchScript-based ONNX export",
                                category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx\._internal")
        # strided slices (the option-A shortcut's x[:, :, ::2, ::2]) are left to the runtime to fold
        warnings.filterwarnings("ignore", message="Constant folding - Only steps=1", category=UserWarning)
        # the tracer warns wherever a tensor becomes a Python value, mostly harmlessly (a pruned
        # shortcut's channel index); the parity check at two batch sizes catches a trace that is wrong
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        torch.onnx.export(model, inputs, buffer, dynamo=False, input_names=input_names,
                          output_names=output_names, opset_version=opset, dynamic_axes=dynamic_axes,
                          do_constant_folding=True)
    return onnx_format.load_from_string(buffer.getvalue())


def _names(stem: str, count: int) -> list[str]:
    return [stem] if count == 1 else [f"{stem}{index}" for index in range(count)]


def _add_metadata(proto: onnx_format.ModelProto, model: nn.Module) -> None:
    origin = models.origin(model)
    if origin is None:
        return
    shape, normalization = origin.input_shape(), origin.normalization()
    record = {"model": origin.name, "factory": origin.factory, "kwargs": dict(origin.kwargs),
              "input_shape": None if shape is None else list(shape),
              "normalization": None if normalization is None else [list(values) for values in normalization]}
    entry = proto.metadata_props.add()
    entry.key = METADATA_KEY
    entry.value = json.dumps({key: value for key, value in record.items() if value is not None})


def _opset_of(proto: onnx_format.ModelProto) -> int:
    return next(entry.version for entry in proto.opset_import if entry.domain in ("", "ai.onnx"))
