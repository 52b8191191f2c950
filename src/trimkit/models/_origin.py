"""Where a model came from: what a model file, an export and a run record so that the
model can be rebuilt and its inputs fed as it expects.

A zoo model's origin is its name and arguments; a model of the user's own is its
factory (``module.path:function`` or ``path/to/file.py:function``), the arguments it was
called with and the digest of the factory's source file; a model unpickled from a
``torch.save(model)`` file is that file. Input shape and normalisation come from the
zoo's spec, or are recorded beside the factory once known (given, or learnt from the
data the model is trained on).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from torch import nn

from trimkit.models._registry import MODELS, ModelSpec

Normalization = tuple[tuple[float, ...], tuple[float, ...]]
ORIGIN_ATTRIBUTE = "trimkit_origin"


@dataclass(frozen=True)
class ModelOrigin:
    """A zoo ``name`` with its ``kwargs``; or a ``factory`` with its ``kwargs`` and
    ``source`` (``{"file", "sha256"}``); or a ``pickle`` file (``{"file", "sha256"}``).
    ``shape`` (C, H, W) and ``mean_std`` are recorded where the zoo does not know them."""

    name: str | None = None
    kwargs: dict[str, Any] = field(default_factory=dict)
    factory: str | None = None
    source: dict[str, str] | None = None
    pickle: dict[str, str] | None = None
    shape: tuple[int, ...] | None = None
    mean_std: Normalization | None = None

    @property
    def label(self) -> str:
        """How messages name the model: its zoo name, factory, or pickle file."""
        return self.name or self.factory or (self.pickle or {}).get("file") or "model"

    @property
    def spec(self) -> ModelSpec | None:
        """The zoo's spec, for a zoo model; None otherwise."""
        return MODELS.get(self.name) if self.name is not None else None

    @property
    def task(self) -> str | None:
        """The task kind of the outputs, where the zoo records it."""
        spec = self.spec
        return spec.task if spec is not None else None

    @property
    def default_data(self) -> str | None:
        spec = self.spec
        return spec.default_data if spec is not None else None

    @property
    def in_channels(self) -> int | None:
        if "in_channels" in self.kwargs:
            return int(self.kwargs["in_channels"])
        spec = self.spec
        if spec is not None:
            return spec.in_channels
        return self.shape[0] if self.shape else None

    @property
    def num_classes(self) -> int | None:
        """The classes the model predicts, where its arguments say (``num_classes``)."""
        classes = self.kwargs.get("num_classes")
        return None if classes is None else int(classes)

    def input_shape(self) -> tuple[int, ...] | None:
        """(C, H, W) of one input: the zoo's, else as recorded (None while unknown)."""
        spec = self.spec
        if spec is not None:
            return spec.input_shape(self.in_channels)
        return None if self.shape is None else tuple(self.shape)

    def normalization(self) -> Normalization | None:
        """Per-channel (mean, std) the model expects: the zoo's, else as recorded."""
        spec = self.spec
        if spec is not None:
            return spec.normalization(self.in_channels)
        if self.mean_std is None:
            return None
        return tuple(map(float, self.mean_std[0])), tuple(map(float, self.mean_std[1]))

    def with_input(self, shape: tuple[int, ...] | None, mean_std: Normalization | None) -> ModelOrigin:
        """This origin with the input shape and normalisation filled in where unknown."""
        if self.spec is not None:
            return self
        return replace(self, shape=self.shape or (tuple(int(s) for s in shape) if shape else None),
                       mean_std=self.mean_std or mean_std)

    def to_header(self) -> dict[str, Any]:
        """The ``model`` entry of a model file's header (JSON)."""
        if self.name is not None:
            return {"name": self.name, "kwargs": dict(self.kwargs)}
        if self.factory is not None:
            return {"factory": self.factory, "kwargs": dict(self.kwargs), "source": self.source}
        return {"pickle": self.pickle}

    @classmethod
    def from_header(cls, entry: dict[str, Any], shape: Any = None, mean_std: Any = None) -> ModelOrigin:
        """The origin a header's ``model`` entry (and its input shape and normalisation) records."""
        kwargs = dict(entry.get("kwargs") or {})
        shape = tuple(shape) if shape else None
        mean_std = (tuple(mean_std[0]), tuple(mean_std[1])) if mean_std else None
        if entry.get("name") is not None:
            return cls(name=entry["name"], kwargs=kwargs)
        return cls(factory=entry.get("factory"), kwargs=kwargs, source=entry.get("source"),
                   pickle=entry.get("pickle"), shape=shape, mean_std=mean_std)


def origin(model: nn.Module) -> ModelOrigin | None:
    """Where ``model`` came from (zoo, factory or pickle), or None for a model built elsewhere."""
    return getattr(model, ORIGIN_ATTRIBUTE, None)


def set_origin(model: nn.Module, found: ModelOrigin) -> nn.Module:
    setattr(model, ORIGIN_ATTRIBUTE, found)
    return model


def record_input(model: nn.Module, shape: tuple[int, ...] | None, mean_std: Normalization | None) -> None:
    """Fill in the input shape and normalisation of a model outside the zoo, where unknown:
    what it was trained or evaluated on, so its files and exports say how to feed it."""
    found = origin(model)
    if found is not None:
        set_origin(model, found.with_input(shape, mean_std))
