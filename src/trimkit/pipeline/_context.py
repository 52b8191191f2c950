"""What every stage sees besides the model: the task, the run folder, the log, the
seed, the original model (the teacher-to-be), and the files earlier stages wrote."""

from __future__ import annotations

import copy
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from trimkit.errors import TrimkitError
from trimkit.measure import measure_model
from trimkit.record import Measurement
from trimkit.runs import RunLog
from trimkit.tasks import Task


@dataclass
class Context:
    """A stage reads the task and writes under ``stage_dir``; what it measured goes into
    ``report`` (merged into the stage's record by the runner) and the files it leaves
    for later stages into ``artifacts`` (by name: ``onnx``, ``int8_onnx``, ...).

    ``original`` is the model as the run received it, never modified: the teacher of a
    distillation, the baseline of a comparison. ``models`` keeps named snapshots
    (``original``, and each stage's output under the stage's ``name`` when it has one).
    """

    task: Task | None
    original: nn.Module
    seed: int = 0
    run_dir: Path | None = None
    log: RunLog = field(default_factory=RunLog)
    progress: bool = True
    say: Callable[[str], None] = lambda text: None
    artifacts: dict[str, str] = field(default_factory=dict)
    models: dict[str, Any] = field(default_factory=dict)
    stage_dir: Path | None = None
    stage_index: int = 0
    resume: bool = False
    report: Measurement | None = None
    details: dict[str, Any] = field(default_factory=dict)
    unchanged: bool = False
    #: where a command wants the stage's main file (``trimkit quantize --out``); None in a run
    output: Path | None = None
    #: the training checkpoint a command keeps (``OUT.ckpt``); None: the stage folder's
    checkpoint_file: Path | None = None
    #: inputs for a model without data (a command given no --data): tracing and verification only
    examples: tuple[torch.Tensor, ...] | None = None
    #: whether model files a stage loads by name (a teacher) may hold pickled objects
    trusted: bool = False

    def __post_init__(self) -> None:
        self.models.setdefault("original", self.original)

    @classmethod
    def for_api(cls, task: Task, model: nn.Module, *, seed: int = 0, run_dir: Path | None = None,
                progress: bool = False) -> Context:
        """A context for calling stages from Python: the original is a copy of ``model``."""
        return cls(task=task, original=copy.deepcopy(model), seed=seed, run_dir=run_dir, progress=progress)

    def begin(self, index: int, stage_dir: Path | None) -> None:
        self.stage_index = index
        self.stage_dir = stage_dir
        self.report = None
        self.details = {}
        self.unchanged = False
        if stage_dir is not None:
            stage_dir.mkdir(parents=True, exist_ok=True)

    def add(self, measurement: Measurement | None = None, **details: Any) -> None:
        """Figures (merged into the stage's record) and details for the log."""
        if measurement is not None:
            self.report = measurement if self.report is None else self.report.merge(measurement)
        self.details.update(details)

    def keep_model(self) -> None:
        """Say that this stage returns the model it was given, unmodified (it exported,
        measured or compared it): the runner then keeps the model's figures."""
        self.unchanged = True

    def path(self, name: str) -> Path:
        """Where the stage writes ``name``: in its folder; without a run folder (a stage
        called from Python), in a temporary folder that outlives the call."""
        if self.stage_dir is None:
            self.stage_dir = Path(tempfile.mkdtemp(prefix=f"trimkit-stage{self.stage_index:02d}-"))
        return self.stage_dir / name

    def checkpoint(self) -> Path | None:
        """The training checkpoint of the stage: the command's, or the run folder's."""
        if self.checkpoint_file is not None:
            return self.checkpoint_file
        return None if self.run_dir is None else self.path("checkpoint.ckpt")

    def example_inputs(self, count: int = 2) -> tuple[torch.Tensor, ...]:
        if self.task is None:
            if self.examples is None:
                raise TrimkitError("this stage needs data (a task) or example inputs; give --data")
            return tuple(tensor[:count] for tensor in self.examples)
        return self.task.example_inputs(count)

    def require_task(self, why: str) -> Task:
        """The task, or one line saying that ``why`` needs data."""
        if self.task is None:
            raise TrimkitError(f"{why} needs data; give --data")
        return self.task

    def measure(self, model: nn.Module, label: str) -> Measurement:
        if self.task is None:
            return measure_model(model, label=label, example_inputs=self.example_inputs(1))
        return measure_model(model, label=label, task=self.task)

    def model_or_artifact(self, name: str) -> Any:
        """A named model snapshot, or a file an earlier stage wrote (``int8_onnx``...)."""
        if name in self.models:
            return self.models[name]
        if name in self.artifacts:
            return self.artifacts[name]
        known = ", ".join([*self.models, *self.artifacts]) or "none"
        raise TrimkitError(f"no model or file named {name!r} in this run yet; known so far: {known}")
