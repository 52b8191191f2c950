"""The files the candidates run, made once each in a work folder: the fp32 ONNX file,
every INT8 file a recipe makes from it (calibrated on the same training images), and
the OpenVINO IR of each file OpenVINO runs. A recipe that fails (a quantiser that does
not take an operator) fails its candidates, not the choice."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from pathlib import Path

from trimkit import quant
from trimkit.deploy._candidates import Candidate
from trimkit.measure import runtime_error_line
from trimkit.tasks import Task

#: how each INT8 recipe's ONNX file is made by ``quant.ptq_int8`` (NNCF's is an IR)
PTQ_SETTINGS = {
    "qdq-u8s8": dict(int8_format="u8s8", quant_format="qdq"),
    "qdq-s8s8": dict(int8_format="s8s8", quant_format="qdq"),
    "qoperator-u8s8": dict(int8_format="u8s8", quant_format="qoperator"),
    "qdq-u8s8-first-float": dict(int8_format="u8s8", quant_format="qdq", float_first_layer=True),
}


def needed_files(candidates: Iterable[Candidate]) -> list[str]:
    """The file names the candidates run, in the order they can be made (an IR after
    the ONNX file it comes from)."""
    names = list(dict.fromkeys(candidate.artifact for candidate in candidates))
    return sorted(names, key=lambda name: (name.endswith(".xml"), name))


def build_files(fp32_onnx: Path, names: Iterable[str], task: Task, folder: Path, *, calibration_samples: int,
                on_file: Callable[[str], None] = lambda name: None) -> dict[str, Path | str]:
    """Each file of ``names`` made in ``folder``: its path, or why it could not be made."""
    made: dict[str, Path | str] = {"fp32.onnx": fp32_onnx}
    for name in names:
        if name in made:
            continue
        try:
            made[name] = _make(name, made, task, folder, calibration_samples)
        except Exception as error:  # a quantiser or converter that fails: that file's candidates fail, named
            made[name] = f"{name} could not be made: {runtime_error_line(error)}"
        on_file(name)
    return made


def _make(name: str, made: dict[str, Path | str], task: Task, folder: Path, calibration_samples: int) -> Path:
    stem, suffix = name.rsplit(".", 1)
    fp32 = made["fp32.onnx"]
    if stem == "int8-nncf":
        return quant.nncf_int8(fp32, task, out=folder / name, calibration_images=calibration_samples).path
    if suffix == "xml":
        source = made.get(f"{stem}.onnx")
        if source is None:
            source = made[f"{stem}.onnx"] = _make(f"{stem}.onnx", made, task, folder, calibration_samples)
        if isinstance(source, str):
            raise RuntimeError(source)
        return quant.save_openvino_ir(source, folder / name)
    recipe = stem.removeprefix("int8-")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the CPU's lack of VNNI is noted once by the plan; the table shows the rest
        return quant.ptq_int8(fp32, task, out=folder / name, calibration_images=calibration_samples,
                              **PTQ_SETTINGS[recipe]).path
