"""Deployment chosen by measurement: the fastest runtime, precision and thread count that
keep the task's metric, written as a folder an application loads in three lines.

>>> from trimkit import deploy
>>> found = deploy.choose(model, data=val_set, out="deployment", batch_size=32)   # doctest: +SKIP
>>> found.decision.chosen.candidate.label                                     # doctest: +SKIP
'openvino int8 nncf, 2 threads'
>>> run = deploy.load("deployment")                                           # doctest: +SKIP
>>> logits = run(images)            # float32 N x C x H x W, normalised          # doctest: +SKIP

``load`` imports NumPy and the runtime, not torch.
"""

from trimkit._lazy import attach

_NAMES = {
    "INT8_RECIPES": "trimkit.deploy._candidates",
    "Candidate": "trimkit.deploy._candidates",
    "CandidatePlan": "trimkit.deploy._candidates",
    "default_threads": "trimkit.deploy._candidates",
    "plan_candidates": "trimkit.deploy._candidates",
    "Baseline": "trimkit.deploy._choose",
    "Deployment": "trimkit.deploy._choose",
    "choose": "trimkit.deploy._choose",
    "Decision": "trimkit.deploy._decide",
    "Outcome": "trimkit.deploy._decide",
    "Row": "trimkit.deploy._decide",
    "decide": "trimkit.deploy._decide",
    "check_deployment_output": "trimkit.deploy._folder",
    "DeployedModel": "trimkit.deploy._loader",
    "MANIFEST": "trimkit.deploy._loader",
    "load": "trimkit.deploy._loader",
    "read_manifest": "trimkit.deploy._loader",
    "row_record": "trimkit.deploy._manifest",
    "DEFAULT_MAX_DROP": "trimkit.deploy._options",
    "TABLE_HEAD": "trimkit.deploy._summary",
    "computes_in": "trimkit.deploy._summary",
    "speed": "trimkit.deploy._summary",
    "summary_lines": "trimkit.deploy._summary",
    "table_rows": "trimkit.deploy._summary",
    "text_table": "trimkit.deploy._summary",
    "DeployOptions": "trimkit.deploy._options",
}
__getattr__, __dir__, __all__ = attach(__name__, names=_NAMES)
