"""Models of the user's own: named by import path (``mynet:MyNet``, ``path/mynet.py:MyNet``),
rebuilt from their model files in a fresh process with nothing but the import, pickled
whole models under --trust-checkpoint, entry points; and every wrong name is one line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import trimkit
from trimkit import models, pipeline
from trimkit.cli import app
from trimkit.errors import TrimkitError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "own-model"
runner = CliRunner()


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """A working folder holding the example's mynet.py, as a user's shell would."""
    shutil.copy(EXAMPLE / "mynet.py", tmp_path / "mynet.py")
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    sys.modules.pop("mynet", None)


def fresh_python(code: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_a_factory_builds_the_model_and_it_remembers_how(folder):
    model = models.from_factory("mynet:MyNet(classes=7)", width=8)
    origin = models.origin(model)
    assert origin.factory == "mynet:MyNet" and origin.kwargs == {"classes": 7, "width": 8}
    assert origin.source["file"] == str(folder / "mynet.py") and len(origin.source["sha256"]) == 64
    assert origin.input_shape() == (1, 28, 28)  # the model's own input_shape attribute
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 7)
    by_path = models.origin(models.from_factory(f"{folder / 'mynet.py'}:MyNet"))
    assert by_path.factory.endswith("mynet.py:MyNet") and by_path.source == origin.source


def test_a_pruned_factory_model_loads_in_a_fresh_process_with_only_the_import(folder):
    model = models.from_factory("mynet:MyNet", width=8)
    pruned = trimkit.prune.structured(model, torch.randn(2, 1, 28, 28), ratio=0.5).model
    trimkit.save(pruned, folder / "pruned.pt")
    code = ("import torch, trimkit; m = trimkit.load('pruned.pt'); "
            "print(type(m).__name__, sum(p.numel() for p in m.parameters()))")
    done = fresh_python(code, folder)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["MyNet", str(sum(p.numel() for p in pruned.parameters()))]
    elsewhere = fresh_python(f"import trimkit; trimkit.load({str(folder / 'pruned.pt')!r})", folder.parent)
    assert elsewhere.returncode == 0, elsewhere.stderr  # the recorded source folder is searched too
    (folder / "mynet.py").rename(folder / "moved.py")
    elsewhere = fresh_python(f"import trimkit; trimkit.load({str(folder / 'pruned.pt')!r})", folder.parent)
    assert elsewhere.returncode == 1
    last = elsewhere.stderr.strip().splitlines()[-1]
    assert "was made by mynet:MyNet (from" in last and "no module named 'mynet'; run from the folder that holds " \
                                                        "mynet.py, put it on PYTHONPATH" in last


@pytest.mark.parametrize("factory, message", [
    ("nothere:Net", "factory 'nothere:Net' does not import: no module named 'nothere'; run from the folder that "
                    "holds nothere.py"),
    ("mynet:MyNte", "factory 'mynet:MyNte': mynet has no 'MyNte' (did you mean 'MyNet'?)"),
    ("mynet:nn", "factory 'mynet:nn' is a module, not something to call"),
    ("mynet:MyNet(colours=3)", "factory 'mynet:MyNet' does not take {'colours': 3}"),
    ("mynet:MyNet(classes=int('3'))", "factory \"mynet:MyNet(classes=int('3'))\": the arguments must be "
                                      "name=literal pairs"),
    ("builtins:dict", "factory 'builtins:dict' returned a dict, not a torch.nn.Module"),
    ("nets/absent.py:Net", "factory 'nets/absent.py:Net': nets/absent.py does not exist"),
    ("broken:Net", "factory 'broken:Net': importing broken failed (ZeroDivisionError: division by zero)"),
])
def test_a_bad_factory_is_one_line(folder, factory, message):
    (folder / "broken.py").write_text("1 / 0\n")
    with pytest.raises(TrimkitError) as caught:
        models.from_factory(factory)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


def test_a_recipe_runs_a_factory_model_and_the_run_records_what_it_ran(folder):
    recipe = pipeline.parse_recipe({
        "model": {"factory": "mynet:MyNet", "kwargs": {"width": 8}},
        "task": {"data": "mnist5k", "train_samples": 256, "val_samples": 128},
        "stages": [{"stage": "train", "epochs": 1, "batch_size": 64, "optimizer": "adam", "lr": 0.01},
                   {"stage": "prune", "ratio": 0.5}, {"stage": "quantize", "mode": "ptq", "calibration_samples": 64},
                   {"stage": "export"}]})
    result = pipeline.run_recipe(recipe, folder / "run", progress=False)
    started = result.log.records[0].details["model"]
    assert started["factory"] == "mynet:MyNet" and started["kwargs"] == {"width": 8}
    assert started["source"]["sha256"] == models.origin(models.from_factory("mynet:MyNet")).source["sha256"]
    assert started["input_shape"] == [1, 28, 28]
    assert result.final.macs < result.baseline.macs
    done = fresh_python("import trimkit; m = trimkit.load('run/model.pt'); print(trimkit.models.origin(m).factory)",
                        folder)
    assert done.returncode == 0 and done.stdout.strip() == "mynet:MyNet", done.stderr
    exported = trimkit.export.read_metadata(trimkit.export.read_onnx(folder / "run" / "model.onnx"))
    assert exported["factory"] == "mynet:MyNet" and exported["normalization"] == [[0.1307], [0.3081]]


def test_commands_take_a_factory_as_model(folder):
    trained = runner.invoke(app, ["train", "mynet:MyNet(width=8)", "--data", "mnist5k", "--epochs", "1",
                                  "--optimizer", "adam", "--lr", "0.01", "--out", "mine.pt", "--json"])
    assert trained.exit_code == 0, trained.output
    pruned = runner.invoke(app, ["prune", "mine.pt", "--ratio", "0.5", "--data", "mnist5k", "--out", "p.pt", "--json"])
    assert pruned.exit_code == 0, pruned.output
    assert json.loads(pruned.stdout)["macs_after"] < json.loads(pruned.stdout)["macs_before"]
    exported = runner.invoke(app, ["export", "mynet:MyNet(width=8)", "--out", "m.onnx"])
    assert exported.exit_code == 0, exported.output
    no_shape = runner.invoke(app, ["profile", "builtins:dict"])
    assert no_shape.exit_code == 2 and "returned a dict, not a torch.nn.Module" in no_shape.stderr


def test_a_pickled_whole_model_loads_when_trusted_and_a_missing_module_is_one_line(folder):
    model = models.from_factory("mynet:MyNet", width=8)
    del model.trimkit_origin  # as the user's own code pickles it
    torch.save(model, folder / "full.pt")
    refused = runner.invoke(app, ["prune", "full.pt", "--ratio", "0.5", "--out", "p.pt"])
    assert refused.exit_code == 2 and "--trust-checkpoint" in refused.stderr
    pruned = runner.invoke(app, ["prune", "full.pt", "--ratio", "0.5", "--out", "p.pt", "--trust-checkpoint",
                                 "--input-shape", "1x28x28", "--json"])
    assert pruned.exit_code == 0, pruned.output
    (folder / "mynet.py").rename(folder / "renamed.py")
    sys.modules.pop("mynet", None)
    missing = runner.invoke(app, ["prune", "full.pt", "--ratio", "0.5", "--out", "q.pt", "--trust-checkpoint"])
    assert missing.exit_code == 2, missing.output
    assert missing.stderr.strip() == ("error: full.pt pickles objects of 'mynet', which does not import here; run "
                                      "from the folder that holds its source, put it on PYTHONPATH, or install the "
                                      "package that provides it")


def test_a_package_adds_models_through_its_entry_point(tmp_path, monkeypatch):
    """A distribution on the path whose ``trimkit.models`` entry point registers a model:
    named like the zoo's own."""
    package = tmp_path / "tinynets"
    package.mkdir()
    (package / "__init__.py").write_text(
        "from torch import nn\n"
        "from trimkit.models import register\n\n"
        "@register(family='tiny', in_channels=1, input_sizes={1: (28, 28)}, normalizations={},\n"
        "          default_data='mnist5k')\n"
        "def tiny_mlp(num_classes=10, in_channels=1):\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * 28 * 28, num_classes))\n")
    info = tmp_path / "tinynets-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tinynets\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[trimkit.models]\ntiny_mlp = tinynets\n")
    done = subprocess.run([sys.executable, "-c", "from trimkit import models; print('tiny_mlp' in models.names()); "
                           "print(models.create('tiny_mlp')(__import__('torch').zeros(1, 1, 28, 28)).shape)"],
                          env={**__import__("os").environ, "PYTHONPATH": str(tmp_path)}, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["True", "torch.Size([1, 10])"]
    (package / "__init__.py").write_text("raise ImportError('needs tinylib')\n")
    broken = subprocess.run([sys.executable, "-m", "trimkit.cli", "profile", "lenet5"],
                            env={**__import__("os").environ, "PYTHONPATH": str(tmp_path)}, capture_output=True,
                            text=True, timeout=120)
    assert broken.returncode == 2
    assert broken.stderr.strip() == ("error: entry point tiny_mlp = tinynets (trimkit.models) failed to load: "
                                     "ImportError: needs tinylib; fix or uninstall the package that provides it")
