"""What a latency measurement runs: a PyTorch model, an ONNX file, or both; or an
OpenVINO IR file (``.xml`` beside its ``.bin``), which only OpenVINO runs.

A model given as a module or a trimkit ``.pt`` file is exported to ONNX (parity
checked) for the ONNX backends; an ``.onnx`` or ``.xml`` file is timed as it is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

import trimkit
from trimkit import export, models
from trimkit.errors import TrimkitError

ModelOrPath = nn.Module | str | os.PathLike
EXPORT_BATCH = 2


@dataclass
class ModelTarget:
    """A model ready to time. ``input_shapes`` exclude the batch dimension. ``ir_path``
    is an OpenVINO IR file (then ``onnx_path`` is None)."""

    label: str
    input_shapes: tuple[tuple[int, ...], ...]
    input_dtypes: tuple[np.dtype, ...]
    module: nn.Module | None = None
    onnx_path: Path | None = None
    fixed_batch: int | None = None
    metadata: dict = field(default_factory=dict)
    ir_path: Path | None = None

    @property
    def model_file(self) -> Path | None:
        """The file a runtime reads: the ONNX file, or the OpenVINO IR."""
        return self.onnx_path if self.onnx_path is not None else self.ir_path

    def check_batch(self, batch_size: int) -> None:
        if self.fixed_batch is not None and self.fixed_batch != batch_size:
            raise TrimkitError(
                f"{self.label} was exported for batch {self.fixed_batch} only; use batch size {self.fixed_batch}, "
                "or export it with a dynamic batch"
            )


def resolve_target(model_or_path: ModelOrPath, workdir: Path, *, need_onnx: bool,
                   input_shapes: Sequence[Sequence[int]] | None = None, label: str | None = None) -> ModelTarget:
    """Turn a module or file into a :class:`ModelTarget`; exports into ``workdir`` when
    ``need_onnx`` and the model is not an ONNX file already."""
    if isinstance(model_or_path, nn.Module):
        return _from_module(model_or_path, workdir, need_onnx, input_shapes, label)
    if not isinstance(model_or_path, (str, os.PathLike)):
        raise TrimkitError(f"expected a model, a .pt or an .onnx file, got {type(model_or_path).__name__}")
    path = Path(model_or_path)
    if not path.is_file():
        raise TrimkitError(f"model file {path} does not exist")
    if path.suffix == ".onnx":
        return _from_onnx(path, label)
    if path.suffix == ".xml":
        return _from_openvino_ir(path, label)
    return _from_module(trimkit.load(path), workdir, need_onnx, input_shapes, label or path.name)


def _from_module(module: nn.Module, workdir: Path, need_onnx: bool, input_shapes: Sequence[Sequence[int]] | None,
                 label: str | None) -> ModelTarget:
    origin = models.origin(module)
    if input_shapes is None:
        shape = origin.input_shape() if origin is not None else None
        if shape is None:
            raise TrimkitError(f"the input shape of {type(module).__name__} is not recorded; pass "
                               "input_shapes=[(C, H, W), ...] (one per input, without the batch)")
        input_shapes = [shape]
    shapes = tuple(tuple(int(size) for size in shape) for shape in input_shapes)
    target = ModelTarget(label or (origin.label if origin else type(module).__name__), shapes,
                         tuple(np.dtype(np.float32) for _ in shapes), module=module)
    if need_onnx:
        generator = torch.Generator().manual_seed(0)
        example = tuple(torch.randn(EXPORT_BATCH, *shape, generator=generator) for shape in shapes)
        workdir.mkdir(parents=True, exist_ok=True)
        target.onnx_path = export.onnx(module, example, workdir / "model.onnx").path
        target.metadata = export.read_metadata(export.read_onnx(target.onnx_path))
    return target


def _from_onnx(path: Path, label: str | None) -> ModelTarget:
    proto = export.read_onnx(path)
    initializers = {tensor.name for tensor in proto.graph.initializer}
    graph_inputs = [value for value in proto.graph.input if value.name not in initializers]
    shapes, dtypes, batches = [], [], set()
    for value in graph_inputs:
        tensor_type = value.type.tensor_type
        dims = [dim.dim_value if dim.HasField("dim_value") else None for dim in tensor_type.shape.dim]
        if not dims or any(size is None for size in dims[1:]):
            raise TrimkitError(f"{path}: input {value.name!r} has shape {dims}; only the batch (first) dimension "
                               "may be dynamic")
        shapes.append(tuple(dims[1:]))
        dtypes.append(np.dtype(onnx_dtype(tensor_type.elem_type)))
        batches.add(dims[0])
    fixed = next(iter(batches)) if len(batches) == 1 and None not in batches else None
    return ModelTarget(label or path.name, tuple(shapes), tuple(dtypes), onnx_path=path, fixed_batch=fixed,
                       metadata=export.read_metadata(proto))


def _from_openvino_ir(path: Path, label: str | None) -> ModelTarget:
    """An OpenVINO IR: shapes and element types from OpenVINO itself (imported here only)."""
    if not path.with_suffix(".bin").is_file():
        raise TrimkitError(f"{path} is an OpenVINO IR without its weights: {path.with_suffix('.bin').name} must lie "
                           "beside it")
    try:
        import openvino
    except ImportError:
        raise TrimkitError(f"{path} is an OpenVINO IR; reading it needs OpenVINO: pip install 'trimkit[openvino]'"
                           ) from None
    try:
        model = openvino.Core().read_model(str(path))
    except RuntimeError as error:
        raise TrimkitError(f"{path} is not an OpenVINO IR OpenVINO can read ({str(error).splitlines()[0][:120]})"
                           ) from None
    shapes, dtypes, batches = [], [], set()
    for port in model.inputs:
        dims = [None if dim.is_dynamic else dim.get_length() for dim in port.get_partial_shape()]
        if not dims or any(size is None for size in dims[1:]):
            raise TrimkitError(f"{path}: input {port.get_any_name()!r} has shape {dims}; only the batch (first) "
                               "dimension may be dynamic")
        shapes.append(tuple(dims[1:]))
        dtypes.append(np.dtype(port.get_element_type().to_dtype()))
        batches.add(dims[0])
    fixed = next(iter(batches)) if len(batches) == 1 and None not in batches else None
    return ModelTarget(label or path.name, tuple(shapes), tuple(dtypes), fixed_batch=fixed, ir_path=path)


def file_bytes(path: Path) -> int:
    """The bytes of a model file: an ONNX file, or an OpenVINO IR with its ``.bin``."""
    size = path.stat().st_size
    return size + path.with_suffix(".bin").stat().st_size if path.suffix == ".xml" else size


def onnx_dtype(element_type: int) -> np.dtype:
    """The NumPy type of an ONNX tensor element type."""
    import onnx

    return onnx.helper.tensor_dtype_to_np_dtype(element_type)
