"""Unstructured pruning: exact masks per method, zeros that survive training and files,
dead-neuron removal that leaves outputs unchanged, sparse sizes, CLI and bad input."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import trimkit
from trimkit import _masks, _sparse_size, data, models, pipeline, prune, quant, tasks, train
from trimkit.cli._app import app
from trimkit.errors import TrimkitError
from trimkit.pipeline.stages.prune_unstructured import UnstructuredOptions

runner = CliRunner()


class TwoLayers(nn.Module):
    """Weights chosen so each method's mask can be written down by hand."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(4, 3)
        self.b = nn.Linear(3, 2)
        with torch.no_grad():
            signs = torch.tensor([1.0, -1.0]).repeat(6)
            self.a.weight.copy_((torch.arange(1, 13, dtype=torch.float32) * signs).reshape(3, 4))  # |w| 1..12
            self.b.weight.copy_((torch.arange(1, 7, dtype=torch.float32) * 0.5).reshape(2, 3))  # |w| 0.5..3

    def forward(self, x):
        return self.b(torch.relu(self.a(x)))


def _pruned(result, name):
    return ~_masks.masks_of(result.model)[f"{name}.weight"]


def test_layer_method_zeroes_the_smallest_fraction_of_each_layer():
    result = prune.unstructured(TwoLayers(), "layer", 0.5, remove_dead_neurons=False)
    # a: |w| 1..12, the 6 smallest are 1..6 = the first six positions; b: 0.5..3, the 3 smallest are 0.5, 1, 1.5
    assert _pruned(result, "a").reshape(-1).tolist() == [True] * 6 + [False] * 6
    assert _pruned(result, "b").reshape(-1).tolist() == [True] * 3 + [False] * 3
    assert {n: (c.weights, c.zeros) for n, c in result.layers.items()} == {"a": (12, 6), "b": (6, 3)}
    assert result.model.a.weight.reshape(-1)[:6].eq(0).all() and result.model.a.weight.reshape(-1)[6:].ne(0).all()
    # 0.3 of 12 is 3.6 -> 4 weights; of 6 is 1.8 -> 2
    counts = prune.unstructured(TwoLayers(), "class-uniform", 0.3, remove_dead_neurons=False).layers
    assert (counts["a"].zeros, counts["b"].zeros) == (4, 2)


def test_global_method_ranks_all_layers_together():
    result = prune.unstructured(TwoLayers(), "global", 0.5, remove_dead_neurons=False)
    # 9 of 18 weights: all six of b (|w| <= 3) and |w| = 1, 2, 3 of a (a's 3 has the same |w| as b's last,
    # ties go by position: a comes first)
    assert _pruned(result, "a").reshape(-1).tolist() == [True] * 3 + [False] * 9
    assert _pruned(result, "b").reshape(-1).tolist() == [True] * 6
    assert result.zeros == 9 and result.params == 12 + 3 + 6 + 2
    assert result.nonzero_params == result.params - 9


def test_random_method_takes_exactly_the_fraction_over_the_model_and_depends_on_the_seed():
    first = prune.unstructured(TwoLayers(), "random", 0.5, seed=3, remove_dead_neurons=False)
    again = prune.unstructured(TwoLayers(), "random", 0.5, seed=3, remove_dead_neurons=False)
    other = prune.unstructured(TwoLayers(), "random", 0.5, seed=4, remove_dead_neurons=False)
    assert first.zeros == 9
    expected = torch.rand(18, generator=torch.Generator().manual_seed(3)).argsort(stable=True)[:9]
    flat = torch.cat([_pruned(first, "a").reshape(-1), _pruned(first, "b").reshape(-1)])
    assert sorted(flat.nonzero().reshape(-1).tolist()) == sorted(expected.tolist())
    assert torch.equal(_pruned(first, "a"), _pruned(again, "a"))
    assert not torch.equal(torch.cat([_pruned(first, n).reshape(-1) for n in "ab"]),
                           torch.cat([_pruned(other, n).reshape(-1) for n in "ab"]))


def test_include_and_skip_choose_the_layers_and_the_original_is_untouched():
    model = TwoLayers()
    result = prune.unstructured(model, "layer", 0.5, skip="b", remove_dead_neurons=False)
    assert list(result.layers) == ["a"] and "b.weight" not in _masks.masks_of(result.model)
    assert prune.unstructured(model, "layer", 0.5, include=["b*"], remove_dead_neurons=False).layers.keys() == {"b"}
    assert model.a.weight.ne(0).all() and not _masks.masks_of(model)


def test_the_seeds_ordering_global_removes_least_magnitude_then_layer_then_random():
    torch.manual_seed(0)
    model = models.create("lenet5")
    removed = {}
    for method in ("global", "layer", "random"):
        masked = prune.unstructured(model, method, 0.7, remove_dead_neurons=False).model
        removed[method] = sum(float(p.detach().abs().sum()) for p in model.parameters()) - sum(
            float(p.detach().abs().sum()) for p in masked.parameters())
    assert removed["global"] < removed["layer"] < removed["random"], removed
    # and the outputs move least under class-blind pruning
    x = torch.randn(32, 1, 28, 28)
    with torch.no_grad():
        reference = model.eval()(x)
        error = {m: float((prune.unstructured(model, m, 0.7, remove_dead_neurons=False).model.eval()(x)
                           - reference).norm()) for m in ("global", "random")}
    assert error["global"] < error["random"], error


def _task(n=256):
    return tasks.classification(data.load("mnist5k", "train").subset(n, seed=0),
                                data.load("mnist5k", "val").subset(64, seed=0))


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_zeros_survive_fine_tuning_with_momentum_weight_decay_and_adam(optimizer):
    result = prune.unstructured(models.create("lenet5"), "global", 0.6, remove_dead_neurons=False)
    model = result.model
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    train.fit(model, _task(), epochs=2, batch_size=64, optimizer=optimizer, lr=0.01, momentum=0.9,
              weight_decay=5e-3, progress=False, precision="fp32")
    for name, mask in _masks.masks_of(model).items():
        weight = model.get_parameter(name)
        assert weight[~mask].eq(0).all(), name
        assert not torch.equal(weight[mask], before[name][mask]), f"{name} did not train"


def test_the_finetune_stage_and_qat_keep_the_zeros():
    task = _task(128)
    model = models.create("lenet5")
    ctx = pipeline.Context.for_api(task, model)
    ctx.begin(0, None)
    stage = pipeline.get_stage("prune_unstructured")
    pruned = stage.run(model, ctx, UnstructuredOptions(method="layer", sparsity=0.5))
    assert ctx.report.size_bytes["sparse"] < ctx.report.size_bytes["state_dict"]
    assert ctx.details["zeros"] == sum(c["zeros"] for c in ctx.details["layers"].values())
    ctx.begin(1, None)
    tuned = pipeline.get_stage("finetune").run(pruned, ctx, pipeline.get_stage("finetune").options(
        epochs=1, batch_size=64, lr=0.01, precision="fp32"))
    masks = _masks.masks_of(tuned)
    assert masks and all(tuned.get_parameter(n)[~m].eq(0).all() for n, m in masks.items())
    qat = quant.qat(tuned, "int8", task, epochs=1, batch_size=64, progress=False, precision="fp32")
    qmasks = _masks.masks_of(qat.model)
    assert qmasks.keys() == masks.keys()
    assert all(qat.model.get_parameter(n)[~m].eq(0).all() for n, m in qmasks.items())


def test_masks_round_trip_through_a_model_file(tmp_path):
    result = prune.unstructured(models.create("lenet5"), "random", 0.5, seed=1, remove_dead_neurons=False)
    model = result.model
    with torch.no_grad():  # a kept weight that happens to be zero: the file must keep the mask, not the zeros
        kept = _masks.masks_of(model)["features.0.weight"].reshape(-1).nonzero()[0]
        model.features[0].weight.view(-1)[kept] = 0.0
    trimkit.save(model, tmp_path / "m.pt")
    header = trimkit.read_header(tmp_path / "m.pt")
    assert [s["name"] for s in header["sections"]] == ["masks"]
    assert "bits" in header["masks"]["masks"]["features.0.weight"]
    assert "bits" not in header["masks"]["masks"]["features.3.weight"]
    loaded = trimkit.load(tmp_path / "m.pt")
    assert set(loaded.state_dict()) == set(models.create("lenet5").state_dict())
    for name, mask in _masks.masks_of(model).items():
        assert torch.equal(_masks.masks_of(loaded)[name], mask)


def test_load_weights_brings_the_masks_and_fine_tuning_keeps_the_zeros(tmp_path):
    masked = prune.unstructured(models.create("lenet5"), "global", 0.7, remove_dead_neurons=False).model
    trimkit.save(masked, tmp_path / "m.pt")
    model = trimkit.load_weights(models.create("lenet5"), tmp_path / "m.pt")
    masks = _masks.masks_of(model)
    assert masks.keys() == _masks.masks_of(masked).keys()
    assert all(torch.equal(masks[n], m) for n, m in _masks.masks_of(masked).items())
    train.fit(model, _task(128), epochs=1, batch_size=64, lr=0.05, weight_decay=5e-3, progress=False,
              precision="fp32")
    assert all(model.get_parameter(n)[~m].eq(0).all() for n, m in masks.items())


def test_a_mask_for_another_architecture_is_refused(tmp_path):
    masked = prune.unstructured(models.create("lenet5"), "layer", 0.5, remove_dead_neurons=False).model
    trimkit.save(masked, tmp_path / "m.pt")
    with pytest.raises(TrimkitError, match="masks section is for another architecture") as error:
        trimkit.load(tmp_path / "m.pt", model=TwoLayers())
    assert "\n" not in str(error.value)
    with pytest.raises(TrimkitError, match="does not fit this model"):
        _masks.set_masks(TwoLayers(), {"a.weight": torch.ones(2, 2, dtype=torch.bool)})


class Mlp(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.l1, self.l2, self.l3 = nn.Linear(6, 4), nn.Linear(4, 3), nn.Linear(3, 2)

    def forward(self, x):
        return self.l3(torch.relu(self.l2(torch.relu(self.l1(x)))))


def test_dead_neurons_go_and_their_constants_fold_into_the_next_bias():
    torch.manual_seed(1)
    model = Mlp().eval()
    with torch.no_grad():
        model.l1.bias[1] = 0.7  # neuron 1 has no inputs: it emits relu(0.7) = 0.7, folded into l2's bias
    masks = {"l1.weight": torch.ones(4, 6, dtype=torch.bool), "l2.weight": torch.ones(3, 4, dtype=torch.bool)}
    masks["l1.weight"][1] = False
    masks["l2.weight"][:, 2] = False  # neuron 2 of l1 has no outputs
    _masks.set_masks(model, masks)
    x = torch.randn(8, 6)
    removal = prune.remove_dead(model, x)
    # l1 keeps 2 neurons: 2*6+2; l2 reads 2: 2*3+3; l3 unchanged: 3*2+2
    assert removal.params_before == 51 and removal.params_after == 14 + 9 + 8
    assert removal.layers["l1"].removed == 2 and not removal.kept
    # before: 51 less the 6 + 3 masked; after: every weight left is nonzero
    assert (removal.nonzero_before, removal.nonzero_after) == (42, 31)
    y = torch.randn(16, 6)
    with torch.no_grad():
        assert torch.allclose(model(y), removal.model(y), atol=1e-6, rtol=0)
    assert _masks.masks_of(removal.model)["l2.weight"].shape == (3, 2)


class ConvBn(nn.Module):
    def __init__(self, padding: int) -> None:
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8)
        self.c2, self.b2 = nn.Conv2d(8, 8, 3, padding=padding, bias=False), nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        x = torch.relu(self.b2(self.c2(torch.relu(self.b1(self.c1(x))))))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def _dead_filters(padding: int) -> nn.Module:
    torch.manual_seed(0)
    model = ConvBn(padding)
    with torch.no_grad():
        for bn in (model.b1, model.b2):
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2)
            bn.bias.uniform_(0.2, 1.0)
        model.b1.bias[5] = -3.0  # filter 5: constant beta' < 0, zero after ReLU
    model.eval()
    mask = torch.ones_like(model.c1.weight, dtype=torch.bool)
    mask[[2, 5]] = False  # filters 2 and 5 dead; 2 still emits a positive constant after BN and ReLU
    _masks.set_masks(model, {"c1.weight": mask})
    return model


def test_a_dead_filter_after_batch_norm_folds_its_beta_into_what_follows():
    model = _dead_filters(padding=0)
    removal = prune.remove_dead(model, torch.randn(6, 3, 12, 12))
    assert removal.layers["c1"].removed == 2 and not removal.kept
    y = torch.randn(4, 3, 12, 12)
    with torch.no_grad():
        assert torch.allclose(model(y), removal.model(y), atol=1e-5, rtol=0)


def test_a_dead_filter_before_a_zero_padded_conv_stays_when_its_constant_is_not_zero():
    model = _dead_filters(padding=1)
    removal = prune.remove_dead(model, torch.randn(6, 3, 12, 12))
    assert removal.layers["c1"].removed == 1  # filter 5 (zero after ReLU) goes, filter 2 stays
    assert [(k.group, k.channel) for k in removal.kept] == [("c1", 2)]
    assert "pads with zeros" in removal.kept[0].reason
    y = torch.randn(4, 3, 12, 12)
    with torch.no_grad():
        assert torch.allclose(model(y), removal.model(y), atol=1e-5, rtol=0)


def test_sparse_size_picks_the_smallest_format_per_layer():
    layer = _sparse_size.layer_size(1000, 100)
    assert (layer.dense_bytes, layer.bitmask_bytes, layer.index_bytes) == (4000, 125 + 400, 100 * 6)
    assert layer.format == "bitmask" and layer.bytes == 525
    assert _sparse_size.layer_size(100_000, 10).format == "index"  # 10 * (4 + 4) bytes
    assert _sparse_size.layer_size(64, 63).format == "dense"  # 8 + 252 > 256
    result = prune.unstructured(TwoLayers(), "global", 0.5, remove_dead_neurons=False)
    # a: 12 weights, 9 kept -> bitmask 2 + 36 = 38 < dense 48 < index 9 * 5; b: all zero -> index 0
    # biases 3 + 2 floats dense
    assert result.size.dense_bytes == 23 * 4 and result.size.sparse_bytes == 38 + 0 + 20


def test_bad_input_is_one_line():
    with pytest.raises(TrimkitError, match=r"sparsity 1.0 is not in \[0, 1\)"):
        prune.unstructured(TwoLayers(), "global", 1.0)
    with pytest.raises(TrimkitError, match="did you mean 'global'"):
        prune.unstructured(TwoLayers(), "globl", 0.5)
    with pytest.raises(TrimkitError, match="skip pattern 'c\\*' matches no conv or dense layer"):
        prune.unstructured(TwoLayers(), "layer", 0.5, skip="c*")
    with pytest.raises(TrimkitError, match="leave no conv or dense layer"):
        prune.unstructured(TwoLayers(), "layer", 0.5, skip="*")


def test_cli_prunes_and_reports_the_measurement_record(tmp_path):
    out = tmp_path / "m.pt"
    result = runner.invoke(app, ["prune", "lenet5", "--out", str(out), "--unstructured", "class-blind",
                                 "--sparsity", "0.5", "--skip", "classifier.5", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["method"] == "global" and "classifier.5" not in record["layers"]
    weights = sum(layer["weights"] for layer in record["layers"].values())
    assert record["zeros"] == round(0.5 * weights)
    assert record["measurement"]["size_bytes"]["sparse"] < record["measurement"]["size_bytes"]["state_dict"]
    loaded = trimkit.load(out)
    assert prune.nonzero_parameters(loaded) == record["nonzero_params_final"]


@pytest.mark.parametrize("args, message", [
    (["--unstructured", "global", "--sparsity", "1.5"], "--sparsity: 1.5 is not in [0, 1)"),
    (["--unstructured", "globl", "--sparsity", "0.5"], "did you mean 'global'"),
    (["--unstructured", "layer", "--sparsity", "0.5", "--include", "nothing.*"], "include pattern 'nothing.*'"),
    (["--unstructured", "layer"], "--unstructured needs --sparsity"),
    (["--sparsity", "0.5"], "go with --unstructured"),
    (["--unstructured", "layer", "--sparsity", "0.5", "--ratio", "0.5"], "drop one of them"),
])
def test_cli_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, args, message):
    out = tmp_path / "m.pt"
    result = runner.invoke(app, ["prune", "lenet5", "--out", str(out), *args])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.output
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_a_recipe_prunes_unstructured_and_the_zeros_survive_the_run_folder(tmp_path):
    recipe = pipeline.parse_recipe({
        "model": {"name": "lenet5"}, "task": {"data": "mnist5k", "train_samples": 128, "val_samples": 64},
        "stages": [{"stage": "prune_unstructured", "method": "global", "sparsity": 0.7},
                   {"stage": "finetune", "epochs": 1, "batch_size": 64, "lr": 0.02, "precision": "fp32"}],
        "export": False,
    })
    result = pipeline.run_recipe(recipe, tmp_path / "run", progress=False)
    pruned = result.log.records[1]
    assert pruned.details["method"] == "global"
    assert pruned.details["zeros"] == round(0.7 * sum(c["weights"] for c in pruned.details["layers"].values()))
    assert pruned.measurement.size_bytes["sparse"] < pruned.measurement.size_bytes["state_dict"]
    tuned = result.log.records[2].measurement.size_bytes  # every record of a masked model has its sparse size
    assert tuned["sparse"] < tuned["state_dict"]
    final = trimkit.load(tmp_path / "run" / "model.pt")
    masks = _masks.masks_of(final)
    assert masks and all(final.get_parameter(n)[~m].eq(0).all() for n, m in masks.items())
    assert prune.nonzero_parameters(final) <= pruned.details["dead"]["nonzero_after"]
