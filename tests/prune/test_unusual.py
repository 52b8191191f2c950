"""Pruning layers and tensor tricks beyond the common CNN patterns: every model comes
out runnable with its output shapes, the groups that cannot be cut exactly are frozen
with a reason (and only those), and the MACs agree with PyTorch's counter."""

from __future__ import annotations

import pytest
import torch

from pattern_models import independent_macs
from trimkit.prune import structured
from unusual_models import UNUSUAL


def shapes(output):
    return [o.shape for o in output] if isinstance(output, tuple) else [output.shape]


@pytest.mark.parametrize("name", UNUSUAL)
def test_unusual_model_prunes_or_freezes_never_breaks(name):
    cls, input_shape, must_freeze = UNUSUAL[name]
    torch.manual_seed(0)
    model = cls().eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))  # distinct channel norms
    inputs = torch.randn(*input_shape)
    result = structured(model, inputs, ratio=0.5, layers="both")
    assert {tuple(frozen.layers) for frozen in result.frozen} == must_freeze, result.frozen
    assert all(frozen.reason for frozen in result.frozen)
    with torch.no_grad():
        assert shapes(result.model(inputs)) == shapes(model(inputs))
    assert result.macs_after == independent_macs(result.model, inputs)
    assert result.macs_after < result.macs_before and result.groups_pruned > 0  # every pattern loses MACs


def test_a_group_norm_loses_whole_groups_and_its_number_of_groups():
    from unusual_models import GroupNormed

    torch.manual_seed(0)
    model = GroupNormed().eval()
    inputs = torch.randn(2, 3, 16, 16)
    result = structured(model, inputs, ratio=0.5, layers="both")
    norm = result.model.norm_a
    assert (norm.num_groups, norm.num_channels, result.model.a.out_channels) == (2, 8, 8)
    removed = result.removed_channels["a"]
    assert len(removed) == 8 and all(sum(1 for c in removed if c // 4 == g) in (0, 4) for g in range(4))  # whole
    reason = next(f.reason for f in result.frozen if f.layers == ("b",))
    assert reason.startswith("norm_b is a GroupNorm with one group")


def test_a_split_whose_sizes_the_code_fixes_is_frozen_and_says_so():
    from torch import nn
    from torch.nn import functional as F

    class FixedSplit(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b, self.c = nn.Conv2d(3, 12, 3, padding=1), nn.Conv2d(6, 6, 3, padding=1), nn.Conv2d(12, 4, 1)

        def forward(self, x):
            left, right = F.relu(self.a(x)).split(6, dim=1)
            return self.c(torch.cat([left, F.relu(self.b(right))], 1)).mean((2, 3))

    torch.manual_seed(0)
    result = structured(FixedSplit().eval(), torch.randn(2, 3, 8, 8), ratio=0.5, layers="both")
    frozen = {f.layers: f.reason for f in result.frozen}
    assert set(frozen) == {("a",)} and frozen[("a",)].startswith(
        "it goes through a split of 12 channels into [6, 6], whose sizes the model's code may fix")
    assert result.layers["b"].kept == 3  # the piece's own layer is still cut


def test_an_option_a_shortcut_keeps_its_padding_and_loses_matching_channels():
    from unusual_models import OptionAShortcuts

    torch.manual_seed(0)
    model = OptionAShortcuts().eval()
    result = structured(model, torch.randn(2, 3, 16, 16), ratio=0.5, layers="both")
    kept = result.layers
    assert kept["stem"].kept == 4 and kept["a2"].kept == kept["b2"].kept == 12  # 4 + the 8 padding channels
    removed = result.removed_channels
    assert removed["a2"] == removed["b2"] == [4 + c for c in removed["stem"]]
