"""The HTML report of a run folder: every figure is the log's own, missing or damaged
parts are named rather than crashing, and a real headless browser shows the page with
its charts and no console errors."""

from __future__ import annotations

import json
import math
import os
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

import browser
from trimkit import pipeline
from trimkit.cli import app
from trimkit.errors import TrimkitError
from trimkit.report import write_report

TASK = {"data": "mnist5k", "train_samples": 256, "val_samples": 200}
TRAIN = {"batch_size": 64, "lr": 0.05, "precision": "fp32"}
SMALL = {
    "name": "report-small",
    "model": {"name": "lenet5"},
    "task": TASK,
    "seed": 0,
    "stages": [
        {"stage": "train", "epochs": 1, "save_as": "trained", **TRAIN},
        {"stage": "prune", "ratio": 0.5, "layers": "both"},
        {"stage": "finetune", "epochs": 1, **TRAIN},
        {"stage": "export"},
        {"stage": "quantize", "mode": "ptq", "calibration_samples": 64},
        {"stage": "compare", "models": ["trained", "current", "int8"], "min_time_s": 0.05},
    ],
}
CHOSEN = {
    "name": "report-chosen",
    "model": {"name": "lenet5"},
    "task": TASK,
    "seed": 1,
    "export": False,
    "stages": [
        {"stage": "train", "epochs": 1, **TRAIN},
        {"stage": "measure", "min_time_s": 0.05, "runtime_metric": False, "per_layer": True},
        {"stage": "prune", "choose": "sensitivity", "layers": "both",
         "sensitivity": {"sparsities": [0.25, 0.5], "eval_samples": 100, "max_drop": 5.0}},
        {"stage": "prune", "choose": "explore", "layers": "both",
         "explore": {"criteria": ["l1", "std"], "eval_samples": 100}},
        {"stage": "measure", "min_time_s": 0.05, "runtime_metric": False, "per_layer": True},
    ],
}
DEPLOYED = {
    "name": "report-deployed",
    "model": {"name": "lenet5"},
    "task": TASK,
    "seed": 3,
    "export": False,
    "stages": [
        {"stage": "train", "epochs": 1, "save_as": "trained", **TRAIN},
        {"stage": "prune", "ratio": 0.5, "layers": "both"},
        {"stage": "deploy", "baseline": "trained", "backends": ["onnxruntime"], "precisions": ["fp32", "int8"],
         "int8_recipes": ["qdq-u8s8"], "threads": [1], "batch_size": 8, "min_time_s": 0.05, "samples": 100,
         "calibration_samples": 32},
    ],
}
QAT = {
    "name": "report-qat",
    "model": {"name": "lenet5"},
    "task": TASK,
    "seed": 2,
    "export": False,
    "stages": [{"stage": "quantize", "mode": "qat", "policy": "int8", "epochs": 1, "batch_size": 64}],
}


def _run(recipe: dict, folder: Path) -> Path:
    pipeline.run_recipe(pipeline.parse_recipe(recipe), folder, progress=False)
    return folder


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Path:
    return _run(SMALL, tmp_path_factory.mktemp("report") / "small")


@pytest.fixture(scope="module")
def chosen_run(tmp_path_factory) -> Path:
    return _run(CHOSEN, tmp_path_factory.mktemp("report") / "chosen")


@pytest.fixture(scope="module")
def qat_run(tmp_path_factory) -> Path:
    return _run(QAT, tmp_path_factory.mktemp("report") / "qat")


@pytest.fixture(scope="module")
def chromium() -> str:
    path = browser.find_chromium()
    if path is None:
        message = "chromium is not installed; `make browser` installs Debian's package (as root)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI runs make test, which installs it: a missing browser is a broken setup
        pytest.skip(message)
    return path


class _Figures(HTMLParser):
    """Every element that carries a figure (``data-value``), with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.tags: list[tuple[str, dict[str, str]]] = []

    def handle_starttag(self, tag, attrs):
        attributes = {k: v or "" for k, v in attrs}
        self.tags.append((tag, attributes))
        if "data-value" in attributes or "data-x-value" in attributes:
            self.elements.append((tag, attributes))


def _parse(html: str) -> _Figures:
    parser = _Figures()
    parser.feed(html)
    return parser


def _log(run: Path) -> list[dict]:
    """The log's records as plain JSON; a torn last line is left out, as the runner's reader does."""
    lines = [line for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    records = []
    for number, line in enumerate(lines, 1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            assert number == len(lines), f"line {number} of the log is damaged"
    return records


def _at(log: list[dict], path: list):
    node = log[path[0]]
    for key in path[1:]:
        node = node[key]
    return node


def _same(shown: float, expected: float) -> bool:
    return (math.isnan(shown) and math.isnan(expected)) or shown == expected


def _expected(log: list[dict], attributes: dict[str, str], prefix: str = "") -> float:
    """The figure the element claims to show, computed from the log by its source."""
    if f"data-{prefix}src" in attributes:
        return _at(log, json.loads(attributes[f"data-{prefix}src"]))
    for kind, combine in (("ratio", lambda a, b: a / b), ("diff", lambda a, b: a - b)):
        if f"data-{kind}" in attributes:
            after, before = (_at(log, path) for path in json.loads(attributes[f"data-{kind}"]))
            return combine(after, before)
    if "data-sum" in attributes:
        return sum(_at(log, path) for path in json.loads(attributes["data-sum"]))
    raise AssertionError(f"a figure without a source: {attributes}")


def _check_every_figure(run: Path, html: str) -> dict[tuple, float]:
    """Assert each figure equals the log's; return the sourced ones by path."""
    log = _log(run)
    sourced = {}
    elements = _parse(html).elements
    for tag, attributes in elements:
        if "data-value" in attributes:
            shown = float(attributes["data-value"])
            expected = _expected(log, attributes)
            assert _same(shown, float(expected)), (tag, attributes, expected)
            if "data-src" in attributes:
                sourced[tuple(json.loads(attributes["data-src"]))] = shown
        if "data-x-value" in attributes:
            assert _same(float(attributes["data-x-value"]), float(_expected(log, attributes, "x-"))), attributes
    return sourced


def _position(log: list[dict], stage: str, nth: int = 0) -> int:
    return [i for i, record in enumerate(log) if record["stage"] == stage][nth]


def _copy(run: Path, tmp_path: Path) -> Path:
    target = tmp_path / run.name
    shutil.copytree(run, target)
    (target / "report.html").unlink(missing_ok=True)
    return target


def test_every_figure_on_the_page_is_the_logs_own(small_run):
    path = write_report(small_run)
    assert path == small_run / "report.html"
    html = path.read_text(encoding="utf-8")
    sourced = _check_every_figure(small_run, html)
    assert len(sourced) > 150
    log = _log(small_run)
    final, prune, train = _position(log, "final"), _position(log, "prune"), _position(log, "train")
    quantize, compare = _position(log, "quantize"), _position(log, "compare")
    for key in ("params", "macs", "flops"):
        assert (final, "measurement", key) in sourced
        assert (0, "measurement", key) in sourced
    for kind in log[final]["measurement"]["size_bytes"]:
        assert (final, "measurement", "size_bytes", kind) in sourced
    for name, layer in log[prune]["details"]["layers"].items():
        assert sourced[(prune, "details", "layers", name, "kept")] == layer["kept"]
        assert sourced[(prune, "details", "layers", name, "removed")] == layer["removed"]
    int8 = log[quantize]["details"]["int8"]
    assert sourced[(quantize, "details", "int8", "size_bytes", "int8_onnx")] == int8["size_bytes"]["int8_onnx"]
    assert (quantize, "details", "int8", "metrics", 0, "value") in sourced
    assert (train, "details", "history", 0, "train_loss") in sourced
    comparison = log[compare]["details"]["comparisons"][0]
    for row, model in enumerate(comparison["models"]):
        base = (compare, "details", "comparisons", 0, "models", row)
        assert sourced[base + ("latency", "p50_ms")] == model["latency"]["p50_ms"]
        assert sourced[base + ("latency", "throughput")] == model["latency"]["throughput"]
        for key in ("params", "macs", "size_bytes", "p50_ms", "throughput"):
            if model["ratios"][key] is not None:
                assert sourced[base + ("ratios", key)] == model["ratios"][key]
        assert comparison["metric"] == model["metric"] == "top1"  # the task's metric, read from the row's record
        (index,) = [i for i, metric in enumerate(model["measurement"]["metrics"]) if metric["name"] == "top1"]
        assert sourced[base + ("measurement", "metrics", index, "value")] == \
            model["measurement"]["metrics"][index]["value"]
    assert (compare, "details", "comparisons", 0, "models", 0, "latency", "env", "cpus_available") in sourced
    # the recipe starts by training: the baseline is the trained model (the train record), not the untrained input
    ratio = json.dumps([[final, "measurement", "params"], [train, "measurement", "params"]])
    assert f'data-ratio="{ratio.replace(chr(34), "&quot;")}"' in html


def test_the_page_has_each_section_and_says_what_the_run_lacks(small_run):
    html = write_report(small_run).read_text(encoding="utf-8")
    for anchor in ("summary", "comparisons", "environment", "stages", "recipe", "files", "gaps"):
        assert f'<section id="{anchor}">' in html
    assert html.count('class="chart-line"') >= 2 and html.count('class="chart-bar"') >= 3
    assert "Channels per layer" in html and "INT8 (PTQ)" in html and "Loss per epoch" in html
    lacks = html[html.index('<ul class="lacks">'):]
    assert "no sensitivity analysis" in lacks and "no exploration" in lacks
    assert "no latency" not in lacks and "no quantisation" not in lacks and "no final record" not in lacks
    assert "Missing or damaged" not in html
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html
    assert "default-src 'none'" in html


def test_the_summary_opens_with_the_deployment_s_latency_and_speed_ups(tmp_path):
    run = _run(DEPLOYED, tmp_path / "deployed")
    html = write_report(run).read_text(encoding="utf-8")
    sourced = _check_every_figure(run, html)
    log = _log(run)
    deployed = _position(log, "deploy")
    found = log[deployed]["details"]["deployment"]
    at = (deployed, "details", "deployment")
    start = html.index('<section id="summary">')
    summary = html[start:html.index("<section id=", start + 1)]
    assert summary.index("speed-up over the starting point") < summary.index(">MACs<")  # at the top
    assert sourced[at + ("chosen", "p50_ms")] == found["chosen"]["p50_ms"]
    for slow in (("baseline", "p50_ms"), ("onnxruntime_fp32", "p50_ms")):
        ratio = json.dumps([list(at + slow), list(at + ("chosen", "p50_ms"))]).replace('"', "&quot;")
        assert f'data-ratio="{ratio}"' in summary
    for row, candidate in enumerate(found["candidates"]):
        assert sourced[at + ("candidates", row, "p50_ms")] == candidate["p50_ms"]
        assert sourced[at + ("candidates", row, "metric")] == candidate["metric"]
    assert len(found["candidates"]) == 2 and "fastest within 0.5 points" in html
    assert "Deployment: every candidate" in html


def test_exploration_and_sensitivity_are_drawn_from_the_log(chosen_run):
    html = write_report(chosen_run).read_text(encoding="utf-8")
    sourced = _check_every_figure(chosen_run, html)
    log = _log(chosen_run)
    sensitivity, explore = _position(log, "prune", 0), _position(log, "prune", 1)
    chosen = log[explore]["details"]["chosen"]
    assert chosen["by"] == "explore"
    for name, curve in chosen["curves"].items():
        assert sourced[(explore, "details", "chosen", "curves", name, "auc")] == curve["auc"]
        for index, point in enumerate(curve["points"]):
            assert sourced[(explore, "details", "chosen", "curves", name, "points", index, "metric")] == point["metric"]
    for group, levels in log[sensitivity]["details"]["chosen"]["metrics"].items():
        for level, value in levels.items():
            assert sourced[(sensitivity, "details", "chosen", "metrics", group, level)] == value
    measure = _position(log, "measure")
    assert (measure, "details", "environment", "busy_cpus_at_start") in sourced
    assert (measure, "measurement", "latency", 0, "latency_ms") in sourced
    assert "Threshold functions" in html and "Sensitivity: metric" in html
    assert "data:image/png" not in html and not list((chosen_run / "stages").glob("*/*.png"))  # SVG from the log
    lacks = html[html.index('<ul class="lacks">'):]
    assert "no comparison" in lacks and "no quantisation" in lacks and "no exploration" not in lacks


def test_per_layer_latency_before_and_after_is_the_logs_own(chosen_run):
    html = write_report(chosen_run).read_text(encoding="utf-8")
    sourced = _check_every_figure(chosen_run, html)
    log = _log(chosen_run)
    before, after = _position(log, "measure", 0), _position(log, "measure", 1)
    assert '<section id="per-layer">' in html and "Time per layer" in html
    for position in (before, after):
        rows = log[position]["details"]["per_layer"]["1"]
        assert rows and {"name", "op", "ms", "percent"} <= set(rows[0])
        for index, row in enumerate(rows):
            assert sourced[(position, "details", "per_layer", "1", index, "ms")] == row["ms"]
            assert sourced[(position, "details", "per_layer", "1", index, "percent")] == row["percent"]
    section = html[html.index('<section id="per-layer">'):]
    section = section[:section.index("</section>")]
    names_before = {row["name"] for row in log[before]["details"]["per_layer"]["1"]}
    names_after = {row["name"] for row in log[after]["details"]["per_layer"]["1"]}
    for name in names_before | names_after:
        assert f"<td>{name}</td>" in section
    assert section.count('class="bar"') == len(names_before) + len(names_after)
    assert "data-ratio" in section


def test_quantisation_per_layer_is_the_logs_own(qat_run, small_run):
    for run in (qat_run, small_run):
        html = write_report(run).read_text(encoding="utf-8")
        sourced = _check_every_figure(run, html)
        log = _log(run)
        quantize = _position(log, "quantize")
        layers = log[quantize]["details"]["size"]["layers"]
        assert layers and "Quantisation per layer" in html
        for index, layer in enumerate(layers):
            assert sourced[(quantize, "details", "size", "layers", index, "analytic_bytes")] == layer["analytic_bytes"]
            assert sourced[(quantize, "details", "size", "layers", index, "weights")] == layer["weights"]
            assert f"<td>{layer['name']}</td>" in html and layer["weight_format"] in html
    log = _log(qat_run)
    record = log[_position(log, "quantize")]
    details = record["details"]
    size = details["size"]
    assert details["mode"] == "qat" and size["analytic_bytes"] == record["measurement"]["size_bytes"]["analytic"]
    assert size["packed_bytes"] == record["measurement"]["size_bytes"]["packed"]
    assert sum(layer["analytic_bytes"] for layer in size["layers"]) <= size["analytic_bytes"]
    assert {layer["weight_format"] for layer in size["layers"]} != {"float32"}


def test_a_folder_without_a_log_is_refused_in_one_line(tmp_path):
    with pytest.raises(TrimkitError) as error:
        write_report(tmp_path)
    message = str(error.value)
    assert "is not a run folder (no log.jsonl)" in message and "\n" not in message
    with pytest.raises(TrimkitError, match="does not exist"):
        write_report(tmp_path / "nowhere")


def test_a_torn_last_line_is_reported_from_the_rest(small_run, tmp_path):
    run = _copy(small_run, tmp_path)
    log = run / "log.jsonl"
    text = log.read_text()
    log.write_text(text[: len(text) - len(text.splitlines()[-1]) // 2 - 1])
    html = write_report(run).read_text(encoding="utf-8")
    _check_every_figure(run, html)
    assert "torn" in html and "did not finish" in html and "no final record" in html


def test_a_damaged_middle_line_is_one_line_of_error(small_run, tmp_path):
    run = _copy(small_run, tmp_path)
    lines = (run / "log.jsonl").read_text().splitlines()
    lines[2] = lines[2][:40]
    (run / "log.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(TrimkitError, match="damaged"):
        write_report(run)


def test_a_run_stopped_early_lacks_latency_quantisation_and_the_final_record(small_run, tmp_path):
    run = _copy(small_run, tmp_path)
    lines = (run / "log.jsonl").read_text().splitlines()
    (run / "log.jsonl").write_text("\n".join(lines[:4]) + "\n")
    html = write_report(run).read_text(encoding="utf-8")
    _check_every_figure(run, html)
    lacks = html[html.index('<ul class="lacks">'):]
    for missing in ("no final record", "no latency measured", "no quantisation", "no environment record",
                    "no comparison"):
        assert missing in lacks
    assert '<section id="comparisons">' not in html


def test_an_empty_log_still_gives_a_page(small_run, tmp_path):
    run = _copy(small_run, tmp_path)
    (run / "log.jsonl").write_text("")
    html = write_report(run).read_text(encoding="utf-8")
    assert "holds no records" in html


def test_a_missing_recipe_and_a_missing_model_file_are_named(small_run, chosen_run, tmp_path):
    run = _copy(small_run, tmp_path)
    (run / "recipe.yaml").unlink()
    html = write_report(run).read_text(encoding="utf-8")
    assert "recipe.yaml is missing" in html and '<p class="problems-banner">' in html
    _check_every_figure(run, html)
    chosen = _copy(chosen_run, tmp_path)
    model = next((chosen / "stages").glob("*-prune/model.pt"))
    model.unlink()
    html = write_report(chosen).read_text(encoding="utf-8")
    assert f"{model.relative_to(chosen).as_posix()} (model file, named by the prune record) is missing" in html
    (chosen / "recipe.yaml").write_text("name: [unclosed\n")
    assert "not valid YAML" in write_report(chosen).read_text(encoding="utf-8")


def test_qat_sizes_and_unknown_shapes_do_not_break_the_page(small_run, tmp_path):
    run = _copy(small_run, tmp_path)
    log = _log(run)
    final = log.pop()
    qat = json.loads(json.dumps(log[_position(log, "finetune")]))
    qat.update(stage="quantize", index=final["index"], model_file=None)
    qat["measurement"]["size_bytes"].update(analytic=218, packed=468)
    qat["details"] = {"mode": "qat", "policy": "int4", "history": [{"epoch": 1, "train_loss": 2.5, "val_top1": 9.5}]}
    odd = json.loads(json.dumps(qat))
    odd.update(stage="odd", index=final["index"] + 1)
    odd["details"] = {"layers": "x", "chosen": {"by": "explore", "curves": [1, 2]}, "comparisons": {"a": 1},
                      "history": [1, "x"], "int8": 3, "mode": "ptq", "environment": [1], "nested": {"a": [1, {}]}}
    final["index"] += 2
    (run / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [*log, qat, odd, final]))
    html = write_report(run).read_text(encoding="utf-8")
    sourced = _check_every_figure(run, html)
    position = len(log)
    assert sourced[(position, "measurement", "size_bytes", "analytic")] == 218
    assert sourced[(position, "measurement", "size_bytes", "packed")] == 468
    assert (position, "details", "history", 0, "train_loss") in sourced
    assert "<h4>QAT</h4>" in html and "could not be drawn" not in html


def test_out_is_written_whole_where_asked(small_run, tmp_path):
    out = write_report(small_run, tmp_path / "sub" / "page.html")
    assert out.is_file() and out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".page.html.")]
    with pytest.raises(TrimkitError, match="is a folder"):
        write_report(small_run, tmp_path)


def test_the_command_prints_the_path_or_one_line_of_error(small_run, tmp_path):
    runner = CliRunner()
    out = tmp_path / "r.html"
    result = runner.invoke(app, ["report", str(small_run), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"report": str(out)}
    result = runner.invoke(app, ["report", str(small_run)])
    assert result.exit_code == 0 and result.stdout.strip() == str(small_run / "report.html")
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert "no log.jsonl" in result.output


@pytest.mark.heavy
def test_a_real_browser_shows_the_charts_without_console_errors(small_run, chosen_run, chromium, tmp_path):
    for run in (small_run, chosen_run):
        page = browser.open_page(chromium, write_report(run), screenshot=tmp_path / f"{run.name}.png")
        assert page.console == [], page.console
        assert page.screenshot is not None, page.stderr[-2000:]
        non_white, colours = browser.image_stats(page.screenshot)
        assert non_white > 0.03 and colours > 50, (non_white, colours)
        tags = _parse(page.dom).tags
        assert any(tag == "svg" and a.get("class") == "chart-line" for tag, a in tags)
        assert any(tag == "svg" and a.get("class") == "chart-bar" for tag, a in tags)
        assert any(tag == "circle" and "data-value" in a for tag, a in tags)
        assert any(tag == "div" and a.get("class") == "tip" for tag, a in tags), "the page's script did not run"
