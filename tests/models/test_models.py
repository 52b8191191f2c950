from __future__ import annotations

import pytest
import torch

import trimkit
from conftest import PRETRAINED, requires_shared_data
from trimkit import models
from trimkit.errors import TrimkitError

# Published parameter counts of the CIFAR ResNets (He et al. 2016, akamaster's table).
PUBLISHED_PARAMS = {"resnet20": 269_722, "resnet32": 464_154, "resnet44": 658_586, "resnet56": 853_018,
                    "resnet110": 1_727_962}


@pytest.mark.parametrize("name", [n for n in models.names() if models.spec(n).task == "classification"])
def test_every_zoo_model_maps_its_input_to_class_scores(name):
    model = models.create(name, num_classes=7)
    shape = models.spec(name).input_shape()
    out = model(torch.randn(2, *shape))
    assert out.shape == (2, 7)
    assert models.origin(model).name == name
    assert models.origin(model).kwargs == {"num_classes": 7, "in_channels": shape[0]}


def test_names_lists_the_whole_zoo():
    assert set(models.names()) >= {"lenet5", "vgg_a", "vgg_b", "vgg_c", "resnet20", "resnet32", "resnet44",
                                   "resnet56", "resnet110", "resnet18", "mobilenetv2", "densenet_small"}


@pytest.mark.parametrize("name, params", PUBLISHED_PARAMS.items())
def test_cifar_resnets_have_published_parameter_counts(name, params):
    assert sum(p.numel() for p in models.create(name).parameters()) == params


@pytest.mark.parametrize("name", ["vgg_a", "vgg_b", "vgg_c", "lenet5"])
def test_mnist_models_also_take_cifar_sized_inputs(name):
    model = models.create(name, in_channels=3)
    assert models.spec(name).input_shape(3) == (3, 32, 32)
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def test_bonsai_vgg_layers_follow_figure_4():
    def widths(model):
        convs = [m.out_channels for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
        dense = [m.out_features for m in model.modules() if isinstance(m, torch.nn.Linear)]
        return convs, dense

    assert widths(models.create("vgg_a")) == ([64, 64, 128, 128, 256], [64, 32, 10])
    assert widths(models.create("vgg_b")) == ([64, 64, 128, 128, 128, 256], [256, 128, 64, 32, 10])
    assert widths(models.create("vgg_c")) == ([2, 2, 4, 4, 4], [256, 128, 64, 32, 10])
    # two 2x2 average pools: 28 -> 7, so model C's first dense layer sees 4 * 7 * 7 inputs
    assert models.create("vgg_c").classifier[1].in_features == 4 * 7 * 7


def test_option_a_shortcut_zero_pads_channels():
    block = models.create("resnet20").layer2[0]
    x = torch.randn(1, 16, 8, 8)
    out = block.shortcut(x)
    assert out.shape == (1, 32, 4, 4)
    assert torch.equal(out[:, 8:24], x[:, :, ::2, ::2])
    assert out[:, :8].abs().sum() == 0 and out[:, 24:].abs().sum() == 0


def test_normalisation_follows_the_weights_the_model_expects():
    assert models.spec("resnet56").normalization() == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert models.spec("lenet5").normalization() == ((0.1307,), (0.3081,))


def test_unknown_model_names_the_choices():
    with pytest.raises(TrimkitError, match=r"unknown model 'resnet57' \(did you mean 'resnet56'\?\); models: .*lenet5"):
        models.create("resnet57")


@requires_shared_data("pretrained/resnet20-12fca82f.th", "pretrained/resnet56-4bfd9763.th")
@pytest.mark.parametrize("name, file", [("resnet20", "resnet20-12fca82f.th"), ("resnet56", "resnet56-4bfd9763.th")])
def test_pretrained_cifar_resnets_load_into_the_zoo(name, file):
    model = trimkit.load_weights(models.create(name), PRETRAINED / file)
    raw = torch.load(PRETRAINED / file, map_location="cpu", weights_only=True)["state_dict"]
    assert torch.equal(model.conv1.weight, raw["module.conv1.weight"])
    assert torch.equal(model.linear.bias, raw["module.linear.bias"])
