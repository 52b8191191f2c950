"""The candidates a deployment is chosen from: each installed runtime, each precision it
can run on this CPU, each INT8 recipe it takes, each thread count.

Which precisions a CPU runs natively is read from its flags (``/proc/cpuinfo``):
bf16 needs AVX512-BF16 or AMX-BF16 (OpenVINO's ``INFERENCE_PRECISION_HINT``; ONNX
Runtime's CPU provider has no bf16 mode). INT8 is a candidate everywhere, and measured
like the rest: without VNNI or AMX its dot products take several instructions each and
it usually loses, which the table then shows.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from trimkit.errors import TrimkitError

RUNTIMES = ("onnxruntime", "openvino")
PRECISIONS = ("fp32", "bf16", "int8")
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
INT8_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")


@dataclass(frozen=True)
class Int8Recipe:
    """One way to make an INT8 file: its ``name``, the runtimes that run it, the file it
    makes, and what it is, in words."""

    name: str
    runtimes: tuple[str, ...]
    about: str


#: every INT8 recipe, in the order the table lists them
INT8_RECIPES = {recipe.name: recipe for recipe in (
    Int8Recipe("qdq-u8s8", ("onnxruntime", "openvino"),
               "trimkit's PTQ: QDQ, uint8 activations, int8 per-channel weights (ONNX Runtime's quantiser)"),
    Int8Recipe("qdq-s8s8", ("onnxruntime",), "QDQ, int8 activations (ONNX Runtime's default format)"),
    Int8Recipe("qoperator-u8s8", ("onnxruntime",), "QOperator (QLinearConv, ...), uint8 activations"),
    Int8Recipe("qdq-u8s8-first-float", ("onnxruntime",), "QDQ U8S8 with the first compute layer kept in float"),
    Int8Recipe("nncf", ("openvino",), "NNCF's post-training quantisation of the OpenVINO model"),
)}


@dataclass(frozen=True)
class Candidate:
    """One deployment to measure: a runtime, a precision (``int8`` with its ``recipe``),
    and a thread count."""

    runtime: str
    precision: str
    threads: int
    recipe: str | None = None

    @property
    def label(self) -> str:
        kind = f"int8 {self.recipe}" if self.recipe else self.precision
        return f"{self.runtime} {kind}, {self.threads} thread{'' if self.threads == 1 else 's'}"

    @property
    def artifact(self) -> str:
        """The file it runs: ONNX for ONNX Runtime, OpenVINO IR for OpenVINO; a bf16
        candidate runs the fp32 file with bf16 asked of the runtime."""
        stem = f"int8-{self.recipe}" if self.recipe else "fp32"
        return f"{stem}.onnx" if self.runtime == "onnxruntime" else f"{stem}.xml"

    @property
    def runtime_precision(self) -> str:
        """What the runtime is asked to compute float layers in: bf16 for a bf16
        candidate, else fp32 (an INT8 file's layers left in float stay exact)."""
        return "bf16" if self.precision == "bf16" else "fp32"

    @property
    def scoring_key(self) -> tuple[str, str, str]:
        """What decides its outputs: threads do not, so candidates that differ only in
        threads are scored once."""
        return self.runtime, self.artifact, self.runtime_precision


@dataclass(frozen=True)
class CandidatePlan:
    """The candidates to measure and what was left out, and why (one line each)."""

    candidates: tuple[Candidate, ...]
    notes: tuple[str, ...]


def installed_runtimes() -> tuple[str, ...]:
    return tuple(name for name in RUNTIMES if importlib.util.find_spec(name) is not None)


def nncf_installed() -> bool:
    return importlib.util.find_spec("nncf") is not None


def default_threads(cpus: int) -> list[int]:
    """1, half the CPUs and all of them: one thread often wins at batch 1 on a small
    model (no synchronisation), all of them at large batches."""
    return sorted({1, max(1, cpus // 2), cpus})


def has_native_bf16(flags: Iterable[str]) -> bool:
    return bool(set(BF16_FLAGS) & set(flags))


def has_int8_dot_product(flags: Iterable[str]) -> bool:
    return bool(set(INT8_FLAGS) & set(flags))


def plan_candidates(*, flags: frozenset[str], cpu: str, cpus: int, backends: Sequence[str] | None = None,
                    precisions: Sequence[str] | None = None, recipes: Sequence[str] | None = None,
                    threads: Sequence[int] | None = None, installed: Sequence[str] | None = None,
                    nncf: bool | None = None) -> CandidatePlan:
    """Every candidate for a CPU with ``flags`` (``cpu`` names it in errors) and ``cpus``
    CPUs. ``None`` means all: every installed runtime, every precision the CPU runs
    natively, every INT8 recipe of each runtime, :func:`default_threads`. Something asked
    for by name that cannot run here (a runtime not installed, bf16 without native bf16,
    a recipe no chosen runtime runs) is a one-line :class:`TrimkitError`."""
    installed = installed_runtimes() if installed is None else tuple(installed)
    nncf = nncf_installed() if nncf is None else nncf
    runtimes = _runtimes(backends, installed)
    chosen_precisions = _precisions(precisions, flags, cpu, runtimes)
    chosen_threads = _threads(threads, cpus)
    notes = []
    if precisions is None and not has_native_bf16(flags) and "openvino" in runtimes:
        notes.append(f"bf16 left out: this CPU ({cpu}) has no native bf16 ({' or '.join(BF16_FLAGS)})")
    if "int8" in chosen_precisions and not has_int8_dot_product(flags):
        notes.append(f"this CPU ({cpu}) has no int8 dot-product instructions ({', '.join(INT8_FLAGS)}): INT8 is "
                     "measured, but usually loses here")
    by_runtime = _recipes(recipes, runtimes) if "int8" in chosen_precisions else {}
    if "nncf" in by_runtime.get("openvino", ()) and not nncf:
        if recipes is not None:
            raise TrimkitError("the nncf recipe needs NNCF, which is not installed: pip install 'trimkit[nncf]'")
        by_runtime["openvino"] = tuple(name for name in by_runtime["openvino"] if name != "nncf")
        notes.append("OpenVINO INT8 by NNCF left out: NNCF is not installed (pip install 'trimkit[nncf]')")
    candidates = []
    for runtime in runtimes:
        for precision in chosen_precisions:
            if precision == "bf16" and runtime != "openvino":
                continue
            for recipe in by_runtime.get(runtime, ()) if precision == "int8" else (None,):
                candidates.extend(Candidate(runtime, precision, count, recipe) for count in chosen_threads)
    if not candidates:
        raise TrimkitError(f"no candidate runs {', '.join(chosen_precisions)} on {', '.join(runtimes)}; "
                           "widen --precisions or --backends")
    return CandidatePlan(tuple(candidates), tuple(notes))


def _runtimes(backends: Sequence[str] | None, installed: Sequence[str]) -> tuple[str, ...]:
    if backends is None:
        if not installed:
            raise TrimkitError("no runtime is installed: pip install onnxruntime (or 'trimkit[openvino]')")
        return tuple(installed)
    for name in backends:
        if name == "torch":
            raise TrimkitError("torch is not a deployment runtime: a deployment is a file that runs without the "
                               f"model's Python code; choose from {', '.join(RUNTIMES)}")
        if name not in RUNTIMES:
            raise TrimkitError(f"unknown runtime {name!r}; choose from {', '.join(RUNTIMES)}")
        if name not in installed:
            extra = "openvino" if name == "openvino" else "onnxruntime"
            raise TrimkitError(f"runtime {name} is not installed here: pip install '{extra}', or leave it out of "
                               "--backends")
    return tuple(dict.fromkeys(backends))


def _precisions(precisions: Sequence[str] | None, flags: frozenset[str], cpu: str,
                runtimes: Sequence[str]) -> tuple[str, ...]:
    if precisions is None:
        return tuple(p for p in PRECISIONS if p != "bf16" or (has_native_bf16(flags) and "openvino" in runtimes))
    for precision in precisions:
        if precision not in PRECISIONS:
            raise TrimkitError(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")
    if "bf16" in precisions:
        if not has_native_bf16(flags):
            raise TrimkitError(f"this CPU ({cpu}) cannot compute in bf16 natively (it lacks {' and '.join(BF16_FLAGS)}"
                               "); leave bf16 out of --precisions")
        if "openvino" not in runtimes:
            raise TrimkitError("only OpenVINO computes in bf16 (ONNX Runtime's CPU provider has no bf16 mode); add "
                               "openvino to --backends or leave bf16 out")
    return tuple(dict.fromkeys(precisions))


def _threads(threads: Sequence[int] | None, cpus: int) -> tuple[int, ...]:
    if threads is None:
        return tuple(default_threads(cpus))
    if not threads or any(count < 1 for count in threads):
        raise TrimkitError(f"thread counts must be at least 1, got {list(threads)}")
    return tuple(sorted(set(threads)))


def _recipes(recipes: Sequence[str] | None, runtimes: Sequence[str]) -> dict[str, tuple[str, ...]]:
    if recipes is not None:
        for name in recipes:
            if name not in INT8_RECIPES:
                raise TrimkitError(f"unknown INT8 recipe {name!r}; choose from {', '.join(INT8_RECIPES)}")
            if not set(INT8_RECIPES[name].runtimes) & set(runtimes):
                raise TrimkitError(f"INT8 recipe {name} runs on {', '.join(INT8_RECIPES[name].runtimes)}, which "
                                   "--backends leaves out")
    names = list(INT8_RECIPES) if recipes is None else list(dict.fromkeys(recipes))
    return {runtime: tuple(name for name in names if runtime in INT8_RECIPES[name].runtimes) for runtime in runtimes}
