"""Integer codes packed at their real width: n bits each, little-endian bit order.

intN and ternary codes are stored in n-bit two's complement (ternary: 2 bits); binary
codes (-1, +1) are stored as one bit each, 1 for +1. ``numel`` codes take
``ceil(numel * bits / 8)`` bytes.
"""

from __future__ import annotations

import numpy as np
import torch


def pack_codes(codes: torch.Tensor, bits: int, *, binary: bool = False) -> bytes:
    values = codes.detach().cpu().reshape(-1).to(torch.int64).numpy()
    if binary:
        if not np.isin(values, (-1, 1)).all():
            raise ValueError("binary codes must be -1 or +1")
        return np.packbits(values > 0, bitorder="little").tobytes()
    low, high = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    if values.size and (values.min() < low or values.max() > high):
        raise ValueError(f"codes outside the {bits}-bit range [{low}, {high}]")
    unsigned = values.astype(np.uint64) & np.uint64((1 << bits) - 1)
    bit_matrix = (unsigned[:, None] >> np.arange(bits, dtype=np.uint64)) & np.uint64(1)
    return np.packbits(bit_matrix.astype(np.uint8).reshape(-1), bitorder="little").tobytes()


def unpack_codes(data: bytes, numel: int, bits: int, *, binary: bool = False) -> torch.Tensor:
    flat_bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder="little")
    if binary:
        return torch.from_numpy(flat_bits[:numel].astype(np.int64) * 2 - 1)
    bit_matrix = flat_bits[: numel * bits].reshape(numel, bits).astype(np.int64)
    values = (bit_matrix << np.arange(bits, dtype=np.int64)).sum(axis=1)
    values = np.where(values >= 1 << (bits - 1), values - (1 << bits), values)
    return torch.from_numpy(values)


def packed_bytes(numel: int, bits: int) -> int:
    return -(-numel * bits // 8)
