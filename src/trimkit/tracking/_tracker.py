"""The SiamFC tracker: exemplar from the first frame, a scale pyramid of search crops,
an upsampled and cosine-windowed response, and a damped box update.

Per frame: crop ``scales`` search regions around the last position (sides ``s_x *
step**k``), embed them in one batch, correlate with the exemplar's features, upsample
each score map ``response_up`` times (bicubic), penalise the scales other than 1, pick
the scale with the highest peak, blend its normalised response with a cosine window,
and move to the peak. Size changes by the chosen scale, damped by ``scale_lr``.

``embed`` (the search crops, every frame) and ``embed_exemplar`` (once per sequence)
can be replaced, e.g. by ONNX Runtime or OpenVINO sessions over the backbone exported at
255x255 and at 127x127, so that a deployed tracker's frame rate is measured with the
same loop; by default both are the model's ``embed``;
``timings`` splits each frame's time into crop, backbone, correlation and update.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from trimkit.errors import TrimkitError
from trimkit.models._registry import IMAGENET_NORMALIZATION
from trimkit.tracking._crop import crop, exemplar_side, frame_tensor, normalize

Embed = Callable[[torch.Tensor], torch.Tensor]


class TrackerParams(BaseModel):
    """SiamFC's tracking hyper-parameters (defaults: its 3-scale settings)."""

    model_config = ConfigDict(extra="forbid")
    scales: int = Field(default=3, ge=1, le=7)
    scale_step: float = Field(default=1.0375, ge=1.0, le=1.5)
    scale_penalty: float = Field(default=0.9745, gt=0.0, le=1.0)
    scale_lr: float = Field(default=0.59, ge=0.0, le=1.0)
    window_influence: float = Field(default=0.176, ge=0.0, le=1.0)
    response_up: int = Field(default=16, ge=1, le=32)
    context: float = Field(default=0.5, ge=0.0, le=2.0)
    exemplar_size: int = Field(default=127, ge=16)
    search_size: int = Field(default=255, ge=32)
    min_scale: float = Field(default=0.2, gt=0.0, le=1.0)
    max_scale: float = Field(default=5.0, ge=1.0)

    @model_validator(mode="after")
    def _odd_scales(self) -> TrackerParams:
        if self.scales % 2 == 0:
            raise ValueError(f"scales: {self.scales} is even; the pyramid is centred on scale 1, give 1, 3, 5 or 7")
        if self.search_size <= self.exemplar_size:
            raise ValueError("search_size must be larger than exemplar_size")
        return self

    def scale_factors(self) -> np.ndarray:
        half = (self.scales - 1) / 2
        return self.scale_step ** np.linspace(-half, half, self.scales)


def is_tracker_model(model: object) -> bool:
    return callable(getattr(model, "embed", None)) and callable(getattr(model, "head", None))


def check_tracker_model(model: nn.Module, label: str = "the model") -> None:
    """A one-line error unless ``model`` is a Siamese tracker (``embed`` and ``head``)."""
    if not is_tracker_model(model):
        from trimkit import models

        origin = models.origin(model)
        what = f"a {origin.label} model" if origin is not None else f"a {type(model).__name__}"
        raise TrimkitError(f"{label} is {what}, not a Siamese tracker; give a siamfc or siamfc_seed model file "
                           "(trimkit run examples/recipes/siamfc-shared-data.yaml trains one)")


@dataclass
class Timings:
    """Seconds spent per part of the per-frame loop, summed over frames."""

    crop: float = 0.0
    backbone: float = 0.0
    correlation: float = 0.0
    update: float = 0.0
    frames: int = 0

    def per_frame_ms(self) -> dict[str, float]:
        count = max(self.frames, 1)
        return {name: 1000 * getattr(self, name) / count for name in ("crop", "backbone", "correlation", "update")}


@dataclass
class SiamTracker:
    """Track one target: ``init(frame, box)`` then ``update(frame) -> box`` per frame."""

    model: nn.Module
    params: TrackerParams = field(default_factory=TrackerParams)
    embed: Embed | None = None
    embed_exemplar: Embed | None = None
    normalization: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    timings: Timings = field(default_factory=Timings)

    def __post_init__(self) -> None:
        check_tracker_model(self.model)
        self.model.eval()
        if self.normalization is None:
            from trimkit import models

            origin = models.origin(self.model)
            self.normalization = (origin.normalization() if origin is not None else None) or IMAGENET_NORMALIZATION
        self._embed = self.embed or self.model.embed
        self._embed_exemplar = self.embed_exemplar or self.model.embed
        self.stride = int(getattr(self.model, "total_stride", 8))

    @torch.inference_mode()
    def init(self, frame: np.ndarray, box: np.ndarray) -> None:
        x, y, w, h = (float(v) for v in box)
        self.centre = np.array([x + w / 2, y + h / 2])
        self.size = np.array([w, h])
        self.base_size = self.size.copy()
        image = frame_tensor(frame)
        self.fill = image.mean(dim=(1, 2))
        p = self.params
        self.z_side = exemplar_side(w, h, p.context)
        self.x_side = self.z_side * p.search_size / p.exemplar_size
        exemplar = normalize(crop(image, self.centre, self.z_side, p.exemplar_size, self.fill), self.normalization)
        self.exemplar_features = torch.as_tensor(self._embed_exemplar(exemplar[None]))
        self._window = None

    def _cosine_window(self, side: int) -> torch.Tensor:
        if self._window is None or self._window.shape[-1] != side:
            hann = torch.hann_window(side, periodic=False, dtype=torch.float32)
            window = torch.outer(hann, hann)
            self._window = window / window.sum()
        return self._window

    @torch.inference_mode()
    def update(self, frame: np.ndarray) -> np.ndarray:
        p = self.params
        started = time.perf_counter()
        image = frame_tensor(frame)
        factors = p.scale_factors()
        searches = torch.stack([crop(image, self.centre, self.x_side * f, p.search_size, self.fill) for f in factors])
        searches = normalize(searches, self.normalization)
        cropped = time.perf_counter()
        features = self._embed(searches)
        embedded = time.perf_counter()
        scores = self.model.head(self.exemplar_features, torch.as_tensor(features)).float()
        correlated = time.perf_counter()
        peaks = scores.flatten(1).max(dim=1).values
        if p.scales > 1:
            penalty = torch.full((p.scales,), p.scale_penalty)
            penalty[p.scales // 2] = 1.0
            peaks = torch.where(peaks > 0, peaks * penalty, peaks / penalty)
        best = int(peaks.argmax())
        side = scores.shape[-1] * p.response_up
        # the scale is chosen on the raw peaks (SiamFC compares upsampled ones); only its map is upsampled
        responses = F.interpolate(scores[best:best + 1], size=(side, side), mode="bicubic", align_corners=False)[0]
        best_response = responses[0]
        response = best_response - best_response.min()
        response = response / response.sum().clamp_min(1e-12)
        response = (1 - p.window_influence) * response + p.window_influence * self._cosine_window(side)
        row, col = divmod(int(response.argmax()), side)
        displacement = np.array([col, row], dtype=np.float64) - (side - 1) / 2
        in_search = displacement * self.stride / p.response_up
        scale = float(factors[best])
        self.centre = self.centre + in_search * self.x_side * scale / p.search_size
        height, width = frame.shape[:2]
        self.centre = np.clip(self.centre, 0, [width, height])
        damped = (1 - p.scale_lr) + p.scale_lr * scale
        damped = float(np.clip(damped * self.size[0] / self.base_size[0], p.min_scale, p.max_scale)
                       * self.base_size[0] / self.size[0])
        self.size = self.size * damped
        self.x_side *= damped
        self.z_side *= damped
        finished = time.perf_counter()
        t = self.timings
        t.crop += cropped - started
        t.backbone += embedded - cropped
        t.correlation += correlated - embedded
        t.update += finished - correlated
        t.frames += 1
        return self.box()

    def box(self) -> np.ndarray:
        return np.array([*(self.centre - self.size / 2), *self.size])


@dataclass
class TrackResult:
    """Boxes (``x, y, w, h`` per frame, the first frame's given box first), seconds of
    tracking (every frame after the first, reading the frames excluded), the timings."""

    boxes: np.ndarray
    seconds: float
    timings: Timings

    @property
    def fps(self) -> float:
        return (len(self.boxes) - 1) / self.seconds if self.seconds > 0 else 0.0


def track(model: nn.Module, sequence, params: TrackerParams | None = None, *, embed: Embed | None = None,
          embed_exemplar: Embed | None = None,
          on_frame: Callable[[int, np.ndarray], None] | None = None) -> TrackResult:
    """Run the tracker over ``sequence`` from its first box (``embed``, ``embed_exemplar``:
    see :class:`SiamTracker`)."""
    tracker = SiamTracker(model, params or TrackerParams(), embed=embed, embed_exemplar=embed_exemplar)
    first = sequence.frame(0)
    tracker.init(first, sequence.boxes[0])
    boxes = [np.asarray(sequence.boxes[0], dtype=np.float64)]
    if on_frame is not None:
        on_frame(0, boxes[0])
    seconds = 0.0
    for index in range(1, len(sequence)):
        frame = sequence.frame(index)
        started = time.perf_counter()
        boxes.append(tracker.update(frame))
        seconds += time.perf_counter() - started
        if on_frame is not None:
            on_frame(index, boxes[-1])
    return TrackResult(np.stack(boxes), seconds, tracker.timings)
