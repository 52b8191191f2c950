"""The teacher's precision: the fastest that keeps its predictions, chosen by a check."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from trimkit._device import cpu_has_native_bf16
from trimkit.errors import TrimkitError

TEACHER_PRECISIONS = ("auto", "fp32", "bf16")
MIN_AGREEMENT = 0.99  # share of predictions bf16 must keep
MIN_SPEEDUP = 1.1  # bf16 must be at least this much faster to be worth any change in outputs


@dataclass(frozen=True)
class PrecisionChoice:
    """What the check measured and chose: ``precision`` is ``fp32`` or ``bf16``;
    ``agreement`` is the share of the teacher's top-1 predictions bf16 keeps; seconds are
    the median over timed passes on the example batch (None where not measured)."""

    precision: str
    reason: str
    agreement: float | None = None
    fp32_seconds: float | None = None
    bf16_seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def bf16_available(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and cpu_has_native_bf16()


@torch.no_grad()
def teacher_outputs(teacher: nn.Module, inputs: tuple[torch.Tensor, ...], precision: str) -> Any:
    """The teacher's outputs in ``precision``, without gradients, as fp32 tensors."""
    device_type = inputs[0].device.type
    with torch.autocast(device_type, dtype=torch.bfloat16, enabled=precision == "bf16"):
        outputs = teacher(*inputs)
    return outputs.float() if isinstance(outputs, torch.Tensor) else outputs


def choose_precision(teacher: nn.Module, inputs: tuple[torch.Tensor, ...], requested: str = "auto",
                     repeats: int = 3) -> PrecisionChoice:
    """``fp32`` or ``bf16`` for the teacher's forward passes.

    ``auto`` measures both on ``inputs`` (a real batch): bf16 is chosen when the device
    runs it natively, it keeps at least 99 % of the teacher's top-1 predictions, and it
    is at least 10 % faster (median of ``repeats`` timed passes after a warm-up); fp32
    otherwise. The choice and the measurements are returned so that callers record them.
    """
    if requested not in TEACHER_PRECISIONS:
        raise TrimkitError(f"unknown teacher precision {requested!r}; choose one of: {', '.join(TEACHER_PRECISIONS)}")
    if requested != "auto":
        return PrecisionChoice(requested, "asked for")
    if not bf16_available(inputs[0].device):
        return PrecisionChoice("fp32", f"no native bf16 on {inputs[0].device.type}")
    timings: dict[str, float] = {}
    outputs: dict[str, torch.Tensor] = {}
    for precision in ("fp32", "bf16"):
        outputs[precision] = teacher_outputs(teacher, inputs, precision)  # warm-up, and the outputs compared
        seconds = []
        for _ in range(repeats):
            _synchronize(inputs[0].device)
            started = time.perf_counter()
            teacher_outputs(teacher, inputs, precision)
            _synchronize(inputs[0].device)
            seconds.append(time.perf_counter() - started)
        timings[precision] = sorted(seconds)[len(seconds) // 2]
    agreement = float((_top1(outputs["fp32"]) == _top1(outputs["bf16"])).float().mean())
    speedup = timings["fp32"] / max(timings["bf16"], 1e-12)
    if agreement < MIN_AGREEMENT:
        choice, reason = "fp32", f"bf16 keeps only {agreement:.1%} of the top-1 predictions"
    elif speedup < MIN_SPEEDUP:
        choice, reason = "fp32", f"bf16 is not faster ({speedup:.2f}x)"
    else:
        choice, reason = "bf16", f"bf16 keeps {agreement:.1%} of the top-1 predictions at {speedup:.2f}x the speed"
    return PrecisionChoice(choice, reason, agreement, timings["fp32"], timings["bf16"])


def _synchronize(device: torch.device) -> None:
    """CUDA runs kernels asynchronously: time only after they are done."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _top1(outputs: Any) -> torch.Tensor:
    if not isinstance(outputs, torch.Tensor):
        raise TrimkitError(f"the teacher gives a {type(outputs).__name__}, not a tensor of class scores; "
                           "distillation needs a teacher with tensor outputs")
    return outputs.argmax(dim=1) if outputs.dim() > 1 else outputs
