from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from trimkit import models
from trimkit.measure import profile
from trimkit.measure._profile import FUNCTIONAL_ROW


def test_resnet56_matches_the_published_macs_and_parameters():
    result = profile(models.create("resnet56"), torch.zeros(1, 3, 32, 32))
    assert result.macs == 125_485_696
    assert result.params == 853_018
    assert result.flops == 2 * 125_485_696
    assert result.param_bytes == {"float32": 853_018 * 4}


def test_resnet20_matches_the_published_macs():
    assert profile(models.create("resnet20"), torch.zeros(1, 3, 32, 32)).macs == 40_551_040


def test_lenet5_layers_by_hand():
    result = profile(models.create("lenet5"), torch.zeros(1, 1, 28, 28))
    by_name = {layer.name: layer for layer in result.layers}
    assert by_name["features.0"].macs == 5 * 5 * 1 * 6 * 28 * 28  # conv 5x5, pad 2
    assert by_name["features.3"].macs == 5 * 5 * 6 * 16 * 10 * 10
    assert by_name["classifier.1"].macs == 400 * 120
    assert by_name["classifier.5"].flops == 2 * 84 * 10
    assert by_name["features.0"].params == 6 * 25 + 6
    assert result.params == 61_706


def test_vgg_c_by_the_seed_formulas():
    result = profile(models.create("vgg_c"), torch.zeros(1, 1, 28, 28))
    conv = [(1, 2, 28), (2, 2, 28), (2, 4, 14), (4, 4, 14), (4, 4, 14)]
    dense = [(196, 256), (256, 128), (128, 64), (64, 32), (32, 10)]
    expected = sum(9 * i * h * side * side for i, h, side in conv) + sum(i * h for i, h in dense)
    assert result.macs == expected


# the tracking models take two inputs: test_siamfc.py
@pytest.mark.parametrize("name", [n for n in models.names() if models.spec(n).task != "tracking"])
def test_layer_sums_agree_with_pytorch_flop_counter(name):
    model = models.create(name).eval()
    x = torch.zeros(1, *models.spec(name).input_shape())
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(x)
    result = profile(model, x)
    assert all(layer.name != FUNCTIONAL_ROW for layer in result.layers)
    assert 2 * sum(layer.macs for layer in result.layers) == counter.get_total_flops()
    assert result.params == sum(p.numel() for p in model.parameters())


def test_grouped_convolution_divides_by_groups_and_batch_is_per_image():
    model = nn.Sequential(nn.Conv2d(8, 16, 3, padding=1, groups=4), nn.Conv2d(16, 16, 3, groups=16))
    result = profile(model, torch.zeros(4, 8, 10, 10))
    assert [layer.macs for layer in result.layers] == [9 * 2 * 16 * 100, 9 * 1 * 16 * 64]


def test_transposed_convolution_counts_input_positions():
    # each of the 5x5 input positions of 8 channels meets a 3x3 kernel per output channel
    result = profile(nn.ConvTranspose2d(8, 6, 3, stride=2, groups=2), torch.zeros(3, 8, 5, 5))
    assert result.layers[0].output_shape == (6, 11, 11)
    assert result.macs == 25 * 9 * 8 * (6 // 2)


def test_functional_cross_correlation_is_counted():
    class Siamese(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = nn.Conv2d(3, 8, 3)

        def forward(self, exemplar, search):
            return F.conv2d(self.backbone(search), self.backbone(exemplar))

    result = profile(Siamese(), (torch.zeros(1, 3, 7, 7), torch.zeros(1, 3, 15, 15)))
    rows = {layer.name: layer for layer in result.layers}
    assert rows["backbone"].macs == 9 * 3 * 8 * (5 * 5 + 13 * 13)  # called on both branches
    assert rows[FUNCTIONAL_ROW].macs == 8 * 5 * 5 * 9 * 9  # 8x5x5 kernel over a 9x9 output


def test_profile_restores_training_mode():
    model = models.create("lenet5").train()
    profile(model, torch.zeros(1, 1, 28, 28))
    assert model.training
