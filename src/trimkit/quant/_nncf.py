"""INT8 for OpenVINO by NNCF's post-training quantisation, the reference path there.

NNCF quantises the OpenVINO model itself (``nncf.quantize``: FakeQuantize nodes placed
where OpenVINO's CPU plugin fuses them, fast bias correction), where trimkit's QDQ file
is ONNX Runtime's quantiser's output read by OpenVINO. Which runs faster and keeps more
accuracy is for ``trimkit deploy`` to measure. The result is an OpenVINO IR (``.xml``
and its ``.bin``), weights kept at full width (``compress_to_fp16=False``) beside the
int8 ones. NNCF is optional: ``pip install 'trimkit[nncf]'``.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trimkit.errors import TrimkitError
from trimkit.tasks import as_task

CALIBRATION_IMAGES = 300  # nncf.quantize's own default subset size


@dataclass(frozen=True)
class NncfResult:
    """The IR written (``path`` is the ``.xml``; its ``.bin`` lies beside it) and how."""

    path: Path
    fp32_path: Path
    preset: str
    calibration_images: int
    size_bytes: int
    nncf_version: str


def nncf_available() -> bool:
    """Whether NNCF and OpenVINO import here."""
    try:
        _modules()
    except TrimkitError:
        return False
    return True


def nncf_int8(fp32_onnx: str | os.PathLike, calibration_data: Any, *, out: str | os.PathLike,
              calibration_images: int = CALIBRATION_IMAGES, preset: str = "performance") -> NncfResult:
    """Quantise the FP32 ONNX file ``fp32_onnx`` with NNCF for OpenVINO, calibrated on
    ``calibration_images`` training samples of ``calibration_data`` (a task, or a data set,
    normalised as the model expects), and write the IR to ``out`` (``.xml``) and its
    ``.bin``, both or neither. ``preset``: ``performance`` (symmetric activations, NNCF's
    default for CPUs) or ``mixed``."""
    ov, nncf = _modules()
    out, source = Path(out), Path(fp32_onnx)
    if out.suffix != ".xml":
        raise TrimkitError(f"{out}: an OpenVINO IR is written as NAME.xml (and NAME.bin); give a .xml path")
    if not source.is_file() or source.suffix != ".onnx":
        raise TrimkitError(f"{source} is not an ONNX file; NNCF quantises the FP32 .onnx file")
    presets = {"performance": nncf.QuantizationPreset.PERFORMANCE, "mixed": nncf.QuantizationPreset.MIXED}
    if preset not in presets:
        raise TrimkitError(f"unknown NNCF preset {preset!r}; choose one of: {', '.join(presets)}")
    if calibration_images < 1:
        raise TrimkitError(f"calibration needs at least 1 image, got {calibration_images}")
    task = as_task(calibration_data)
    samples = task.subset("train", min(calibration_images, task.size("train")), seed=1)
    # NNCF collects statistics one sample at a time, as its documentation advises
    items = [[tensor.numpy() for tensor in batch.inputs] for batch in samples.batches("train", 1)]
    model = ov.Core().read_model(str(source))
    # its own progress bars, which name its internals ("Statistics collection"), go nowhere: callers show theirs
    with open(os.devnull, "w") as nowhere, contextlib.redirect_stdout(nowhere):
        quantized = nncf.quantize(model, nncf.Dataset(items), subset_size=len(items), preset=presets[preset])
    _save_ir(ov, quantized, out)
    return NncfResult(out, source, preset, len(items), out.stat().st_size + out.with_suffix(".bin").stat().st_size,
                      nncf.__version__)


def save_openvino_ir(onnx_path: str | os.PathLike, out: str | os.PathLike) -> Path:
    """The ONNX file converted to an OpenVINO IR at ``out`` (``.xml`` and ``.bin``), with
    full-width weights (OpenVINO's ``save_model`` would halve them to fp16 by default)."""
    ov = _openvino()
    out = Path(out)
    _save_ir(ov, ov.Core().read_model(str(onnx_path)), out)
    return out


def _save_ir(ov, model, out: Path) -> None:
    """Both files of the IR or neither: written in a temporary folder beside, then moved
    (the ``.bin`` first, so an ``.xml`` never names missing weights)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.stem}.", dir=out.parent) as folder:
        temporary = Path(folder) / out.name
        ov.save_model(model, str(temporary), compress_to_fp16=False)
        os.replace(temporary.with_suffix(".bin"), out.with_suffix(".bin"))
        os.replace(temporary, out)


def _openvino():
    try:
        return importlib.import_module("openvino")
    except ImportError:
        raise TrimkitError("OpenVINO is not installed: pip install 'trimkit[openvino]'") from None


def _modules():
    ov = _openvino()
    try:
        return ov, importlib.import_module("nncf")
    except ImportError:
        raise TrimkitError("NNCF is not installed: pip install 'trimkit[nncf]'") from None
