"""The Siamese tracker model: shapes, one shared backbone, the correlation against a
hand-written loop, and that pruning, quantisation and export keep all of it."""

from __future__ import annotations

import torch
from torch import nn

from trimkit import export, models, prune, quant
from trimkit.models.siamfc import Correlation, SiamFC, xcorr


def _inputs(batch: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return (torch.randn(batch, 3, 127, 127, generator=generator),
            torch.randn(batch, 3, 255, 255, generator=generator))


def test_siamfc_shapes_follow_the_paper():
    model = models.create("siamfc", width=0.25).eval()
    exemplar, search = _inputs()
    assert model.embed(exemplar).shape == (2, 256, 6, 6)
    assert model.embed(search).shape == (2, 256, 22, 22)
    assert model(exemplar, search).shape == (2, 1, 17, 17)
    assert model.total_stride == 8
    assert models.spec("siamfc").task == "tracking"


def test_seed_variant_shapes_follow_the_seed():
    model = models.create("siamfc_seed", width=0.25).eval()
    exemplar, search = _inputs()
    assert model.embed(exemplar).shape == (2, 32, 17, 17)
    assert model.embed(search).shape == (2, 32, 49, 49)
    assert model(exemplar, search).shape == (2, 1, 33, 33)


def test_full_width_siamfc_has_alexnet_widths():
    model = models.create("siamfc")
    widths = [m.out_channels for m in model.backbone if isinstance(m, nn.Conv2d)]
    assert widths == [96, 256, 384, 384, 256]
    assert [m.kernel_size[0] for m in model.backbone if isinstance(m, nn.Conv2d)] == [11, 5, 3, 3, 3]
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.backbone) == 4


def test_both_branches_share_one_backbone():
    model = models.create("siamfc_seed", width=0.25)
    exemplar, search = _inputs(1)
    calls = []
    handle = model.backbone.register_forward_hook(lambda module, inputs, output: calls.append(output.shape[-1]))
    model(exemplar, search).sum().backward()
    handle.remove()
    assert calls == [17, 49]
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 5  # one backbone's worth: no second copy, no weight in the correlation
    assert convs[0].weight.grad is not None


def _loop_xcorr(exemplar: torch.Tensor, search: torch.Tensor) -> torch.Tensor:
    batch, _channels, h, w = exemplar.shape
    rows, cols = search.shape[2] - h + 1, search.shape[3] - w + 1
    out = torch.zeros(batch, 1, rows, cols, dtype=torch.float64)
    for b in range(batch):
        for i in range(rows):
            for j in range(cols):
                out[b, 0, i, j] = (search[b, :, i:i + h, j:j + w].double() * exemplar[b].double()).sum()
    return out


def test_correlation_equals_a_hand_written_loop():
    generator = torch.Generator().manual_seed(1)
    exemplar = torch.randn(3, 4, 3, 2, generator=generator)
    search = torch.randn(3, 4, 7, 6, generator=generator)
    assert torch.allclose(xcorr(exemplar, search).double(), _loop_xcorr(exemplar, search), atol=1e-5)
    # one exemplar against several search images (the scale pyramid)
    one = xcorr(exemplar[:1], search)
    assert torch.allclose(one.double(), _loop_xcorr(exemplar[:1].expand(3, -1, -1, -1), search), atol=1e-5)


def test_correlation_gradient_matches_autograd_through_the_loop():
    generator = torch.Generator().manual_seed(2)
    exemplar = torch.randn(2, 2, 2, 2, generator=generator, dtype=torch.float64, requires_grad=True)
    search = torch.randn(2, 2, 4, 3, generator=generator, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(Correlation(2), (exemplar, search))


def test_pruning_keeps_the_backbone_shared_and_the_correlation_correct():
    model = models.create("siamfc_seed", width=0.25).eval()
    exemplar, search = _inputs(1)
    result = prune.structured(model, (exemplar, search), ratio=0.5)
    pruned = result.model.eval()
    assert isinstance(pruned, SiamFC)
    assert result.macs_after < result.macs_before / 2
    features = [m for m in pruned.backbone if isinstance(m, nn.Conv2d)][-1].out_channels
    assert features == 16  # the feature width is pruned too, in both branches at once
    assert pruned.correlation.in_channels == 16
    with torch.no_grad():
        z, x = pruned.embed(exemplar), pruned.embed(search)
        assert z.shape == (1, 16, 17, 17) and x.shape == (1, 16, 49, 49)
        expected = _loop_xcorr(z, x) * pruned.adjust.scale.double() + pruned.adjust.bias.double()
        assert torch.allclose(pruned(exemplar, search).double(), expected, rtol=1e-4, atol=1e-6)


def test_quantisation_keeps_one_backbone_and_the_correlation():
    model = models.create("siamfc_seed", width=0.25).eval()
    exemplar, search = _inputs(1)
    quantized = quant.quantize(model, "first=int16,hidden=binary,last=int8,act=int8",
                               example_inputs=(exemplar, search)).eval()
    plan = quantized.trimkit_quant_plan
    assert [layer.name for layer in plan.layers][-1] == "backbone.13"  # the seed's last layer: the features
    with torch.no_grad():
        z, x = quantized.embed(exemplar), quantized.embed(search)
        expected = _loop_xcorr(z, x) * quantized.adjust.scale.double() + quantized.adjust.bias.double()
        assert torch.allclose(quantized(exemplar, search).double(), expected, rtol=1e-4, atol=1e-6)


def test_backbone_exports_to_onnx_with_parity(tmp_path):
    model = models.create("siamfc", width=0.25).eval()
    _, search = _inputs(2)
    result = export.onnx(model.backbone, search, tmp_path / "backbone.onnx")
    assert result.max_rel_err <= export.PARITY_RTOL
    assert (tmp_path / "backbone.onnx").stat().st_size == result.size_bytes
