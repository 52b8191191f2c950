"""Brevitas quantisers for trimkit's formats.

Integers use Brevitas' narrow symmetric weight quantisers (scale from max |w|, per
channel or per tensor) and its activation quantisers with a learned scale that trimkit
calibrates itself (:mod:`trimkit.quant._calibrate`), so a converted model's state dict
holds every scale from the start.

Binary and ternary weights come in three kinds:

- ``const``: Brevitas' own quantisers, a constant scale of 0.1 per tensor;
- ``stats``: trimkit's, the scale recomputed at each step from the weights, per channel
  or per tensor: mean |w| for binary (the L2-optimal scale for sign(w), as in XNOR-Net);
  1.4 x mean |w| for ternary, whose rounding threshold (half the scale, 0.7 x mean |w|)
  is the Ternary Weight Networks threshold, and whose scale is close to the TWN optimum
  for normally distributed weights;
- ``learned``: trimkit's, the same statistics as a starting value, then a parameter
  trained with the weights.

Ternary is Brevitas' narrow 2-bit integer (round to nearest of -1, 0, +1), so all
kinds export to QONNX as standard ``Quant``/``BipolarQuant`` nodes.

Which works better, measured (``benchmarks/quant_policies.py``, 2 CPU cores): no kind
wins beyond run-to-run noise. ResNet-20, CIFAR-10, 1 QAT epoch on 5,000 images, 1,000
test images (standard error about 1.5 points): ternary const 74.5, stats 73.6, learned
75.5 %; binary const 51.5, stats 52.8, learned 53.5, stats per tensor 54.7 %. LeNet-5
on mnist5k, whose hidden dense layers have no batch norm, mean of 2 seeds (seeds differ
by up to 1.6 points): binary const 96.2, learned 95.9, stats 95.2, stats per tensor
94.1 %; ternary 97.0-97.3 % for all. The constant scale loses nothing because the next
layer's learned input scale (and batch norm) absorbs the weights' scale. ``stats``
stays the default: it needs no extra parameter and is set by the weights alone.
"""

from __future__ import annotations

import torch
from brevitas.core.function_wrapper import TensorClampSte
from brevitas.inject.enum import ScalingImplType, ScalingPerOutputType, StatsOp
from brevitas.quant import (Int8ActPerTensorFloat, Int8WeightPerChannelFloat, Int8WeightPerTensorFloat,
                            Uint8ActPerTensorFloat)
from brevitas.quant.base import SignedBinaryClampedConst
from brevitas.quant.binary import SignedBinaryActPerTensorConst, SignedBinaryWeightPerTensorConst
from brevitas.quant.solver import WeightQuantSolver
from brevitas.quant.ternary import SignedTernaryActPerTensorConst, SignedTernaryWeightPerTensorConst
from torch import nn

from trimkit.quant._formats import Format, WeightSpec

TERNARY_SCALE_PER_MEAN_ABS = 1.4


class ScaledAbsMean(nn.Module):
    """mean |w| times a factor, over the whole tensor or per output channel."""

    def __init__(self, stats_reduce_dim: int | None = None, abs_mean_factor: float = 1.0) -> None:
        super().__init__()
        self.stats_reduce_dim = stats_reduce_dim
        self.abs_mean_factor = abs_mean_factor

    def forward(self, weights: torch.Tensor) -> torch.Tensor:
        magnitudes = weights.abs()
        mean = magnitudes.mean() if self.stats_reduce_dim is None else magnitudes.mean(dim=self.stats_reduce_dim)
        return mean * self.abs_mean_factor


class FixedScale(nn.Module):
    """A stored scale returned as it is: used when a packed model is loaded, so its
    quantised weights are bit-identical to those that were packed."""

    def __init__(self, scaling_shape: tuple[int, ...]) -> None:
        super().__init__()
        self.register_buffer("value", torch.ones(scaling_shape))

    def forward(self, weights: torch.Tensor, threshold: torch.Tensor | None = None) -> torch.Tensor:
        return self.value


class _BinaryWeightMeanAbs(SignedBinaryClampedConst, WeightQuantSolver):
    scaling_impl_type = ScalingImplType.STATS
    scaling_stats_op = StatsOp.AVE
    scaling_min_val = 1e-10
    tensor_clamp_impl = TensorClampSte  # not in place: the latent weights keep their magnitude


def weight_quantizer(spec: WeightSpec, *, fixed_scale: bool = False):
    """The Brevitas weight quantiser for ``spec``, or None for float32."""
    fmt = spec.format
    if not fmt.quantized:
        return None
    per_channel = spec.granularity == "channel"
    granularity = ScalingPerOutputType.CHANNEL if per_channel else ScalingPerOutputType.TENSOR
    if spec.scaling == "const":
        quantizer = SignedBinaryWeightPerTensorConst if fmt.kind == "binary" else SignedTernaryWeightPerTensorConst
    elif fmt.kind == "binary":
        quantizer = _BinaryWeightMeanAbs.let(scaling_per_output_type=granularity)
    else:
        base = Int8WeightPerChannelFloat if per_channel else Int8WeightPerTensorFloat
        quantizer = base.let(bit_width=fmt.bits)
        if fmt.kind == "ternary":
            quantizer = quantizer.let(scaling_stats_impl=ScaledAbsMean,
                                      abs_mean_factor=TERNARY_SCALE_PER_MEAN_ABS)
    if spec.scaling == "learned":
        quantizer = quantizer.let(scaling_impl_type=ScalingImplType.PARAMETER_FROM_STATS)
    if fixed_scale:
        quantizer = quantizer.let(scaling_impl=FixedScale)
    return quantizer


def act_quantizer(fmt: Format, signed: bool):
    """The Brevitas quantiser for a layer's input, or None for float32."""
    if not fmt.quantized:
        return None
    if fmt.kind == "binary":
        return SignedBinaryActPerTensorConst
    if fmt.kind == "ternary":
        return SignedTernaryActPerTensorConst
    base = Int8ActPerTensorFloat if signed else Uint8ActPerTensorFloat
    return base.let(bit_width=fmt.bits, scaling_impl_type=ScalingImplType.PARAMETER, scaling_init=1.0)
