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
                  in_channels: int | None = None, trusted: bool = False,
                  input_shape: tuple[int, ...] | None = None) -> Subject:
    """MODEL is a zoo name, a factory of your own (``mynet:MyNet(classes=7)``) or a trimkit
    model file (or, with --trust-checkpoint, a whole pickled model); --weights is a
    trimkit file or any checkpoint whose state dict fits the model. ``input_shape`` says
    how a model outside the zoo is fed, where nothing else does."""
    as_path = Path(model_arg)
    if models.looks_like_factory(model_arg):
        target, kwargs = models.parse_factory(model_arg)
        spec = pipeline.ModelSpec(factory=target, kwargs=kwargs, weights=None if weights is None else str(weights),
                                  input_shape=input_shape, trust_checkpoint=trusted)
        return pipeline.module_subject(pipeline.build_model(spec, weights_flag="--weights", model_flag="MODEL"))
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
    if input_shape is not None:
        models.record_input(model, input_shape, None)
    return pipeline.module_subject(model)


def resolve_subject(argument: str, weights: Path | None = None, trusted: bool = False,
                    input_shape: tuple[int, ...] | None = None) -> Subject:
    """A zoo name (with --weights), a factory, a trimkit .pt file or an .onnx file."""
    if not argument.endswith(".onnx"):
        return resolve_model(argument, weights, trusted=trusted, input_shape=input_shape)
    if weights is not None:
        raise TrimkitError(f"{argument} is an ONNX file with its own weights; drop --weights")
    return pipeline.onnx_subject(Path(argument))


def example_batch(subject: Subject, count: int) -> torch.Tensor:
    """A seeded random batch of the model's input, for tracing and verification without data."""
    if subject.input_shape is None:
        raise TrimkitError(f"the input shape of {subject.label} is not recorded; give --input-shape CxHxW, or --data "
                           "to learn it from the data")
    return torch.randn(count, *subject.input_shape, generator=torch.Generator().manual_seed(0))
