"""Options every command spells the same way, and the bridge from command-line values to
the stages' option models (one validation for the API, the CLI and recipes)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import BaseModel, ValidationError

from trimkit._options import describe
from trimkit.errors import TrimkitError

ModelArgument = Annotated[str, typer.Argument(
    help="Zoo name, your own model as module:function (mynet:MyNet(classes=7)), or trimkit model file.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
DataOption = Annotated[str | None, typer.Option(
    "--data", help="mnist5k, mnist, cifar10, an image folder, or a CamVid- or VOC-format segmentation folder.")]
DataDirOption = Annotated[
    Path | None, typer.Option(help="Folder with the data files (default: $TRIMKIT_DATA, ./data, ../shared/data).")
]
WeightsOption = Annotated[Path | None, typer.Option(help="Checkpoint to load into the zoo model.")]
TrustOption = Annotated[bool, typer.Option(help="Allow pickled objects in --weights (only for files you trust).")]
NumClassesOption = Annotated[int, typer.Option(help="Classes of the output layer.")]
InChannelsOption = Annotated[int | None, typer.Option(help="Input channels (default: the model's own).")]
SamplesOption = Annotated[int | None, typer.Option(
    help="Score a fixed random subset of this many images of the split (default: all of it).")]
TrainPrecisionOption = Annotated[str, typer.Option(help="auto (bf16 where the CPU has it), bf16 or fp32.")]
RuntimePrecisionOption = Annotated[str, typer.Option(help="auto (the runtime's choice), fp32 or bf16.")]

Options = TypeVar("Options", bound=BaseModel)


def stage_options(kind: type[Options], flags: dict[str, str] | None = None, **values: Any) -> Options:
    """``kind`` built from command-line values; a bad value is one line naming its flag
    (``--ratio: 1.5 is not in [0, 1) ...``). ``flags`` names the flag of a field where it
    is not the field's name (``{"min_time_s": "--min-time"}``)."""
    try:
        return kind.model_validate({key: value for key, value in values.items() if value is not None})
    except ValidationError as error:
        text = describe(error, "", kind)
        field, _, message = text.partition(": ")
        if field == "recipe" or not message:
            raise TrimkitError(message or text) from None
        name = field.split(".")[0].split("[")[0]
        flag = (flags or {}).get(name, "--" + name.replace("_", "-"))
        raise TrimkitError(f"{flag}: {message}") from None


def parse_layers(text: str) -> str | list[str]:
    """``conv``, ``dense``, ``both``, or layer names and globs separated by commas."""
    if text in ("conv", "dense", "both"):
        return text
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise TrimkitError("--layers: give conv, dense, both, or layer names such as features.0,features.3")
    return names


def at_least(flag: str, value: float | None, lowest: float) -> None:
    """A number option in range (and finite), or one line naming the flag."""
    import math

    if value is not None and not (math.isfinite(value) and value >= lowest):
        raise TrimkitError(f"{flag} {value} is out of range; give a number >= {lowest:g}")


InputShapeOption = Annotated[str | None, typer.Option(
    "--input-shape", help="CxHxW of one input, for a model of your own whose input nothing else records.")]


def parse_input_shape(text: str | None) -> tuple[int, ...] | None:
    """``"3x224x224"`` -> (3, 224, 224); None stays None; anything else is a one-line error."""
    if text is None:
        return None
    try:
        shape = tuple(int(part) for part in text.lower().split("x"))
    except ValueError:
        raise TrimkitError(f"--input-shape {text!r}: give CxHxW, e.g. 3x224x224") from None
    if not shape or any(size < 1 for size in shape):
        raise TrimkitError(f"--input-shape {text!r}: every size must be at least 1")
    return shape


ImageSizeOption = Annotated[str | None, typer.Option(
    "--image-size", help="HxW to resize segmentation images and masks to (e.g. 180x240 for CamVid at half size).")]


def parse_image_size(text: str | None) -> tuple[int, int] | None:
    """``"180x240"`` -> (180, 240); None stays None; anything else is a one-line error."""
    if text is None:
        return None
    parts = text.lower().split("x")
    try:
        height, width = (int(part) for part in parts)
    except ValueError:
        raise TrimkitError(f"--image-size {text!r}: give HEIGHTxWIDTH in pixels, e.g. 180x240") from None
    if height < 1 or width < 1:
        raise TrimkitError(f"--image-size {text!r}: height and width must be at least 1")
    return height, width
