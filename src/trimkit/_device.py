"""Where and in what precision to compute: CUDA when present, else the CPU with bf16
autocast where the CPU has native bf16 instructions (AVX512-BF16 or AMX)."""

from __future__ import annotations

import contextlib
from typing import ContextManager

import torch

from trimkit._cpu import cpu_flags
from trimkit.errors import TrimkitError

__all__ = ["autocast", "cpu_flags", "cpu_has_native_bf16", "resolve_device", "resolve_precision"]

PRECISIONS = ("auto", "bf16", "fp32")


def cpu_has_native_bf16() -> bool:
    return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` becomes bf16 on CUDA and on CPUs with native bf16, fp32 otherwise."""
    if precision not in PRECISIONS:
        raise TrimkitError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if cpu_has_native_bf16() else "fp32"


def autocast(device: torch.device, precision: str) -> ContextManager:
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
