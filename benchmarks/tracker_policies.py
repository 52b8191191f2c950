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
precision at 20 px and mean IoU on the real sequences held out from training (VOT2014
sphere, OTB Crossing; mean over sequences, as the seed averages, and pooled over
frames), beside the seed's figures and a box that never moves. Training pairs come from
VOT2015 bag and CamVid still objects (as the siamfc-shared-data recipe). The seed
trained on 10,000 ILSVRC15 pairs for 30 epochs on a GPU; here every row trains from the
same FP32 tracker with the same reduced CPU budget, printed.

    python benchmarks/tracker_policies.py [--quick] [--memory-only] [--epochs E] [--pairs N] [--width W]
                                          [--frames F]
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from trimkit import models, quant, tracking, train
from trimkit.tasks import tracking as tasks_tracking

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TRACKING = DATA / "tracking"
MODEL = "siamfc_seed"
TRAIN_SEQUENCES = ("vot15_bag",)
EVAL_SEQUENCES = ("vot14_sphere", "otb_Crossing")


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


@dataclass(frozen=True)
class Budget:
    """The same training budget for every row: FP32 pre-training of the tracker, then
    QAT (or, for FP32, fine-tuning) from it; tracking on the first ``frames`` frames of
    each real sequence."""

    width: float
    pretrain_epochs: int
    epochs: int
    pairs: int
    batch_size: int
    lr: float
    stills: int
    frames: int | None

    @classmethod
    def quick(cls) -> Budget:
        return cls(width=0.25, pretrain_epochs=1, epochs=1, pairs=32, batch_size=8, lr=0.001, stills=60, frames=12)

    @classmethod
    def default(cls) -> Budget:
        return cls(width=0.25, pretrain_epochs=3, epochs=1, pairs=160, batch_size=16, lr=0.001, stills=400,
                   frames=80)

    def describe(self) -> str:
        frames = f"the first {self.frames} frames of" if self.frames else "all frames of"
        return (f"{MODEL} width {self.width}; FP32 pre-training {self.pretrain_epochs} epoch(s), then every row "
                f"{self.epochs} epoch(s) of QAT (row 1: FP32 fine-tuning), {self.pairs} pairs per epoch from "
                f"{', '.join(TRAIN_SEQUENCES)} (frames at most 50 apart) and {self.stills} still objects of CamVid's "
                f"train split, batch {self.batch_size}, Adam lr {self.lr} cosine; tracked on {frames} "
                f"{' and '.join(EVAL_SEQUENCES)} (held out). The seed: 10,000 ILSVRC15 pairs, 30 epochs, a GPU.")


def training_task(model: nn.Module, budget: Budget) -> tasks_tracking.TrackingTask:
    stills = tracking.camvid_objects(DATA / "camvid", "train", limit=budget.stills)
    train_sequences = [tracking.load_sequence(TRACKING / name) for name in TRAIN_SEQUENCES]
    held_out = [tracking.load_sequence(TRACKING / name) for name in EVAL_SEQUENCES]
    return tasks_tracking.tracking_task(train_sequences, stills, held_out, model=model, pairs_per_epoch=budget.pairs,
                                        val_pairs=8, name="vot15_bag + camvid stills")


def fit_options(budget: Budget) -> dict:
    return dict(batch_size=budget.batch_size, optimizer="adam", lr=budget.lr, weight_decay=1e-4, precision="fp32",
                eval_split=None, progress=False)


def pretrain(task, budget: Budget) -> nn.Module:
    train.seed_everything(0)
    model = models.create(MODEL, width=budget.width)
    train.fit(model, task, epochs=budget.pretrain_epochs, **fit_options(budget))
    return model


def train_row(float_model: nn.Module, policy: str, task, budget: Budget) -> nn.Module:
    """QAT of ``policy`` from the FP32 tracker (FP32: the same budget of fine-tuning)."""
    train.seed_everything(0)
    if policy == "float32":
        model = copy.deepcopy(float_model)
        train.fit(model, task, epochs=budget.epochs, **fit_options(budget))
        return model
    return quant.qat(float_model, policy, task, epochs=budget.epochs, example_inputs=task.example_inputs(2),
                     calibration_batches=2, **fit_options(budget)).model


def tracking_scores(model: nn.Module, task, budget: Budget) -> tuple[float, float, float, float]:
    """Precision at 20 px and mean IoU (%): mean over sequences (the seed's average),
    and pooled over frames."""
    evaluation = task.track_scores(model.eval(), frames=budget.frames)
    per_sequence = list(evaluation.per_sequence.values())
    mean_precision = 100 * sum(s.precision for s in per_sequence) / len(per_sequence)
    mean_iou = 100 * sum(s.mean_iou for s in per_sequence) / len(per_sequence)
    return mean_precision, mean_iou, 100 * evaluation.pooled.precision, 100 * evaluation.pooled.mean_iou


def study(budget: Budget) -> None:
    print(f"\nBudget: {budget.describe()}")
    task = training_task(models.create(MODEL, width=budget.width), budget)
    started = time.perf_counter()
    float_model = pretrain(task, budget)
    print(f"FP32 pre-training: {time.perf_counter() - started:.0f} s")
    static = tracking.pool_scores([tracking.score_boxes(np.repeat(s.boxes[:1], len(s.head(budget.frames or len(s))), 0),
                                                        s.head(budget.frames or len(s)).boxes)
                                   for s in task.sequences])
    print(f"a box that never moves: precision {100 * static.precision:.1f} %, mean IoU {100 * static.mean_iou:.1f} % "
          "(pooled)")
    reference = memory(float_model, "float32").conv_param_bytes
    print("| # | seed row | conv params (MB) | ratio | seed MB | seed ratio | packed (B) | precision % "
          "| IoU % | pooled precision % | pooled IoU % | seed precision % | seed IoU % | train s |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for seed in SEED_ROWS:
        check_roles(float_model, seed.policy)
        row_started = time.perf_counter()
        model = train_row(float_model, seed.policy, task, budget)
        seconds = time.perf_counter() - row_started
        size = memory(float_model, seed.policy)  # sizes depend on shapes and formats, not on the values
        precision, iou, pooled_precision, pooled_iou = tracking_scores(model, task, budget)
        print(f"| {seed.row} | {seed.label} | {size.conv_param_bytes / 1e6:.3f} | "
              f"{size.conv_param_bytes / reference:.3f} | {seed.memory_mb} | "
              f"{seed.memory_mb / SEED_ROWS[0].memory_mb:.3f} | {size.packed_bytes:,} | {precision:.1f} | {iou:.1f} | "
              f"{pooled_precision:.1f} | {pooled_iou:.1f} | {seed.precision:.2f} | {seed.iou:.2f} | {seconds:.0f} |",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="about a minute: tiny budget, for smoke checks")
    parser.add_argument("--memory-only", action="store_true", help="only the memory table (no training)")
    parser.add_argument("--width", type=float, default=None, help="hidden-channel multiplier of the backbone")
    parser.add_argument("--epochs", type=int, default=None, help="QAT epochs per row")
    parser.add_argument("--pairs", type=int, default=None, help="training pairs per epoch")
    parser.add_argument("--frames", type=int, default=None, help="frames tracked per sequence (0: all)")
    args = parser.parse_args()
    budget = Budget.quick() if args.quick else Budget.default()
    overrides = {"width": args.width, "epochs": args.epochs, "pairs": args.pairs,
                 "frames": None if args.frames == 0 else args.frames}
    budget = replace(budget, **{key: value for key, value in overrides.items()
                                if value is not None or (key == "frames" and args.frames == 0)})
    torch.set_num_threads(2)
    print(f"load average at start {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPU cores")
    started = time.perf_counter()
    memory_table(budget.width)
    if not args.memory_only:
        study(budget)
    print(f"\n{time.perf_counter() - started:.0f} s; load average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
