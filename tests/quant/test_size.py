from __future__ import annotations

import pytest
import torch
from torch import nn

from quant_models import TinyNet
from trimkit import TrimkitError, models, quant
from trimkit.quant._bitpack import pack_codes, unpack_codes
from trimkit.quant._packed import MAGIC

POLICY = "first=int8,hidden=binary,last=int4:tensor,act=int4"
EXAMPLE = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(1))


def test_sizes_recomputed_by_hand_on_a_small_model():
    report = quant.size_report(TinyNet(), POLICY, example_inputs=EXAMPLE)
    rows = {row.name: row for row in report.layers}
    # conv1: 72 int8 weights, 8 per-channel scales, 8 float biases, one scale for its int8 input
    assert (rows["conv1"].analytic_bits,
            rows["conv1"].analytic_bytes) == (72 * 8 + 8 * 32 + 8 * 32 + 32, 72 + 32 + 32 + 4)
    # conv2: 1152 binary weights, 16 per-channel scales, no bias, one int4-input scale
    assert (rows["conv2"].analytic_bits, rows["conv2"].analytic_bytes) == (1152 + 16 * 32 + 32, 144 + 64 + 4)
    # head: 640 int4 weights, one per-tensor scale, 10 float biases, one input scale
    assert (rows["head"].analytic_bits, rows["head"].analytic_bytes) == (640 * 4 + 32 + 10 * 32 + 32, 320 + 4 + 40 + 4)
    assert (rows["conv2"].scales, rows["head"].scales, rows["head"].act_scales) == (16, 1, 1)
    # batch norm: weight, bias, running mean and variance of 8 channels (num_batches_tracked left out)
    assert (report.other_bits, report.other_bytes) == (32 * 32, 128)
    assert report.analytic_bits == 1120 + 1696 + 2944 + 1024
    assert report.analytic_bytes == 140 + 212 + 368 + 128
    assert report.conv_param_bytes == (72 + 32 + 32) + (144 + 64)
    assert report.float32_bytes == (72 + 8) * 4 + 1152 * 4 + (640 + 10) * 4 + 128
    assert report.float32_conv_param_bytes == (72 + 8) * 4 + 1152 * 4


def test_each_tensor_is_rounded_up_to_whole_bytes_but_bits_are_not():
    model = nn.Sequential(nn.Linear(7, 3, bias=False), nn.ReLU(), nn.Linear(3, 3, bias=False))
    report = quant.size_report(model, "first=binary:tensor,last=int3:tensor", example_inputs=torch.randn(2, 7))
    first, last = report.layers
    assert (first.analytic_bits, first.analytic_bytes) == (21 + 32, 3 + 4)
    assert (last.analytic_bits, last.analytic_bytes) == (27 + 32, 4 + 4)
    assert report.conv_param_bytes == 0  # no convolutions


def test_ort_zero_points_are_counted_when_asked():
    report = quant.size_report(TinyNet(), "int8", example_inputs=EXAMPLE, zero_point_bits=8)
    rows = {row.name: row for row in report.layers}
    assert rows["conv2"].zero_points == 16
    assert rows["conv2"].analytic_bytes == 1152 + 16 * 4 + 16 + 4


@pytest.mark.parametrize("bits", [2, 3, 4, 5, 8, 11, 16, 32])
def test_codes_pack_at_their_width_and_unpack_exactly(bits):
    low, high = -(1 << (bits - 1)) + 1, (1 << (bits - 1)) - 1
    codes = torch.randint(low, high + 1, (1001,), generator=torch.Generator().manual_seed(bits))
    packed = pack_codes(codes, bits)
    assert len(packed) == -(-1001 * bits // 8)
    assert torch.equal(unpack_codes(packed, 1001, bits), codes)


def test_binary_codes_take_one_bit():
    codes = torch.tensor([1, -1, -1, 1, 1, 1, -1, 1, -1])
    packed = pack_codes(codes, 1, binary=True)
    assert len(packed) == 2 and packed[0] == 0b10111001
    assert torch.equal(unpack_codes(packed, 9, 1, binary=True), codes)


@pytest.mark.parametrize("policy", [POLICY, "first=int16,hidden=ternary:learned,last=binary:const,act=int8",
                                    "hidden=int2:tensor,act=binary"])
def test_packed_file_round_trips_bit_exactly_and_holds_the_analytic_bytes(tmp_path, policy):
    model = TinyNet()
    quantized = quant.quantize(model, policy, example_inputs=EXAMPLE).eval()
    size = quant.save_packed(quantized, tmp_path / "tiny.tpk")
    loaded = quant.load_packed(tmp_path / "tiny.tpk", model=TinyNet()).eval()
    with torch.no_grad():
        assert torch.equal(loaded(EXAMPLE), quantized(EXAMPLE))
        for name in ("conv1", "conv2", "head"):
            original, reloaded = quantized.get_submodule(name), loaded.get_submodule(name)
            if original.weight_quant.is_quant_enabled:
                assert torch.equal(reloaded.quant_weight().value, original.quant_weight().value)
                assert torch.equal(reloaded.quant_weight().scale.flatten(), original.quant_weight().scale.flatten())
    data = (tmp_path / "tiny.tpk").read_bytes()
    header_end = len(MAGIC) + 6 + int.from_bytes(data[len(MAGIC) + 2: len(MAGIC) + 6], "little")
    assert size == len(data)
    assert len(data) - header_end == quant.size_report(quantized).analytic_bytes


def test_a_packed_zoo_model_is_within_2_percent_of_the_analytic_size(tmp_path):
    model = models.create("resnet20")
    for policy in ("first=int16,hidden=binary,last=int8,act=int8", "first=int16,hidden=int4,last=int8,act=int32"):
        analytic = quant.size_report(model, policy).analytic_bytes
        packed = quant.packed_size(model, policy)
        assert analytic <= packed <= 1.02 * analytic


def test_loading_a_packed_file_checks_its_header(tmp_path):
    bad = tmp_path / "bad.tpk"
    bad.write_bytes(b"not a packed model")
    with pytest.raises(TrimkitError, match="not a trimkit packed model"):
        quant.load_packed(bad)
    with pytest.raises(TrimkitError, match="needs a quantised model"):
        quant.save_packed(TinyNet(), tmp_path / "float.tpk")


def test_packing_from_another_architecture_is_refused(tmp_path):
    quantized = quant.quantize(TinyNet(), POLICY, example_inputs=EXAMPLE)
    quant.save_packed(quantized, tmp_path / "tiny.tpk")
    other = TinyNet()
    other.head = nn.Linear(16, 10, bias=False)
    with pytest.raises(TrimkitError, match="different architecture"):
        quant.load_packed(tmp_path / "tiny.tpk", model=other)
