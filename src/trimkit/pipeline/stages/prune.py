"""Stage ``prune``: one verified structured cut, by ratio, threshold or a target budget
(latency or speed-up on a runtime, MACs, parameters) as given, or as chosen by
exploration (criterion and threshold from the threshold functions) or by sensitivity
analysis (per-group ratios within a predicted drop)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from trimkit import prune
from trimkit.measure import from_profile
from trimkit.pipeline._context import Context
from trimkit.pipeline._prune_options import CalibratedCut
from trimkit.pipeline._registry import register_stage
from trimkit.pipeline.stages.train import _calibration
from trimkit.tasks import CachedEvaluation


class ExploreChoice(BaseModel):
    """Choose the criterion by the area under its threshold function, and the threshold
    at the end of its plateau within ``max_drop`` points (Bonsai, Algorithm 2)."""

    model_config = ConfigDict(extra="forbid")
    criteria: list[str] = Field(default_factory=lambda: ["std", "range", "mean_abs", "max_abs", "l1"], min_length=1)
    max_drop: float = Field(default=15.0, ge=0.0)
    eval_samples: int | None = Field(default=None, ge=1)


class SensitivityChoice(BaseModel):
    """Choose per-group ratios that remove the most MACs within a predicted ``max_drop``."""

    model_config = ConfigDict(extra="forbid")
    sparsities: list[float] = Field(default_factory=lambda: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
                                    min_length=1)
    max_drop: float = Field(default=1.0, ge=0.0)
    eval_samples: int | None = Field(default=None, ge=1)


class PruneOptions(CalibratedCut):
    choose: Literal["explore", "sensitivity"] | None = None
    explore: ExploreChoice = Field(default_factory=ExploreChoice)
    sensitivity: SensitivityChoice = Field(default_factory=SensitivityChoice)

    @model_validator(mode="after")
    def _how_much(self) -> PruneOptions:
        given = (self.ratio is not None) + (self.threshold is not None) + self.budget
        if self.choose is None and given != 1:
            raise ValueError("say how much to prune: exactly one of ratio, threshold or a target budget (or "
                             "choose: explore | sensitivity)")
        if self.choose is not None and given:
            raise ValueError(f"choose: {self.choose} sets how much to prune; drop ratio, threshold and the target "
                             "budget")
        return self


@register_stage("prune", PruneOptions, "remove filters and neurons for real, verifying every cut")
def prune_stage(model: nn.Module, ctx: Context, options: PruneOptions) -> nn.Module:
    example = ctx.example_inputs(4)
    example = example[0] if len(example) == 1 else example
    chosen: dict[str, Any] = {}
    cut = prune.CutOptions.of(options)
    if options.choose == "explore":
        chosen = _explore(model, ctx, options, example)
        cut = prune.CutOptions.of(cut, criterion=chosen["criterion"], threshold=chosen["threshold"], ratio=None)
    elif options.choose == "sensitivity":
        chosen = _sensitivity(model, ctx, options, example)
        cut = prune.CutOptions.of(cut, ratio=chosen["ratio"] or {"*": 0.0}, threshold=None, scope="layer")
    result = prune.structured(model, example, cut, progress=ctx.progress,
                              calibration=_calibration(ctx, options.calibration_samples, cut.criterion))
    ctx.say(f"   {result.groups_pruned} groups cut, each verified against the masked original, "
            f"{len(result.frozen)} frozen; MACs {result.macs_before:,} -> {result.macs_after:,}")
    if result.budget is not None:
        ctx.say(f"   {result.budget.summary()}")
    ctx.add(from_profile(result.after, "pruned", result.model), settings=cut.model_dump(mode="json"), chosen=chosen,
            filters_pruned=result.filters_pruned, **result.to_dict())
    return result.model


def _explore(model: nn.Module, ctx: Context, options: PruneOptions, example) -> dict[str, Any]:
    choice = options.explore
    evaluation = CachedEvaluation(ctx.task, choice.eval_samples, seed=ctx.seed)
    criteria = prune.compare_criteria(model, example, evaluation, criteria=tuple(choice.criteria),
                                      layers=options.layers)
    threshold = prune.recommend_threshold(criteria.curves[criteria.best], choice.max_drop)
    ctx.say("   AUC " + ", ".join(f"{name} {auc:.3f}" for name, auc in criteria.auc.items())
            + f"; best {criteria.best}, threshold {threshold:.3f} (plateau within {choice.max_drop:g} points)")
    curves = {name: {"auc": criteria.auc[name], "baseline": curve.baseline,
                     "points": [vars(point) for point in curve.points]}
              for name, curve in criteria.curves.items()}
    return {"by": "explore", "criterion": criteria.best, "threshold": threshold, "curves": curves,
            "metric": evaluation.name}


def _sensitivity(model: nn.Module, ctx: Context, options: PruneOptions, example) -> dict[str, Any]:
    choice = options.sensitivity
    evaluation = CachedEvaluation(ctx.task, choice.eval_samples, seed=ctx.seed)
    analysis = prune.sensitivity(model, example, evaluation, sparsities=tuple(choice.sparsities),
                                 criterion=options.criterion, layers=options.layers, progress=ctx.progress)
    by_group = prune.suggest_ratios(analysis, choice.max_drop)
    ratio = {layer: value for group, value in by_group.items() for layer in analysis.layers[group]}
    ctx.say(f"   sensitivity of {len(analysis.metrics)} groups; {len(by_group)} pruned within a predicted "
            f"{choice.max_drop:g}-point drop")
    return {"by": "sensitivity", "ratio": ratio, "group_ratios": by_group, "baseline": analysis.baseline,
            "metrics": {g: {str(k): v for k, v in m.items()} for g, m in analysis.metrics.items()}}
