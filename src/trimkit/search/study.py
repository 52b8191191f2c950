"""Recipe parameters -> an Optuna study; one worker's loop over trials.

Any number of workers (processes, machines) run :func:`run_search` on one storage: the
first creates the study, the rest load it. ``n_trials`` counts the study's ended trials,
whoever ran them: a worker starts a trial only while ended + running trials leave room,
and a trial two workers started in the same instant for the last slot is given up by
the one that asked later (it ends as a failed trial marked ``surplus``, which nothing
counts). A worker whose trial died is noticed (see :mod:`trimkit.search._storage`), the
trial is failed and queued again with the same values, and its run folder is continued
where the dead worker left it when it is on this machine.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import optuna
import yaml
from optuna.trial import FrozenTrial, TrialState

from trimkit._atomic import write_text_atomic
from trimkit._urls import hide_password
from trimkit.errors import TrimkitError
from trimkit.search._recipe import SearchRecipe
from trimkit.search._spec import FIGURES, SearchSpec
from trimkit.search._storage import (WORKER_ATTR, fail_dead_trials, is_file_store, open_storage, retried_from,
                                     retry_callback, storage_url, worker_identity)
from trimkit.search._latency import Latencies, measure_reported
from trimkit.search._results import best_trials
from trimkit.search._trial import (Figures, baseline_of_run, constraint_values, figures_of, objective_values,
                                   run_base, run_trial)

SEARCH_FILE = "search.yaml"
_POLL_S = 1.0


class _Surplus(Exception):
    """A trial started for a slot another worker took first."""


@dataclass
class SearchResult:
    """The study after this worker stopped, and where its files are."""

    study: optuna.Study
    run_dir: Path
    storage: str
    ran: list[int] = field(default_factory=list)

    @property
    def trials(self) -> list[FrozenTrial]:
        return counted_trials(self.study)


def create_sampler(spec: SearchSpec, seed: int | None, parameters: dict[str, Any]) -> optuna.samplers.BaseSampler:
    """The sampler named by ``spec.method`` (constraints reach every one through
    ``trial.set_constraint``, which Optuna 5's samplers read)."""
    if spec.method == "tpe":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True,
                                          n_startup_trials=min(10, spec.n_trials // 2 or 1))
    if spec.method == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if spec.method == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=max(4, min(50, spec.n_trials // 4 or 4)))
    if spec.method == "gp":
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=min(10, spec.n_trials // 2 or 1))
    return optuna.samplers.GridSampler({name: grid_values(p.spec) for name, p in parameters.items()}, seed=seed)


def grid_values(spec) -> list[Any]:
    if spec.values is not None:
        return list(spec.values)
    count = int(round((spec.max - spec.min) / spec.step)) + 1
    values = [spec.min + i * spec.step for i in range(count) if spec.min + i * spec.step <= spec.max + 1e-12]
    return [int(v) for v in values] if spec.is_int else [round(v, 12) for v in values]


def suggest(trial: optuna.Trial, name: str, spec) -> Any:
    if spec.values is not None:
        return trial.suggest_categorical(name, spec.values)
    if spec.is_int:
        return trial.suggest_int(name, int(spec.min), int(spec.max), step=int(spec.step or 1), log=spec.log)
    return trial.suggest_float(name, float(spec.min), float(spec.max), step=spec.step, log=spec.log)


def recipe_digest(recipe: SearchRecipe) -> str:
    """What a study was started with; a worker with another recipe is refused."""
    text = repr((recipe.data, recipe.spec.model_dump(mode="json", exclude={"n_trials", "timeout"}),
                 sorted(recipe.parameters)))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def open_study(recipe: SearchRecipe, url: str, name: str) -> tuple[optuna.Study, bool]:
    """Load the study ``name`` or create it; ``True`` when this call created it."""
    spec = recipe.spec
    storage = open_storage(url, heartbeat_interval=spec.heartbeat_interval, grace_period=spec.grace_period,
                           max_retry=spec.max_retry)
    directions = spec.directions()
    digest = recipe_digest(recipe)
    try:
        existing = [s for s in optuna.get_all_study_summaries(storage, include_best_trial=False)
                    if s.study_name == name]
        if existing:
            study = optuna.load_study(study_name=name, storage=storage)
            created = False
        else:
            study = optuna.create_study(study_name=name, storage=storage, directions=directions, load_if_exists=True)
            created = not study.user_attrs
            if created:
                study.set_user_attr("trimkit_recipe", digest)
                study.set_user_attr("objectives", spec.objective_names())
                study.set_user_attr("metric", spec.metric)
    except TrimkitError:
        raise
    except Exception as error:
        raise _storage_error(url, error) from None
    have = [d.name.lower() for d in study.directions]
    if have != directions:
        raise TrimkitError(f"study {name!r} in {url} optimises {', '.join(have)}, but the recipe asks for "
                           f"{', '.join(directions)}; choose another --study-name")
    started_with = study.user_attrs.get("trimkit_recipe")
    if started_with is not None and started_with != digest:
        raise TrimkitError(f"study {name!r} in {url} was started with another recipe or search block; use the "
                           "same recipe to join it, or another --study-name")
    return study, created


def study_exists(url: str, name: str) -> bool:
    """Whether the storage at ``url`` holds a study called ``name`` (a missing journal file holds none)."""
    if is_file_store(url) and not Path(url.removeprefix("journal:")).exists():
        return False
    try:
        storage = open_storage(url)
        return any(s.study_name == name for s in optuna.get_all_study_summaries(storage, include_best_trial=False))
    except TrimkitError:
        raise
    except Exception as error:
        raise _storage_error(url, error) from None


def _storage_error(url: str, error: BaseException) -> TrimkitError:
    text = str(error).strip().splitlines()
    reason = text[0][:200] if text else type(error).__name__
    return TrimkitError(f"storage {hide_password(url)} failed ({reason}); the trials it recorded are kept: rerun the "
                        "same command (or --resume) when it is back")


def counted_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The trials that count toward ``n_trials``: ended, and neither given up as surplus
    nor failed with their worker and queued again."""
    trials = study.get_trials(deepcopy=False)
    retried = {number for t in trials for number in t.system_attrs.get("retry_history", [])}
    counted = []
    for trial in trials:
        if trial.state in (TrialState.COMPLETE, TrialState.PRUNED) or (trial.state == TrialState.FAIL
                                                                       and not trial.user_attrs.get("surplus")
                                                                       and trial.number not in retried):
            counted.append(trial)
    return counted


def _running(study: optuna.Study) -> list[FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))


class Worker:
    """One process's part of a search: the baseline, then trials while the study has room."""

    def __init__(self, recipe: SearchRecipe, run_dir: Path, study: optuna.Study, url: str, *, n_trials: int,
                 say: Callable[[str], None]) -> None:
        self.recipe = recipe
        self.run_dir = run_dir
        self.study = study
        self.url = url
        self.n_trials = n_trials
        self.say = say
        self.base_model: Path | None = None
        self.baseline: Figures | None = None
        self.latencies = Latencies(recipe.spec.latency, run_dir, say)
        self.ran: list[int] = []
        self.interrupted: int | None = None

    def prepare(self) -> None:
        """Run the shared stages (once for all workers here) and measure the baseline."""
        self.base_model = run_base(self.recipe, self.run_dir, self.say)
        if self.base_model is not None:
            self._measure_baseline(self.base_model.parent)

    def _measure_baseline(self, folder: Path) -> None:
        """The baseline's figures (:func:`trimkit.runs.baseline` of the run in ``folder``),
        with its latency where the search times trials (and, to estimate theirs, the
        latency table of its model)."""
        measurement, model_file = baseline_of_run(folder)
        figures = figures_of(measurement, self.recipe.spec)
        self.baseline = self.latencies.of_baseline(figures, model_file, self.study.user_attrs.get("baseline"))
        self.study.set_user_attr("baseline", self.baseline.to_dict())
        if self.latencies.estimate is not None:
            self.study.set_user_attr("latency_table", self.latencies.estimate.describe())

    def objective(self, trial: optuna.Trial) -> list[float]:
        trial.set_user_attr(WORKER_ATTR, worker_identity(trial.number))
        self._give_up_if_surplus(trial)
        self.ran.append(trial.number)
        values = {name: suggest(trial, name, parameter.spec) for name, parameter in self.recipe.parameters.items()}
        frozen = self.study._storage.get_trial(trial._trial_id)
        origin = retried_from(frozen)
        folder = self.run_dir / "trials" / f"{origin if origin is not None else trial.number:04d}"
        trial.set_user_attr("overrides", self.recipe.overrides(values))
        trial.set_user_attr("run_dir", str(folder))
        started = time.perf_counter()
        try:
            run = run_trial(self.recipe, values, folder, self.base_model)
            if self.baseline is None:
                self._measure_baseline(folder)
            figures = self.latencies.of_trial(run.figures, run.onnx, run.model_file)
        except TrimkitError as error:
            trial.set_user_attr("error", str(error))
            raise
        except KeyboardInterrupt:
            self.interrupted = trial.number
            raise
        objectives = objective_values(self.recipe, figures, self.baseline)
        constraints = constraint_values(self.recipe, figures, self.baseline)
        for key, value in constraints.items():
            trial.set_constraint(key, value)
        named = figures.values(self.recipe.spec, self.baseline)
        for key in FIGURES:  # one attribute each, so the dashboard shows them as columns
            trial.set_user_attr(key, named[key])
        trial.set_user_attr("metrics", figures.metrics)
        trial.set_user_attr("latency", figures.latency)
        if figures.latency_source is not None:
            trial.set_user_attr("onnx", str(run.onnx))
            for key in ("latency_source", "latency_estimate_ms", "latency_measured_ms", "latency_note"):
                trial.set_user_attr(key, getattr(figures, key))
        trial.set_user_attr("feasible", all(value <= 0 for value in constraints.values()))
        trial.set_user_attr("seconds", time.perf_counter() - started)
        return objectives

    def _give_up_if_surplus(self, trial: optuna.Trial) -> None:
        """Keep the trial only if it holds one of the slots ``n_trials`` leaves: running
        trials take the free slots in the order of their numbers."""
        free = self.n_trials - len(counted_trials(self.study))
        running = sorted(t.number for t in _running(self.study))
        if trial.number in running and running.index(trial.number) >= free:
            trial.set_user_attr("surplus", True)
            raise _Surplus(trial.number)

    def run(self, *, timeout: float | None, on_change: Callable[[], None] = lambda: None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        catch = (TrimkitError, _Surplus)
        while deadline is None or time.monotonic() < deadline:
            fail_dead_trials(self.study, self.url, max_retry=self.recipe.spec.max_retry)
            ended = len(counted_trials(self.study))
            if ended >= self.n_trials:
                break
            if ended + len(_running(self.study)) >= self.n_trials:
                on_change()
                time.sleep(_POLL_S)  # the last trials run elsewhere: wait for them to end or die
                continue
            try:
                self.study.optimize(self.objective, n_trials=1, catch=catch, gc_after_trial=False)
            except KeyboardInterrupt:
                self._queue_again(self.interrupted)
                raise
            on_change()

    def _queue_again(self, number: int | None) -> None:
        """An interrupted trial (Optuna failed it) is queued again with its values, so
        ``--resume`` continues it, in its run folder, instead of counting it as failed."""
        if number is None:
            return
        trial = next((t for t in self.study.get_trials(deepcopy=False) if t.number == number), None)
        if trial is not None and trial.state == TrialState.FAIL:
            retry_callback(None)(self.study, trial)


def run_search(recipe: SearchRecipe, run_dir: str | Path, *, storage: str | None = None,
               study_name: str | None = None, n_trials: int | None = None, timeout: float | None = None,
               say: Callable[[str], None] = lambda text: None,
               on_change: Callable[[optuna.Study], None] = lambda study: None) -> SearchResult:
    """Run (or join) the search of ``recipe``: trials until the study holds ``n_trials``
    ended trials (the recipe's unless given) or ``timeout`` seconds have passed."""
    folder = Path(run_dir)
    url = storage_url(storage, folder)
    name = study_name or recipe_name(recipe)
    spec = recipe.spec
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    logging.getLogger("optuna").setLevel(logging.ERROR)
    study, created = open_study(recipe, url, name)
    if not (folder / SEARCH_FILE).exists():
        write_text_atomic(folder / SEARCH_FILE, yaml.safe_dump({**recipe.data, "search": recipe.spec.model_dump(
            mode="json", by_alias=True)}, sort_keys=False))
    seed = spec.seed if created or spec.seed is None else (spec.seed * 1_000_003 + os.getpid()) % 2**31
    study.sampler = create_sampler(spec, seed, recipe.parameters)
    worker = Worker(recipe, folder, study, url, n_trials=n_trials or spec.n_trials, say=say)
    try:
        with warnings.catch_warnings():
            # heartbeats and stale-trial retries are "experimental" in Optuna's words, since 2.9
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            worker.prepare()
            worker.run(timeout=timeout if timeout is not None else spec.timeout, on_change=lambda: on_change(study))
            if worker.latencies.from_table and spec.latency is not None:
                measure_reported(study, best_trials(study), spec.latency, folder, say)
    except TrimkitError:
        raise
    except Exception as error:
        if _is_storage_failure(error) or not _answers(url):
            raise _storage_error(url, error) from None
        raise
    return SearchResult(study, folder, url, worker.ran)


def recipe_name(recipe: SearchRecipe) -> str:
    return recipe.data.get("name") or Path(recipe.source).stem


def _answers(url: str) -> bool:
    """Whether the storage at ``url`` still answers (asked afresh, after an error that
    Optuna may have wrapped in one of its own)."""
    try:
        optuna.get_all_study_summaries(open_storage(url), include_best_trial=False)
        return True
    except Exception:
        return False


def _is_storage_failure(error: BaseException) -> bool:
    """A database error (the server went away, the connection broke); a file error is
    not one: the command's own handler names the file."""
    module = type(error).__module__
    return module.startswith(("sqlalchemy", "psycopg")) or isinstance(error, optuna.exceptions.StorageInternalError)


__all__ = ["SearchResult", "Worker", "counted_trials", "create_sampler", "open_study", "run_search", "study_exists"]
