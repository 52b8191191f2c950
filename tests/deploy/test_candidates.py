"""Which candidates a deployment is chosen from: the CPU's flags decide bf16, the
installed runtimes and NNCF decide the rest, and whatever is asked for by name that
cannot run here is one line."""

from __future__ import annotations

import pytest

from trimkit import deploy
from trimkit.deploy import Candidate
from trimkit.errors import TrimkitError

EPYC = frozenset({"avx2", "avx512f", "avx512_vnni", "avx512_bf16"})  # this machine: VNNI and BF16, no AMX
SAPPHIRE = frozenset({"avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8"})
SKYLAKE = frozenset({"avx2", "avx512f"})  # neither VNNI nor bf16
BOTH = ("onnxruntime", "openvino")


def plan(flags=EPYC, cpus=2, installed=BOTH, nncf=True, **asked) -> deploy.CandidatePlan:
    return deploy.plan_candidates(flags=flags, cpu="Test CPU", cpus=cpus, installed=installed, nncf=nncf, **asked)


def kinds(found: deploy.CandidatePlan) -> list[tuple[str, str, str | None]]:
    return list(dict.fromkeys((c.runtime, c.precision, c.recipe) for c in found.candidates))


def test_every_runtime_precision_recipe_and_thread_count_where_the_cpu_has_bf16():
    found = plan()
    assert kinds(found) == [
        ("onnxruntime", "fp32", None), ("onnxruntime", "int8", "qdq-u8s8"), ("onnxruntime", "int8", "qdq-s8s8"),
        ("onnxruntime", "int8", "qoperator-u8s8"), ("onnxruntime", "int8", "qdq-u8s8-first-float"),
        ("openvino", "fp32", None), ("openvino", "bf16", None), ("openvino", "int8", "qdq-u8s8"),
        ("openvino", "int8", "nncf")]
    assert len(found.candidates) == 9 * 2 and {c.threads for c in found.candidates} == {1, 2}
    assert found.notes == ()
    assert plan(flags=SAPPHIRE).candidates == found.candidates  # AMX-BF16 counts as native bf16 too


def test_without_native_bf16_there_is_no_bf16_candidate_and_a_note_says_why():
    found = plan(flags=SKYLAKE)
    assert "bf16" not in {c.precision for c in found.candidates}
    assert found.notes == (
        "bf16 left out: this CPU (Test CPU) has no native bf16 (avx512_bf16 or amx_bf16)",
        "this CPU (Test CPU) has no int8 dot-product instructions (avx512_vnni, avx_vnni, amx_int8): INT8 is "
        "measured, but usually loses here")
    assert {c.precision for c in found.candidates} == {"fp32", "int8"}  # INT8 is still measured, not assumed


def test_asking_for_bf16_on_a_cpu_without_it_is_one_line():
    with pytest.raises(TrimkitError, match=r"^this CPU \(Test CPU\) cannot compute in bf16 natively \(it lacks "
                                           r"avx512_bf16 and amx_bf16\); leave bf16 out of --precisions$"):
        plan(flags=SKYLAKE, precisions=["bf16"])
    with pytest.raises(TrimkitError, match=r"^only OpenVINO computes in bf16"):
        plan(backends=["onnxruntime"], precisions=["bf16"])


def test_runtimes_that_are_not_installed_or_not_runtimes_are_refused_by_name():
    with pytest.raises(TrimkitError, match=r"^runtime openvino is not installed here: pip install 'openvino', or "
                                           "leave it out of --backends$"):
        plan(installed=("onnxruntime",), backends=["openvino"])
    with pytest.raises(TrimkitError, match=r"^torch is not a deployment runtime"):
        plan(backends=["torch"])
    with pytest.raises(TrimkitError, match=r"^unknown runtime 'tensorrt'"):
        plan(backends=["tensorrt"])
    only_ort = plan(installed=("onnxruntime",))  # not asked for: what is installed is used
    assert {c.runtime for c in only_ort.candidates} == {"onnxruntime"}


def test_nncf_missing_leaves_its_recipe_out_with_a_note_unless_asked_for():
    found = plan(nncf=False)
    assert "nncf" not in {c.recipe for c in found.candidates}
    assert found.notes == ("OpenVINO INT8 by NNCF left out: NNCF is not installed (pip install 'trimkit[nncf]')",)
    with pytest.raises(TrimkitError, match=r"^the nncf recipe needs NNCF, which is not installed"):
        plan(nncf=False, recipes=["nncf"])


def test_recipes_and_threads_asked_for_narrow_the_plan():
    found = plan(recipes=["qdq-u8s8"], threads=[4, 1, 4], precisions=["int8"])
    assert found.candidates == (Candidate("onnxruntime", "int8", 1, "qdq-u8s8"),
                                Candidate("onnxruntime", "int8", 4, "qdq-u8s8"),
                                Candidate("openvino", "int8", 1, "qdq-u8s8"),
                                Candidate("openvino", "int8", 4, "qdq-u8s8"))
    with pytest.raises(TrimkitError, match=r"^INT8 recipe nncf runs on openvino, which --backends leaves out$"):
        plan(backends=["onnxruntime"], recipes=["nncf"])
    with pytest.raises(TrimkitError, match=r"^thread counts must be at least 1, got \[0\]$"):
        plan(threads=[0])


def test_default_threads_are_one_half_and_all_of_the_cpus():
    assert deploy.default_threads(1) == [1]
    assert deploy.default_threads(2) == [1, 2]
    assert deploy.default_threads(16) == [1, 8, 16]


def test_a_candidate_names_its_file_and_what_the_runtime_is_asked_to_compute_in():
    bf16 = Candidate("openvino", "bf16", 2)
    assert (bf16.label, bf16.artifact, bf16.runtime_precision) == ("openvino bf16, 2 threads", "fp32.xml", "bf16")
    nncf = Candidate("openvino", "int8", 1, "nncf")
    assert (nncf.label, nncf.artifact, nncf.runtime_precision) == ("openvino int8 nncf, 1 thread", "int8-nncf.xml",
                                                                   "fp32")
    qdq = Candidate("onnxruntime", "int8", 2, "qdq-u8s8")
    assert qdq.artifact == "int8-qdq-u8s8.onnx"
    assert qdq.scoring_key == Candidate("onnxruntime", "int8", 1, "qdq-u8s8").scoring_key  # threads score alike
