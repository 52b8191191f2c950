"""Parity of an ONNX file with the PyTorch model it came from, run by ONNX Runtime."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import onnxruntime
import torch
from torch import nn

from trimkit._inputs import ExampleInputs, as_input_tuple
from trimkit._running import eval_mode, output_tensors
from trimkit.errors import TrimkitError

PARITY_RTOL = 1e-4


@dataclass(frozen=True)
class Parity:
    """Largest difference between ONNX Runtime and PyTorch over all outputs.

    ``max_rel_err`` is the largest absolute difference divided by the largest magnitude
    of the PyTorch output it belongs to: element-wise ratios explode on outputs near
    zero, which a correct export has plenty of (logits, ReLU maps).
    """

    max_abs_err: float
    max_rel_err: float
    batch_sizes: tuple[int, ...]


def torch_outputs(model: nn.Module, inputs: tuple[torch.Tensor, ...]) -> list[np.ndarray]:
    """The model's outputs in eval mode as float32 arrays; its train/eval mode is restored."""
    with eval_mode(model), torch.inference_mode():
        outputs = model(*inputs)
    return [output.detach().float().cpu().numpy() for output in output_tensors(outputs)]


def onnx_session(path: str | os.PathLike) -> onnxruntime.InferenceSession:
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def parity(path: str | os.PathLike, model: nn.Module, example_inputs: ExampleInputs,
           *, other_batch: bool = True) -> Parity:
    """Run the ONNX file and ``model`` on ``example_inputs`` and compare.

    With ``other_batch`` the comparison is repeated with one sample more, so that a file
    exported with a dynamic batch is shown to accept batches it was not traced with.
    """
    inputs = as_input_tuple(example_inputs)
    session = onnx_session(path)
    names = [node.name for node in session.get_inputs()]
    batches = [inputs]
    if other_batch:
        batches.append(tuple(torch.cat([tensor, tensor[:1]]) for tensor in inputs))
    max_abs = max_rel = 0.0
    for index, batch in enumerate(batches):
        expected = torch_outputs(model, batch)
        got = _run(session, names, batch) if index == 0 else _run_other_batch(session, names, batch)
        for reference, result in zip(expected, got, strict=True):
            error = float(np.max(np.abs(reference - result))) if reference.size else 0.0
            scale = float(np.max(np.abs(reference))) if reference.size else 0.0
            max_abs = max(max_abs, error)
            max_rel = max(max_rel, error / max(scale, np.finfo(np.float32).tiny))
    return Parity(max_abs, max_rel, tuple(int(batch[0].shape[0]) for batch in batches))


def _run(session: onnxruntime.InferenceSession, names: list[str], batch: tuple[torch.Tensor, ...]) -> list[np.ndarray]:
    feed = {name: tensor.detach().cpu().numpy() for name, tensor in zip(names, batch, strict=True)}
    return session.run(None, feed)


def _run_other_batch(session: onnxruntime.InferenceSession, names: list[str],
                     batch: tuple[torch.Tensor, ...]) -> list[np.ndarray]:
    try:
        return _run(session, names, batch)
    except (onnxruntime.capi.onnxruntime_pybind11_state.Fail,
            onnxruntime.capi.onnxruntime_pybind11_state.InvalidArgument) as error:
        size = int(batch[0].shape[0])
        raise TrimkitError(
            f"the exported graph does not run at batch {size} ({str(error).splitlines()[0]}); a layer fixes the "
            "batch size (a grouped convolution over the batch, say): export with dynamic_batch=False (--static-batch)"
        ) from None
