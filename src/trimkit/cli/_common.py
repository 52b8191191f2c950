"""MODEL and --weights as every command takes them: the flags checked in their own words,
then the model built by the pipeline's one model builder (as a recipe's ``model:`` is)."""

from __future__ import annotations

from pathlib import Path

import torch

from trimkit import models, pipeline
from trimkit.errors import TrimkitError
from trimkit.pipeline import Subject

MODEL_FILE_SUFFIXES = (".pt", ".pth", ".th")


def resolve_model(model_arg: str, weights: Path | None = None, *, num_classes: int | None = None,
                  in_channels: int | None = None, trusted: bool = False) -> Subject:
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
        raise TrimkitError(f"MODEL {model_arg} is a folder; give a zoo name (see trimkit models) or a trimkit model "
                           "file")
    if model_arg.endswith((*MODEL_FILE_SUFFIXES, ".onnx")) and not as_path.exists():
        raise TrimkitError(f"model file {model_arg} does not exist; give a zoo name (see trimkit models) or the path "
                           "of a trimkit model file")
    if model_arg.endswith(MODEL_FILE_SUFFIXES) or as_path.is_file():
        if weights is not None:
            raise TrimkitError(f"{model_arg} is a model file with its own weights; drop --weights or give a zoo name")
        spec = pipeline.ModelSpec(file=str(as_path), trust_checkpoint=trusted)
    else:
        models.spec(model_arg)  # an unknown name is one line with the zoo's names
        spec = pipeline.ModelSpec(name=model_arg, weights=None if weights is None else str(weights),
                                  num_classes=10 if num_classes is None else num_classes, in_channels=in_channels,
                                  trust_checkpoint=trusted)
    model = pipeline.build_model(spec, weights_flag="--weights", model_flag="MODEL")
    if models.origin(model) is None:
        raise TrimkitError(f"{model_arg} holds a model built outside the zoo, which the command line cannot rebuild; "
                           "use the Python API: trimkit.load(path, model=YourNet())")
    return pipeline.module_subject(model, models.origin(model).name)


def resolve_subject(argument: str, weights: Path | None = None, trusted: bool = False) -> Subject:
    """A zoo name (with --weights), a trimkit .pt file or an .onnx file."""
    if not argument.endswith(".onnx"):
        return resolve_model(argument, weights, trusted=trusted)
    if weights is not None:
        raise TrimkitError(f"{argument} is an ONNX file with its own weights; drop --weights")
    return pipeline.onnx_subject(Path(argument))


def example_batch(subject: Subject, count: int) -> torch.Tensor:
    """A seeded random batch of the model's input, for tracing and verification without data."""
    return torch.randn(count, *subject.input_shape, generator=torch.Generator().manual_seed(0))
