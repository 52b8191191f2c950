"""The tracker seed's quantisation study (Przewlocka et al. 2020, Tables 2 and 3) on
trimkit's SiamFC: five per-layer policies, each trained with QAT on the same budget,
with the memory of its convolution parameters and its tracking precision and IoU.

Rows (Table 2): first / hidden / last convolution of the shared backbone and the
activations, as trimkit policies:

1. FP32 everywhere                       ``float32``
2. INT16 everywhere, INT32 activations   ``first=int16,hidden=int16,last=int16,act=int32``
3. INT16 / INT4 / INT8, INT32            ``first=int16,hidden=int4,last=int8,act=int32``
4. INT16 / ternary / INT8, INT32         ``first=int16,hidden=ternary,last=int8,act=int32``
5. INT16 / binary / INT8, INT32          ``first=int16,hidden=binary,last=int8,act=int32``

"first" and "last" are the backbone's first and last convolutions (the plan's roles on
the tracker: the correlation and the output scale hold no weights).

Columns: the convolution-parameter memory (trimkit's analytic count: weights at their
width, one float32 scale per output channel, float32 biases; checked against hand counts
in tests/test_tracker_policies.py), the whole model's packed file (``.tpk``), and
precision at 20 px and mean IoU over the real sequences in ../shared/data/tracking
(mean over sequences, as the seed averages; pooled over frames in brackets), beside the
seed's figures. The seed trained on 10,000 ILSVRC15 pairs for 30 epochs on a GPU; here
every row trains from the same FP32 tracker with the same reduced CPU budget, printed.

    python benchmarks/tracker_policies.py [--quick] [--epochs E] [--pairs N] [--width W]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from trimkit import models, quant

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TRACKING = DATA / "tracking"
MODEL = "siamfc_seed"


@dataclass(frozen=True)
class SeedRow:
    """One row of the seed's Tables 2 and 3."""

    row: str
    label: str
    policy: str
    memory_mb: float
    precision: float
    iou: float


SEED_ROWS = (
    SeedRow("1", "FP32", "float32", 85.5, 38.58, 28.42),
    SeedRow("2", "INT16", "first=int16,hidden=int16,last=int16,act=int32", 38.3, 42.87, 31.24),
    SeedRow("3", "INT4", "first=int16,hidden=int4,last=int8,act=int32", 13.4, 36.73, 27.83),
    SeedRow("4", "TERNARY", "first=int16,hidden=ternary,last=int8,act=int32", 9.3, 44.35, 33.40),
    SeedRow("5", "BINARY", "first=int16,hidden=binary,last=int8,act=int32", 7.2, 44.22, 32.59),
)


@dataclass(frozen=True)
class Memory:
    conv_param_bytes: int
    analytic_bytes: int
    packed_bytes: int


def example_crops(model: nn.Module, batch: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Random exemplar and search crops of the tracker's sizes (policies resolve on them)."""
    generator = torch.Generator().manual_seed(0)
    return (torch.randn(batch, 3, model.exemplar_size, model.exemplar_size, generator=generator),
            torch.randn(batch, 3, model.search_size, model.search_size, generator=generator))


def check_roles(model: nn.Module, policy: str, inputs: tuple[torch.Tensor, ...] | None = None) -> None:
    """The policy's first and last layers must be the backbone's first and last
    convolutions, as in the seed's Table 2."""
    convolutions = [f"backbone.{name}" for name, module in model.backbone.named_children()
                    if isinstance(module, nn.Conv2d)]
    roles = {layer.name: layer.role for layer in quant.plan(model, policy, inputs or example_crops(model)).layers}
    expected = {name: "first" if index == 0 else "last" if index == len(convolutions) - 1 else "hidden"
                for index, name in enumerate(convolutions)}
    if roles != expected:
        raise RuntimeError(f"policy roles on the tracker are {roles}, the seed's are {expected}")


def memory(model: nn.Module, policy: str | None = None, inputs: tuple[torch.Tensor, ...] | None = None) -> Memory:
    """Convolution-parameter bytes (analytic), the whole model's analytic bytes, and the
    packed file's bytes, for a quantised model or a float model under ``policy``.
    FP32 has no packed file: its state dict's float32 bytes stand in. ``inputs``
    (default: crops of the tracker's sizes) only resolve the policy's roles."""
    inputs = inputs or example_crops(model)
    size = quant.size_report(model, policy, example_inputs=inputs) if policy else quant.size_report(model)
    is_float = policy == "float32" or (policy is None and quant.plan_of(model) is None)
    if is_float:
        packed = size.analytic_bytes
    elif policy is not None:
        packed = quant.packed_size(model, policy, example_inputs=inputs)
    else:
        with tempfile.TemporaryDirectory() as folder:
            packed = quant.save_packed(model, Path(folder) / "tracker.tpk")
    return Memory(size.conv_param_bytes, size.analytic_bytes, packed)


def memory_table(width: float) -> None:
    model = models.create(MODEL, width=width)
    reference = memory(model, "float32").conv_param_bytes
    seed_reference = SEED_ROWS[0].memory_mb
    print(f"\nMemory of convolution parameters, {MODEL} width {width} (analytic; packed = whole model's .tpk file)")
    print("| # | policy | conv params (MB) | ratio | seed MB | seed ratio | packed file (B) |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for seed in SEED_ROWS:
        check_roles(model, seed.policy)
        row = memory(model, seed.policy)
        print(f"| {seed.row} | {seed.policy} | {row.conv_param_bytes / 1e6:.3f} | "
              f"{row.conv_param_bytes / reference:.3f} | {seed.memory_mb} | {seed.memory_mb / seed_reference:.3f} | "
              f"{row.packed_bytes:,} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="about a minute: tiny budget, for smoke checks")
    parser.add_argument("--width", type=float, default=None, help="hidden-channel multiplier of the backbone")
    args = parser.parse_args()
    width = args.width if args.width is not None else (0.25 if args.quick else 0.5)
    print(f"load average at start {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPU cores")
    started = time.perf_counter()
    memory_table(width)
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
