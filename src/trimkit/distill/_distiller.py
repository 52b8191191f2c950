"""The teacher beside the student: a loss for ``trimkit.train.fit``'s ``loss_fn`` hook."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from trimkit.distill._hooks import FeatureTap
from trimkit.distill._teacher import PrecisionChoice, choose_precision, teacher_outputs
from trimkit.distill.kd import attention_loss, check_temperature_alpha, hint_loss, soft_target_loss
from trimkit.errors import TrimkitError

HardLoss = Callable[[tuple[torch.Tensor, ...], Any, Any], torch.Tensor]


@dataclass(frozen=True)
class FeatureLink:
    """Student layer ``student`` learns from teacher layer ``teacher``: ``kind`` is
    ``hint`` (MSE through a learned 1x1 adapter where channel counts differ) or
    ``attention`` (attention transfer; channel counts may differ)."""

    student: str
    teacher: str
    kind: str = "hint"
    weight: float = 1.0


def parse_links(hints: Mapping[str, str] | None = None, attention: Mapping[str, str] | None = None, *,
                hint_weight: float = 1.0, attention_weight: float = 1000.0) -> list[FeatureLink]:
    """Links from ``{student_layer: teacher_layer}`` maps of hints and attention pairs."""
    links = [FeatureLink(s, t, "hint", hint_weight) for s, t in (hints or {}).items()]
    links += [FeatureLink(s, t, "attention", attention_weight) for s, t in (attention or {}).items()]
    for link in links:
        if link.weight < 0:
            raise TrimkitError(f"the weight of {link.kind} {link.student} <- {link.teacher} must be >= 0, "
                               f"got {link.weight}")
    return links


class Distiller:
    """Loss ``alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * hard + sum(w * feature)``.

    ``alpha`` weights the soft-target (distillation) term and ``1 - alpha`` the task's
    own loss on the labels (``hard_loss``, the task's loss); its default 0.5 was measured
    on mnist5k (LeNet-5 student, 3 epochs, 93.4 % alone): from a 96.7 % teacher 93.2 %
    at 0.5 against 90.5 % at 0.9, from a 78.6 % teacher 88.3 % against 83.3 %. Feature links add their
    weighted losses on top. With ``only_where_right`` (the default) the soft term counts
    only for the samples (pixels, for dense outputs) whose label the teacher predicts,
    and the labels' weight grows by what it leaves out: ``alpha * mean(right * KL_i) +
    (1 - alpha * share_right) * hard``. A teacher at chance then leaves the student
    to its labels instead of pulling it toward its own mistakes; a teacher that is
    right everywhere gives the plain formula. Where the labels are not class indices
    shaped as the outputs' samples (tracking), every sample counts. The teacher runs in
    eval mode under ``torch.no_grad`` (its
    parameters are left as they are, so the same model can be trained later), in the
    precision :func:`choose_precision` picks (``teacher_precision="auto"``), on the
    student's device. Call :meth:`prepare` once before training: it checks that the
    teacher's outputs match the student's, builds the adapters (``self.adapters``, to be
    optimised with the student: ``fit(..., extra_modules=[distiller.adapters])``) and
    attaches the hooks. ``memo=True`` keeps the teacher's logits per input sample (keyed
    by its content), so that without augmentation the teacher runs once per image; it
    is for logits only (no feature links).

    Use as ``fit(student, task, loss_fn=distiller, extra_modules=[distiller.adapters])``
    inside ``with distiller.prepare(student, task.example_inputs(32), task.loss):``.
    """

    def __init__(self, teacher: nn.Module, *, temperature: float = 4.0, alpha: float = 0.5,
                 links: list[FeatureLink] | None = None, teacher_precision: str = "auto",
                 memo: bool = False, only_where_right: bool = True) -> None:
        check_temperature_alpha(temperature, alpha)
        self.only_where_right = only_where_right
        self.teacher = teacher
        self._teacher_was_training = teacher.training
        self.temperature = float(temperature)
        self.alpha = float(alpha)
        self.links = list(links or [])
        if memo and self.links:
            raise TrimkitError("memo keeps only the teacher's logits; drop memo or the feature links")
        self.memo: dict[bytes, torch.Tensor] | None = {} if memo else None
        self.requested_precision = teacher_precision
        self.precision: PrecisionChoice | None = None
        self.adapters = nn.ModuleDict()
        self.hard_loss: HardLoss | None = None
        self._student_tap: FeatureTap | None = None
        self._teacher_tap: FeatureTap | None = None
        self.last_terms: dict[str, float] = {}

    def prepare(self, student: nn.Module, example_inputs: tuple[torch.Tensor, ...] | torch.Tensor,
                hard_loss: HardLoss) -> Distiller:
        """Check the pair on ``example_inputs`` (a real batch), build adapters, attach hooks,
        choose the teacher's precision. Returns self (a context manager that detaches)."""
        inputs = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
        device = next(student.parameters()).device
        inputs = tuple(t.to(device) for t in inputs)
        self.teacher.to(device).eval()
        self.hard_loss = hard_loss
        self._detach_hooks()
        self._student_tap = FeatureTap(student, [link.student for link in self.links], "student")
        self._teacher_tap = FeatureTap(self.teacher, [link.teacher for link in self.links], "teacher")
        was_training = student.training
        student.eval()
        with torch.no_grad():
            student_out = student(*inputs)
        student.train(was_training)
        teacher_out = teacher_outputs(self.teacher, inputs, "fp32")
        check_outputs(student_out, teacher_out)
        self._build_adapters(device)
        self.precision = choose_precision(self.teacher, inputs, self.requested_precision)
        return self

    def _build_adapters(self, device: torch.device) -> None:
        self.adapters = nn.ModuleDict()
        for link in self.links:
            student = self._student_tap.features[link.student]
            teacher = self._teacher_tap.features[link.teacher]
            if link.kind == "attention":
                _check_spatial(link, student, teacher, need_channels=False)
                continue
            _check_spatial(link, student, teacher, need_channels=True)
            if student.shape[1] != teacher.shape[1]:
                adapter = nn.Conv2d(student.shape[1], teacher.shape[1], 1, bias=False)
                self.adapters[_key(link)] = adapter.to(device)

    def __call__(self, inputs: tuple[torch.Tensor, ...], outputs: Any, targets: Any) -> torch.Tensor:
        if self.hard_loss is None or self.precision is None:
            raise RuntimeError("call Distiller.prepare(student, example_inputs, hard_loss) before training")
        hard = self.hard_loss(inputs, outputs, targets).float()
        teacher_logits = self._teacher_logits(inputs)
        right = teacher_right(teacher_logits, targets) if self.only_where_right else None
        share = float(right.mean()) if right is not None else 1.0
        soft = (soft_target_loss(outputs, teacher_logits, self.temperature, right) / max(share, 1e-12)
                if self.alpha > 0 and share > 0 else hard.new_zeros(()))
        total = self.alpha * share * soft + (1.0 - self.alpha * share) * hard
        self.last_terms = {"hard": float(hard.detach()), "soft": float(soft.detach()), "teacher_right": share}
        for link in self.links:
            term = self._feature_loss(link)
            self.last_terms[f"{link.kind}:{link.student}"] = float(term.detach())
            total = total + link.weight * term
        return total

    def _teacher_logits(self, inputs: tuple[torch.Tensor, ...]) -> torch.Tensor:
        precision = self.precision.precision
        if self.memo is None:
            return teacher_outputs(self.teacher, inputs, precision)
        keys = [_sample_key(inputs, i) for i in range(len(inputs[0]))]
        missing = [i for i, key in enumerate(keys) if key not in self.memo]
        if missing:
            index = torch.tensor(missing, device=inputs[0].device)
            fresh = teacher_outputs(self.teacher, tuple(t.index_select(0, index) for t in inputs), precision)
            for row, i in enumerate(missing):
                self.memo[keys[i]] = fresh[row].detach().cpu()
        return torch.stack([self.memo[key] for key in keys]).to(inputs[0].device)

    def _feature_loss(self, link: FeatureLink) -> torch.Tensor:
        student = self._student_tap.features[link.student]
        teacher = self._teacher_tap.features[link.teacher].detach()
        if link.kind == "attention":
            return attention_loss(student, teacher)
        if _key(link) not in self.adapters:  # a ModuleDict, which has no .get
            return hint_loss(student, teacher)
        return hint_loss(self.adapters[_key(link)](student.float()), teacher)

    def close(self) -> None:
        """Remove the hooks and give the teacher back in the mode it came in."""
        self._detach_hooks()
        self.teacher.train(self._teacher_was_training)

    def _detach_hooks(self) -> None:
        for tap in (self._student_tap, self._teacher_tap):
            if tap is not None:
                tap.close()
        self._student_tap = self._teacher_tap = None

    def __enter__(self) -> Distiller:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def check_outputs(student_out: Any, teacher_out: Any) -> None:
    """One-line errors where the teacher's outputs cannot be targets for the student's."""
    for role, out in (("student", student_out), ("teacher", teacher_out)):
        if not isinstance(out, torch.Tensor):
            raise TrimkitError(f"the {role} gives a {type(out).__name__}, not a tensor of class scores; "
                               "distillation needs models with tensor outputs")
    if student_out.dim() >= 2 and teacher_out.dim() >= 2 and student_out.shape[1] != teacher_out.shape[1]:
        raise TrimkitError(f"the teacher predicts {teacher_out.shape[1]} classes and the student "
                           f"{student_out.shape[1]}: give a teacher trained for the same "
                           f"{student_out.shape[1]} classes (the same data set)")
    if student_out.shape != teacher_out.shape:
        raise TrimkitError(f"the teacher's outputs have shape {tuple(teacher_out.shape)} and the student's "
                           f"{tuple(student_out.shape)}: teacher and student must give outputs of the same shape "
                           "for the same inputs")


def teacher_right(teacher_logits: torch.Tensor, targets: Any) -> torch.Tensor | None:
    """1.0 where the teacher's top class is the label, else 0.0, one per sample (or per
    position of dense outputs, the labels resized to the outputs' size by nearest
    neighbour; void labels count as wrong); None where the labels are not class indices
    shaped as the outputs' samples."""
    if not isinstance(teacher_logits, torch.Tensor) or not isinstance(targets, torch.Tensor):
        return None
    if targets.dtype not in (torch.int64, torch.int32, torch.uint8) or teacher_logits.dim() < 2:
        return None
    positions = teacher_logits.shape[2:]
    if targets.dim() != teacher_logits.dim() - 1 or len(targets) != len(teacher_logits):
        return None
    if tuple(targets.shape[1:]) != tuple(positions):
        targets = F.interpolate(targets[:, None].float(), size=tuple(positions), mode="nearest")[:, 0].long()
    return (teacher_logits.argmax(1) == targets.to(teacher_logits.device)).float()


def _check_spatial(link: FeatureLink, student: torch.Tensor, teacher: torch.Tensor, need_channels: bool) -> None:
    if student.dim() != 4 or teacher.dim() != 4:
        raise TrimkitError(f"{link.kind} {link.student} <- {link.teacher} needs feature maps (N, C, H, W); got "
                           f"{tuple(student.shape)} and {tuple(teacher.shape)}: choose convolutional layers")


def _key(link: FeatureLink) -> str:
    return f"{link.student}->{link.teacher}".replace(".", "_")


def _sample_key(inputs: tuple[torch.Tensor, ...], i: int) -> bytes:
    digest = hashlib.blake2b(digest_size=16)
    for tensor in inputs:
        digest.update(tensor[i].detach().float().contiguous().cpu().numpy().tobytes())
    return digest.digest()
