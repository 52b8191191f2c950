"""What a masked model really weighs: its weights in a sparse format beside dense.

Each masked weight tensor is stored in the smallest of three formats, all exact:

- ``dense``: every value, 4 bytes each;
- ``bitmask``: one bit per position (``ceil(n / 8)`` bytes), then the nonzero values;
- ``index``: each nonzero value with its flat position in the fewest whole bytes that
  address the tensor (1, 2 or 4).

Everything else in the state dict (biases, norm layers, buffers, unmasked weights)
counts dense, at its element size. The total is the ``sparse`` size kind of a
:class:`~trimkit.record.Measurement`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from trimkit import _masks

VALUE_BYTES = 4  # fp32 values


@dataclass(frozen=True)
class SparseLayer:
    weights: int
    nonzero: int
    dense_bytes: int
    bitmask_bytes: int
    index_bytes: int

    @property
    def format(self) -> str:
        sizes = {"dense": self.dense_bytes, "bitmask": self.bitmask_bytes, "index": self.index_bytes}
        return min(sizes, key=sizes.__getitem__)

    @property
    def bytes(self) -> int:
        return min(self.dense_bytes, self.bitmask_bytes, self.index_bytes)


@dataclass
class SparseSize:
    """``dense_bytes``: the state dict as held; ``sparse_bytes``: with each masked weight
    in its smallest format (``layers`` says which)."""

    dense_bytes: int
    sparse_bytes: int
    layers: dict[str, SparseLayer] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        """How many times smaller than dense."""
        return self.dense_bytes / max(self.sparse_bytes, 1)

    def to_dict(self) -> dict[str, Any]:
        return {"dense_bytes": self.dense_bytes, "sparse_bytes": self.sparse_bytes,
                "layers": {name: {"weights": layer.weights, "nonzero": layer.nonzero, "format": layer.format,
                                  "bytes": layer.bytes} for name, layer in self.layers.items()}}


def layer_size(weights: int, nonzero: int) -> SparseLayer:
    index_width = 1 if weights <= 1 << 8 else 2 if weights <= 1 << 16 else 4
    return SparseLayer(weights=weights, nonzero=nonzero, dense_bytes=weights * VALUE_BYTES,
                       bitmask_bytes=math.ceil(weights / 8) + nonzero * VALUE_BYTES,
                       index_bytes=nonzero * (VALUE_BYTES + index_width))


def sparse_size(model: nn.Module) -> SparseSize:
    """The model's bytes dense and with its masked weights in a sparse format."""
    masks = _masks.masks_of(model)
    dense = sparse = 0
    layers = {}
    for name, tensor in model.state_dict().items():
        if not isinstance(tensor, torch.Tensor):
            continue
        size = tensor.numel() * tensor.element_size()
        dense += size
        if name in masks and tensor.element_size() == VALUE_BYTES:
            layer = layer_size(tensor.numel(), int(torch.count_nonzero(tensor)))
            layers[name] = layer
            sparse += layer.bytes
        else:
            sparse += size
    return SparseSize(dense, sparse, layers)
