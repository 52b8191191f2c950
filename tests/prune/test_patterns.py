"""Structured pruning across architectural patterns and the whole zoo.

Two oracles that do not rely on trimkit's own verification: (1) pruning channels
that are dead in the original (zero filter, bias and batch-norm affine) must remove
exactly those channels and leave the outputs unchanged; (2) MACs and parameters of
the pruned model must agree with PyTorch's own FLOP counter and parameter count.
"""

from __future__ import annotations

import copy

import pytest
import torch

from pattern_models import (DEAD_CHANNELS, PATTERNS, example_inputs, independent_macs, kill_channels, producer_name,
                            randomize)
from trimkit import models
from trimkit.measure import profile
from trimkit.measure._profile import FUNCTIONAL_ROW, as_input_tuple, macs_after_channel_edits
from trimkit.prune import structured

# Groups the pruner must freeze rather than cut (none: an option-A residual stream written
# with an inline F.pad is cut on both sides of the pad, the padding channels kept).
EXPECTED_FROZEN: dict[str, int] = {}


def run(model, inputs):
    with torch.no_grad():
        return model.eval()(*as_input_tuple(inputs))


@pytest.mark.parametrize("mode", ["static", "progressive"])
@pytest.mark.parametrize("pattern", PATTERNS)
def test_dead_channels_go_and_nothing_else_changes(pattern, mode):
    model = randomize(PATTERNS[pattern]())
    plan = DEAD_CHANNELS[pattern]
    kill_channels(model, plan)
    inputs = example_inputs(model)
    result = structured(model, inputs, criterion="l1", threshold=1e-7, normalize="none", layers="both", mode=mode)
    expected = {producer_name(model, name): sorted(channels) for name, channels in plan.items()}
    removed = {name: channels for name, channels in result.removed_channels.items() if channels}
    assert removed == expected
    assert len(result.frozen) == EXPECTED_FROZEN.get(pattern, 0), result.frozen
    assert torch.allclose(run(result.model, inputs), run(model, inputs), rtol=1e-5, atol=1e-6)




@pytest.mark.parametrize("amount", [{"threshold": 0.45}, {"ratio": 0.4}])
@pytest.mark.parametrize("mode", ["static", "progressive"])
@pytest.mark.parametrize("pattern", PATTERNS)
def test_pruned_pattern_runs_keeps_its_output_shape_and_counts_right(pattern, mode, amount):
    model = randomize(PATTERNS[pattern]())
    inputs = example_inputs(model)
    original = copy.deepcopy(model)
    result = structured(model, inputs, criterion="l1", layers="both", mode=mode, **amount)
    assert run(result.model, inputs).shape == run(model, inputs).shape
    assert result.macs_after < result.macs_before
    assert result.macs_after == independent_macs(result.model, inputs)
    assert result.macs_before == independent_macs(model, inputs)
    assert result.params_after == sum(p.numel() for p in result.model.parameters())
    before = profile(model, inputs)
    from_shapes = macs_after_channel_edits(result.model, before, model)
    if any(row.name == FUNCTIONAL_ROW for row in before.layers):
        assert from_shapes is None  # functional MACs need a run to be counted again
    else:
        assert from_shapes == result.macs_after
    assert len(result.frozen) == EXPECTED_FROZEN.get(pattern, 0), result.frozen
    for a, b in zip(original.state_dict().values(), model.state_dict().values()):
        assert torch.equal(a, b)  # the caller's model is left alone


def test_frozen_group_names_its_layers_and_reason():
    from unusual_models import ChannelShuffle

    model = randomize(ChannelShuffle())
    result = structured(model, torch.randn(2, 3, 16, 16), ratio=0.5, layers="both")
    (frozen,) = result.frozen
    assert frozen.layers == ("a",)
    assert frozen.reason.startswith("it goes through a channel shuffle of 16 channels in 4 groups, which stays "
                                    "one only if a cut takes the same channels from every group")
    assert result.layers["b"].removed == 8  # the layer after the shuffle was still pruned


ZOO_INPUT_BATCH = 2


# the tracking models take two inputs: test_siamfc.py
@pytest.mark.parametrize("name", [n for n in models.names() if models.spec(n).task != "tracking"])
def test_every_zoo_model_prunes_verified(name):
    torch.manual_seed(0)
    model = models.create(name).eval()
    inputs = torch.randn(ZOO_INPUT_BATCH, *models.spec(name).input_shape())
    result = structured(model, inputs, ratio=0.3, layers="both")
    assert not result.frozen, result.frozen
    spatial = tuple(inputs.shape[-2:]) if models.spec(name).task == "segmentation" else ()
    assert result.model(inputs).shape == (ZOO_INPUT_BATCH, 10, *spatial)
    assert result.macs_after == independent_macs(result.model, inputs)
    assert result.macs_after < result.macs_before
    assert macs_after_channel_edits(result.model, profile(model, inputs), model) == result.macs_after
