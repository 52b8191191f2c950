"""Packed model files: weights at their real width, so the file is as small as the
analytic size says (plus a fixed header of a few hundred bytes).

Layout: ``TRIMPACK`` magic, a little-endian u16 version and u32 header length, the
header (zlib-compressed JSON: how to rebuild the model, the quantisation plan, a
checksum of the tensor layout), then the tensors back to back, each byte-aligned:

- per weight layer, in plan order: the weight scales (float32, one per channel or per
  tensor) and codes packed at n bits (or float32 weights for float32 layers), the
  bias (float32), the input scale (float32) when the input has an integer format;
- then every other parameter and buffer in its own dtype (``num_batches_tracked`` is
  left out).

No tensor names are stored: the loader rebuilds the model from the header and reads the
tensors in the same order, after checking the layout checksum.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch import nn

from trimkit import models
from trimkit._atomic import atomic_path
from trimkit._model_file import create_from_header
from trimkit.errors import TrimkitError
from trimkit.quant._bitpack import pack_codes, packed_bytes, unpack_codes
from trimkit.quant._convert import input_scale_parameter, plan_of, quantize_model
from trimkit.quant._plan import ExampleInputs, LayerPlan, QuantPlan, default_example_inputs, plan
from trimkit.quant._policy import PolicyLike
from trimkit.quant._quantizers import FixedScale
from trimkit.quant._size import other_tensors

MAGIC = b"TRIMPACK"
VERSION = 1
_PREAMBLE = struct.Struct("<HI")


@dataclass(frozen=True)
class _Slot:
    """One stored tensor: ``kind`` is codes, scales, raw (a tensor by name) or act_scale."""

    kind: str
    name: str
    shape: tuple[int, ...]
    dtype: str
    bits: int = 32

    @property
    def nbytes(self) -> int:
        numel = int(np.prod(self.shape)) if self.shape else 1
        return packed_bytes(numel, self.bits)


def save_packed(model: nn.Module, path: str | os.PathLike) -> int:
    """Write a quantised model (from :func:`trimkit.quant.qat` or ``quantize``) packed at
    its real bit widths; return the file's size in bytes."""
    quant_plan = _require_plan(model)
    slots = list(_layout(model, quant_plan))
    origin = models.origin(model)
    header = {
        "format": "trimkit-packed",
        "model": None if origin is None else origin.to_header(),
        "plan": quant_plan.to_dict(),
        "layout_crc32": _checksum(slots),
    }
    header_bytes = zlib.compress(json.dumps(header, separators=(",", ":")).encode(), 9)
    with atomic_path(path) as temporary, open(temporary, "wb") as handle:
        handle.write(MAGIC + _PREAMBLE.pack(VERSION, len(header_bytes)) + header_bytes)
        for slot in slots:
            handle.write(_encode(model, quant_plan, slot))
    return Path(path).stat().st_size


def load_packed(path: str | os.PathLike, model: nn.Module | None = None) -> nn.Module:
    """Rebuild the quantised model packed at ``path``; its quantised weights, scales and
    other tensors are bit-identical to the saved model's. A model built outside the zoo
    needs a float instance of its architecture as ``model``."""
    data = Path(path).read_bytes()
    header, offset = _read_header(data, path)
    quant_plan = QuantPlan.from_dict(header["plan"])
    if model is None:
        if header["model"] is None:
            raise TrimkitError(f"{path} holds a model built outside the zoo; pass a float instance: "
                               "load_packed(path, model=MyNet())")
        model = create_from_header(header, path)
    model = quantize_model(model, quant_plan, fixed_scales=True)
    slots = list(_layout(model, quant_plan))
    if _checksum(slots) != header["layout_crc32"]:
        raise TrimkitError(f"{path} was packed from a different architecture or trimkit version; re-export it")
    with torch.no_grad():
        for slot in slots:
            _decode(model, quant_plan, slot, data[offset: offset + slot.nbytes])
            offset += slot.nbytes
    return model


def packed_size(model: nn.Module, policy: PolicyLike | None = None, *,
                example_inputs: ExampleInputs | None = None) -> int:
    """The bytes :func:`save_packed` writes for a quantised model, or for a float model
    under ``policy`` (activation scales uncalibrated: they take the same bytes)."""
    if policy is not None:
        if plan_of(model) is not None:
            raise TrimkitError("the model is quantised already; leave out the policy to size it as it is")
        inputs = example_inputs if example_inputs is not None else default_example_inputs(model)
        model = quantize_model(model, plan(model, policy, inputs))
    with tempfile.TemporaryDirectory(prefix="trimkit-packed-") as folder:
        return save_packed(model, Path(folder) / "model.tpk")


def _require_plan(model: nn.Module) -> QuantPlan:
    quant_plan = plan_of(model)
    if quant_plan is None:
        raise TrimkitError("save_packed needs a quantised model: run trimkit.quant.qat or trimkit.quant.quantize first")
    return quant_plan


def _layout(model: nn.Module, quant_plan: QuantPlan) -> Iterator[_Slot]:
    modules = dict(model.named_modules())
    for layer in quant_plan.layers:
        module = modules[layer.name]
        weight_format = layer.weight.format
        if weight_format.quantized:
            scales = module.weight.shape[0] if layer.weight.granularity == "channel" else 1
            yield _Slot("scales", layer.name, (scales,), "float32")
            yield _Slot("codes", layer.name, tuple(module.weight.shape), "int", weight_format.bits)
        else:
            yield _raw_slot(f"{layer.name}.weight", module.weight)
        if module.bias is not None:
            yield _raw_slot(f"{layer.name}.bias", module.bias)
        if layer.act.kind == "int":
            yield _Slot("act_scale", layer.name, (), "float32")
    for name, tensor in other_tensors(model, [layer.name for layer in quant_plan.layers]).items():
        yield _raw_slot(name, tensor)


def _raw_slot(name: str, tensor: torch.Tensor) -> _Slot:
    return _Slot("raw", name, tuple(tensor.shape), str(tensor.dtype), tensor.element_size() * 8)


def _encode(model: nn.Module, quant_plan: QuantPlan, slot: _Slot) -> bytes:
    if slot.kind == "raw":
        return _tensor(model, slot.name).detach().cpu().contiguous().numpy().tobytes()
    module = model.get_submodule(slot.name)
    if slot.kind == "act_scale":
        return input_scale_parameter(module).value.detach().cpu().float().numpy().tobytes()
    quantized = module.quant_weight()
    if slot.kind == "scales":
        return quantized.scale.detach().cpu().float().reshape(-1).expand(slot.shape[0]).numpy().tobytes()
    layer: LayerPlan = quant_plan.layer(slot.name)
    codes = torch.round(quantized.value / quantized.scale).to(torch.int64)
    return pack_codes(codes, slot.bits, binary=layer.weight.format.kind == "binary")


def _decode(model: nn.Module, quant_plan: QuantPlan, slot: _Slot, chunk: bytes) -> None:
    if slot.kind == "raw":
        target = _tensor(model, slot.name)
        target.copy_(torch.from_numpy(np.frombuffer(chunk, dtype=_numpy_dtype(target)).copy()).view(target.shape))
        return
    module = model.get_submodule(slot.name)
    if slot.kind == "act_scale":
        input_scale_parameter(module).value.copy_(torch.from_numpy(np.frombuffer(chunk, dtype=np.float32).copy())[0])
        return
    fixed = next(m for m in module.weight_quant.modules() if isinstance(m, FixedScale))
    if slot.kind == "scales":
        fixed.value.copy_(torch.from_numpy(np.frombuffer(chunk, dtype=np.float32).copy()).view(fixed.value.shape))
        return
    layer = quant_plan.layer(slot.name)
    codes = unpack_codes(chunk, module.weight.numel(), slot.bits, binary=layer.weight.format.kind == "binary")
    module.weight.copy_(codes.to(module.weight.dtype).view(module.weight.shape) * fixed.value)


def _tensor(model: nn.Module, name: str) -> torch.Tensor:
    module_name, _, attribute = name.rpartition(".")
    return getattr(model.get_submodule(module_name) if module_name else model, attribute)


def _numpy_dtype(tensor: torch.Tensor) -> np.dtype:
    return torch.empty(0, dtype=tensor.dtype).numpy().dtype


def _checksum(slots: list[_Slot]) -> int:
    description = json.dumps([[s.kind, s.name, list(s.shape), s.dtype, s.bits] for s in slots])
    return zlib.crc32(description.encode())


def _read_header(data: bytes, path) -> tuple[dict, int]:
    start = len(MAGIC) + _PREAMBLE.size
    if data[: len(MAGIC)] != MAGIC or len(data) < start:
        raise TrimkitError(f"{path} is not a trimkit packed model (no TRIMPACK header)")
    version, header_length = _PREAMBLE.unpack(data[len(MAGIC): start])
    if version > VERSION:
        raise TrimkitError(f"{path} is packed format {version}, newer than this trimkit ({VERSION}); upgrade trimkit")
    try:
        header = json.loads(zlib.decompress(data[start: start + header_length]))
    except (zlib.error, ValueError):
        raise TrimkitError(f"{path} has a damaged header; re-export it") from None
    return header, start + header_length
