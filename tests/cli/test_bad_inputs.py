"""An audit of bad inputs on the command line, by category.

The promise (README, ``trimkit/cli/_app.py``): every bad input gives exactly one line on
stderr starting with ``error: `` that names the problem and the fix, exit code 2, no
traceback, no file left behind (no output file, no side file such as OUT.ckpt,
OUT.tpk, OUT.qonnx.onnx, OUT.qcdq.onnx, no half-written run folder), and nothing in a
pickle ever executes without ``--trust-checkpoint``.

Each case builds what it needs (files, folders) in ``tmp_path``, runs with ``tmp_path``
as the working folder, and checks the promise: exit code 2, one ``error: `` line that
contains a case-specific text (and none of the texts that would blame the wrong thing),
no traceback, and the same files and folders under ``tmp_path`` after the command as
before it.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import trimkit
from trimkit import models
from trimkit.cli import app

runner = CliRunner()

MARKER = "MARKER"


# --------------------------------------------------------------------------- fixtures
# Each builder writes into the current folder (tmp_path) and returns nothing.


class _RunsCode:
    """Unpickling this runs ``touch MARKER``: a checkpoint that must never be executed."""

    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


def _lenet_file(path: str = "lenet.pt") -> Path:
    torch.manual_seed(0)
    return trimkit.save(models.create("lenet5"), path)


def _edited_header(path: str, edit: Callable[[dict, dict], None]) -> None:
    """A real LeNet-5 trimkit file whose content (header, payload) ``edit`` changes."""
    _lenet_file(path)
    payload = torch.load(path, weights_only=True)
    header = json.loads(payload["trimkit_header"])
    edit(header, payload)
    payload["trimkit_header"] = json.dumps(header)
    torch.save(payload, path)


def text_pt() -> None:
    Path("x.pt").write_text("this is not a checkpoint\n")


def empty_pt() -> None:
    Path("empty.pt").write_bytes(b"")


def truncated_pt() -> None:
    _lenet_file("full.pt")
    Path("truncated.pt").write_bytes(Path("full.pt").read_bytes()[:1000])
    Path("full.pt").unlink()


def npz_pt() -> None:
    with open("arrays.pt", "wb") as handle:
        np.savez(handle, x=np.zeros((3, 3), dtype=np.float32))


def header_version_abc() -> None:
    _edited_header("v_abc.pt", lambda h, p: h.__setitem__("format_version", "abc"))


def header_version_99() -> None:
    _edited_header("v_99.pt", lambda h, p: h.__setitem__("format_version", 99))


def header_unknown_model() -> None:
    _edited_header("unknown_model.pt", lambda h, p: h["model"].__setitem__("name", "lenet9000"))


def header_unknown_kwarg() -> None:
    _edited_header("unknown_kwarg.pt", lambda h, p: h["model"]["kwargs"].__setitem__("wings", 2))


def header_no_state_dict() -> None:
    _edited_header("no_weights.pt", lambda h, p: p.pop("state_dict"))


def pickled_module() -> None:
    torch.save(models.create("lenet5"), "pickled.pt")


def malicious_zip() -> None:
    torch.save({"state_dict": _RunsCode()}, "evil.pt")


def malicious_legacy() -> None:
    Path("evil.pth").write_bytes(pickle.dumps(_RunsCode(), protocol=2))


def text_onnx() -> None:
    Path("fake.onnx").write_text("not an onnx model\n")


def real_onnx() -> None:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 28, 28])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 28, 28])])
    onnx.save(helper.make_model(graph), "real.onnx")


def model_folder() -> None:
    Path("ckpts").mkdir()


def model_folder_pt() -> None:
    Path("folder.pt").mkdir()


def lenet_trimkit_file() -> None:
    _lenet_file("lenet.pt")


def lenet_state_dict() -> None:
    torch.save(models.create("lenet5").state_dict(), "lenet_sd.pt")


def existing_dir() -> None:
    Path("outdir").mkdir()


def regular_file() -> None:
    Path("file.txt").write_text("a file, not a folder\n")


def empty_run_dir() -> None:
    Path("emptyrun").mkdir()


def tiny_recipe(name: str = "r.yaml", stages: str | None = None, model: str = "{name: lenet5}") -> None:
    stages = stages or ("  - {stage: train, epochs: 1, batch_size: 256}\n")
    Path(name).write_text(f"model: {model}\ntask: {{kind: classification, data: mnist5k, train_samples: 200, "
                          f"val_samples: 100}}\nstages:\n{stages}")


def recipe_and_file() -> None:
    tiny_recipe()
    regular_file()


def recipe_and_existing_run() -> None:
    tiny_recipe()
    run = Path("runs/done")
    run.mkdir(parents=True)
    (run / "recipe.yaml").write_text(Path("r.yaml").read_text())
    (run / "log.jsonl").write_text("")


def recipe_python_tag() -> None:
    Path("evil.yaml").write_text(f"model: !!python/object/apply:os.system ['touch {MARKER}']\n"
                                 "task: {kind: classification, data: mnist5k}\n"
                                 "stages:\n  - {stage: train, epochs: 1}\n")


def recipe_unknown_stage() -> None:
    tiny_recipe("stage.yaml", "  - {stage: distil_pruned, epochs: 1}\n")


def recipe_ratio_above_one() -> None:
    tiny_recipe("ratio.yaml", "  - {stage: prune, ratio: 1.5}\n")


def recipe_malicious_weights() -> None:
    malicious_zip()
    tiny_recipe("weights.yaml", model="{name: lenet5, weights: evil.pt}")


def _write_png(path: Path, size: tuple[int, int] = (28, 28), value: int = 0) -> None:
    from PIL import Image

    array = (np.arange(size[0] * size[1]).reshape(size) * 7 + value * 31) % 256
    Image.fromarray(array.astype(np.uint8), mode="L").save(path)


def _image_folder(root: str, per_class: int = 10, classes: Sequence[str] = ("a", "b")) -> Path:
    folder = Path(root)
    for label, name in enumerate(classes):
        (folder / name).mkdir(parents=True)
        for index in range(per_class):
            _write_png(folder / name / f"{index:02d}.png", value=index + 10 * label)
    return folder


def images_corrupt() -> None:
    folder = _image_folder("imgs")
    # one unreadable file per class, so it lands in the train split whatever the split draws
    (folder / "a" / "x.png").write_bytes(b"not a png")
    (folder / "b" / "x.png").write_bytes(b"not a png")


def images_mixed_sizes() -> None:
    folder = _image_folder("imgs")
    for index in range(10):
        _write_png(folder / "a" / f"big{index:02d}.png", size=(32, 32), value=index)


def images_too_small() -> None:
    _image_folder("imgs", per_class=1)


def images_no_classes() -> None:
    folder = Path("imgs")
    folder.mkdir()
    for index in range(5):
        _write_png(folder / f"{index}.png", value=index)


def cifar_wrong_keys() -> None:
    Path("cifar").mkdir()
    np.savez("cifar/cifar10.npz", images=np.zeros((4, 32, 32, 3), np.uint8), labels=np.zeros(4, np.int64))


def cifar_garbage() -> None:
    Path("cifar").mkdir()
    Path("cifar/cifar10.npz").write_bytes(os.urandom(2048))


# --------------------------------------------------------------------------- command lines


def _argv(head: Sequence[str], defaults: dict, over: dict | None = None) -> list[str]:
    options = {**defaults, **(over or {})}
    argv = list(head)
    for flag, value in options.items():
        if value is None:
            continue
        argv += [flag] if value is True else [flag, str(value)]
    return argv


def TRAIN(over=None, model="lenet5"):
    return _argv(["train", model], {"--data": "mnist5k", "--epochs": 1, "--batch-size": 256, "--out": "t.pt"}, over)


def EVAL(over=None, model="lenet5"):
    return _argv(["eval", model], {"--data": "mnist5k", "--split": "val"}, over)


_TIMING = {"--warmup": 1, "--min-time": 0.01, "--max-iters": 3}


def BENCH(over=None, model="lenet5"):
    return _argv(["bench", model], _TIMING, over)


def COMPARE(over=None, models_=("lenet5", "lenet5")):
    return _argv(["compare", *models_], _TIMING, over)


def QAT(over=None, model="lenet5"):
    return _argv(["quantize", model], {"--policy": "int8", "--data": "mnist5k", "--epochs": 1, "--batch-size": 256,
                                       "--out": "q.pt"}, over)


def PTQ(over=None, model="lenet5"):
    return _argv(["quantize", model], {"--mode": "ptq", "--data": "mnist5k", "--calibration-images": 64,
                                       "--out": "q.int8.onnx"}, over)


def PRUNE(over=None, model="lenet5"):
    return _argv(["prune", model], {"--ratio": 0.5, "--out": "p.pt"}, over)


def EXPLORE(over=None, model="lenet5"):
    return _argv(["explore", model], {"--data": "mnist5k", "--criteria": "l1", "--eval-samples": 100,
                                      "--max-evals": 3, "--out": "ex"}, over)


def SENS(over=None, model="lenet5"):
    return _argv(["sensitivity", model], {"--data": "mnist5k", "--sparsities": 0.5, "--eval-samples": 100,
                                          "--out": "sens"}, over)


def EXPORT(over=None, model="lenet5"):
    return _argv(["export", model], {"--out": "m.onnx"}, over)


def PROFILE(over=None, model="lenet5"):
    return _argv(["profile", model], {}, over)


def SIZE(over=None, model="lenet5"):
    return _argv(["size", model], {"--policy": "int8"}, over)


def case(id: str, argv: list[str], expect: str | Sequence[str], *, setup: Callable[[], None] | None = None,
         forbid: Sequence[str] = ()):
    expected = (expect,) if isinstance(expect, str) else tuple(expect)
    return pytest.param(argv, expected, tuple(forbid), setup, id=id)


# Flags that do not exist, which a message must not name instead of the real one.
NOT_FLAGS = ("--batch-sizes", "--min-time-s", "--calibration-samples", "--dynamic-batch")

# --------------------------------------------------------------------------- files

FILES = [
    case("files-text-as-model", PROFILE(model="x.pt"), ("x.pt", "text file"), setup=text_pt),
    case("files-text-as-weights", PROFILE({"--weights": "x.pt"}), ("x.pt", "text file"), setup=text_pt),
    case("files-text-as-weights-eval", EVAL({"--weights": "x.pt"}), ("x.pt", "text file"), setup=text_pt),
    case("files-text-as-model-export", EXPORT(model="x.pt"), ("x.pt", "text file"), setup=text_pt),
    case("files-empty-pt", PROFILE(model="empty.pt"), ("empty.pt", "empty"), setup=empty_pt),
    case("files-empty-pt-as-weights", PRUNE({"--weights": "empty.pt"}), ("empty.pt", "empty"), setup=empty_pt),
    case("files-truncated-pt", PROFILE(model="truncated.pt"), ("truncated.pt", "not a readable"),
         setup=truncated_pt),
    case("files-truncated-pt-quantize", QAT(model="truncated.pt"), ("truncated.pt", "not a readable"),
         setup=truncated_pt),
    case("files-npz-renamed-pt", PROFILE(model="arrays.pt"), ("arrays.pt", "ZIP"), setup=npz_pt),
    case("files-npz-renamed-pt-as-weights", EVAL({"--weights": "arrays.pt"}), ("arrays.pt", "ZIP"), setup=npz_pt),
    case("files-header-version-abc", PROFILE(model="v_abc.pt"), ("v_abc.pt", "'abc'"), setup=header_version_abc),
    case("files-header-version-99", PROFILE(model="v_99.pt"), ("v_99.pt", "99", "upgrade"),
         setup=header_version_99),
    case("files-header-unknown-model", PROFILE(model="unknown_model.pt"), ("unknown_model.pt", "lenet9000"),
         setup=header_unknown_model),
    case("files-header-unknown-kwarg", PROFILE(model="unknown_kwarg.pt"), ("unknown_kwarg.pt", "wings"),
         setup=header_unknown_kwarg),
    case("files-header-no-state-dict", PROFILE(model="no_weights.pt"), ("no_weights.pt", "no weights"),
         setup=header_no_state_dict),
    case("files-header-no-state-dict-as-weights", PROFILE({"--weights": "no_weights.pt"}),
         ("no_weights.pt", "no weights"), setup=header_no_state_dict),
    case("files-pickled-module-as-model", PROFILE(model="pickled.pt"), ("pickled.pt", "--trust-checkpoint"),
         setup=pickled_module),
    case("files-pickled-module-as-weights", EVAL({"--weights": "pickled.pt"}), ("pickled.pt", "--trust-checkpoint"),
         setup=pickled_module),
    case("files-malicious-pickle-as-model", PROFILE(model="evil.pt"), ("evil.pt", "--trust-checkpoint"),
         setup=malicious_zip),
    case("files-malicious-pickle-as-weights", PROFILE({"--weights": "evil.pt"}), ("evil.pt", "--trust-checkpoint"),
         setup=malicious_zip),
    case("files-malicious-pickle-train-weights", TRAIN({"--weights": "evil.pt"}), ("evil.pt", "--trust-checkpoint"),
         setup=malicious_zip),
    case("files-malicious-pickle-bench", BENCH(model="evil.pt"), ("evil.pt", "--trust-checkpoint"),
         setup=malicious_zip),
    case("files-malicious-pickle-compare", COMPARE(models_=("lenet5", "evil.pt")), ("evil.pt", "--trust-checkpoint"),
         setup=malicious_zip),
    case("files-malicious-legacy-pickle", PROFILE(model="evil.pth"), ("evil.pth", "--trust-checkpoint"),
         setup=malicious_legacy),
    case("files-malicious-legacy-pickle-as-weights", EXPORT({"--weights": "evil.pth"}),
         ("evil.pth", "--trust-checkpoint"), setup=malicious_legacy),
    case("files-text-onnx-bench", BENCH(model="fake.onnx"), ("fake.onnx", "not an ONNX model"), setup=text_onnx),
    case("files-text-onnx-eval", EVAL(model="fake.onnx"), ("fake.onnx", "not an ONNX model"), setup=text_onnx),
    case("files-text-onnx-compare", COMPARE(models_=("lenet5", "fake.onnx")), ("fake.onnx", "not an ONNX model"),
         setup=text_onnx),
    case("files-onnx-as-weights", PROFILE({"--weights": "real.onnx"}), ("real.onnx", "ONNX"), setup=real_onnx),
    case("files-onnx-as-weights-eval", EVAL({"--weights": "real.onnx"}), ("real.onnx", "ONNX"), setup=real_onnx),
    case("files-onnx-as-model-profile", PROFILE(model="real.onnx"), ("real.onnx", "ONNX"), setup=real_onnx),
    case("files-missing-model", PROFILE(model="missing.pt"), ("missing.pt", "does not exist"), forbid=("--weights",)),
    case("files-missing-model-eval", EVAL(model="missing.pt"), ("missing.pt", "does not exist"),
         forbid=("--weights",)),
    case("files-missing-model-bench", BENCH(model="missing.pt"), ("missing.pt", "does not exist"),
         forbid=("--weights",)),
    case("files-missing-onnx-bench", BENCH(model="missing.onnx"), ("missing.onnx", "does not exist"),
         forbid=("--weights",)),
    case("files-missing-weights", PROFILE({"--weights": "nope.pt"}), ("--weights", "nope.pt", "does not exist")),
    case("files-folder-as-model", PROFILE(model="ckpts"), ("ckpts", "folder"), setup=model_folder),
    case("files-folder-dot-pt-as-model", PROFILE(model="folder.pt"), ("folder.pt", "folder"), setup=model_folder_pt),
    case("files-folder-as-weights", PROFILE({"--weights": "ckpts"}), ("ckpts", "folder"), setup=model_folder),
    case("files-other-arch-trimkit-file", PROFILE({"--weights": "lenet.pt"}, model="vgg_c"),
         ("lenet5", "vgg_c"), setup=lenet_trimkit_file),
    case("files-other-arch-state-dict", PROFILE({"--weights": "lenet_sd.pt"}, model="vgg_c"),
         ("lenet_sd.pt", "vgg_c", "does not fit"), setup=lenet_state_dict),
    case("files-model-file-and-weights", PROFILE({"--weights": "lenet.pt"}, model="lenet.pt"),
         ("lenet.pt", "--weights"), setup=lenet_trimkit_file),
]

# --------------------------------------------------------------------------- numbers

NUMBERS = [
    case("numbers-eval-batch-size-0", EVAL({"--batch-size": 0}), "--batch-size"),
    case("numbers-eval-batch-size-neg", EVAL({"--batch-size": -3}), "--batch-size"),
    case("numbers-train-batch-size-0", TRAIN({"--batch-size": 0}), "--batch-size"),
    case("numbers-train-batch-size-neg", TRAIN({"--batch-size": -3}), "--batch-size"),
    case("numbers-bench-batch-size-0", BENCH({"--batch-size": 0}), "--batch-size", forbid=NOT_FLAGS),
    case("numbers-bench-batch-size-neg", BENCH({"--batch-size": -3}), "--batch-size", forbid=NOT_FLAGS),
    case("numbers-compare-batch-size-0", COMPARE({"--batch-size": 0}), "--batch-size", forbid=NOT_FLAGS),
    case("numbers-compare-batch-size-neg", COMPARE({"--batch-size": -3}), "--batch-size", forbid=NOT_FLAGS),
    case("numbers-quantize-batch-size-0", QAT({"--batch-size": 0}), "--batch-size"),
    case("numbers-quantize-batch-size-neg", QAT({"--batch-size": -3}), "--batch-size"),
    case("numbers-train-epochs-neg", TRAIN({"--epochs": -1}), "--epochs"),
    case("numbers-quantize-epochs-neg", QAT({"--epochs": -1}), "--epochs"),
    case("numbers-prune-finetune-epochs-neg", PRUNE({"--finetune-epochs": -1, "--data": "mnist5k"}),
         "--finetune-epochs", forbid=("--epochs:",)),
    case("numbers-train-lr-0", TRAIN({"--lr": 0}), "--lr"),
    case("numbers-train-lr-nan", TRAIN({"--lr": "nan"}), "--lr"),
    case("numbers-train-lr-inf", TRAIN({"--lr": "inf"}), "--lr"),
    case("numbers-train-lr-neg", TRAIN({"--lr": -1}), "--lr"),
    case("numbers-quantize-lr-0", QAT({"--lr": 0}), "--lr"),
    case("numbers-quantize-lr-nan", QAT({"--lr": "nan"}), "--lr"),
    case("numbers-prune-lr-0", PRUNE({"--lr": 0, "--finetune-epochs": 1, "--data": "mnist5k"}), "--lr"),
    case("numbers-prune-lr-nan", PRUNE({"--lr": "nan", "--finetune-epochs": 1, "--data": "mnist5k"}), "--lr"),
    case("numbers-train-momentum-1.5", TRAIN({"--momentum": 1.5}), "--momentum"),
    case("numbers-train-weight-decay-neg", TRAIN({"--weight-decay": -1}), "--weight-decay"),
    case("numbers-quantize-weight-decay-neg", QAT({"--weight-decay": -1}), "--weight-decay"),
    case("numbers-train-gamma-0", TRAIN({"--gamma": 0}), "--gamma"),
    case("numbers-train-step-size-0", TRAIN({"--step-size": 0, "--schedule": "step"}), "--step-size"),
    case("numbers-prune-ratio-1.5", PRUNE({"--ratio": 1.5}), ("--ratio", "1.5")),
    case("numbers-prune-ratio-neg", PRUNE({"--ratio": -0.1}), ("--ratio", "-0.1")),
    case("numbers-prune-ratio-nan", PRUNE({"--ratio": "nan"}), ("--ratio", "nan")),
    case("numbers-prune-ratio-half", PRUNE({"--ratio": "half"}), ("--ratio", "half")),
    case("numbers-prune-threshold-nan", PRUNE({"--ratio": None, "--threshold": "nan"}), ("--threshold", "nan")),
    case("numbers-prune-threshold-inf", PRUNE({"--ratio": None, "--threshold": "inf"}), ("--threshold", "inf")),
    case("numbers-prune-threshold-neg", PRUNE({"--ratio": None, "--threshold": -1}), ("--threshold", "-1")),
    case("numbers-prune-round-to-0", PRUNE({"--round-to": 0}), "--round-to"),
    case("numbers-profile-num-classes-0", PROFILE({"--num-classes": 0}), "--num-classes"),
    case("numbers-profile-num-classes-neg", PROFILE({"--num-classes": -3}), "--num-classes"),
    case("numbers-eval-num-classes-0", EVAL({"--num-classes": 0}), "--num-classes"),
    case("numbers-export-num-classes-neg", EXPORT({"--num-classes": -3}), "--num-classes"),
    case("numbers-prune-num-classes-0", PRUNE({"--num-classes": 0}), "--num-classes"),
    case("numbers-profile-in-channels-0", PROFILE({"--in-channels": 0}), "--in-channels"),
    case("numbers-export-in-channels-0", EXPORT({"--in-channels": 0}), "--in-channels"),
    case("numbers-bench-threads-0", BENCH({"--threads": 0}), "--threads"),
    case("numbers-compare-threads-0", COMPARE({"--threads": 0}), "--threads"),
    case("numbers-bench-warmup-neg", BENCH({"--warmup": -1}), "--warmup"),
    case("numbers-compare-warmup-neg", COMPARE({"--warmup": -1}), "--warmup"),
    case("numbers-bench-max-iters-0", BENCH({"--max-iters": 0}), "--max-iters"),
    case("numbers-compare-max-iters-0", COMPARE({"--max-iters": 0}), "--max-iters"),
    case("numbers-bench-min-time-0", BENCH({"--min-time": 0}), "--min-time", forbid=NOT_FLAGS),
    case("numbers-bench-min-time-neg", BENCH({"--min-time": -1}), "--min-time", forbid=NOT_FLAGS),
    case("numbers-compare-min-time-0", COMPARE({"--min-time": 0}), "--min-time", forbid=NOT_FLAGS),
    case("numbers-bench-top-0", BENCH({"--top": 0, "--per-layer": True}), "--top"),
    case("numbers-explore-max-drop-neg", EXPLORE({"--max-drop": -1}), "--max-drop"),
    case("numbers-sensitivity-max-drop-neg", SENS({"--max-drop": -1}), "--max-drop"),
    case("numbers-sensitivity-clusters-0", SENS({"--clusters": 0}), "--clusters"),
    case("numbers-explore-max-evals-1", EXPLORE({"--max-evals": 1}), "--max-evals"),
    case("numbers-explore-max-gap-0", EXPLORE({"--max-gap": 0}), "--max-gap"),
    case("numbers-explore-eval-samples-0", EXPLORE({"--eval-samples": 0}), "--eval-samples"),
    case("numbers-sensitivity-eval-samples-0", SENS({"--eval-samples": 0}), "--eval-samples"),
    case("numbers-sensitivity-sparsities-out-of-range", SENS({"--sparsities": "0,1.5"}), "sparsities"),
    case("numbers-sensitivity-sparsities-abc", SENS({"--sparsities": "abc"}), ("--sparsities", "abc")),
    case("numbers-ptq-calibration-images-0", PTQ({"--calibration-images": 0}), "--calibration-images",
         forbid=NOT_FLAGS),
    case("numbers-export-opset-5", EXPORT({"--opset": 5}), ("--opset", "5")),
    case("numbers-export-opset-99", EXPORT({"--opset": 99}), ("--opset", "99")),
]

# --------------------------------------------------------------------------- names out of a closed list

CHOICES = [
    case("choices-train-optimizer", TRAIN({"--optimizer": "sdg"}), ("--optimizer", "sdg")),
    case("choices-train-schedule", TRAIN({"--schedule": "linear"}), ("--schedule", "linear")),
    case("choices-train-precision", TRAIN({"--precision": "fp8"}), ("--precision", "fp8")),
    case("choices-eval-precision", EVAL({"--precision": "fp16"}), ("--precision", "fp16")),
    case("choices-eval-split", EVAL({"--split": "dev"}), "'dev'"),
    case("choices-bench-backend", BENCH({"--backend": "tensorrt"}), ("--backend", "tensorrt")),
    case("choices-bench-precision", BENCH({"--precision": "int3"}), ("--precision", "int3")),
    case("choices-quantize-mode", QAT({"--mode": "fast"}), ("--mode", "fast")),
    case("choices-quantize-optimizer", QAT({"--optimizer": "sdg"}), ("optimizer", "sdg")),
    case("choices-quantize-precision", QAT({"--precision": "fp8"}), ("precision", "fp8")),
    case("choices-ptq-method", PTQ({"--method": "median"}), ("method", "median")),
    case("choices-ptq-int8-format", PTQ({"--int8-format": "u8u8"}), ("--int8-format", "u8u8")),
    case("choices-explore-criteria", EXPLORE({"--criteria": "l1,l7"}), "l7"),
    case("choices-explore-layers", EXPLORE({"--layers": "convs"}), ("--layers", "convs")),
    case("choices-sensitivity-criterion", SENS({"--criterion": "l7"}), "l7"),
    case("choices-profile-unknown-model", PROFILE(model="resnet57"), ("resnet57", "resnet56")),
    case("choices-train-unknown-model", TRAIN(model="lenet6"), ("lenet6", "lenet5")),
    case("choices-train-model-file", TRAIN(model="lenet.pt"), ("lenet.pt",), setup=lenet_trimkit_file),
]

# --------------------------------------------------------------------------- paths

PATHS = [
    case("paths-train-out-dir", TRAIN({"--out": "outdir"}), ("--out", "outdir", "folder"), setup=existing_dir),
    case("paths-prune-out-dir", PRUNE({"--out": "outdir"}), ("--out", "outdir", "folder"), setup=existing_dir),
    case("paths-export-out-dir", EXPORT({"--out": "outdir"}), ("--out", "outdir", "folder"), setup=existing_dir),
    case("paths-qat-out-dir", QAT({"--out": "outdir"}), ("--out", "outdir", "folder"), setup=existing_dir),
    case("paths-ptq-out-dir", PTQ({"--out": "outdir"}), ("--out", "outdir", "folder"), setup=existing_dir),
    case("paths-train-out-under-file", TRAIN({"--out": "file.txt/x.pt"}), ("--out", "file.txt"), setup=regular_file),
    case("paths-prune-out-under-file", PRUNE({"--out": "file.txt/x.pt"}), ("--out", "file.txt"), setup=regular_file),
    case("paths-export-out-under-file", EXPORT({"--out": "file.txt/x.onnx"}), ("--out", "file.txt"),
         setup=regular_file),
    case("paths-qat-out-under-file", QAT({"--out": "file.txt/x.pt"}), ("--out", "file.txt"), setup=regular_file),
    case("paths-ptq-out-under-file", PTQ({"--out": "file.txt/x.onnx"}), ("--out", "file.txt"), setup=regular_file),
    case("paths-explore-out-under-file", EXPLORE({"--out": "file.txt/ex"}), ("--out", "file.txt"),
         setup=regular_file),
    case("paths-sensitivity-out-under-file", SENS({"--out": "file.txt/sens"}), ("--out", "file.txt"),
         setup=regular_file),
    case("paths-run-out-under-file", ["run", "r.yaml", "--out", "file.txt/run"], "file.txt", setup=recipe_and_file),
    case("paths-explore-out-is-file", EXPLORE({"--out": "file.txt"}), ("--out", "file.txt", "is a file"),
         setup=regular_file),
    case("paths-sensitivity-out-is-file", SENS({"--out": "file.txt"}), ("--out", "file.txt", "is a file"),
         setup=regular_file),
    case("paths-run-out-is-file", ["run", "r.yaml", "--out", "file.txt"], ("file.txt", "is a file"),
         setup=recipe_and_file),
    case("paths-run-resume-empty-folder", ["run", "r.yaml", "--out", "emptyrun", "--resume"],
         ("emptyrun", "no run to resume"), setup=lambda: (tiny_recipe(), empty_run_dir())),
    case("paths-run-resume-missing-folder", ["run", "r.yaml", "--out", "nowhere", "--resume"],
         ("nowhere", "no run to resume"), setup=tiny_recipe),
    case("paths-run-into-existing-run", ["run", "r.yaml", "--out", "runs/done"], ("runs/done", "already holds a run"),
         setup=recipe_and_existing_run),
    case("paths-run-missing-recipe", ["run", "nope.yaml", "--out", "runs/x"], ("nope.yaml",)),
    case("paths-report-missing-run", ["report", "norun"], ("norun",)),
    case("paths-report-empty-folder", ["report", "emptyrun"], ("emptyrun",), setup=empty_run_dir),
]

# --------------------------------------------------------------------------- policies

POLICIES = [
    case("policies-qat-int99", QAT({"--policy": "int99"}), "int99"),
    case("policies-qat-typo-key", QAT({"--policy": "frist=int8"}), "frist"),
    case("policies-qat-key-twice", QAT({"--policy": "hidden=int8,hidden=int4"}), ("hidden", "more than once")),
    case("policies-qat-two-bare", QAT({"--policy": "int8,int4"}), "bare format"),
    case("policies-qat-empty", QAT({"--policy": ""}), "empty policy"),
    case("policies-qat-no-format", QAT({"--policy": "hidden="}), ("hidden=", "no format")),
    case("policies-qat-act-modifier", QAT({"--policy": "act=binary:learned"}), ("act=binary:learned", "modifier")),
    case("policies-qat-const-int8", QAT({"--policy": "hidden=int8:const"}),
         ("hidden=int8:const", "binary and ternary")),
    case("policies-qat-int1", QAT({"--policy": "hidden=int1"}), ("int1", "binary")),
    case("policies-qat-pattern-nomatch", QAT({"--policy": "nomatch.*=int4"}), "nomatch.*"),
    case("policies-size-int99", SIZE({"--policy": "int99"}), "int99"),
    case("policies-size-typo-key", SIZE({"--policy": "frist=int8"}), "frist"),
    case("policies-size-key-twice", SIZE({"--policy": "hidden=int8,hidden=int4"}), ("hidden", "more than once")),
    case("policies-size-two-bare", SIZE({"--policy": "int8,int4"}), "bare format"),
    case("policies-size-empty", SIZE({"--policy": ""}), "empty policy"),
    case("policies-size-no-format", SIZE({"--policy": "hidden="}), ("hidden=", "no format")),
    case("policies-size-act-modifier", SIZE({"--policy": "act=int8:channel"}), ("act=int8:channel", "modifier")),
    case("policies-size-granularity", SIZE({"--policy": "int8,granularity=row"}), ("granularity", "row")),
    case("policies-size-input-binary", SIZE({"--policy": "input=binary"}), ("input=binary",)),
    case("policies-size-pattern-nomatch", SIZE({"--policy": "nomatch.*=int4"}), "nomatch.*"),
    case("policies-ptq-non-int8", PTQ({"--policy": "int4"}), ("int4", "int8")),
    case("policies-ptq-mixed", PTQ({"--policy": "first=int16,hidden=int8"}), ("int16", "int8")),
    case("policies-qat-without-policy", QAT({"--policy": None}), ("--policy",)),
    case("policies-size-float-without-policy", SIZE({"--policy": None}), ("float model", "--policy")),
]

# --------------------------------------------------------------------------- prune patterns

PRUNE_PATTERNS = [
    case("prune-ratio-pattern-nomatch", PRUNE({"--ratio": "nomatch.*=0.5"}), "nomatch.*"),
    case("prune-ratio-pattern-value-bad", PRUNE({"--ratio": "features.*=abc"}), ("--ratio", "abc")),
    case("prune-layers-nope", PRUNE({"--layers": "nope"}), "nope"),
    case("prune-layers-features-99", PRUNE({"--layers": "features.99"}), "features.99"),
    case("prune-layers-empty", PRUNE({"--layers": ","}), "--layers"),
    case("prune-criterion-l7", PRUNE({"--criterion": "l7"}), ("l7", "criteri")),
    case("prune-mode-fast", PRUNE({"--mode": "fast"}), ("--mode", "fast")),
    case("prune-scope-galaxy", PRUNE({"--scope": "galaxy"}), ("--scope", "galaxy")),
    case("prune-normalize-foo", PRUNE({"--normalize": "foo"}), ("--normalize", "foo")),
    case("prune-global-normalize-rank", PRUNE({"--scope": "global", "--normalize": "rank"}), ("global", "rank")),
    case("prune-global-ratio-dict", PRUNE({"--scope": "global", "--ratio": "features.*=0.5"}), ("global",)),
    case("prune-ratio-and-threshold", PRUNE({"--threshold": 0.5}), ("ratio", "threshold")),
    case("prune-neither-ratio-nor-threshold", PRUNE({"--ratio": None}), ("--ratio", "--threshold")),
    case("prune-finetune-without-data", PRUNE({"--finetune-epochs": 1}), ("--finetune-epochs", "--data")),
]

# --------------------------------------------------------------------------- data

DATA = [
    case("data-unknown-eval", EVAL({"--data": "imagenet"}), ("imagenet",)),
    case("data-unknown-train", TRAIN({"--data": "imagenet"}), ("imagenet",)),
    case("data-unknown-prune", PRUNE({"--data": "imagenet"}), ("imagenet",)),
    case("data-unknown-bench", BENCH({"--data": "imagenet"}), ("imagenet",)),
    case("data-dir-nonexistent-cifar10", EVAL({"--data": "cifar10", "--data-dir": "/nonexistent"}, model="resnet20"),
         ("cifar10", "/nonexistent", "--data-dir")),
    case("data-dir-nonexistent-cifar10-train", TRAIN({"--data": "cifar10", "--data-dir": "/nonexistent"},
                                                     model="resnet20"), ("cifar10", "/nonexistent")),
    case("data-folder-corrupt-png-train", TRAIN({"--data": "imgs"}), ("x.png", "not a readable image"),
         setup=images_corrupt),
    case("data-folder-corrupt-png-eval", EVAL({"--data": "imgs", "--num-classes": 2}), ("x.png", "not a readable"),
         setup=images_corrupt),
    case("data-folder-mixed-sizes", TRAIN({"--data": "imgs"}), ("different sizes",), setup=images_mixed_sizes),
    case("data-folder-too-small", TRAIN({"--data": "imgs"}), ("imgs", "too small"), setup=images_too_small),
    case("data-folder-no-classes", TRAIN({"--data": "imgs"}), ("imgs", "no class subfolders"),
         setup=images_no_classes),
    case("data-cifar-npz-wrong-keys", EVAL({"--data": "cifar10", "--data-dir": "cifar"}, model="resnet20"),
         ("cifar10.npz", "x_"), setup=cifar_wrong_keys),
    case("data-cifar-npz-garbage", EVAL({"--data": "cifar10", "--data-dir": "cifar"}, model="resnet20"),
         ("cifar10.npz", "not an .npz"), setup=cifar_garbage),
    case("data-cifar-npz-garbage-qat", QAT({"--data": "cifar10", "--data-dir": "cifar"}, model="resnet20"),
         ("cifar10.npz", "not an .npz"), setup=cifar_garbage),
    case("data-mnist-into-resnet20-eval", EVAL({"--data": "mnist5k"}, model="resnet20"),
         ("mnist5k", "resnet20", "1x28x28", "3x32x32")),
    # (train is absent on purpose: it builds the zoo model for the data's channels and size, so
    # ResNet-20 on MNIST is a one-channel ResNet-20, not a mismatch)
    case("data-mnist-into-resnet20-explore", EXPLORE(model="resnet20"), ("mnist5k", "resnet20")),
    case("data-mnist-into-resnet20-ptq", PTQ(model="resnet20"), ("mnist5k", "resnet20")),
    case("data-mnist-into-resnet20-bench", BENCH({"--data": "mnist5k"}, model="resnet20"), ("mnist5k", "resnet20")),
    case("data-compare-lenet-resnet20", COMPARE({"--data": "mnist5k"}, models_=("lenet5", "resnet20")),
         ("--data", "resnet20")),
]

# --------------------------------------------------------------------------- recipes

RECIPES = [
    case("recipes-python-tag", ["run", "evil.yaml", "--out", "runs/evil"], ("evil.yaml",), setup=recipe_python_tag),
    case("recipes-unknown-stage", ["run", "stage.yaml", "--out", "runs/stage"],
         ("stages[0].stage", "distil_pruned", "distill"), setup=recipe_unknown_stage),
    case("recipes-ratio-above-one", ["run", "ratio.yaml", "--out", "runs/ratio"], ("stages[0].ratio", "1.5"),
         setup=recipe_ratio_above_one),
    case("recipes-set-ratio-above-one", ["run", "ratio.yaml", "--out", "runs/ratio", "--set", "stages.0.ratio=2"],
         ("stages[0].ratio", "2"), setup=recipe_ratio_above_one),
    case("recipes-set-bad-path", ["run", "r.yaml", "--out", "runs/r", "--set", "stages.9.epochs=1"], ("stages",),
         setup=tiny_recipe),
    case("recipes-set-no-equals", ["run", "r.yaml", "--out", "runs/r", "--set", "stages.0.epochs"], ("--set",),
         setup=tiny_recipe),
    case("recipes-malicious-weights", ["run", "weights.yaml", "--out", "runs/w"], ("evil.pt", "pickle"),
         setup=recipe_malicious_weights),
]

# --------------------------------------------------------------------------- usage

USAGE = [
    case("usage-unknown-command", ["trian", "lenet5"], ("trian",)),
    case("usage-unknown-option", PROFILE({"--bogus": 1}), ("--bogus",)),
    case("usage-missing-out-train", ["train", "lenet5", "--data", "mnist5k"], ("--out",)),
    case("usage-missing-out-prune", ["prune", "lenet5", "--ratio", "0.5"], ("--out",)),
    case("usage-missing-model", ["profile"], ("model",)),
    case("usage-epochs-not-int", TRAIN({"--epochs": "x"}), ("--epochs", "integer", "trimkit train --help")),
    case("usage-lr-not-float", TRAIN({"--lr": "fast"}), ("--lr 'fast'", "neither a learning rate nor auto")),
    case("usage-option-without-value", ["train", "lenet5", "--out"], ("--out",)),
]

CASES = FILES + NUMBERS + CHOICES + PATHS + POLICIES + PRUNE_PATTERNS + DATA + RECIPES + USAGE


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) + ("/" if p.is_dir() else "") for p in root.rglob("*")}


@pytest.mark.parametrize("argv, expected, forbidden, setup", CASES)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(argv, expected, forbidden, setup, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRIMKIT_DATA", raising=False)
    monkeypatch.delenv("TRIMKIT_DEBUG", raising=False)
    if setup is not None:
        setup()
    before = _tree(tmp_path)

    result = runner.invoke(app, argv, prog_name="trimkit")

    after = _tree(tmp_path)
    stderr = result.stderr
    shown = f"argv={argv}\nexit={result.exit_code}\nstderr={stderr[:2000]!r}\nstdout={result.stdout[-500:]!r}"
    assert not (tmp_path / MARKER).exists(), "a pickle or YAML tag ran code\n" + shown
    assert "Traceback" not in result.output, shown
    assert result.exit_code == 2, shown
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, shown
    assert lines[0].startswith("error: "), shown
    for text in expected:
        assert text in lines[0], f"missing {text!r}\n" + shown
    for text in forbidden:
        assert text not in lines[0], f"names {text!r}\n" + shown
    assert after == before, f"left behind: {sorted(after - before)}; removed: {sorted(before - after)}\n" + shown
