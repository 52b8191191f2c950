"""Pieces the segmentation families share: the input size they are listed with and the
final upsampling of logits to the input's size."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from trimkit.models._registry import IMAGENET_NORMALIZATION

# CamVid at a quarter of its resolution (480x360 -> 120x90): what the zoo profiles, exports
# and prunes segmentation models at. They are fully convolutional and take any size.
SEGMENTATION_INPUT_SIZES = {3: (90, 120)}
SEGMENTATION_NORMALIZATIONS = {3: IMAGENET_NORMALIZATION}
SEGMENTATION_DATA = "camvid"


def upsample_to(logits: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Bilinear upsampling of ``logits`` to the height and width of ``reference``."""
    return F.interpolate(logits, size=reference.shape[-2:], mode="bilinear", align_corners=False)
