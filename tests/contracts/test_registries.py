"""One registry helper serves every registry: a name taken twice is refused unless
replaced, an unknown name is one line with the closest known one, and the metadata a
caller needs is on the registered object."""

from __future__ import annotations

import pytest
import torch

from trimkit import measure, models, pipeline, prune, tasks
from trimkit._registry import Registry
from trimkit._sections import SECTIONS
from trimkit.errors import TrimkitError


def test_every_registry_is_the_one_helper():
    from trimkit.measure._registry import BACKENDS
    from trimkit.models._registry import MODELS
    from trimkit.pipeline._registry import STAGES
    from trimkit.prune.criteria import CRITERIA

    for registry in (STAGES, CRITERIA, MODELS, BACKENDS, SECTIONS, tasks.KINDS):
        assert isinstance(registry, Registry) and len(registry) > 0


def test_a_taken_name_an_unknown_name_and_a_replacement():
    registry: Registry[int] = Registry("widget")
    one = registry.register("round", 1)
    assert registry.register("round", one) == 1  # the same object again: a module imported twice
    with pytest.raises(TrimkitError, match=r"^a widget named 'round' is registered already"):
        registry.register("round", 2)
    assert registry.register("round", 2, replace=True) == 2 and registry.get("round") == 2
    with pytest.raises(TrimkitError, match=r"^unknown widget 'rund' \(did you mean 'round'\?\); widgets: round$"):
        registry.get("rund")


@pytest.mark.parametrize("name", prune.criteria.names())
def test_each_criterion_scores_every_channel_and_says_whether_it_needs_data(name):
    criterion = prune.criteria.get(name)
    assert criterion.needs_data == (criterion.needs in ("activations", "gradients"))
    weights = torch.randn(6, 12)
    if criterion.needs_data:
        response, gradient = torch.randn(4, 6, 3, 3), torch.randn(4, 6, 3, 3)
        scores = criterion.function(weights, response, gradient)
    else:
        scores = criterion.function(weights)
    assert scores.shape == (6,) and torch.isfinite(scores).all()


def test_a_data_criterion_registered_by_a_user_gets_a_calibration_batch_in_a_recipe(tmp_path):
    """Found by asking the criterion (needs), not by a list of names in the train stage."""
    seen = []

    def loudest(weights, response, gradient):
        seen.append(response.shape[0])
        return response.abs().mean(dim=(0, 2, 3)) if response.dim() == 4 else response.abs().mean(dim=0)

    prune.register_criterion("loudest", loudest, needs="activations", replace=True)
    try:
        recipe = pipeline.parse_recipe({"model": {"name": "lenet5"},
                                        "task": {"data": "mnist5k", "train_samples": 64, "val_samples": 32},
                                        "stages": [{"stage": "prune", "ratio": 0.5, "criterion": "loudest",
                                                    "calibration_samples": 16}]})
        pipeline.run_recipe(recipe, None, progress=False)
        assert seen and set(seen) == {16}
    finally:
        prune.criteria.CRITERIA._entries.pop("loudest")


@pytest.mark.parametrize("name", list(measure.BACKENDS))
def test_each_backend_runs_a_model_and_says_its_precision(name, tmp_path):
    from trimkit import export
    from trimkit.measure._target import resolve_target

    backend = measure.get_backend(name)
    model = models.create("lenet5")
    target = resolve_target(model, tmp_path, need_onnx=backend.model_format == "onnx")
    session = backend.open(target, batch_size=2, threads=1, precision="auto")
    try:
        session.run()
        (outputs,) = session.infer([torch.randn(2, 1, 28, 28).numpy()])
        assert outputs.shape == (2, 10)
        assert session.precision in ("fp32", "bf16")
    finally:
        session.close()
    assert backend.versions() and all(isinstance(v, str) for v in backend.versions().values())
    assert export.MIN_OPSET <= export.MAX_OPSET
