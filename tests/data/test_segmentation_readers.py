"""bench, compare and the report read segmentation as segmentation: pixel accuracy, class
accuracy and mIoU as the runtime computes them, mIoU in comparison tables (headed by its
name, with its change against the first model), and one-line errors for a model and data
of different tasks. Tiny LR-ASPP models on a generated CamVid-format folder."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import trimkit
from trimkit import data, export, models, pipeline, tasks
from trimkit.cli import app
from trimkit.errors import TrimkitError
from trimkit.report import write_report
from trimkit.report._compare import comparisons_block
from trimkit.report._source import Ref

QUICK = ["--threads", "1", "--warmup", "1", "--min-time", "0.02", "--max-iters", "10"]
CLASSES = ("a", "b", "c")
TINY = dict(num_classes=3, width=0.25, inter_channels=16)
SIZE = (90, 120)  # the zoo's input size for segmentation models: what bench and compare time and score at
runner = CliRunner()


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One PyTorch thread: these models are tiny, and two threads on two busy cores spend
    most of their time waiting for each other (an export took 9 s instead of 0.5 s)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def run(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def _camvid(root: Path, count: int = 4) -> Path:
    """A CamVid-format folder: random 24x32 images, random masks of 3 classes."""
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        (root / split).mkdir(parents=True)
        (root / f"{split}annot").mkdir()
        lines = []
        for index in range(count):
            Image.fromarray(rng.integers(0, 256, (24, 32, 3)).astype(np.uint8)).save(root / split / f"f{index}.png")
            Image.fromarray(rng.integers(0, 3, (24, 32)).astype(np.uint8), mode="L").save(
                root / f"{split}annot" / f"f{index}.png")
            lines.append(f"{split}/f{index}.png {split}annot/f{index}.png")
        (root / f"{split}.txt").write_text("\n".join(lines) + "\n")
    (root / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    return root


def _model(seed: int, images: torch.Tensor) -> torch.nn.Module:
    """A tiny LR-ASPP whose batch norms have seen ``images``: freshly built, it would call
    every pixel one class and every mIoU would be the same; calibrated, its labels vary."""
    torch.manual_seed(seed)
    model = models.create("lraspp_mobilenetv3_large", **TINY)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # running statistics = this one batch's
    model.train()
    with torch.no_grad():
        model(images)
    return model.eval()


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("segreaders")
    folder = _camvid(root / "cv")
    normalization = models.spec("lraspp_mobilenetv3_large").normalization()
    images = tasks.SegmentationTask({"test": data.load_segmentation(str(folder), "test", image_size=SIZE)
                                     .with_normalization(normalization)}).example_inputs(4)[0]
    first, second = _model(0, images), _model(1, images)
    trimkit.save(first, root / "m.pt")
    export.onnx(first, images[:2], root / "m1.onnx")
    export.onnx(second, images[:2], root / "m2.onnx")
    return {"folder": str(folder), "model": str(root / "m.pt"), "onnx": str(root / "m1.onnx"),
            "onnx2": str(root / "m2.onnx")}


@pytest.fixture(scope="module")
def evaluated(world) -> dict:
    """``trimkit eval --json`` of m.pt (PyTorch, fp32) on the test split at the size bench times at."""
    result = run("eval", world["model"], "--data", world["folder"], "--split", "test", "--image-size",
                 "x".join(map(str, SIZE)), "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_bench_scores_segmentation_as_eval_does(world, evaluated):
    expected = evaluated
    # the model labels pixels of every class: mIoU is not the one-class figure (pixel accuracy / 3)
    assert len(expected["per_class_iou"]) == 3 and all(iou > 5 for iou in expected["per_class_iou"].values())
    result = run("bench", world["model"], "--data", world["folder"], "--split", "test", "--json", *QUICK)
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    scored = record["accuracy"]
    assert (scored["n"], scored["backend"], scored["precision"]) == (4, "onnxruntime", "fp32")
    assert "top1" not in scored
    # ONNX Runtime's fp32 logits differ from PyTorch's in the last bits, which can flip a
    # pixel whose two best logits tie. One flipped pixel of the 4 x 90 x 120 moves pixel
    # accuracy by 0.0023 points and mIoU by at most 2/3 x 100 / (a class's union, over
    # 10,000 pixels here: each class covers about a third of every mask) < 0.007 points;
    # 0.05 allows a few such pixels and no other difference.
    for name in ("pixel_accuracy", "mean_class_accuracy", "miou"):
        assert scored[name] == pytest.approx(expected[name], abs=0.05), name
    metrics = {m["name"]: m for m in record["measurement"]["metrics"]}
    assert metrics["miou"]["value"] == scored["miou"] and metrics["miou"]["backend"] == "onnxruntime"
    assert (metrics["pixel_accuracy"]["samples"], metrics["pixel_accuracy"]["split"]) == (4, "test")
    assert {"mean_class_accuracy", "iou_a", "iou_b", "iou_c"} <= set(metrics)
    printed = run("bench", world["onnx"], "--data", world["folder"], "--split", "test", *QUICK)  # m.pt's export
    assert printed.exit_code == 0, printed.output
    assert (f"pixel acc {scored['pixel_accuracy']:.2f} %, class acc "
            f"{scored['mean_class_accuracy']:.2f} %, mIoU {scored['miou']:.2f} % on 4 cv test samples (90x120), "
            "computed by onnxruntime in fp32") in printed.stdout


def test_compare_shows_miou_and_its_change_against_the_first(world, evaluated):
    args = ("compare", world["onnx"], world["onnx2"], "--data", world["folder"], "--split", "test", *QUICK)
    record = json.loads(run(*args, "--json").stdout)
    assert record["metric"] == "miou"
    first, second = (
        {m["name"]: m["value"] for m in row["measurement"]["metrics"]} for row in record["models"])
    assert first["miou"] == pytest.approx(evaluated["miou"], abs=0.05)  # m1.onnx is m.pt exported; see above
    assert first["miou"] != second["miou"]  # two models, scored on the same images
    assert record["models"][1]["change"] == pytest.approx(second["miou"] - first["miou"])
    printed = run(*args)
    assert printed.exit_code == 0, printed.output
    header = next(line for line in printed.stdout.splitlines() if line.split()[:1] == ["model"])
    assert header.split()[-3:] == ["mIoU", "%", "Δ"] and "top-1" not in printed.stdout
    rows = {line.split()[0]: line.split() for line in printed.stdout.splitlines()
            if line.split()[:1] in (["m1.onnx"], ["m2.onnx"])}
    assert rows["m1.onnx"][-2:] == [f"{first['miou']:.2f}", "+0.00"]
    assert rows["m2.onnx"][-2:] == [f"{second['miou']:.2f}", f"{second['miou'] - first['miou']:+.2f}"]
    assert "mIoU % on 4 cv test images as onnxruntime computes it" in printed.stdout


@pytest.mark.parametrize("args, message", [
    (["bench", "lenet5", "--data", "{folder}"],
     "--data {folder}: lenet5 is a classification model and cv is segmentation data; give classification data"),
    (["bench", "{model}", "--data", "mnist5k"],
     "--data mnist5k: lraspp_mobilenetv3_large is a segmentation model and mnist5k is classification data; give "
     "segmentation data"),
    (["bench", "{onnx}", "--data", "mnist5k"], "--data mnist5k: m1.onnx is a segmentation model and mnist5k is "
                                               "classification data"),
    (["compare", "{model}", "lenet5", "--data", "{folder}"],
     "--data {folder}: lenet5 is a classification model and cv is segmentation data"),
    (["compare", "lenet5", "{model}", "--data", "mnist5k"],
     "--data mnist5k: lraspp_mobilenetv3_large is a segmentation model and mnist5k is classification data"),
    (["bench", "lraspp_mobilenetv3_large", "--data", "{folder}"],
     "--data {folder}: lraspp_mobilenetv3_large predicts 10 classes but cv has 3; use a model built for 3 classes"),
])
def test_a_model_and_data_of_different_tasks_are_one_line_errors(world, args, message):
    result = run(*(arg.format(**world) for arg in args))
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {message.format(**world)}"), lines


class _Tables(HTMLParser):
    """Each table's header cells and rows of cells (text, and the data-src of figures)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[dict] = []
        self._cell: list[str] | None = None
        self._sources: list[str] = []

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "table":
            self.tables.append({"head": [], "rows": []})
        elif tag == "tr" and self.tables:
            self.tables[-1]["rows"].append([])
        elif tag in ("th", "td"):
            self._cell, self._sources = [], []
        elif self._cell is not None and "data-src" in attributes:
            self._sources.append(attributes["data-src"])

    def handle_data(self, text):
        if self._cell is not None:
            self._cell.append(text)

    def handle_endtag(self, tag):
        if tag in ("th", "td") and self._cell is not None:
            cell = ("".join(self._cell).strip(), list(self._sources))
            if tag == "th":
                self.tables[-1]["head"].append(cell[0])
            else:
                self.tables[-1]["rows"][-1].append(cell)
            self._cell = None


def _compare_tables(html: str) -> list[dict]:
    parser = _Tables()
    parser.feed(html)
    return [{"head": t["head"], "rows": [row for row in t["rows"] if row]}  # the header's row has no cells
            for t in parser.tables if t["head"][:2] == ["model", "params"]]


def test_report_of_a_segmentation_run_shows_miou_read_from_the_record(world, tmp_path):
    recipe = pipeline.parse_recipe({
        "model": {"file": world["model"]},
        "task": {"kind": "segmentation", "data": world["folder"], "image_size": [16, 24]},
        "export": False,
        "stages": [{"stage": "prune", "criterion": "l1", "ratio": 0.5, "layers": "conv"},
                   {"stage": "compare", "models": ["original", "current"], "min_time_s": 0.02}],
    })
    pipeline.run_recipe(recipe, tmp_path / "run", progress=False)
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    position = next(i for i, record in enumerate(log) if record["stage"] == "compare")
    comparison = log[position]["details"]["comparisons"][0]
    assert comparison["metric"] == "miou"
    html = write_report(tmp_path / "run").read_text(encoding="utf-8")
    (compared,) = _compare_tables(html)
    assert compared["head"][-2:] == ["mIoU %", "Δ"] and not any("top-1" in h for h in compared["head"])
    values = []
    for row, cells in enumerate(compared["rows"]):
        metrics = comparison["models"][row]["measurement"]["metrics"]
        index = next(i for i, m in enumerate(metrics) if m["name"] == "miou")
        shown, sources = cells[-2]
        # the figure is the record's own mIoU (its place in the log beside it), at 2 decimals
        assert json.loads(sources[0]) == [position, "details", "comparisons", 0, "models", row, "measurement",
                                          "metrics", index, "value"]
        assert shown.startswith(f"{metrics[index]['value']:.2f}") and metrics[index]["split"] == "val"
        values.append(metrics[index]["value"])
    assert values[0] != values[1]  # before and after pruning
    assert compared["rows"][1][-1][0] == f"{values[1] - values[0]:+.2f}"


def _row(label: str, metrics: list[tuple[str, float]], **extra) -> dict:
    return {"label": label, "params": 10, "macs": 20, "size_bytes": 30,
            "latency": {"backend": "onnxruntime", "batch_size": 1, "threads": 1, "precision": "fp32", "p50_ms": 1.0},
            "measurement": {"metrics": [{"name": n, "value": v, "split": "val", "samples": 4} for n, v in metrics]},
            **extra}


def test_report_heads_each_comparison_by_its_own_metric_and_never_mixes_them():
    details = {"comparisons": [
        {"metric": "miou", "models": [_row("seg", [("pixel_accuracy", 70.0), ("miou", 41.0)], metric="miou"),
                                      _row("seg2", [("pixel_accuracy", 71.0), ("miou", 43.5)], metric="miou")]},
        {"models": [_row("old", [("top1", 91.0)], top1=91.0, top1_samples=200, top1_split="val"),
                    _row("old2", [("top1", 89.0)], top1=89.0, top1_samples=200, top1_split="val")]},
        {"models": [_row("cls", [("top1", 90.0)], metric="top1"),
                    _row("seg", [("miou", 40.0), ("top1", 12.0)], metric="miou")]},
    ]}
    seg, old, mixed = _compare_tables(comparisons_block(Ref(details, (5, "details"))))
    assert seg["head"][-2:] == ["mIoU %", "Δ"] and "top-1 %" not in seg["head"]
    assert [row[-2][0].split()[0] for row in seg["rows"]] == ["41.00", "43.50"]
    assert seg["rows"][1][-1][0] == "+2.50"
    # a row written before comparisons named their metric: its top1, the change derived
    assert old["head"][-2:] == ["top-1 %", "Δ"] and [row[-1][0] for row in old["rows"]] == ["0.00", "-2.00"]
    # rows of different tasks: a column each; the mIoU row's top-1 cell stays empty
    assert mixed["head"][-4:] == ["top-1 %", "Δ", "mIoU %", "Δ"]
    (cls_top1, _, cls_miou, _), (seg_top1, seg_change, seg_miou, _) = (row[-4:] for row in mixed["rows"])
    assert cls_top1[0].split()[0] == "90.00" and cls_miou[0] == "–"
    assert seg_top1[0] == "–" and seg_change[0] == "–" and seg_miou[0].split()[0] == "40.00"
    assert re.search(r"\b12\.00\b", comparisons_block(Ref(details, (5, "details")))) is None


# --- a team's own classes in VOC layout (CVAT's export) ------------------------------------

CVAT_CLASSES = ("background", "road", "car")
CVAT_COLOURS = ((0, 0, 0), (128, 64, 128), (0, 0, 142))


def _cvat_export(root: Path, count: int = 3, colours=CVAT_COLOURS, labelmap: bool = True) -> tuple[Path, list]:
    """A VOC-layout folder as CVAT exports it: JPEG images, colour masks, a label map."""
    generator = np.random.default_rng(0)
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / folder).mkdir(parents=True)
    indices = []
    for index in range(count):
        mask = np.kron(generator.integers(0, len(colours), (4, 6)), np.ones((4, 4), dtype=np.int64))
        indices.append(mask)
        Image.fromarray(np.array(colours, dtype=np.uint8)[mask]).save(root / "SegmentationClass" / f"f{index}.png")
        Image.fromarray(generator.integers(0, 256, (16, 24, 3)).astype(np.uint8)).save(
            root / "JPEGImages" / f"f{index}.jpg")
    for split in ("train", "val"):
        (root / "ImageSets" / "Segmentation" / f"{split}.txt").write_text(
            "\n".join(f"f{index}" for index in range(count)) + "\n")
    if labelmap:
        lines = ["# label:color_rgb:parts:actions"] + [f"{name}:{','.join(map(str, colour))}::"
                                                        for name, colour in zip(CVAT_CLASSES, colours)]
        (root / "labelmap.txt").write_text("\n".join(lines) + "\n")
    return root, indices


def test_a_cvat_voc_export_brings_its_own_classes(tmp_path):
    from trimkit.data._segmentation import segmentation_classes

    folder, indices = _cvat_export(tmp_path / "cvat")
    dataset = data.load_segmentation(str(folder), "train")
    assert dataset.classes == CVAT_CLASSES and dataset.num_classes == 3
    assert torch.equal(dataset.masks, torch.from_numpy(np.stack(indices)).to(dataset.masks.dtype))
    assert segmentation_classes(str(folder)) == CVAT_CLASSES
    trained = run("train", "lraspp_mobilenetv3_large", "--data", str(folder), "--epochs", "1", "--batch-size", "2",
                  "--out", str(tmp_path / "m.pt"), "--json")
    assert trained.exit_code == 0, trained.output
    assert trimkit.models.origin(trimkit.load(tmp_path / "m.pt")).num_classes == 3


def test_a_colour_the_label_map_does_not_list_is_one_line(tmp_path):
    folder, _ = _cvat_export(tmp_path / "cvat", colours=((0, 0, 0), (128, 64, 128), (9, 9, 9)))
    (folder / "labelmap.txt").write_text("background:0,0,0::\nroad:128,64,128::\ncar:0,0,142::\n")
    with pytest.raises(TrimkitError, match=r"has colour 9,9,9, which labelmap.txt does not list"):
        data.load_segmentation(str(folder), "train")


def test_a_voc_folder_names_its_classes_in_classes_txt_or_has_vocs_21(tmp_path):
    from trimkit.data._segmentation import VOC_CLASSES, segmentation_classes

    folder, _ = _cvat_export(tmp_path / "voc", labelmap=False)
    assert segmentation_classes(str(folder)) == VOC_CLASSES
    (folder / "classes.txt").write_text("background\nroad\ncar\n")
    assert segmentation_classes(str(folder)) == CVAT_CLASSES
