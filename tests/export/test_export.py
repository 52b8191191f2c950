from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trimkit import export, models
from trimkit.errors import TrimkitError


def _example(name: str, batch: int = 2) -> torch.Tensor:
    return torch.randn(batch, *models.spec(name).input_shape(), generator=torch.Generator().manual_seed(1))


# the tracking models take two inputs: test_siamfc.py
@pytest.mark.parametrize("name", [n for n in models.names() if models.spec(n).task != "tracking"])
def test_every_zoo_model_exports_with_parity_and_a_dynamic_batch(name, tmp_path):
    model = models.create(name)
    model.train()
    result = export.onnx(model, _example(name), tmp_path / f"{name}.onnx")
    assert model.training, "export must restore train mode"
    assert result.path.stat().st_size == result.size_bytes > 0
    assert result.max_rel_err <= export.PARITY_RTOL
    assert result.dynamic_batch and result.input_names == ("input",) and result.output_names == ("output",)
    session = onnxruntime.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    five = _example(name, batch=5)
    got = session.run(None, {"input": five.numpy()})[0]
    with torch.inference_mode():
        expected = model.eval()(five).numpy()
    spatial = tuple(five.shape[-2:]) if models.spec(name).task == "segmentation" else ()
    assert got.shape == (5, 10, *spatial)
    assert np.max(np.abs(got - expected)) <= 1e-4 * np.max(np.abs(expected))


def test_file_records_opset_and_the_zoo_origin(tmp_path):
    result = export.onnx(models.create("lenet5"), _example("lenet5"), tmp_path / "l.onnx", opset=17)
    proto = onnx.load(result.path)
    assert result.opset == 17 and proto.opset_import[0].version == 17
    assert export.read_metadata(proto) == {"model": "lenet5", "kwargs": {"num_classes": 10, "in_channels": 1},
                                           "input_shape": [1, 28, 28], "normalization": [[0.1307], [0.3081]]}


class _Siamese(nn.Module):
    """SiamFC-style: one backbone for exemplar and search image, cross-correlation head.
    The batched cross-correlation is a convolution grouped by the batch size."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3))

    def forward(self, exemplar: torch.Tensor, search: torch.Tensor) -> torch.Tensor:
        kernel, features = self.backbone(exemplar), self.backbone(search)
        batch, channels, height, width = features.shape
        scores = F.conv2d(features.reshape(1, batch * channels, height, width), kernel, groups=batch)
        return scores.reshape(batch, 1, scores.shape[-2], scores.shape[-1])


class _TwoInputFusion(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.image = nn.Conv2d(3, 4, 3)
        self.depth = nn.Conv2d(1, 4, 3)
        self.head = nn.Linear(8, 5)

    def forward(self, image: torch.Tensor, depth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fused = torch.cat([self.image(image).mean((2, 3)), self.depth(depth).mean((2, 3))], dim=1)
        return self.head(fused), fused


def _siamese_inputs(batch: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return torch.randn(batch, 3, 31, 31, generator=generator), torch.randn(batch, 3, 63, 63, generator=generator)


def test_two_input_siamese_exports_with_its_batch_fixed(tmp_path):
    model = _Siamese().eval()
    result = export.onnx(model, _siamese_inputs(), tmp_path / "siam.onnx", dynamic_batch=False)
    assert result.input_names == ("input0", "input1")
    assert result.max_rel_err <= export.PARITY_RTOL
    session = onnxruntime.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    assert [node.shape for node in session.get_inputs()] == [[2, 3, 31, 31], [2, 3, 63, 63]]


def test_batch_fixed_by_a_layer_is_caught_when_a_dynamic_batch_is_asked(tmp_path):
    with pytest.raises(TrimkitError, match=r"fixes the batch size.*dynamic_batch=False"):
        export.onnx(_Siamese().eval(), _siamese_inputs(), tmp_path / "siam.onnx")
    assert list(tmp_path.iterdir()) == []


def test_two_inputs_and_two_outputs_with_a_dynamic_batch(tmp_path):
    generator = torch.Generator().manual_seed(0)
    inputs = (torch.randn(3, 3, 16, 16, generator=generator), torch.randn(3, 1, 16, 16, generator=generator))
    result = export.onnx(_TwoInputFusion(), inputs, tmp_path / "fusion.onnx")
    assert result.output_names == ("output0", "output1")
    checked = export.parity(result.path, _TwoInputFusion().eval().requires_grad_(False), inputs)
    assert checked.batch_sizes == (3, 4)
    assert checked.max_rel_err > 1e-3, "a model with other weights must not pass parity"


class _BakesTheBatchSize(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * int(x.shape[0])


def test_wrong_export_fails_loudly_and_writes_nothing(tmp_path):
    target = tmp_path / "bad.onnx"
    with pytest.raises(export.ParityError, match=r"max relative error 3\.3\de-01"):
        export.onnx(_BakesTheBatchSize(), torch.randn(2, 4) + 3, target)
    assert list(tmp_path.iterdir()) == []


def test_an_opset_the_exporter_cannot_write_is_refused(tmp_path):
    with pytest.raises(TrimkitError, match="opset 30 is not supported; choose 11 to 20"):
        export.onnx(models.create("lenet5"), _example("lenet5"), tmp_path / "l.onnx", opset=30)


def test_result_serialises(tmp_path):
    record = export.onnx(models.create("lenet5"), _example("lenet5"), tmp_path / "l.onnx").to_dict()
    assert json.loads(json.dumps(record))["path"] == str(tmp_path / "l.onnx")
