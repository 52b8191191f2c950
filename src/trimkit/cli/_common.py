"""What every command shares: resolving MODEL / --weights / --data, output, errors."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
import torch
from rich.console import Console
from torch import nn

import trimkit
from trimkit import data as datasets
from trimkit import measure, models
from trimkit.errors import TrimkitError
from trimkit.record import Measurement

# Piped output (CI logs, `| tee`) gets wide tables rather than rich's 80-column default.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, highlight=False)


@dataclass
class LoadedModel:
    model: nn.Module
    label: str
    input_shape: tuple[int, ...]
    normalization: tuple[tuple[float, ...], tuple[float, ...]]
    default_data: str | None


def print_json(record: Any) -> None:
    sys.stdout.write(json.dumps(record, indent=2, default=_jsonable) + "\n")


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def resolve_model(
    model_arg: str,
    weights: Path | None = None,
    *,
    num_classes: int | None = None,
    in_channels: int | None = None,
    trusted: bool = False,
) -> LoadedModel:
    """MODEL is a zoo name or a trimkit model file; --weights is a trimkit file or any
    checkpoint whose state dict fits the zoo model."""
    as_path = Path(model_arg)
    if num_classes is not None and num_classes < 1:
        raise TrimkitError(f"--num-classes {num_classes}: a model needs at least 1 class")
    if in_channels is not None and in_channels < 1:
        raise TrimkitError(f"--in-channels {in_channels}: a model needs at least 1 input channel")
    if weights is not None and not Path(weights).exists():
        raise TrimkitError(f"--weights {weights} does not exist; check the path")
    if as_path.is_dir():
        raise TrimkitError(f"MODEL {model_arg} is a folder; give a zoo name (see trimkit models) or a trimkit model file")
    if model_arg.endswith((".pt", ".pth", ".th", ".onnx")) and not as_path.exists():
        raise TrimkitError(f"model file {model_arg} does not exist; give a zoo name (see trimkit models) or the path "
                           "of a trimkit model file")
    if model_arg.endswith((".pt", ".pth", ".th")) or as_path.is_file():
        if weights is not None:
            raise TrimkitError(f"{model_arg} is a model file with its own weights; drop --weights or give a zoo name")
        return _from_file(as_path, trusted)
    spec = models.spec(model_arg)
    if weights is not None:
        header = trimkit.read_header(weights, trusted=trusted)
        if header is not None:
            saved = (header.get("model") or {}).get("name")
            if saved != model_arg:
                raise TrimkitError(f"{weights} holds a {saved} model, not {model_arg}; give MODEL as {saved} or as the file")
            return _from_file(Path(weights), trusted)
    model = models.create(model_arg, num_classes=10 if num_classes is None else num_classes, in_channels=in_channels)
    if weights is not None:
        trimkit.load_weights(model, weights, trusted=trusted)
    origin = models.origin(model)
    return LoadedModel(model, model_arg, origin.input_shape(), origin.normalization(), spec.default_data)


def _from_file(path: Path, trusted: bool) -> LoadedModel:
    header = trimkit.read_header(path, trusted=trusted)
    if header is not None and header.get("model") is None:
        raise TrimkitError(f"{path} holds a model built outside the zoo, which the command line cannot rebuild; "
                           "use the Python API: trimkit.load(path, model=YourNet())")
    model = trimkit.load(path, trusted=trusted)
    name = header["model"]["name"]
    normalization = header["normalization"]
    return LoadedModel(
        model,
        name,
        tuple(header["input_shape"]),
        (tuple(normalization[0]), tuple(normalization[1])),
        models.spec(name).default_data,
    )


def load_data(name: str | None, split: str, data_dir: Path | None, loaded: LoadedModel) -> datasets.ImageDataset:
    """Load a split normalised as the model expects, and check that its images fit the model."""
    dataset_name = name or loaded.default_data
    if dataset_name is None:
        raise TrimkitError("no data set given; pass --data NAME (mnist5k, mnist, cifar10 or an image folder)")
    dataset = datasets.load(dataset_name, split, data_dir)
    check_fits(dataset, loaded.input_shape, loaded.label)
    return dataset.with_normalization(loaded.normalization)


def check_fits(dataset: datasets.ImageDataset, input_shape: tuple[int, ...], label: str) -> None:
    if tuple(dataset.image_shape) != tuple(input_shape):
        shape = "x".join(str(s) for s in dataset.image_shape)
        expected = "x".join(str(s) for s in input_shape)
        raise TrimkitError(
            f"data set {dataset.name} has {shape} images but {label} takes {expected}; "
            "choose matching data, or build the model with --in-channels to match"
        )


def measurement_of(model: nn.Module, label: str, input_shape: tuple[int, ...], *, metrics=(),
                   files: dict[str, Path] | None = None) -> Measurement:
    """The record a command's ``--json`` carries: counts from one profile of ``model``, the
    metrics the command computed, and the sizes of the files it wrote (by kind)."""
    import torch

    record = measure.measure_model(model, label=label, example_inputs=torch.zeros(1, *input_shape))
    record.metrics.extend(metrics)
    for kind, path in (files or {}).items():
        record.size_bytes[kind] = Path(path).stat().st_size
    return record


def require_recorded_input(subject: Any) -> None:
    """``subject`` (a model or ONNX file with ``label``, ``input_shape`` and
    ``normalization``) records how its inputs are shaped and normalised, or one line."""
    if subject.normalization is None or subject.input_shape is None:
        raise TrimkitError(f"{subject.label} does not record its input normalisation (not exported by trimkit); "
                           "give the trimkit .pt model to score it on --data")


def prune_data(loaded: Any, data: str | None, data_dir: Path | None, batch: int
               ) -> tuple[datasets.ImageDataset | None, datasets.ImageDataset | None, torch.Tensor]:
    """The train and val sets a prune command fine-tunes and scores on (None without
    ``--data``), normalised for the model, and ``batch`` example inputs: real images where
    there is data, a seeded random batch otherwise."""
    train_set = val_set = None
    if data is not None:
        train_set = datasets.load(data, "train", data_dir)
        check_fits(train_set, loaded.input_shape, loaded.label)
        train_set = train_set.with_normalization(loaded.normalization)
        val_set = datasets.load(data, "val", data_dir).with_normalization(loaded.normalization)
    example = (val_set.example_inputs(batch) if val_set is not None
               else torch.randn(batch, *loaded.input_shape, generator=torch.Generator().manual_seed(0)))
    return train_set, val_set, example
