"""Measurements: ``profile`` (parameters, MACs, FLOPs, bytes per layer), ``latency`` on a
runtime backend (onnxruntime, openvino, torch), ``compare`` of several models side by
side, and ``runtime_accuracy`` in the precision a runtime computes in."""

from trimkit._lazy import attach

_NAMES = {
    "runtime_accuracy": "trimkit.measure._accuracy",
    "runtime_evaluation": "trimkit.measure._accuracy",
    "Backend": "trimkit.measure._backend",
    "NodeTime": "trimkit.measure._backend",
    "PRECISIONS": "trimkit.measure._backend",
    "Session": "trimkit.measure._backend",
    "runtime_error_line": "trimkit.measure._backend",
    "ComparedModel": "trimkit.measure._compare",
    "Comparison": "trimkit.measure._compare",
    "compare": "trimkit.measure._compare",
    "available_cpus": "trimkit.measure._env",
    "busy_cpus": "trimkit.measure._env",
    "environment": "trimkit.measure._env",
    "Latency": "trimkit.measure._latency",
    "latencies": "trimkit.measure._latency",
    "latency": "trimkit.measure._latency",
    "RunSettings": "trimkit.measure._latency",
    "TimedRun": "trimkit.measure._latency",
    "measure_runs": "trimkit.measure._latency",
    "ModelOrPath": "trimkit.measure._target",
    "ModelTarget": "trimkit.measure._target",
    "onnx_dtype": "trimkit.measure._target",
    "file_bytes": "trimkit.measure._target",
    "resolve_target": "trimkit.measure._target",
    "LayerTime": "trimkit.measure._layers",
    "from_profile": "trimkit.measure._measurement",
    "onnxruntime_session_options": "trimkit.measure._onnxruntime:session_options",
    "ONNXRUNTIME_SESSION_SETTINGS": "trimkit.measure._onnxruntime:SESSION_SETTINGS",
    "openvino_compile_config": "trimkit.measure._openvino:compile_config",
    "latency_record": "trimkit.measure._measurement",
    "measure_model": "trimkit.measure._measurement",
    "state_dict_bytes": "trimkit.measure._measurement",
    "RuntimeOptions": "trimkit.measure._options",
    "LayerProfile": "trimkit.measure._profile",
    "Profile": "trimkit.measure._profile",
    "profile": "trimkit.measure._profile",
    "BACKENDS": "trimkit.measure._registry",
    "get_backend": "trimkit.measure._registry",
    "LatencyStats": "trimkit.measure._stats",
    "summarize": "trimkit.measure._stats",
}
__getattr__, __dir__, __all__ = attach(__name__, names=_NAMES)
