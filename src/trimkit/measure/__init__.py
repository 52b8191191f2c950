"""Measurements: ``profile`` (parameters, MACs, FLOPs, bytes per layer), ``latency`` on a
runtime backend (onnxruntime, openvino, torch), ``compare`` of several models side by
side, and ``runtime_accuracy`` in the precision a runtime computes in."""

from trimkit.measure._profile import LayerProfile, Profile, profile
from trimkit.measure._accuracy import runtime_accuracy, runtime_evaluation
from trimkit.measure._backend import PRECISIONS, Backend, NodeTime, Session
from trimkit.measure._compare import Comparison, ComparedModel, compare
from trimkit.measure._env import busy_cpus, environment
from trimkit.measure._latency import Latency, latencies, latency
from trimkit.measure._layers import LayerTime
from trimkit.measure._options import RuntimeOptions
from trimkit.measure._measurement import from_profile, latency_record, measure_model, state_dict_bytes
from trimkit.measure._registry import BACKENDS, get_backend
from trimkit.measure._stats import LatencyStats, summarize

__all__ = [
    "BACKENDS",
    "PRECISIONS",
    "RuntimeOptions",
    "Backend",
    "ComparedModel",
    "Comparison",
    "LatencyStats",
    "Latency",
    "LayerProfile",
    "LayerTime",
    "NodeTime",
    "Profile",
    "Session",
    "busy_cpus",
    "compare",
    "environment",
    "from_profile",
    "get_backend",
    "latencies",
    "latency",
    "latency_record",
    "measure_model",
    "state_dict_bytes",
    "profile",
    "runtime_accuracy",
    "runtime_evaluation",
    "summarize",
]
