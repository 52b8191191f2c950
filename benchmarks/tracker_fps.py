"""Frames per second of the whole SiamFC tracker on this CPU, and where the time goes.

Each row runs trimkit's tracker (``trimkit.tracking.track``: crop the scale pyramid,
run the backbone on all scales in one batch, correlate with the exemplar's features,
upsample, window and update the box) over the same real frames, on ``--threads``
threads, with the backbone run by:

- PyTorch (FP32, the reference),
- ONNX Runtime and OpenVINO, FP32 and INT8 (trimkit's PTQ: QDQ U8S8, calibrated on
  crops of another sequence), through trimkit.measure's backends;
- the same after structured pruning (``--prune-ratio`` of the backbone's filters by
  L1 norm, the features in both branches at once; not fine-tuned: the speed is what
  this measures).

Per row: frames per second over the timed frames (reading frames excluded, a few
warm-up frames first), the time per frame in each stage (crop, backbone, correlation,
update: the tracker's own timings), how far from 30 fps (the speed-up still needed),
and the tracking precision at 20 px on those frames (meaningful only with trained
weights, ``--weights``; the pruned rows are not fine-tuned).

    python benchmarks/tracker_fps.py [--quick] [--model siamfc|siamfc_seed] [--width W]
                                     [--weights TRACKER.pt] [--frames N] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

import trimkit
from trimkit import data, measure, models, prune, quant, tracking
from trimkit.measure._target import ModelTarget

TRACKING = Path(__file__).resolve().parents[2] / "shared" / "data" / "tracking"
REAL_TIME_FPS = 30.0
STAGES = ("crop", "backbone", "correlation", "update")
RUNTIMES = ("onnxruntime", "openvino")


class RuntimeEmbed:
    """The backbone run by a trimkit.measure backend: one compiled session per crop
    side (exemplar once per sequence, the search pyramid every frame)."""

    def __init__(self, backend: str, files: dict[int, Path], batches: dict[int, int], threads: int) -> None:
        runtime = measure.get_backend(backend)
        self.sessions = {}
        for side, path in files.items():
            target = ModelTarget(f"backbone {side}", ((3, side, side),), (np.dtype(np.float32),), onnx_path=path)
            self.sessions[side] = runtime.open(target, batch_size=batches[side], threads=threads, precision="fp32")

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        session = self.sessions[int(images.shape[-1])]
        return torch.from_numpy(session.infer([images.numpy()])[0])

    def close(self) -> None:
        for session in self.sessions.values():
            session.close()


@dataclass
class Row:
    label: str
    fps: float
    stages_ms: dict[str, float]
    precision: float


def crop_dataset(sequence: tracking.Sequence, params: tracking.TrackerParams, side: int, count: int,
                 normalization) -> data.ImageDataset:
    """``count`` crops of ``side`` pixels around the true target of ``sequence``'s
    frames (exemplar or search crops, at the pyramid's scales): PTQ calibration data."""
    frames = np.linspace(0, len(sequence) - 1, count).astype(int)
    factors = params.scale_factors()
    crops = []
    for index, frame_index in enumerate(frames):
        x, y, w, h = (float(v) for v in sequence.boxes[frame_index])
        z_side = tracking.exemplar_side(w, h, params.context)
        region = z_side * side / params.exemplar_size * float(factors[index % len(factors)])
        image = tracking.frame_tensor(sequence.frame(frame_index))
        crops.append(tracking.crop(image, (x + w / 2, y + h / 2), region, side).round().clamp(0, 255))
    images = torch.stack(crops).to(torch.uint8)
    return data.ImageDataset(f"{sequence.name} crops", "calibration", images,
                             torch.zeros(len(images), dtype=torch.long), ("target",), normalization)


def backbone_files(model: nn.Module, folder: Path, params: tracking.TrackerParams, calibration: tracking.Sequence,
                   count: int, normalization) -> dict[str, dict[int, Path]]:
    """FP32 and INT8 ONNX files of the backbone for the exemplar and the search side."""
    files: dict[str, dict[int, Path]] = {"fp32": {}, "int8": {}}
    for side in (params.exemplar_size, params.search_size):
        crops = crop_dataset(calibration, params, side, count, normalization)
        result = quant.ptq_int8(model.backbone, crops, out=folder / f"backbone{side}.int8.onnx",
                                calibration_images=count)
        files["fp32"][side], files["int8"][side] = result.fp32_path, result.path
    return files


def run_row(label: str, model: nn.Module, sequence: tracking.Sequence, params: tracking.TrackerParams,
            embed: Callable[[torch.Tensor], torch.Tensor] | None, warmup: int) -> Row:
    tracking.track(model, sequence.head(warmup + 1), params, embed=embed)
    result = tracking.track(model, sequence, params, embed=embed)
    scores = tracking.score_boxes(result.boxes, sequence.boxes)
    return Row(label, result.fps, result.timings.per_frame_ms(), scores.precision)


def rows_for(name: str, model: nn.Module, sequence, calibration, params, args, folder: Path,
             normalization) -> list[Row]:
    rows = [run_row(f"{name} torch fp32", model, sequence, params, None, args.warmup)]
    files = backbone_files(model, folder, params, calibration, args.calibration_crops, normalization)
    batches = {params.exemplar_size: 1, params.search_size: params.scales}
    for runtime in RUNTIMES:
        for precision in ("fp32", "int8"):
            embed = RuntimeEmbed(runtime, files[precision], batches, args.threads)
            try:
                rows.append(run_row(f"{name} {runtime} {precision}", model, sequence, params, embed, args.warmup))
            finally:
                embed.close()
    return rows


def print_rows(rows: list[Row], trained: bool) -> None:
    budget_ms = 1000 / REAL_TIME_FPS
    print("| tracker | fps | ms/frame | " + " | ".join(f"{stage} ms" for stage in STAGES)
          + " | to reach 30 fps | precision@20px |")
    print("| --- | ---: | ---: | " + " | ".join("---:" for _ in STAGES) + " | --- | ---: |")
    for row in rows:
        per_frame = 1000 / row.fps if row.fps > 0 else float("inf")
        gap = "meets it" if per_frame <= budget_ms else f"{per_frame / budget_ms:.1f}x faster needed"
        stages = " | ".join(f"{row.stages_ms[stage]:.1f}" for stage in STAGES)
        precision = f"{100 * row.precision:.1f}" if trained else "- (untrained)"
        print(f"| {row.label} | {row.fps:.1f} | {per_frame:.1f} | {stages} | {gap} | {precision} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="about a minute: quarter width, 12 frames")
    parser.add_argument("--model", default="siamfc", choices=("siamfc", "siamfc_seed"))
    parser.add_argument("--width", type=float, default=None, help="hidden-channel multiplier (default 1, quick 0.25)")
    parser.add_argument("--weights", type=Path, default=None, help="a trained tracker (trimkit .pt); else untrained")
    parser.add_argument("--sequence", type=Path, default=TRACKING / "vot14_sphere")
    parser.add_argument("--calibration", type=Path, default=TRACKING / "vot15_bag")
    parser.add_argument("--frames", type=int, default=None, help="frames timed (default 100, quick 12)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--scales", type=int, default=3)
    parser.add_argument("--prune-ratio", type=float, default=0.5)
    parser.add_argument("--calibration-crops", type=int, default=None, help="PTQ crops (default 64, quick 8)")
    args = parser.parse_args()
    width = args.width if args.width is not None else (0.25 if args.quick else 1.0)
    frames = args.frames or (12 if args.quick else 100)
    args.calibration_crops = args.calibration_crops or (8 if args.quick else 64)
    torch.set_num_threads(args.threads)
    print(f"load average at start {os.getloadavg()[0]:.2f}; {os.cpu_count()} CPU cores, {args.threads} threads")

    model = trimkit.load(args.weights) if args.weights else models.create(args.model, width=width)
    tracking.check_tracker_model(model)
    model.eval()
    origin = models.origin(model)
    normalization = origin.normalization()
    params = tracking.TrackerParams(scales=args.scales, exemplar_size=model.exemplar_size,
                                    search_size=model.search_size)
    sequence = tracking.load_sequence(args.sequence).head(frames + 1)
    calibration = tracking.load_sequence(args.calibration)
    described = f"{args.weights} ({origin.name})" if args.weights else f"{args.model} width {width}, untrained"
    print(f"model: {described}; {len(sequence) - 1} frames of {sequence.name} timed after {args.warmup} warm-up "
          f"frames; {params.scales} scales; INT8 calibrated on {args.calibration_crops} crops of {calibration.name}")

    started = time.perf_counter()
    exemplar = torch.zeros(1, 3, params.exemplar_size, params.exemplar_size)
    search = torch.zeros(1, 3, params.search_size, params.search_size)
    pruned = prune.structured(model, (exemplar, search), ratio=args.prune_ratio).model.eval()
    with tempfile.TemporaryDirectory(prefix="tracker-fps-") as folder:
        rows = rows_for("", model, sequence, calibration, params, args, Path(folder) / "full", normalization)
        rows += rows_for(f"pruned {args.prune_ratio:g}", pruned, sequence, calibration, params, args,
                         Path(folder) / "pruned", normalization)
    print_rows([Row(row.label.strip(), row.fps, row.stages_ms, row.precision) for row in rows],
               args.weights is not None)
    print(f"\n{time.perf_counter() - started:.0f} s; load average at end {os.getloadavg()[0]:.2f} "
          "(timings on a busy machine are not comparable; rerun on a quiet one)")


if __name__ == "__main__":
    main()
