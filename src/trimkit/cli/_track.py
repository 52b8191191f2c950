"""`trimkit track` and the tracking side of `trimkit eval`: thin over trimkit.tracking."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.table import Table

from trimkit._atomic import atomic_path
from trimkit._outputs import check_output
from trimkit.cli._common import resolve_model
from trimkit.cli._console import console, err_console, print_json
from trimkit.cli._options import JsonOption, TrustOption, WeightsOption
from trimkit.errors import TrimkitError


def _tracker_model(model: str, weights: Path | None, trusted: bool):
    from trimkit.tracking import check_tracker_model

    loaded = resolve_model(model, weights, trusted=trusted)
    check_tracker_model(loaded.model, f"MODEL {model}")
    return loaded


def track_command(
    model: Annotated[str, typer.Argument(help="A Siamese tracker: trimkit model file (or zoo name, untrained).")],
    sequence: Annotated[Path, typer.Option(help="Sequence folder: frames and groundtruth_rect.txt (OTB) or "
                                                "groundtruth.txt (VOT, GOT-10k); only the first box is used.")],
    out: Annotated[Path | None, typer.Option(help="Write the boxes here: x,y,w,h, one line per frame.")] = None,
    show: Annotated[bool, typer.Option(help="Also write the frames with the boxes drawn, as an animated GIF "
                                            "beside --out (or SEQUENCE.gif here).")] = False,
    scales: Annotated[int, typer.Option(help="Scales in the search pyramid (odd).")] = 3,
    weights: WeightsOption = None,
    trust_checkpoint: TrustOption = False,
    as_json: JsonOption = False,
) -> None:
    """Track the target of a sequence from its first box; print or write one box per frame."""
    from trimkit.tracking import TrackerParams, load_sequence, score_boxes, track

    if out is not None:
        check_output(out, example="boxes.txt")
    gif = None
    if show:
        gif = out.with_suffix(".gif") if out is not None else Path(f"{sequence.name or 'track'}.gif")
        check_output(gif, flag="--show", example="track.gif")
    try:
        params = TrackerParams(scales=scales)
    except ValueError:
        raise TrimkitError(f"--scales {scales}: give an odd number from 1 to 7") from None
    loaded = _tracker_model(model, weights, trust_checkpoint)
    frames = load_sequence(sequence)
    result = track(loaded.model, frames, params)
    lines = "".join(",".join(f"{v:.2f}" for v in box) + "\n" for box in result.boxes)
    if out is not None:
        with atomic_path(out) as temporary:
            temporary.write_text(lines, encoding="utf-8")
    if gif is not None:
        _write_gif(frames, result.boxes, gif)
    scores = score_boxes(result.boxes, frames.boxes)
    summary = {"frames": len(result.boxes), "fps": result.fps, "precision": scores.precision,
               "success_auc": scores.success_auc, "mean_iou": scores.mean_iou, "out": str(out) if out else None,
               "show": str(gif) if gif else None}
    if as_json:
        print_json({**summary, "boxes": result.boxes.round(2).tolist()})
        return
    if out is None:
        typer.echo(lines, nl=False)
    err_console.print(f"{len(result.boxes)} frames of {frames.name}; against its boxes: precision "
                      f"{scores.precision:.3f}, success AUC {scores.success_auc:.3f}, mean IoU {scores.mean_iou:.3f}"
                      + (f"; boxes in {out}" if out else "") + (f"; frames in {gif}" if gif else ""))


def _write_gif(sequence, boxes: np.ndarray, path: Path) -> None:
    from PIL import Image, ImageDraw

    images = []
    for index, box in enumerate(boxes):
        image = Image.fromarray(sequence.frame(index))
        draw = ImageDraw.Draw(image)
        x, y, w, h = sequence.boxes[index]
        draw.rectangle([x, y, x + w, y + h], outline=(0, 255, 0), width=2)
        x, y, w, h = box
        draw.rectangle([x, y, x + w, y + h], outline=(255, 0, 0), width=2)
        images.append(image.convert("P", palette=Image.Palette.ADAPTIVE))
    with atomic_path(path) as temporary:
        images[0].save(temporary, format="GIF", save_all=True, append_images=images[1:], duration=40, loop=0)


def eval_tracking(loaded, data: str | None, data_dir: Path | None, *, scales: int = 3,
                  as_json: bool = False) -> None:
    """Track every sequence of ``--data tracking:DIR`` and print OTB's scores."""
    from trimkit.tasks.tracking import sequences_folder
    from trimkit.tracking import TrackerParams, check_tracker_model, evaluate_tracker, load_sequences

    check_tracker_model(loaded.model, f"MODEL {loaded.label}")
    folder = sequences_folder(data, data_dir)
    sequences = load_sequences(folder)
    evaluation = evaluate_tracker(loaded.model, sequences, TrackerParams(scales=scales), progress=True)
    pooled = evaluation.pooled
    if as_json:
        print_json({**pooled.as_dict(), "sequences": {k: v.as_dict() for k, v in evaluation.per_sequence.items()},
                    "per_frame_ms": evaluation.timings.per_frame_ms()})
        return
    table = Table(title=f"{loaded.label} tracking {folder}")
    for column in ("sequence", "frames", "precision@20px", "success AUC", "mean IoU", "fps"):
        table.add_column(column, justify="right")
    rows = [*evaluation.per_sequence.items(), ("all (frame-weighted)", pooled)]
    for label, s in rows:
        table.add_row(label, str(s.frames), f"{s.precision:.3f}", f"{s.success_auc:.3f}", f"{s.mean_iou:.3f}",
                      f"{s.fps:.1f}")
    console.print(table)
