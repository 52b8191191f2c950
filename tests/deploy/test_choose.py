"""``choose`` end to end on LeNet-5 and a small MNIST subset, at short timings: the
folder it writes, its manifest, and a loader whose outputs are the runtime's own."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import openvino as ov
import pytest

from trimkit import data, deploy, measure, models, tasks, train
from trimkit._cpu import cpu_model
from trimkit.errors import TrimkitError

FAST = dict(samples=100, calibration_samples=32, min_time_s=0.02, min_iters=3, warmup=2)


@pytest.fixture(scope="module")
def lenet():
    """LeNet-5 trained one epoch on 2,000 MNIST images: about 80 % top-1."""
    model = models.create("lenet5")
    normalization = models.origin(model).normalization()
    train_set = data.load("mnist5k", "train", normalization=normalization).subset(2000, seed=0)
    val_set = data.load("mnist5k", "val", normalization=normalization)
    train.fit(model, train_set, epochs=1, batch_size=32, lr=0.003, optimizer="adam", weight_decay=0.0,
              precision="fp32", progress=False, seed=0)
    return model, tasks.as_task(train_set, val_set)


@pytest.fixture(scope="module")
def ort_deployment(lenet, tmp_path_factory):
    model, task = lenet
    out = tmp_path_factory.mktemp("deploy") / "lenet-ort"
    found = deploy.choose(model, task=task, out=out, backends=["onnxruntime"], precisions=["fp32", "int8"],
                          int8_recipes=["qdq-u8s8"], threads=[1], batch_size=4, **FAST)
    return found, out


def test_the_folder_holds_the_chosen_file_and_a_manifest_of_what_was_measured(ort_deployment):
    found, out = ort_deployment
    chosen = found.decision.chosen
    assert sorted(path.name for path in out.iterdir()) == ["manifest.json", "model.onnx"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest == json.loads(json.dumps(found.manifest, default=str))
    assert manifest["artifact"] == "model.onnx" and manifest["format"] == 1
    assert manifest["precision"] == chosen.candidate.precision
    assert manifest["int8_recipe"] == chosen.candidate.recipe
    runtime = manifest["runtime"]
    assert (runtime["name"], runtime["version"], runtime["threads"]) == ("onnxruntime", ort.__version__, 1)
    assert runtime["settings"] == {"intra_op_num_threads": 1, "inter_op_num_threads": 1,
                                   "execution_mode": "ORT_SEQUENTIAL", "graph_optimization_level": "ORT_ENABLE_ALL",
                                   "providers": ["CPUExecutionProvider"]}
    assert manifest["batch_size"] == 4
    latency = chosen.outcome.latency
    assert manifest["latency"]["p50_ms"] == latency.latency_ms and manifest["latency"]["p90_ms"] == latency.p90_ms
    assert manifest["latency"]["throughput"] == pytest.approx(latency.throughput)
    metric = manifest["metric"]
    assert (metric["name"], metric["split"], metric["samples"], metric["data"]) == ("top1", "val", 100, "mnist5k")
    assert metric["value"] == chosen.outcome.metric and metric["drop"] == pytest.approx(metric["reference"]
                                                                                        - metric["value"])
    assert metric["max_drop"] == 0.5 and metric["drop"] <= 0.5 and metric["reference"] > 60.0
    assert manifest["inputs"] == [{"name": "input", "shape": [None, 1, 28, 28], "dtype": "float32"}]
    assert manifest["normalization"] == [list(v) for v in models.spec("lenet5").normalization()]
    machine = manifest["machine"]
    assert machine["cpu"] == cpu_model() and machine["cpus_available"] == measure.available_cpus()
    assert set(machine["flags"]) <= set(Path("/proc/cpuinfo").read_text().split())
    assert [row["label"] for row in manifest["candidates"]] == [row.candidate.label for row in found.decision.rows]
    assert {row["label"] for row in manifest["candidates"]} == {"onnxruntime fp32, 1 thread",
                                                                "onnxruntime int8 qdq-u8s8, 1 thread"}
    assert manifest["speedup_vs_onnxruntime_fp32"] == pytest.approx(
        manifest["onnxruntime_fp32"]["p50_ms"] / latency.latency_ms)


def test_the_loader_gives_what_onnx_runtime_gives_for_the_file(ort_deployment, lenet):
    _, out = ort_deployment
    _, task = lenet
    images = task.example_inputs(7)[0].numpy()
    run = deploy.load(out)
    options = measure.onnxruntime_session_options(1)
    expected = ort.InferenceSession(str(out / "model.onnx"), options).run(None, {"input": images})[0]
    np.testing.assert_array_equal(run(images), expected)
    assert run(images.astype(np.float64)).dtype == np.float32  # float64 is taken as float32
    assert repr(run).startswith(f"DeployedModel('{out}': onnxruntime ")


def test_an_openvino_deployment_is_an_ir_its_loader_runs_at_any_batch(lenet, tmp_path):
    model, task = lenet
    out = tmp_path / "lenet-ov"
    found = deploy.choose(model, task=task, out=out, backends=["openvino"], precisions=["fp32"], threads=[1],
                          batch_size=2, **FAST)
    assert found.decision.chosen.candidate == deploy.Candidate("openvino", "fp32", 1)
    assert sorted(path.name for path in out.iterdir()) == ["manifest.json", "model.bin", "model.xml"]
    runtime = found.manifest["runtime"]
    assert runtime["settings"] == {"INFERENCE_NUM_THREADS": 1, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY",
                                   "INFERENCE_PRECISION_HINT": "f32", "device": "CPU"}
    run = deploy.load(out)
    images = task.example_inputs(5)[0].numpy()
    core = ov.Core()
    compiled = core.compile_model(str(out / "model.xml"), "CPU", measure.openvino_compile_config(1, "fp32"))
    expected = compiled(images)[compiled.outputs[0]]
    for batch in (5, 2, 5):
        np.testing.assert_allclose(run(images[:batch]), expected[:batch], rtol=1e-5, atol=1e-5)


def test_the_loader_needs_neither_torch_nor_trimkit_models(ort_deployment):
    _, out = ort_deployment
    script = ("import sys, numpy as np\nfrom trimkit import deploy\nrun = deploy.load(sys.argv[1])\n"
              "print(run(np.zeros((3, 1, 28, 28), np.float32)).shape, 'torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script, str(out)], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "(3, 10) False"


def test_a_baseline_is_timed_beside_the_candidates_and_its_speed_up_is_the_ratio_of_p50s(lenet, tmp_path):
    model, task = lenet
    found = deploy.choose(model, task=task, baseline=models.create("lenet5"), baseline_label="untrained",
                          backends=["onnxruntime"], precisions=["fp32"], threads=[1], **FAST)
    assert found.folder is None
    base = found.baseline
    chosen = found.decision.chosen.outcome
    assert base.label == "untrained" and base.latency.threads == 1 and base.latency.backend == "onnxruntime"
    assert base.speedup == base.latency.latency_ms / chosen.latency.latency_ms
    assert base.change == pytest.approx(chosen.metric - base.metric)
    assert base.metric < 40.0 < 60.0 < chosen.metric  # the untrained model guesses
    assert found.manifest["baseline"] == base.to_dict()
    lines = deploy.summary_lines(found)
    assert lines[-1].startswith(f"against untrained (ONNX Runtime fp32, 1 thread, p50 {base.latency.latency_ms:.3f} "
                                f"ms): {deploy.speed(base.speedup)}; top-1 {base.metric:.2f} % -> ")


def test_when_no_candidate_keeps_the_metric_nothing_is_written(lenet, tmp_path):
    model, task = lenet
    out = tmp_path / "nothing"
    with pytest.raises(TrimkitError, match=r"^no candidate keeps top1 within -5 points of ONNX Runtime fp32 "
                                           r"\(\d+\.\d\d\); closest: onnxruntime fp32, 1 thread at"):
        deploy.choose(model, task=task, out=out, max_drop=-5, backends=["onnxruntime"], precisions=["fp32"],
                      threads=[1], **FAST)
    assert list(tmp_path.iterdir()) == []  # neither the folder nor a staging or work folder beside it


def test_data_without_a_validation_split_or_no_data_is_one_line(lenet):
    model, _ = lenet
    with pytest.raises(TrimkitError, match=r"^deploy scores every candidate on validation data: give data"):
        deploy.choose(model)
    train_only = tasks.as_task(data.load("mnist5k", "train").subset(50))
    with pytest.raises(TrimkitError, match=r"^the data has no validation split to score candidates on \(it has "
                                           r"train\); give data with a val or test split$"):
        deploy.choose(model, task=train_only)


def test_the_machine_s_flags_decide_bf16(lenet, monkeypatch):
    model, task = lenet
    monkeypatch.setattr("trimkit.deploy._choose.cpu_flags", lambda: frozenset({"avx2", "avx512f"}))
    monkeypatch.setattr("trimkit.deploy._choose.cpu_model", lambda: "Old Xeon")
    with pytest.raises(TrimkitError, match=r"^this CPU \(Old Xeon\) cannot compute in bf16 natively"):
        deploy.choose(model, task=task, precisions=["bf16"], **FAST)
