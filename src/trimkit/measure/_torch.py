"""PyTorch eager on the CPU, the reference: the model as a user runs it, no export."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from trimkit._device import autocast
from trimkit.errors import TrimkitError
from trimkit.measure._backend import Backend, Session, random_inputs

if TYPE_CHECKING:
    from trimkit.measure._target import ModelTarget


class TorchSession(Session):
    def __init__(self, target: ModelTarget, batch_size: int, threads: int, precision: str) -> None:
        self._model = target.module
        self._was_training = self._model.training
        self._threads_before = torch.get_num_threads()
        self._model.eval()
        torch.set_num_threads(threads)
        self._inputs = tuple(torch.from_numpy(array) for array in random_inputs(target, batch_size))
        self.precision = "bf16" if precision == "bf16" else "fp32"

    def _context(self):
        return autocast(torch.device("cpu"), "bf16" if self.precision == "bf16" else "fp32")

    def run(self) -> None:
        with torch.inference_mode(), self._context():
            self._model(*self._inputs)

    def infer(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        with torch.inference_mode(), self._context():
            outputs = self._model(*(torch.from_numpy(array) for array in arrays))
        flat = outputs if isinstance(outputs, (tuple, list)) else (outputs,)
        return [output.float().numpy() for output in flat]

    def close(self) -> None:
        torch.set_num_threads(self._threads_before)
        self._model.train(self._was_training)


class TorchBackend(Backend):
    """PyTorch eager, ``torch.inference_mode``; bf16 through CPU autocast, fp32 otherwise (``auto``)."""

    name = "torch"
    model_format = "torch"
    has_profiler = False

    def open(self, target: ModelTarget, *, batch_size: int, threads: int, precision: str,
             profile: bool = False) -> Session:
        if target.module is None:
            raise TrimkitError(f"{target.label} is an ONNX file; the torch backend runs PyTorch models: give a zoo "
                               "name or a trimkit .pt file, or choose --backend onnxruntime or openvino")
        return TorchSession(target, batch_size, threads, precision)

    def versions(self) -> dict[str, str]:
        return {"torch": torch.__version__}
