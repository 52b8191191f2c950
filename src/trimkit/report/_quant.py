"""A quantize stage's details: the INT8 PTQ file's own record (``details.int8``), or the
QAT model's sizes (analytic and packed, in the stage's measurement); and, for either,
the policy and analytic size of each weight layer (``details.size.layers``)."""

from __future__ import annotations

from trimkit.report._markup import (byte_count, count, difference, esc, figure, long_table, metric_format, ratio, table,
                                    text)
from trimkit.report._measurement import figures_table, metric_label, metrics
from trimkit.report._source import Ref


def quant_block(details: Ref, measurement: Ref | None) -> str:
    mode = details.value.get("mode")
    if mode == "ptq":
        return _ptq(details, measurement) + layers_table(details)
    if mode == "qat":
        return _qat(details, measurement) + layers_table(details)
    return ""


# (key, heading, is a figure) of each per-layer row of ``quant.size_report``
LAYER_COLUMNS = (("type", "type", False), ("role", "role", False), ("weight_format", "weight format", False),
                 ("act_format", "act format", False), ("weights", "params", True), ("weight_bits", "weight bits", True),
                 ("scales", "scales", True), ("biases", "biases", True), ("analytic_bits", "analytic bits", True),
                 ("analytic_bytes", "analytic bytes", True))


def layers_table(details: Ref) -> str:
    """The policy per weight layer and its analytic size, as the size report logged it."""
    layers = details.get("layers") or details.at("size", "layers")  # logs before the report was the details
    found = [row for row in (layers.children() if layers is not None and layers.is_list else []) if row.is_dict]
    if not found:
        return ""
    columns = [c for c in LAYER_COLUMNS if any(c[0] in row.value for row in found)]
    rows = [(text(row.get("name")), *(figure(row.get(key), byte_count if key == "analytic_bytes" else count)
                                      if numeric else text(row.get(key)) for key, _, numeric in columns))
            for row in found]
    head = ["layer", *(heading for _, heading, _ in columns)]
    align = "l" + "".join("r" if numeric else "l" for _, _, numeric in columns)
    return ("<h4>Quantisation per layer</h4><p>Each weight layer's role and formats under the policy, and its "
            "analytic size (weights at their width, scales, biases and input scale; exact).</p>"
            + long_table(f"Table of the {len(rows)} layers", table(head, rows, align), len(rows)))


def _ptq(details: Ref, measurement: Ref | None) -> str:
    int8 = details.get("int8")
    if int8 is None or not int8.is_dict:
        return ""
    int8_format = details.get("int8_format") or details.at("ptq", "int8_format")
    lead = (f"INT8 post-training quantisation, policy <b>{text(details.get('policy'))}</b>, format "
            f"{text(int8_format)}; the model goes on unchanged and the INT8 file is scored by its "
            "runtime.")
    rows = []
    float_size = measurement.at("size_bytes", "onnx") if measurement is not None else None
    int8_size = int8.at("size_bytes", "int8_onnx")
    if int8_size is not None:
        rows.append(("ONNX file", figure(float_size, byte_count), figure(int8_size, byte_count),
                     ratio(int8_size, float_size), ""))
    float_metrics = metrics(measurement)
    for key, item in metrics(int8).items():
        twin = float_metrics.get((key[0], "pytorch", key[2]))
        before = twin.get("value") if twin is not None else None
        fmt = metric_format(key[0])
        rows.append((esc(metric_label(key)), figure(before, fmt), figure(item.get("value"), fmt),
                     ratio(item.get("value"), before), difference(item.get("value"), before, fmt)))
    side = table(["", "float model", "INT8", "×", "change"], rows, "lrrrr") if rows else ""
    return f"<h4>INT8 (PTQ)</h4><p>{lead}</p>{side}<h5>The INT8 file's record</h5>{figures_table(int8)}"


def _qat(details: Ref, measurement: Ref | None) -> str:
    sizes = measurement.get("size_bytes") if measurement is not None else None
    reference = sizes.get("state_dict") if sizes is not None else None
    rows = [(esc(kind), figure(sizes.get(kind), byte_count), ratio(sizes.get(kind), reference))
            for kind in ("analytic", "packed") if sizes is not None and sizes.get(kind) is not None]
    lead = (f"Quantisation-aware training, policy <b>{text(details.get('policy'))}</b>. Analytic: bits per layer "
            "summed, exact; packed: the weights written at their real widths.")
    head = ["size", "bytes", "× float state dict"]
    return f"<h4>QAT</h4><p>{lead}</p>" + (table(head, rows, "lrr") if rows else "")
