"""INT8 post-training quantisation for CPUs with ONNX Runtime static quantisation.

The model is exported to FP32 ONNX (parity-checked), pre-processed (shape inference,
graph optimisation), calibrated on task images and written as QDQ ONNX with int8
weights, per channel by default.

The activation type is chosen by measurement per backend. Measured with 2 threads
(``benchmarks/int8_cpu.py``, on a shared machine, load average 1.3-3.4), ONNX Runtime
runs U8S8 (uint8 activations, int8 weights) QDQ faster than FP32 and its default S8S8
QDQ slower: on an AMD EPYC with AVX-512 VNNI, U8S8 1.7-2.3x FP32's speed at batch 1 and
1.4-3.4x at batch 32 for ResNet-20/56, S8S8 0.4-0.98x; earlier on an Intel CPU with
AMX, ResNet-56 U8S8 1.9x and 2.35x, S8S8 0.57-0.74x. OpenVINO fails to compile the
S8S8 ResNet files (a shape-validation error) and runs the U8S8 ones. So U8S8 is the
default for both; ``int8_format="s8s8"`` gives the other.

Why S8S8 loses on x86: VNNI's int8 dot product (``vpdpbusd``) multiplies *unsigned* by
signed bytes, the U8S8 layout; ONNX Runtime fuses only some S8S8 QDQ convolutions into
``QLinearConv`` (27 of ResNet-56's 55; the rest run in float between Q/DQ pairs and
transposes), and its S8S8 QOperator kernels are slower still (0.22x fp32 here).

What else is not quantised, by measurement (ONNX Runtime 1.32 profiler, 1 thread, batch
32, AMD EPYC with AVX-512 VNNI): ``AveragePool``. ONNX Runtime's ``QLinearAveragePool``
took 1.35 of 3.6 ms of the demo's VGG (20x its fp32 pooling), so pooling stays in float
between a DequantizeLinear and a QuantizeLinear: 1.34x -> 1.66x fp32's speed there.
``float_first_layer`` keeps the first compute layer in float: for a 1-channel input
(K = 9) ONNX Runtime's int8 convolution took 7x the fp32 one (VGG: 1.66x -> 1.91x in
all), while on ResNet-56 (3 channels) keeping it float cost 3 % (Q/DQ and a transpose
around it): which wins depends on the model, so ``trimkit deploy`` measures both.
QOperator and QDQ files run the same kernels in ONNX Runtime after its graph
optimisations (QDQ pairs around a convolution fuse into ``QLinearConv``), so their
speed matches; per-channel weight scales cost nothing measurable against per-tensor
ones (2.60x either way on ResNet-56) and keep more accuracy.

Without VNNI (AVX-512 VNNI, AVX-VNNI) or AMX, int8 dot products take several
instructions each and INT8 may be slower than FP32: :func:`ptq_int8` warns then.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

import onnx
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry
from onnxruntime.quantization.shape_inference import quant_pre_process
from torch import nn

from trimkit import export
from trimkit._atomic import atomic_path
from trimkit._device import cpu_flags
from trimkit.errors import TrimkitError
from trimkit.tasks import Batch, Task, as_task

METHODS = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
           "percentile": CalibrationMethod.Percentile}
INT8_FORMATS = {"u8s8": QuantType.QUInt8, "s8s8": QuantType.QInt8}
FORMAT_BY_BACKEND = {"onnxruntime": "u8s8", "openvino": "u8s8"}
QUANT_FORMATS = {"qdq": QuantFormat.QDQ, "qoperator": QuantFormat.QOperator}
#: every operator ONNX Runtime quantises, but average pooling (see the module's docstring)
QUANTISED_OPS = tuple(sorted((set(QDQRegistry) | set(QLinearOpsRegistry)) - {"AveragePool"}))
COMPUTE_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul")
INT8_DOT_PRODUCT_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")
CALIBRATION_IMAGES = 512
CALIBRATION_BATCH = 32


@dataclass(frozen=True)
class PtqResult:
    """The INT8 file written and how it was made."""

    path: Path
    fp32_path: Path
    int8_format: str
    method: str
    per_channel: bool
    backend: str
    calibration_images: int
    size_bytes: int
    fp32_size_bytes: int
    cpu_warning: str | None
    quant_format: str = "qdq"
    float_nodes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        record = asdict(self)
        record.update(path=str(self.path), fp32_path=str(self.fp32_path))
        return record


def ptq_int8(
    model_or_onnx: nn.Module | str | os.PathLike,
    calibration_data: Any,
    *,
    out: str | os.PathLike,
    method: str = "minmax",
    per_channel: bool = True,
    backend: str = "onnxruntime",
    int8_format: str | None = None,
    calibration_images: int = CALIBRATION_IMAGES,
    quant_format: str = "qdq",
    float_first_layer: bool = False,
) -> PtqResult:
    """Quantise to INT8 ONNX at ``out``, calibrated on ``calibration_images`` samples of
    ``calibration_data`` (a task's training split, or a data set; normalised as the
    model expects; not what you will score on). A module is first exported to FP32 ONNX
    beside ``out`` (``NAME.fp32.onnx``). ``int8_format`` defaults to the fastest measured
    for ``backend``; ``quant_format`` is ``qdq`` (Quantize/DequantizeLinear pairs around
    float operators) or ``qoperator`` (``QLinearConv`` and friends); with
    ``float_first_layer`` the first convolution or dense layer stays in float."""
    if method not in METHODS:
        raise TrimkitError(f"unknown calibration method {method!r}; choose one of: {', '.join(METHODS)}")
    if backend not in FORMAT_BY_BACKEND:
        raise TrimkitError(f"unknown backend {backend!r}; choose one of: {', '.join(FORMAT_BY_BACKEND)}")
    chosen = int8_format or FORMAT_BY_BACKEND[backend]
    if chosen not in INT8_FORMATS:
        raise TrimkitError(f"unknown INT8 format {chosen!r}; choose one of: {', '.join(INT8_FORMATS)}")
    if quant_format not in QUANT_FORMATS:
        raise TrimkitError(f"unknown quantisation format {quant_format!r}; choose one of: {', '.join(QUANT_FORMATS)}")
    if calibration_images < 1:
        raise TrimkitError(f"calibration needs at least 1 image, got {calibration_images}")
    warning = cpu_int8_warning()
    if warning:
        warnings.warn(warning, stacklevel=2)
    out = Path(out)
    task = as_task(calibration_data)  # a data set alone is the training split of its kind's task
    fp32_path = _fp32_onnx(model_or_onnx, task, out)
    samples = task.subset("train", min(calibration_images, task.size("train")), seed=1)
    with tempfile.TemporaryDirectory(prefix="trimkit-ptq-") as folder:
        prepared = Path(folder) / "prepared.onnx"
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        float_nodes = _first_compute_node(prepared) if float_first_layer else ()
        with atomic_path(out) as temporary:
            quantize_static(str(prepared), str(temporary), _Reader(samples, _input_names(prepared)),
                            quant_format=QUANT_FORMATS[quant_format], op_types_to_quantize=list(QUANTISED_OPS),
                            nodes_to_exclude=list(float_nodes), activation_type=INT8_FORMATS[chosen],
                            weight_type=QuantType.QInt8, per_channel=per_channel, calibrate_method=METHODS[method])
            _copy_metadata(fp32_path, temporary)
    return PtqResult(out, fp32_path, chosen, method, per_channel, backend, samples.size("train"), out.stat().st_size,
                     fp32_path.stat().st_size, warning, quant_format, float_nodes)


def cpu_int8_warning() -> str | None:
    """A warning when this CPU has no int8 dot-product instructions (VNNI or AMX), else None."""
    flags = cpu_flags()
    if not flags or set(INT8_DOT_PRODUCT_FLAGS) & flags:
        return None
    return ("this CPU has no VNNI or AMX int8 instructions: INT8 inference may be slower than FP32 here; "
            "measure it with trimkit bench")


class _Reader(CalibrationDataReader):
    """Feeds a task's training batches to ONNX Runtime's calibrator, one array per input."""

    def __init__(self, task: Task, input_names: list[str]) -> None:
        self._batches: Iterator[Batch] = task.batches("train", CALIBRATION_BATCH)
        self._input_names = input_names

    def get_next(self) -> dict | None:
        batch = next(self._batches, None)
        if batch is None:
            return None
        return {name: tensor.numpy() for name, tensor in zip(self._input_names, batch.inputs, strict=True)}


def _fp32_onnx(model_or_onnx: nn.Module | str | os.PathLike, task: Task, out: Path) -> Path:
    if not isinstance(model_or_onnx, nn.Module):
        path = Path(model_or_onnx)
        if path.suffix != ".onnx" or not path.is_file():
            raise TrimkitError(f"{path} is not an ONNX file; pass a model or an FP32 .onnx file")
        return path
    example = next(iter(task.batches("train", 2))).inputs
    return export.onnx(model_or_onnx, example if len(example) > 1 else example[0], fp32_path_for(out)).path


def fp32_path_for(out: str | os.PathLike) -> Path:
    """Where the FP32 export of a model quantised to ``out`` goes: ``NAME.fp32.onnx`` beside it."""
    out = Path(out)
    return out.with_name(out.name.removesuffix(".onnx").removesuffix(".int8") + ".fp32.onnx")


def _first_compute_node(path: Path) -> tuple[str, ...]:
    """The name of the first convolution or dense node of a graph (ONNX keeps nodes in
    topological order), as a one-name tuple; empty when there is none."""
    graph = onnx.load(str(path), load_external_data=False).graph
    return next(((node.name,) for node in graph.node if node.op_type in COMPUTE_OPS), ())


def _input_names(path: Path) -> list[str]:
    graph = onnx.load(str(path), load_external_data=False).graph
    initializers = {init.name for init in graph.initializer}
    return [value.name for value in graph.input if value.name not in initializers]


def _copy_metadata(source: Path, target: Path) -> None:
    """Keep what trimkit recorded in the FP32 file (zoo name, input shape,
    normalisation), so ``trimkit eval`` and ``trimkit bench`` can feed the INT8 file."""
    recorded = onnx.load(str(source), load_external_data=False).metadata_props
    quantized = onnx.load(str(target))
    present = {entry.key for entry in quantized.metadata_props}
    for entry in recorded:
        if entry.key not in present:
            quantized.metadata_props.add(key=entry.key, value=entry.value)
    onnx.save(quantized, str(target))
