"""The choice from fixed measurements: the fastest candidate within the allowed drop
wins, every other row says why not, and when none fits the error names the closest."""

from __future__ import annotations

import pytest

from trimkit import deploy
from trimkit.deploy import Candidate, Outcome
from trimkit.errors import TrimkitError
from trimkit.record import LatencyRecord

ORT_FP32 = Candidate("onnxruntime", "fp32", 2)
ORT_INT8 = Candidate("onnxruntime", "int8", 2, "qdq-u8s8")
OV_BF16 = Candidate("openvino", "bf16", 2)
OV_NNCF = Candidate("openvino", "int8", 2, "nncf")
OV_NNCF_1 = Candidate("openvino", "int8", 1, "nncf")


def timed(candidate: Candidate, p50_ms: float, metric: float | None, batch: int = 32) -> Outcome:
    record = LatencyRecord(latency_ms=p50_ms, p90_ms=p50_ms * 1.1, p99_ms=p50_ms * 1.3, mean_ms=p50_ms, cv=0.05,
                           throughput=batch * 1e3 / p50_ms, iterations=100, backend=candidate.runtime,
                           precision=candidate.runtime_precision, precision_requested=candidate.runtime_precision,
                           threads=candidate.threads, batch_size=batch)
    return Outcome(candidate, record, metric)


def choose(outcomes, max_drop=0.5, reference=81.0, **more) -> deploy.Decision:
    return deploy.decide(outcomes, metric="top1", reference=reference, max_drop=max_drop,
                         reference_latency=outcomes[0].latency, **more)


def test_the_fastest_within_the_drop_wins_and_each_other_row_says_why_not():
    outcomes = [timed(ORT_FP32, 70.0, 81.0), timed(ORT_INT8, 27.0, 80.7), timed(OV_BF16, 35.0, 81.1),
                timed(OV_NNCF, 21.0, 79.9), timed(OV_NNCF_1, 40.0, 79.9)]
    decision = choose(outcomes)
    assert decision.chosen.candidate == ORT_INT8  # OpenVINO's NNCF file is faster but loses 1.1 points
    assert [row.candidate for row in decision.rows] == [OV_NNCF, ORT_INT8, OV_BF16, OV_NNCF_1, ORT_FP32]
    reasons = {row.candidate: row.reason for row in decision.rows}
    assert reasons == {
        OV_NNCF: "loses 1.10 points of top1, more than the 0.5 allowed",
        ORT_INT8: "fastest within 0.5 points",
        OV_BF16: "slower: 1.30x the chosen one's p50",
        OV_NNCF_1: "loses 1.10 points of top1, more than the 0.5 allowed",
        ORT_FP32: "slower: 2.59x the chosen one's p50",
    }
    rows = {row.candidate: row for row in decision.rows}
    assert rows[ORT_INT8].drop == pytest.approx(0.3) and rows[OV_BF16].drop == pytest.approx(-0.1)
    assert rows[ORT_INT8].speedup == pytest.approx(70 / 27) and rows[ORT_FP32].speedup == 1.0
    assert [row.chosen for row in decision.rows].count(True) == 1


def test_a_larger_allowed_drop_lets_the_faster_int8_file_win():
    outcomes = [timed(ORT_FP32, 70.0, 81.0), timed(ORT_INT8, 27.0, 80.7), timed(OV_NNCF, 21.0, 79.9)]
    assert choose(outcomes, max_drop=1.1).chosen.candidate == OV_NNCF
    assert choose(outcomes, max_drop=1.0).chosen.candidate == ORT_INT8


def test_int8_that_is_slower_is_not_chosen_even_when_it_keeps_the_metric():
    outcomes = [timed(ORT_FP32, 0.10, 95.0), timed(ORT_INT8, 0.19, 95.0), timed(OV_BF16, 0.12, 95.0)]
    decision = choose(outcomes, reference=95.0)
    assert decision.chosen.candidate == ORT_FP32 and decision.chosen.reason == "fastest within 0.5 points"
    assert {row.candidate: row.reason for row in decision.rows}[ORT_INT8] == "slower: 1.90x the chosen one's p50"


def test_failed_candidates_are_listed_last_with_their_error():
    outcomes = [timed(ORT_FP32, 70.0, 81.0), Outcome(ORT_INT8, None, None, "int8-qdq-u8s8.onnx could not be made: x"),
                Outcome(OV_BF16, None, 81.0, "openvino cannot compile it")]
    decision = choose(outcomes)
    assert decision.chosen.candidate == ORT_FP32
    assert [row.reason for row in decision.rows[1:]] == ["failed: int8-qdq-u8s8.onnx could not be made: x",
                                                         "failed: openvino cannot compile it"]
    assert decision.rows[1].speedup is None


def test_when_no_candidate_keeps_the_metric_the_error_names_the_closest():
    outcomes = [timed(ORT_INT8, 27.0, 80.1), timed(OV_NNCF, 21.0, 79.5), Outcome(OV_BF16, None, None, "broken")]
    with pytest.raises(TrimkitError) as caught:
        choose(outcomes, max_drop=0.3)
    assert str(caught.value) == (
        "no candidate keeps top1 within 0.3 points of ONNX Runtime fp32 (81.00); closest: onnxruntime int8 qdq-u8s8, "
        "2 threads at 80.10 (drop 0.90); allow a larger --max-drop, or deploy the model as it is")
    with pytest.raises(TrimkitError, match=r"^no candidate could be measured \(first failure: openvino bf16, 2 "
                                           r"threads: broken\)$"):
        choose([Outcome(OV_BF16, None, None, "broken")])


def test_a_metric_that_is_better_lower_drops_when_it_rises():
    outcomes = [timed(ORT_FP32, 10.0, 0.50), timed(ORT_INT8, 5.0, 0.80), timed(OV_BF16, 8.0, 0.45)]
    decision = deploy.decide(outcomes, metric="loss", reference=0.50, max_drop=0.1, higher_is_better=False)
    assert decision.chosen.candidate == OV_BF16
    assert {row.candidate: row.drop for row in decision.rows}[ORT_INT8] == pytest.approx(0.30)


def test_ties_go_to_the_first_listed_and_the_table_shows_every_row():
    outcomes = [timed(ORT_FP32, 10.0, 81.0), timed(OV_BF16, 10.0, 81.0)]
    decision = choose(outcomes)
    assert decision.chosen.candidate == ORT_FP32
    assert [cells[0] for cells in deploy.table_rows(decision)] == ["* onnxruntime fp32, 2 threads",
                                                                   "openvino bf16, 2 threads"]
    assert deploy.table_rows(decision)[1][1:] == ("bf16", "10.000", "11.000", "3,200", "1.00", "81.00", "+0.00",
                                                  "slower: 1.00x the chosen one's p50")
