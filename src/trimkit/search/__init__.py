"""Search: many pipeline runs over a recipe's parameters, in an Optuna study.

A recipe's ``search:`` block names parameters (dotted recipe paths), objectives
(latency on a named backend, the task metric, a formula over measured figures) and
constraints; each trial is the recipe run with the trial's values. The study lives in
a storage given as a URL (a journal file in the run folder by default; PostgreSQL for
workers on many machines).

>>> recipe = search.load_search_recipe("examples/recipes/lenet5-search.yaml")   # doctest: +SKIP
>>> result = search.run_search(recipe, "runs/lenet5-search")                    # doctest: +SKIP
>>> search.write_results(result)                                                # doctest: +SKIP
"""

from trimkit.search._expr import Expression
from trimkit.search._recipe import Parameter, SearchRecipe, group_parameters, load_search_recipe, parse_search_recipe
from trimkit.search._results import RESULTS_FILE, best_trials, finite, results_record, trial_row, write_results
from trimkit.search._spec import SearchSpec
from trimkit.search._storage import is_file_store, open_storage, storage_url
from trimkit.search.study import SearchResult, counted_trials, open_study, run_search, study_exists

__all__ = [
    "RESULTS_FILE",
    "Expression",
    "Parameter",
    "SearchRecipe",
    "SearchResult",
    "SearchSpec",
    "best_trials",
    "counted_trials",
    "finite",
    "group_parameters",
    "is_file_store",
    "load_search_recipe",
    "open_storage",
    "open_study",
    "parse_search_recipe",
    "results_record",
    "run_search",
    "storage_url",
    "study_exists",
    "trial_row",
    "write_results",
]
