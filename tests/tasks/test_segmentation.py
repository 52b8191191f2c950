"""Segmentation: metrics against hand-computed confusion matrices, CamVid- and VOC-format
folders, bad input, zoo sizes against published counts, and pruning / quantisation /
export on tiny variants."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from trimkit import data, export, models, prune, quant, tasks
from trimkit.data._segmentation import VOID, SegmentationAugmentation, SegmentationDataset, augment_pairs
from trimkit.errors import TrimkitError
from trimkit.models.fcn import FCNResNet
from trimkit.tasks.segmentation import ConfusionMatrix, confusion_matrix, scores

CAMVID = Path(__file__).resolve().parents[3] / "shared" / "data" / "camvid"
CLASSES = ("a", "b", "c")


def _logits_for(prediction: torch.Tensor, classes: int) -> torch.Tensor:
    """Logits (N, C, H, W) whose argmax is ``prediction`` (N, H, W)."""
    return torch.nn.functional.one_hot(prediction, classes).permute(0, 3, 1, 2).float()


def test_confusion_matrix_metrics_match_hand_computation_and_ignore_void():
    truth = torch.tensor([[[0, 0, 1, 1], [2, 2, VOID, VOID]]])
    predicted = torch.tensor([[[0, 1, 1, 1], [2, 0, 2, 1]]])
    matrix = confusion_matrix(predicted, truth, 3)
    # rows = truth: class 0: one right, one as 1; class 1: both right; class 2: one right, one as 0
    assert matrix.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    state = ConfusionMatrix(CLASSES)
    state.update(_logits_for(predicted, 3), truth)
    result = state.result()
    assert result["pixel_accuracy"] == pytest.approx(100 * 4 / 6)
    assert result["mean_class_accuracy"] == pytest.approx(100 * (1 / 2 + 2 / 2 + 1 / 2) / 3)
    # IoU: 0: 1/(2+2-1)=1/3; 1: 2/(2+3-2)=2/3; 2: 1/(2+1-1)=1/2
    assert result["iou_a"] == pytest.approx(100 / 3)
    assert result["iou_b"] == pytest.approx(200 / 3)
    assert result["iou_c"] == pytest.approx(50)
    assert result["miou"] == pytest.approx(100 * (1 / 3 + 2 / 3 + 1 / 2) / 3)
    assert result["n"] == 1


def test_a_class_absent_from_truth_and_prediction_has_no_iou():
    truth = torch.tensor([[[0, 0], [1, VOID]]])
    predicted = torch.tensor([[[0, 1], [1, 2]]])
    result = scores(confusion_matrix(predicted, truth, 4), ("w", "x", "y", "z"))
    assert "iou_z" not in result and "iou_y" not in result  # y predicted only on void: not counted
    assert result["iou_w"] == pytest.approx(50) and result["iou_x"] == pytest.approx(50)
    assert result["miou"] == pytest.approx(50)
    assert result["mean_class_accuracy"] == pytest.approx(100 * (1 / 2 + 1) / 2)


def test_train_and_val_metrics_average_over_the_classes_the_labels_use():
    # a VOC-style folder: 21 classes, masks holding only 0 and 1 (1 only in val)
    voc = tuple(f"c{index}" for index in range(21))
    images = torch.zeros(1, 3, 2, 2, dtype=torch.uint8)
    train_set = SegmentationDataset("t", "train", images, torch.tensor([[[0, 0], [0, VOID]]], dtype=torch.uint8), voc)
    val_set = SegmentationDataset("t", "val", images, torch.tensor([[[0, 1], [1, 0]]], dtype=torch.uint8), voc)
    task = tasks.segmentation(train_set, val_set)
    assert task.labelled_classes == (0, 1)
    # a half-trained model: right on two pixels, the rest spread over classes no mask holds
    predicted = torch.tensor([[[0, 7], [1, 12]]])
    on_val = task.metric_state()
    on_val.update(_logits_for(predicted, 21), val_set.masks.long())
    result = on_val.result()
    # 0: TP 1, truth 2, predicted 1 -> 1/2; 1: TP 1, truth 2, predicted 1 -> 1/2; 7 and 12 are not averaged
    assert result["miou"] == pytest.approx(50)
    assert "iou_c7" not in result and "iou_c12" not in result
    assert result["pixel_accuracy"] == pytest.approx(50)
    on_train = task.metric_state()
    on_train.update(_logits_for(torch.tensor([[[0, 0], [12, 0]]]), 21), train_set.masks.long())
    # class 0: TP 2 of 3 labelled, predicted 2 -> 2/3; class 1 absent from truth and prediction
    assert on_train.result()["miou"] == pytest.approx(100 * 2 / 3)


def test_metrics_accumulate_over_batches_as_one_matrix():
    generator = torch.Generator().manual_seed(0)
    truth = torch.randint(0, 3, (4, 5, 6), generator=generator)
    truth[:, 0, 0] = VOID
    predicted = torch.randint(0, 3, (4, 5, 6), generator=generator)
    whole, parts = ConfusionMatrix(CLASSES), ConfusionMatrix(CLASSES)
    whole.update(_logits_for(predicted, 3), truth)
    parts.update(_logits_for(predicted[:1], 3), truth[:1])
    parts.update(_logits_for(predicted[1:], 3), truth[1:])
    assert torch.equal(whole.matrix, parts.matrix)
    assert int(whole.matrix.sum()) == 4 * 30 - 4


def test_loss_ignores_void_pixels_and_prediction_is_the_argmax_map():
    images = torch.zeros(1, 3, 2, 2, dtype=torch.uint8)
    masks = torch.tensor([[[0, 1], [VOID, VOID]]], dtype=torch.uint8)
    task = tasks.segmentation(SegmentationDataset("t", "train", images, masks, CLASSES))
    logits = torch.randn(1, 3, 2, 2)
    targets = masks.long()
    expected = torch.nn.functional.cross_entropy(logits[0, :, 0].T, targets[0, 0])
    assert task.loss((), logits, targets).item() == pytest.approx(expected.item())
    assert torch.equal(task.prediction(logits), logits.argmax(1))


def _write_camvid(root: Path, values: list[np.ndarray], classes: tuple[str, ...] | None = None) -> Path:
    for split in ("train", "test"):
        (root / split).mkdir(parents=True)
        (root / f"{split}annot").mkdir()
        lines = []
        for index, mask in enumerate(values):
            image = np.full((*mask.shape, 3), 10 * index, dtype=np.uint8)
            Image.fromarray(image).save(root / split / f"f{index}.png")
            Image.fromarray(mask.astype(np.uint8), mode="L").save(root / f"{split}annot" / f"f{index}.png")
            lines.append(f"{split}/f{index}.png {split}annot/f{index}.png")
        (root / f"{split}.txt").write_text("\n".join(lines) + "\n")
    if classes is not None:
        (root / "classes.txt").write_text("\n".join(classes) + "\n")
    return root


def _write_voc(root: Path, masks: list[np.ndarray]) -> Path:
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / folder).mkdir(parents=True)
    names = []
    for index, mask in enumerate(masks):
        name = f"2007_{index:06d}"
        Image.fromarray(np.full((*mask.shape, 3), 40, dtype=np.uint8)).save(root / "JPEGImages" / f"{name}.jpg")
        label = Image.fromarray(mask.astype(np.uint8), mode="P")
        label.putpalette([value for index in range(256) for value in (index, 0, 255 - index)])
        label.save(root / "SegmentationClass" / f"{name}.png")
        names.append(name)
    for split in ("train", "val"):
        (root / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("\n".join(names) + "\n")
    return root


def test_camvid_folder_loads_pairs_and_maps_its_void_to_255(tmp_path):
    masks = [np.array([[0, 1, 2], [3, 3, 0]]), np.array([[2, 2, 2], [1, 1, 1]])]
    root = _write_camvid(tmp_path / "cv", masks, classes=("p", "q", "r"))
    assert data.segmentation_layout(root) == "camvid" and data.is_segmentation_data(str(root))
    train = data.load_segmentation(str(root), "train")
    assert train.classes == ("p", "q", "r") and len(train) == 2
    assert train.masks[0].tolist() == [[0, 1, 2], [VOID, VOID, 0]]
    assert train.images[1, :, 0, 0].tolist() == [10, 10, 10]
    val = data.load_segmentation(str(root), "val")  # no val.txt: the test split serves
    assert val.masks[1].tolist() == [[2, 2, 2], [1, 1, 1]]


def test_voc_folder_reads_palette_indices_and_keeps_255_as_void(tmp_path):
    mask = np.array([[0, 15, 15, 255], [20, 20, 255, 0]])
    root = _write_voc(tmp_path / "VOC2012", [mask, mask])
    assert data.segmentation_layout(root) == "voc"
    val = data.load_segmentation(str(root), "val")
    assert val.num_classes == 21 and val.classes[15] == "person"
    assert val.masks[0].tolist() == mask.tolist()


def test_image_size_resizes_images_bilinearly_and_masks_nearest(tmp_path):
    mask = np.tile(np.array([0, 1, 0, 2, 0, 1], dtype=np.uint8), (4, 1))
    root = _write_camvid(tmp_path / "cv", [mask], classes=CLASSES)
    small = data.load_segmentation(str(root), "train", image_size=(2, 3))
    assert small.images.shape == (1, 3, 2, 3)
    # nearest samples the centres of the 2x2 cells: columns 1, 3, 5, never a blend
    assert small.masks[0].tolist() == [[1, 2, 1], [1, 2, 1]]


@pytest.mark.parametrize("bad, message", [
    (7, "has value 7 but the data set has 3 classes (0..2) and void 3 or 255; fix the label"),
])
def test_label_values_beyond_the_classes_are_one_line_errors(tmp_path, bad, message):
    root = _write_camvid(tmp_path / "cv", [np.array([[0, bad], [1, 3]])], classes=CLASSES)
    with pytest.raises(TrimkitError, match=message.replace("(", r"\(").replace(")", r"\)")):
        data.load_segmentation(str(root), "train")


def test_voc_value_between_classes_and_void_is_refused(tmp_path):
    root = _write_voc(tmp_path / "VOC2012", [np.array([[0, 21], [255, 1]])])
    with pytest.raises(TrimkitError, match=r"has value 21 but the data set has 21 classes \(0..20\) and void 255"):
        data.load_segmentation(str(root), "train")


def test_an_image_without_its_mask_is_named(tmp_path):
    root = _write_camvid(tmp_path / "cv", [np.zeros((2, 2))], classes=CLASSES)
    (root / "trainannot" / "f0.png").unlink()
    with pytest.raises(TrimkitError, match=r"image .*f0.png has no label PNG .* add its mask or drop line 1 of"):
        data.load_segmentation(str(root), "train")
    voc = _write_voc(tmp_path / "VOC2012", [np.zeros((2, 2))])
    (voc / "SegmentationClass" / "2007_000000.png").unlink()
    with pytest.raises(TrimkitError, match=r"has no label PNG .* add its mask or drop 2007_000000 from"):
        data.load_segmentation(str(voc), "val")


def test_unknown_layout_and_mixed_sizes_are_one_line_errors(tmp_path):
    (tmp_path / "plain").mkdir()
    with pytest.raises(TrimkitError, match="is not a segmentation folder: expected a CamVid-format folder"):
        data.load_segmentation(str(tmp_path / "plain"))
    root = _write_camvid(tmp_path / "cv", [np.zeros((2, 2)), np.zeros((3, 2))], classes=CLASSES)
    with pytest.raises(TrimkitError, match=r"images differ in size .* give an image size"):
        data.load_segmentation(str(root), "train")
    rgb = _write_camvid(tmp_path / "rgb", [np.zeros((2, 2))], classes=CLASSES)
    Image.fromarray(np.zeros((2, 2, 3), dtype=np.uint8)).save(rgb / "trainannot" / "f0.png")
    with pytest.raises(TrimkitError, match="is a RGB image; a label PNG holds one class index per pixel"):
        data.load_segmentation(str(rgb), "train")


def test_joint_augmentation_moves_image_and_mask_together():
    generator = torch.Generator().manual_seed(3)
    # Left half class 0 (black), right half class 2 (bright): after scale, crop and flip,
    # mask and image must still agree (bilinear blending only at the one border column).
    values = torch.zeros(16, 12, 16, dtype=torch.uint8)
    values[:, :, 8:] = 2
    images = (values * 100)[:, None].repeat(1, 3, 1, 1)
    out_images, out_masks = augment_pairs(images, values, SegmentationAugmentation((0.5, 2.0), 0.5), generator)
    assert out_images.shape == images.shape and out_masks.shape == values.shape
    bright, dark = out_masks == 2, out_masks == 0
    assert out_images[:, 0][bright].float().mean() > 180 and out_images[:, 0][dark].float().mean() < 20
    flipped = out_masks[:, :, 0] == 2
    assert flipped.any() and (~flipped & dark[:, :, 0]).any()  # some flipped, some not
    assert (out_masks == VOID).any()  # shrunk samples are padded with void


# Published sizes (torchvision's model cards, 21 classes) include an auxiliary FCN head
# that trimkit's models do not have: 3,851 parameters on DeepLabV3-MobileNetV3 (40 -> 10
# -> 21 channels) and 2,365,205 on FCN-ResNet (1024 -> 256 -> 21).
@pytest.mark.parametrize("build, published, aux", [
    (lambda: models.create("deeplabv3_mobilenetv3_large", num_classes=21), 11_029_328, 3_851),
    (lambda: models.create("lraspp_mobilenetv3_large", num_classes=21), 3_221_538, 0),
    (lambda: FCNResNet(50, num_classes=21), 35_322_218, 2_365_205),
    (lambda: FCNResNet(101, num_classes=21), 54_314_346, 2_365_205),
])
def test_zoo_segmentation_models_have_published_parameter_counts(build, published, aux):
    assert sum(p.numel() for p in build().parameters()) == published - aux


def test_zoo_lists_each_models_task():
    assert models.spec("deeplabv3_mobilenetv3_large").task == "segmentation"
    assert models.spec("fcn_resnet18").task == "segmentation"
    assert models.spec("resnet20").task == "classification"


def test_dilated_backbones_keep_the_output_stride():
    model = models.create("deeplabv3_mobilenetv3_large", num_classes=3, width=0.25, aspp_channels=16).eval()
    low, high = model.backbone(torch.zeros(1, 3, 64, 96))
    assert low.shape[-2:] == (8, 12) and high.shape[-2:] == (4, 6)
    fcn = FCNResNet(18, num_classes=3, width=0.125).eval()
    assert fcn.backbone(torch.zeros(1, 3, 64, 96)).shape[-2:] == (8, 12)
    assert model(torch.zeros(1, 3, 64, 96)).shape == (1, 3, 64, 96)


def _tiny_task() -> tasks.SegmentationTask:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (8, 3, 32, 48), dtype=torch.uint8, generator=generator)
    masks = torch.randint(0, 3, (8, 32, 48), generator=generator).to(torch.uint8)
    return tasks.segmentation(SegmentationDataset("tiny", "train", images, masks, CLASSES),
                              SegmentationDataset("tiny", "val", images, masks, CLASSES))


def test_structured_pruning_cuts_squeeze_excite_and_aspp_branches_and_keeps_the_output_shape():
    task = _tiny_task()
    model = models.create("deeplabv3_mobilenetv3_large", num_classes=3, width=0.25, aspp_channels=16).eval()
    before = sum(p.numel() for p in model.parameters())
    result = prune.structured(model, task.example_inputs(2), ratio=0.5)
    pruned = result.model.eval()
    assert sum(p.numel() for p in pruned.parameters()) < 0.5 * before
    aspp = pruned.head[0]
    assert {branch[0].out_channels if isinstance(branch, torch.nn.Sequential) else branch.conv[0].out_channels
            for branch in aspp.branches} == {8}
    assert pruned(task.example_inputs(2)[0]).shape == (2, 3, 32, 48)
    assert tasks.evaluate(pruned, task).samples == 8


def test_lraspp_exports_to_onnx_with_parity(tmp_path):
    task = _tiny_task()
    model = models.create("lraspp_mobilenetv3_large", num_classes=3, width=0.25, inter_channels=16).eval()
    result = export.onnx(model, task.example_inputs(2), tmp_path / "lraspp.onnx")
    assert result.max_rel_err <= export.PARITY_RTOL


@pytest.mark.slow
@pytest.mark.parametrize("name, kwargs", [
    ("deeplabv3_mobilenetv3_large", dict(width=0.25, aspp_channels=16)),
    ("lraspp_mobilenetv3_large", dict(width=0.25, inter_channels=16)),
    ("fcn_resnet18", dict(width=0.125, output_stride=16)),
])
def test_qat_ptq_and_latency_work_on_tiny_segmentation_models(name, kwargs, tmp_path):
    from trimkit import measure

    task = _tiny_task()
    model = models.create(name, num_classes=3, **kwargs).eval()
    inputs = task.example_inputs(2)
    trained = quant.qat(model, "int8", task, epochs=1, batch_size=4, progress=False)
    assert 0 <= tasks.evaluate(trained.model, task).value <= 100
    assert quant.export_qcdq(trained.model, tmp_path / "m.qcdq.onnx", inputs).parity.passed
    assert quant.ptq_int8(model, task.dataset("train"), out=tmp_path / "m.int8.onnx").size_bytes > 0
    assert measure.latency(model, input_shapes=[(3, 32, 48)], min_time_s=0.1, min_iters=3, warmup=1).p50_ms > 0


@pytest.mark.slow
def test_real_camvid_training_beats_chance_and_reports_every_metric():
    from trimkit import train

    if not CAMVID.is_dir():
        pytest.fail(f"the CamVid copy is missing at {CAMVID}")
    train_set = data.load_segmentation(str(CAMVID), "train", image_size=(45, 60)).subset(64)
    val_set = data.load_segmentation(str(CAMVID), "val", image_size=(45, 60)).subset(32)
    task = tasks.segmentation(train_set, val_set)
    model = models.create("lraspp_mobilenetv3_large", num_classes=11, width=0.5)
    train.seed_everything(0)
    train.fit(model, task, epochs=3, batch_size=8, optimizer="adam", lr=3e-3, progress=False, augment=False)
    result = tasks.evaluate(model, task).values
    # Road, building and sky are over 60 % of CamVid's pixels: a trained model beats the
    # 1/11 a constant guess of a random class gets, and reports each metric.
    assert result["pixel_accuracy"] > 40
    assert {"miou", "mean_class_accuracy", "iou_road", "loss"} <= set(result)


def _tiny_folder(root: Path) -> Path:
    generator = np.random.default_rng(0)
    return _write_camvid(root, [generator.integers(0, 3, (32, 48)) for _ in range(4)], classes=CLASSES)


def test_cli_eval_json_reports_pixel_accuracy_miou_and_per_class_iou(tmp_path):
    from typer.testing import CliRunner

    from trimkit.cli import app

    folder = _tiny_folder(tmp_path / "cv")
    model = models.create("lraspp_mobilenetv3_large", num_classes=3, width=0.25, inter_channels=16)
    task = tasks.SegmentationTask({"test": data.load_segmentation(str(folder), "test")})
    expected = tasks.evaluate(model, task, "test").values
    import trimkit

    trimkit.save(model, tmp_path / "m.pt")
    result = CliRunner().invoke(app, ["eval", str(tmp_path / "m.pt"), "--data", str(folder), "--split", "test",
                                      "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    import json

    record = json.loads(result.stdout)
    assert record["pixel_accuracy"] == pytest.approx(expected["pixel_accuracy"])
    assert record["miou"] == pytest.approx(expected["miou"])
    assert set(record["per_class_iou"]) == {name.removeprefix("iou_") for name in expected if name.startswith("iou_")}
    export.onnx(model, task.example_inputs(1), tmp_path / "m.onnx")
    by_runtime = CliRunner().invoke(app, ["eval", str(tmp_path / "m.onnx"), "--data", str(folder), "--split", "test",
                                          "--json"], catch_exceptions=False)
    assert by_runtime.exit_code == 0, by_runtime.output
    assert json.loads(by_runtime.stdout)["pixel_accuracy"] == pytest.approx(expected["pixel_accuracy"], abs=0.5)
    wrong = CliRunner().invoke(app, ["eval", "lraspp_mobilenetv3_large", "--data", str(folder)])
    assert wrong.exit_code == 2
    assert "predicts 10 classes but cv has 3; use a model built for 3 classes (--num-classes 3" in wrong.output


def test_recipe_with_a_segmentation_task_trains_and_prunes(tmp_path):
    from trimkit import pipeline

    folder = _tiny_folder(tmp_path / "cv")
    recipe = pipeline.parse_recipe({
        "model": {"name": "lraspp_mobilenetv3_large", "num_classes": 3,
                  "kwargs": {"width": 0.25, "inter_channels": 16}},
        "task": {"kind": "segmentation", "data": str(folder), "image_size": [16, 24]},
        "export": False,
        "stages": [{"stage": "train", "epochs": 1, "batch_size": 2, "optimizer": "adam", "lr": 0.01},
                   {"stage": "prune", "criterion": "l1", "ratio": 0.5, "layers": "conv"}],
    })
    result = pipeline.run_recipe(recipe, progress=False)
    task = pipeline.build_task(recipe.task, result.model, 0)
    assert isinstance(task, tasks.SegmentationTask) and task.dataset("train").images.shape[-2:] == (16, 24)
    assert result.model(task.example_inputs(1)[0]).shape == (1, 3, 16, 24)
