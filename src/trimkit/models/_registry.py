"""The model registry: a name maps to a builder and what its inputs look like."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from torch import nn

from trimkit._registry import Registry
from trimkit.errors import TrimkitError

MNIST_NORMALIZATION = ((0.1307,), (0.3081,))
CIFAR_NORMALIZATION = ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))
IMAGENET_NORMALIZATION = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))

Normalization = tuple[tuple[float, ...], tuple[float, ...]]


@dataclass(frozen=True)
class ModelSpec:
    """What the zoo knows about a model besides its layers.

    ``input_sizes`` and ``normalizations`` are keyed by the number of input
    channels, since families such as the Bonsai VGGs serve both 1x28x28 (MNIST) and
    3x32x32 (CIFAR-10) inputs.
    """

    name: str
    builder: Callable[..., nn.Module]
    family: str
    in_channels: int
    input_sizes: dict[int, tuple[int, int]]
    normalizations: dict[int, Normalization]
    default_data: str
    description: str = ""
    extra_defaults: dict[str, Any] = field(default_factory=dict)
    task: str = "classification"

    def input_shape(self, in_channels: int | None = None) -> tuple[int, int, int]:
        channels = self.in_channels if in_channels is None else in_channels
        height, width = self.input_sizes.get(channels, self.input_sizes[self.in_channels])
        return (channels, height, width)

    def normalization(self, in_channels: int | None = None) -> Normalization:
        channels = self.in_channels if in_channels is None else in_channels
        if channels in self.normalizations:
            return self.normalizations[channels]
        return ((0.5,) * channels, (0.5,) * channels)


#: the entry-point group through which a package adds models to the zoo: each entry point
#: names a module (or an object in it) whose import registers models with ``register``
ENTRY_POINTS = "trimkit.models"


def _load_entry_points() -> None:
    from importlib.metadata import entry_points

    for point in entry_points(group=ENTRY_POINTS):
        try:
            point.load()
        except Exception as error:  # a broken plug-in: name it, and what it raised
            raise TrimkitError(f"entry point {point.name} = {point.value} ({ENTRY_POINTS}) failed to load: "
                               f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}; "
                               "fix or uninstall the package that provides it") from None


MODELS: Registry[ModelSpec] = Registry("model", load=_load_entry_points)


def register(
    *,
    family: str,
    in_channels: int,
    input_sizes: dict[int, tuple[int, int]],
    normalizations: dict[int, Normalization],
    default_data: str,
    name: str | None = None,
    description: str = "",
    task: str = "classification",
    **extra_defaults: Any,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator that adds a builder to the zoo under ``name`` (default: its own).
    ``task`` says what its outputs are: classification, segmentation or tracking."""

    def decorate(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        key = name or builder.__name__
        MODELS.register(key, ModelSpec(
            name=key,
            builder=builder,
            family=family,
            in_channels=in_channels,
            input_sizes=input_sizes,
            normalizations=normalizations,
            default_data=default_data,
            description=description or next(iter((builder.__doc__ or "").strip().splitlines()), ""),
            extra_defaults=dict(extra_defaults),
            task=task,
        ))
        return builder

    return decorate


def get_spec(name: str) -> ModelSpec:
    """The spec of zoo model ``name``; a clear error listing the choices otherwise."""
    return MODELS.get(name)


def names() -> list[str]:
    return sorted(MODELS.names())
