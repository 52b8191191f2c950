"""The pipeline: stages ``(model, context, options) -> model`` run in order from a recipe
or from Python, each appending its measurements to the run's log.

>>> recipe = pipeline.load_recipe("examples/recipes/lenet5-mnist5k.yaml", ["stages.0.epochs=1"])  # doctest: +SKIP
>>> result = pipeline.run_recipe(recipe, "runs/lenet5")                                            # doctest: +SKIP
"""

from trimkit.pipeline._context import Context
from trimkit.pipeline._recipe import ModelSpec, Recipe, RecipeError, dump_recipe, load_recipe, parse_recipe
from trimkit.pipeline._registry import Stage, StageOptions, get_stage, register_stage, stage_names
from trimkit.pipeline._runner import JobResult, RunResult, build_model, build_task, run_job, run_recipe
from trimkit.pipeline._subjects import (Subject, command_task, data_kind, measurement_of, module_subject,
                                        onnx_spatial_size, onnx_subject, shared_task)

__all__ = [
                                        "Context",
                                        "JobResult",
                                        "ModelSpec",
                                        "Recipe",
                                        "RecipeError",
                                        "RunResult",
                                        "Stage",
                                        "StageOptions",
                                        "Subject",
                                        "build_model",
                                        "build_task",
                                        "command_task",
                                        "data_kind",
                                        "dump_recipe",
                                        "get_stage",
                                        "load_recipe",
                                        "measurement_of",
                                        "module_subject",
                                        "onnx_spatial_size",
                                        "onnx_subject",
                                        "parse_recipe",
                                        "register_stage",
                                        "run_job",
                                        "run_recipe",
                                        "shared_task",
                                        "stage_names",
]
