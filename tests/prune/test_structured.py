from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import trimkit
from pattern_models import PlainChain, randomize
from trimkit import models
from trimkit.errors import TrimkitError
from trimkit.prune import criteria, register_criterion, structured
from trimkit.prune._scoring import normalize_scores
from trimkit.prune._selection import enforce_keep_rules, global_lowest, lowest_fraction, uniform_across_blocks

# --- criteria by hand -------------------------------------------------------------

W = torch.tensor([[1.0, -2.0, 3.0], [0.0, 0.0, 0.5], [-4.0, 4.0, 0.0]])


@pytest.mark.parametrize("name, expected", [
    ("l1", [6.0, 0.5, 8.0]),
    ("l2", [14 ** 0.5, 0.5, 32 ** 0.5]),
    ("mean_abs", [2.0, 0.5 / 3, 8 / 3]),
    ("max_abs", [3.0, 0.5, 4.0]),
    ("range", [5.0, 0.5, 8.0]),
    ("std", [torch.tensor([1.0, -2.0, 3.0]).std(unbiased=False).item(),
             torch.tensor([0.0, 0.0, 0.5]).std(unbiased=False).item(),
             torch.tensor([-4.0, 4.0, 0.0]).std(unbiased=False).item()]),
])
def test_weight_criteria_by_hand(name, expected):
    assert criteria.get(name).function(W).tolist() == pytest.approx(expected)


def test_data_criteria_by_hand():
    response = torch.tensor([[[1.0, -1.0]], [[3.0, 0.0]]]).transpose(1, 2)  # (N=2, H=2, 1)
    response = response.reshape(2, 2, 1)  # channel 0: 1, 3 ; channel 1: -1, 0
    gradient = torch.tensor([[2.0, 1.0], [1.0, 4.0]]).reshape(2, 2, 1)
    assert criteria.apoz(None, response, None).tolist() == pytest.approx([1.0, 0.0])
    assert criteria.mean_activation(None, response, None).tolist() == pytest.approx([2.0, 0.0])
    assert criteria.taylor(None, response, gradient).tolist() == pytest.approx([abs((2 + 3) / 2), abs((-1 + 0) / 2)])


@pytest.mark.parametrize("module", [nn.Conv2d(8, 12, 3, groups=4), nn.ConvTranspose2d(8, 12, 3, groups=4),
                                    nn.Conv2d(8, 8, 3, groups=8), nn.Linear(8, 12)])
def test_channel_matrix_rows_are_each_channels_own_weights(module):
    weight = module.weight.detach()
    out_channels = getattr(module, "out_channels", getattr(module, "out_features", None))
    in_channels = getattr(module, "in_channels", getattr(module, "in_features", None))
    groups = getattr(module, "groups", 1)
    transposed = isinstance(module, nn.ConvTranspose2d)

    def owned(channel, direction):  # brute force, channel by channel
        if isinstance(module, nn.Linear):
            return weight[channel] if direction == "out" else weight[:, channel]
        per_in, per_out = in_channels // groups, out_channels // groups
        if direction == "out":
            group, offset = divmod(channel, per_out)
            return (weight[group * per_in:(group + 1) * per_in, offset] if transposed else weight[channel]).flatten()
        group, offset = divmod(channel, per_in)
        return (weight[channel] if transposed else weight[group * per_out:(group + 1) * per_out, offset]).flatten()

    for direction, count in (("out", out_channels), ("in", in_channels)):
        rows = criteria.channel_matrix(module, direction)
        assert rows.shape[0] == count
        for channel in range(count):
            assert torch.equal(rows[channel], owned(channel, direction).float())


def test_group_l1_sums_filter_norm_scale_and_next_layer_inputs_by_hand():
    from trimkit.prune._scoring import GroupScorer
    from trimkit.prune._session import PruningSession

    model = randomize(PlainChain())
    session = PruningSession(model, torch.randn(2, 3, 8, 8))
    (group,) = [g for g in session.candidates(lambda g: True) if g.producers == ("c1.0",)]
    scores = GroupScorer(session.graph, criteria.get("group_l1"), "none", None).scores(group)
    conv, norm, following = model.c1[0].weight, model.c1[1].weight, model.c2[0].weight
    expected = conv.abs().sum((1, 2, 3)) + norm.abs() + following.abs().sum((0, 2, 3))
    assert scores.tolist() == pytest.approx(expected.tolist())


def test_random_criterion_repeats_for_the_same_weights():
    assert torch.equal(criteria.random_scores(W), criteria.random_scores(W.clone()))


def test_unknown_criterion_lists_the_choices():
    with pytest.raises(TrimkitError, match=r"unknown criterion 'l3'.*; criteria: l1, l2, std, range"):
        criteria.get("l3")


# --- normalisation and selection by hand --------------------------------------------

def test_normalisations_by_hand():
    values = torch.tensor([3.0, 1.0, 2.0, 1.0])
    assert normalize_scores(values, "rank").tolist() == pytest.approx([1.0, 0.0, 2 / 3, 1 / 3])
    assert normalize_scores(values, "percentile").tolist() == pytest.approx([7 / 8, 2 / 8, 5 / 8, 2 / 8])
    assert normalize_scores(values, "max").tolist() == pytest.approx([1.0, 1 / 3, 2 / 3, 1 / 3])
    assert normalize_scores(values, "mean").tolist() == pytest.approx([3 / 1.75, 1 / 1.75, 2 / 1.75, 1 / 1.75])


def test_selection_rules_by_hand():
    scores = torch.tensor([0.9, 0.1, 0.5, 0.3, 0.7])
    assert lowest_fraction(scores, 0.4) == [1, 3]
    assert enforce_keep_rules(scores, [0, 1, 2, 3, 4], None) == [1, 2, 3, 4]  # the best one stays
    assert enforce_keep_rules(scores, [1, 2, 3], round_to=2) == [1, 2, 3]  # 2 kept: already a multiple
    assert enforce_keep_rules(scores, [1, 3], round_to=2) == [1]  # 3 kept -> 4, sparing the better (0.3)
    assert global_lowest([torch.tensor([0.5, 0.1]), torch.tensor([0.2, 0.9, 0.3])], 0.6) == [[1], [0, 2]]
    assert uniform_across_blocks(torch.tensor([1.0, 5, 2, 6]), [0], 2) == []
    assert uniform_across_blocks(torch.tensor([1.0, 5, 2, 6]), [0, 2], 2) == [0, 2]


# --- structured: the rules of Combine --------------------------------------------

def _chain():
    torch.manual_seed(0)
    return randomize(PlainChain()), torch.randn(2, 3, 12, 12)


def test_threshold_removes_channels_below_it_in_every_layer():
    model, x = _chain()
    result = structured(model, x, threshold=0.5, criterion="l1")  # rank-normalised: the lower half
    assert {n: c.kept for n, c in result.layers.items()} == {"c1.0": 4, "c2.0": 6, "c3.0": 10}
    l1 = model.c1[0].weight.abs().sum(dim=(1, 2, 3))
    assert result.removed_channels["c1.0"] == sorted(torch.argsort(l1)[:4].tolist())


def test_ratio_dict_and_globs_choose_layers():
    model, x = _chain()
    result = structured(model, x, ratio={"c2*": 0.25})
    assert result.layers["c1.0"].removed == 0 and result.layers["c2.0"].removed == 3


def test_last_layer_is_never_pruned_and_one_filter_always_stays():
    model, x = _chain()
    result = structured(model, x, threshold=2.0, criterion="l1", layers="both")
    assert result.layers["c3.0"].kept == 10
    l1 = model.c1[0].weight.abs().sum(dim=(1, 2, 3))
    assert result.layers["c1.0"].kept == 1
    kept_filter = ({*range(8)} - set(result.removed_channels["c1.0"])).pop()
    assert kept_filter == int(l1.argmax())


def test_round_to_keeps_multiples():
    model, x = _chain()
    result = structured(model, x, ratio=0.3, round_to=4)
    assert result.layers["c1.0"].kept == 8 and result.layers["c2.0"].kept == 12
    result = structured(model, x, ratio=0.6, round_to=4)
    assert result.layers["c1.0"].kept == 4 and result.layers["c2.0"].kept == 8


def test_layer_kinds_select_conv_or_dense():
    model = models.create("lenet5").eval()
    x = torch.randn(2, 1, 28, 28)
    conv_only = structured(model, x, ratio=0.5, layers="conv")
    dense_only = structured(model, x, ratio=0.5, layers="dense")
    assert conv_only.layers["features.0"].removed == 3 and conv_only.layers["classifier.1"].removed == 0
    assert dense_only.layers["features.0"].removed == 0 and dense_only.layers["classifier.1"].removed == 60
    assert dense_only.layers["classifier.5"].removed == 0
    assert structured(model, x, ratio=0.5, layers=["classifier.3"]).layers["classifier.3"].removed == 42
    assert structured(model, x, ratio=0.5, layers="both", ignore=["features.*"]).layers["features.3"].removed == 0
    by_module = structured(model, x, ratio=0.5, layers="both", ignore=[model.features[3]])
    assert by_module.layers["features.3"].removed == 0 and by_module.layers["features.0"].removed == 3
    with pytest.raises(TrimkitError, match="not part of the model"):
        structured(model, x, ratio=0.5, ignore=[nn.Linear(2, 2)])


class _TwoConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(4, 4, 1, bias=False)
        self.conv2 = nn.Conv2d(4, 3, 1, bias=False)
        self.head = nn.Conv2d(3, 2, 1)

    def forward(self, x):
        return self.head(F.relu(self.conv2(F.relu(self.conv1(x))))).mean((2, 3))


def test_static_and_progressive_choose_different_filters():
    """conv2's filter 0 is large only on input channel 0, which conv1 prunes first. Static
    scoring still sees its large weights and drops filter 1; progressive scoring sees
    what is left of filter 0 after the cut and drops it instead (Combine, section 3.2)."""
    model = _TwoConv().eval()
    with torch.no_grad():
        model.conv1.weight.copy_(torch.tensor([0.01, 1.0, 1.0, 1.0]).view(4, 1, 1, 1) * torch.ones(4, 4, 1, 1))
        model.conv2.weight.copy_(torch.tensor([[10.0, 0.01, 0.01, 0.01], [1.0, 1.0, 1.0, 1.0],
                                               [5.0, 5.0, 5.0, 5.0]]).view(3, 4, 1, 1))
    x = torch.randn(2, 4, 5, 5)
    settings = dict(criterion="mean_abs", ratio={"conv1": 0.25, "conv2": 0.34})
    static = structured(model, x, mode="static", **settings)
    progressive = structured(model, x, mode="progressive", **settings)
    assert static.removed_channels["conv1"] == progressive.removed_channels["conv1"] == [0]
    assert static.removed_channels["conv2"] == [1]
    assert progressive.removed_channels["conv2"] == [0]


def test_data_criteria_use_the_calibration_batch():
    model, x = _chain()
    labels = torch.tensor([1, 3])
    for name in ("mean_activation", "apoz", "taylor"):
        result = structured(model, x, criterion=name, ratio=0.5, calibration=(x, labels))
        assert result.layers["c1.0"].kept == 4 and not result.frozen
    with pytest.raises(TrimkitError, match="needs data"):
        structured(model, x, criterion="apoz", ratio=0.5)
    with pytest.raises(TrimkitError, match="needs labels"):
        structured(model, x, criterion="taylor", ratio=0.5, calibration=x)


def test_mean_activation_drops_the_channel_that_never_fires():
    model, x = _chain()
    with torch.no_grad():
        model.c1[1].bias[2] = -100.0  # after batch norm, channel 2 is always negative: ReLU silences it
    result = structured(model, x, criterion="mean_activation", ratio={"c1*": 0.125}, calibration=x)
    assert result.removed_channels["c1.0"] == [2]


def test_users_register_their_own_criterion():
    register_criterion("first_weight", lambda w: w[:, 0])
    model, x = _chain()
    first = model.c1[0].weight.reshape(8, -1)[:, 0]
    result = structured(model, x, criterion="first_weight", ratio={"c1*": 0.25})
    assert result.removed_channels["c1.0"] == sorted(torch.argsort(first)[:2].tolist())
    result = structured(model, x, criterion=lambda w: -w[:, 0], ratio={"c1*": 0.25})
    assert result.removed_channels["c1.0"] == sorted(torch.argsort(-first)[:2].tolist())


def test_global_scope_ranks_all_layers_together():
    model, x = _chain()
    result = structured(model, x, ratio=0.3, scope="global", criterion="l1", normalize="mean", mode="static")
    per_layer = [model.c1[0].weight.abs().sum((1, 2, 3)), model.c2[0].weight.abs().sum((1, 2, 3))]
    l1 = torch.cat([scores / scores.mean() for scores in per_layer])
    lowest = set(torch.argsort(l1)[:6].tolist())  # 6 of the 20 channels go
    assert 0 < len([i for i in lowest if i < 8]) < 8  # both layers lose some, neither all
    assert result.removed_channels["c1.0"] == sorted(i for i in lowest if i < 8)
    assert result.removed_channels["c2.0"] == sorted(i - 8 for i in lowest if i >= 8)


@pytest.mark.parametrize("kwargs, message", [
    ({}, "exactly one of threshold=T, ratio=R or a target budget"),
    ({"ratio": 0.5, "threshold": 0.5}, "exactly one of"),
    ({"ratio": 1.0}, r"^ratio: 1.0 is not in \[0, 1\)"),
    ({"ratio": -0.1}, r"^ratio: -0.1 is not in \[0, 1\)"),
    ({"ratio": 0.5, "mode": "eager"}, "^mode: 'eager': input should be 'static' or 'progressive'"),
    ({"ratio": 0.5, "criterion": "l3"}, "^criterion: unknown criterion 'l3'"),
    ({"ratio": 0.5, "layers": "attention"}, "^layers: 'attention': input should be 'conv', 'dense' or 'both'"),
    ({"ratio": 0.5, "scope": "global", "normalize": "rank"}, "use max, mean or none with scope global"),
    ({"ratio": 0.5, "round_to": 0}, "^round_to: 0 is not a channel multiple; give an integer >= 1, or auto"),
])
def test_bad_arguments_are_clear_errors(kwargs, message):
    model, x = _chain()
    with pytest.raises(TrimkitError, match=message):
        structured(model, x, **kwargs)


# --- save and load of pruned models --------------------------------------------------

@pytest.mark.parametrize("name", ["resnet20", "mobilenetv2", "densenet_small", "vgg_c"])
def test_pruned_zoo_model_round_trips_bit_exactly(tmp_path, name):
    torch.manual_seed(0)
    model = models.create(name).eval()
    x = torch.randn(2, *models.spec(name).input_shape())
    pruned = structured(model, x, ratio=0.4, layers="both").model
    path = trimkit.save(pruned, tmp_path / "p.pt")
    loaded = trimkit.load(path)
    assert loaded.state_dict().keys() == pruned.state_dict().keys()
    for key, value in pruned.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    assert torch.equal(loaded.eval()(x), pruned.eval()(x))
    content = torch.load(path, weights_only=True)
    assert set(content) == {"trimkit_header", "state_dict"}


def test_pruned_option_a_shortcut_survives_save_and_load(tmp_path):
    torch.manual_seed(0)
    model = models.create("resnet20").eval()
    x = torch.randn(2, 3, 32, 32)
    pruned = structured(model, x, ratio=0.5, scope="global").model
    assert pruned.layer2[0].shortcut.source != models.create("resnet20").layer2[0].shortcut.source
    loaded = trimkit.load(trimkit.save(pruned, tmp_path / "p.pt"))
    assert loaded.layer2[0].shortcut.source == pruned.layer2[0].shortcut.source
    assert torch.equal(loaded.eval()(x), pruned(x))


def test_pruned_user_model_loads_into_a_fresh_instance(tmp_path):
    model, x = _chain()
    pruned = structured(model, x, ratio=0.5).model
    path = trimkit.save(pruned, tmp_path / "p.pt")
    loaded = trimkit.load(path, model=PlainChain())
    assert torch.equal(loaded.eval()(x), pruned.eval()(x))


def test_pruning_twice_accumulates_the_edits(tmp_path):
    torch.manual_seed(0)
    model = models.create("lenet5").eval()
    x = torch.randn(2, 1, 28, 28)
    once = structured(model, x, ratio=0.5, layers="conv").model
    twice = structured(once, x, ratio=0.5, layers="dense").model
    loaded = trimkit.load(trimkit.save(twice, tmp_path / "p.pt"))
    assert torch.equal(loaded.eval()(x), twice.eval()(x))
    assert loaded.features[0].out_channels == 3 and loaded.classifier[1].out_features == 60
