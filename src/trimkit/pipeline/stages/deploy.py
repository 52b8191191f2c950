"""Stage ``deploy``: the fastest runtime, precision and thread count that keep the task's
metric, chosen by measurement (:func:`trimkit.deploy.choose`), written as a deployment
folder (the stage's ``deployment/``, or a command's ``--out``). With ``baseline`` (a
named model of the run, e.g. the model before pruning) the user's starting point is
timed beside the candidates on ONNX Runtime fp32, so the speed-up it reports is what
compression and deployment bought together, measured in one run."""

from __future__ import annotations

from torch import nn

from trimkit import deploy
from trimkit.pipeline._context import Context
from trimkit.pipeline._registry import StageOptions, register_stage
from trimkit.record import Measurement, Metric


class DeployStageOptions(deploy.DeployOptions, StageOptions):
    model: str | None = None
    baseline: str | None = None

    def needs(self) -> frozenset[str]:
        return frozenset({"runtime_scoring"})


@register_stage("deploy", DeployStageOptions, "choose the fastest runtime, precision and threads that keep the "
                                              "metric; write a deployment folder")
def deploy_stage(model: nn.Module, ctx: Context, options: DeployStageOptions) -> nn.Module:
    task = ctx.require_task("deploy")
    subject = model if options.model is None else ctx.model_or_artifact(options.model)
    baseline = None if options.baseline is None else ctx.model_or_artifact(options.baseline)
    out = ctx.output or ctx.path("deployment")
    found = deploy.choose(subject, task=task, options=deploy.DeployOptions.of(options), out=out, baseline=baseline,
                          baseline_label=options.baseline or "baseline", progress=ctx.progress,
                          say=lambda text: ctx.say(f"   {text}"))
    chosen = found.decision.chosen
    manifest = found.manifest
    scored = manifest["metric"]
    metric = Metric(scored["name"], chosen.outcome.metric, scored["split"], scored["samples"],
                    chosen.candidate.precision, chosen.candidate.runtime, scored["data"])
    machine = {key: value for key, value in manifest["machine"].items() if key not in ("flags", "device")}
    ctx.add(Measurement("deployment", metrics=[metric], latency=[chosen.outcome.latency]),
            deployment=deployment_details(found), environment={**machine, "threads": chosen.candidate.threads})
    ctx.artifacts["deployment"] = str(out)
    for line in [*deploy.text_table(found.decision), *deploy.summary_lines(found)]:
        ctx.say(f"   {line}")
    ctx.keep_model()
    return model


def deployment_details(found: deploy.Deployment) -> dict:
    """What the log keeps of a deployment (its folder is the ``deployment`` artifact): the
    chosen row and every row, the reference, the baseline and the machine, as the
    manifest holds them."""
    manifest = found.manifest
    return {"chosen": deploy.row_record(found.decision.chosen),
            "candidates": manifest["candidates"], "metric": manifest["metric"],
            "batch_size": manifest["batch_size"], "onnxruntime_fp32": manifest["onnxruntime_fp32"],
            "baseline": manifest["baseline"], "machine": manifest["machine"], "notes": list(found.notes)}
