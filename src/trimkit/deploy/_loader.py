"""``load(DIR)``: a deployment folder as a function of NumPy arrays, run as it was chosen.

It imports NumPy and the runtime the manifest names, not torch: an application needs
the runtime and trimkit's loader, not the model's Python code::

    from trimkit import deploy
    model = deploy.load("deployment")
    logits = model(images)          # float32 N x C x H x W, normalised as the manifest says

The runtime is set up as it was when the deployment was timed: the same session options
(ONNX Runtime) or compile configuration (OpenVINO), threads and precision, through the
functions :mod:`trimkit.measure` times with.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from trimkit._cpu import cpu_model
from trimkit.errors import TrimkitError

MANIFEST = "manifest.json"
FORMAT = 1


def read_manifest(folder: str | os.PathLike) -> dict[str, Any]:
    """The manifest of a deployment folder; a folder without one is a one-line error."""
    path = Path(folder) / MANIFEST
    if not Path(folder).is_dir():
        raise TrimkitError(f"{folder} is not a folder; give the folder trimkit deploy --out wrote")
    if not path.is_file():
        raise TrimkitError(f"{folder} is not a deployment folder (no {MANIFEST}); make one with trimkit deploy")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise TrimkitError(f"{path} is not valid JSON ({error.msg}, line {error.lineno}); deploy again") from None
    if manifest.get("format") != FORMAT:
        raise TrimkitError(f"{path} has format {manifest.get('format')!r}; this trimkit reads format {FORMAT}: "
                           "deploy again with this version")
    return manifest


class DeployedModel:
    """A loaded deployment. Call it with one array per model input (float32, batch
    first, normalised as the model expects); it returns the output array, or a tuple of
    them for a model with several outputs. ``manifest`` holds what was measured."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.manifest = read_manifest(self.folder)
        runtime = self.manifest["runtime"]
        self.runtime: str = runtime["name"]
        self.threads: int = int(runtime["threads"])
        self.precision: str = self.manifest["precision"]
        self.input_shapes = [tuple(item["shape"][1:]) for item in self.manifest["inputs"]]
        artifact = self.folder / self.manifest["artifact"]
        if not artifact.is_file():
            raise TrimkitError(f"{artifact} is missing from the deployment folder; deploy again")
        if self.runtime == "onnxruntime":
            self._run = _onnxruntime_runner(artifact, self.threads)
        elif self.runtime == "openvino":
            self._run = _openvino_runner(artifact, self.threads, runtime["inference_precision"])
        else:
            raise TrimkitError(f"{self.folder}: unknown runtime {self.runtime!r} in {MANIFEST}; deploy again")
        chosen_on = self.manifest.get("machine", {}).get("cpu")
        if chosen_on and chosen_on != cpu_model():
            warnings.warn(f"{self.folder} was chosen on {chosen_on}; this CPU is {cpu_model()}: run trimkit deploy "
                          "here to find the fastest deployment for it", stacklevel=2)

    def __call__(self, *inputs: np.ndarray) -> np.ndarray | tuple[np.ndarray, ...]:
        if len(inputs) != len(self.input_shapes):
            raise TrimkitError(f"the model takes {len(self.input_shapes)} input(s), got {len(inputs)}")
        arrays = [self._checked(index, array) for index, array in enumerate(inputs)]
        outputs = self._run(arrays)
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    def _checked(self, index: int, array: Any) -> np.ndarray:
        array = np.asarray(array)
        expected = self.input_shapes[index]
        if array.ndim != len(expected) + 1 or tuple(array.shape[1:]) != expected:
            raise TrimkitError(f"input {index} has shape {tuple(array.shape)}; the model takes (N, "
                               f"{', '.join(map(str, expected))}) float32, N images per call")
        if not np.issubdtype(array.dtype, np.floating):
            raise TrimkitError(f"input {index} is {array.dtype}; the model takes float32 normalised as its manifest "
                               "says (an image's uint8 values divided by 255, less the mean, over the std)")
        return np.ascontiguousarray(array, dtype=np.float32)

    def __repr__(self) -> str:
        return (f"DeployedModel({str(self.folder)!r}: {self.runtime} {self.precision}, {self.threads} threads, "
                f"chosen at batch {self.manifest['batch_size']})")


def load(folder: str | os.PathLike) -> DeployedModel:
    """The deployment in ``folder`` (written by ``trimkit deploy --out``), ready to call."""
    return DeployedModel(folder)


def _onnxruntime_runner(path: Path, threads: int):
    try:
        import onnxruntime
    except ImportError:
        raise TrimkitError("this deployment runs on ONNX Runtime, which is not installed: pip install onnxruntime"
                           ) from None
    from trimkit import measure

    session = onnxruntime.InferenceSession(str(path), measure.onnxruntime_session_options(threads),
                                           providers=["CPUExecutionProvider"])
    names = [node.name for node in session.get_inputs()]

    def run(arrays: list[np.ndarray]) -> list[np.ndarray]:
        return session.run(None, dict(zip(names, arrays, strict=True)))

    return run


def _openvino_runner(path: Path, threads: int, precision: str):
    """OpenVINO compiles for one batch size (static shapes run faster on its CPU
    plugin): once per batch size the application calls with, on first use."""
    try:
        import openvino
    except ImportError:
        raise TrimkitError("this deployment runs on OpenVINO, which is not installed: pip install openvino") from None
    from trimkit import measure

    core = openvino.Core()
    model = core.read_model(str(path))
    config = measure.openvino_compile_config(threads, precision)
    compiled: dict[int, tuple[Any, Any]] = {}

    def run(arrays: list[np.ndarray]) -> list[np.ndarray]:
        batch = arrays[0].shape[0]
        if batch not in compiled:
            model.reshape({port.get_any_name(): [batch, *array.shape[1:]]
                           for port, array in zip(model.inputs, arrays, strict=True)})
            program = core.compile_model(model, "CPU", config)
            compiled[batch] = (program, program.create_infer_request())
        program, request = compiled[batch]
        results = request.infer(arrays, share_inputs=True)
        return [np.array(results[port]) for port in program.outputs]

    return run
