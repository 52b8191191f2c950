"""The deployment folder: written whole or not at all, only over an earlier deployment;
and its loader's one-line errors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from trimkit import deploy, export, models
from trimkit.deploy._folder import write_deployment
from trimkit.errors import TrimkitError

MANIFEST = {"format": 1, "artifact": "model.onnx", "precision": "fp32", "batch_size": 1,
            "runtime": {"name": "onnxruntime", "threads": 1, "inference_precision": "fp32"},
            "inputs": [{"name": "input", "shape": [None, 1, 28, 28], "dtype": "float32"}],
            "machine": {"cpu": None}}


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("folder") / "fp32.onnx"
    export.onnx(models.create("lenet5"), torch.randn(2, 1, 28, 28), path)
    return path


def test_a_deployment_replaces_an_earlier_one_and_nothing_else(onnx_file, tmp_path):
    out = tmp_path / "deployment"
    write_deployment(out, onnx_file, MANIFEST)
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "model.onnx"]
    assert oct(out.stat().st_mode & 0o777) != oct(0o700)  # a folder others may read, as mkdir makes it
    write_deployment(out, onnx_file, {**MANIFEST, "batch_size": 8})
    assert json.loads((out / "manifest.json").read_text())["batch_size"] == 8
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deployment"]  # no staging or old folder left
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(TrimkitError, match=r"^--out .*busy holds files that are not a deployment; choose a new or "
                                           r"empty folder$"):
        write_deployment(busy, onnx_file, MANIFEST)
    assert sorted(p.name for p in busy.iterdir()) == ["notes.txt"]
    with pytest.raises(TrimkitError, match="is a file; give a folder path"):
        deploy.check_deployment_output(busy / "notes.txt")


def test_a_copy_that_fails_leaves_the_earlier_deployment_as_it_was(onnx_file, tmp_path):
    out = tmp_path / "deployment"
    write_deployment(out, onnx_file, MANIFEST)
    with pytest.raises(FileNotFoundError):
        write_deployment(out, tmp_path / "missing.onnx", {**MANIFEST, "batch_size": 8})
    assert json.loads((out / "manifest.json").read_text())["batch_size"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deployment"]


def test_the_loader_checks_what_it_is_given(onnx_file, tmp_path):
    out = write_deployment(tmp_path / "deployment", onnx_file, MANIFEST)
    run = deploy.load(out)
    assert run(np.zeros((2, 1, 28, 28), np.float32)).shape == (2, 10)
    cases = [
        ((np.zeros((1, 28, 28), np.float32),), r"^input 0 has shape \(1, 28, 28\); the model takes \(N, 1, 28, 28\) "
                                               r"float32, N images per call$"),
        ((np.zeros((2, 1, 28, 28), np.uint8),), r"^input 0 is uint8; the model takes float32 normalised"),
        ((np.zeros((2, 1, 28, 28), np.float32),) * 2, r"^the model takes 1 input\(s\), got 2$"),
    ]
    for arrays, message in cases:
        with pytest.raises(TrimkitError, match=message):
            run(*arrays)


def test_a_folder_that_is_not_a_deployment_is_one_line(onnx_file, tmp_path):
    with pytest.raises(TrimkitError, match=r"^.*nowhere is not a folder; give the folder trimkit deploy --out wrote$"):
        deploy.load(tmp_path / "nowhere")
    with pytest.raises(TrimkitError, match=r"is not a deployment folder \(no manifest.json\); make one with trimkit "
                                           r"deploy$"):
        deploy.load(tmp_path)
    out = write_deployment(tmp_path / "old", onnx_file, {**MANIFEST, "format": 0})
    with pytest.raises(TrimkitError, match=r"has format 0; this trimkit reads format 1: deploy again"):
        deploy.load(out)
    out = write_deployment(tmp_path / "broken", onnx_file, MANIFEST)
    (out / "model.onnx").unlink()
    with pytest.raises(TrimkitError, match=r"model.onnx is missing from the deployment folder; deploy again$"):
        deploy.load(out)


def test_a_deployment_chosen_on_another_cpu_says_so_when_loaded(onnx_file, tmp_path):
    out = write_deployment(tmp_path / "elsewhere", onnx_file, {**MANIFEST, "machine": {"cpu": "Some Other CPU"}})
    with pytest.warns(UserWarning, match=r"was chosen on Some Other CPU; this CPU is .*: run trimkit deploy here"):
        deploy.load(out)
    shutil.rmtree(out)
