"""Simulated optimizer runs on a Benchmark and their comparison by the paper's protocol.

A run drives one method's Syne Tune scheduler in an ask/tell loop with one worker: every evaluation is
answered by the benchmark and advances the simulated clock by its cost (the ``runtime`` objective; for
weight sharing the clock starts at the super-network's training time). Multi-fidelity methods (MO-ASHA)
see one result per epoch and may stop a trial early, paying only the epochs it ran. Where the benchmark
has no surrogate, a proposed configuration is answered by the table's nearest one (recorded in ``config``).
"""

from __future__ import annotations

import datetime
import json
import os
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .benchmark import Benchmark
from .objectives import OBJECTIVES, objective_names
from .protocol import BEST_HYPERVOLUME, QuantileNormaliser, hypervolume_trajectory

METHODS = ("rs", "ls", "morea", "nsga2", "ehvi", "moasha")
MULTI_FIDELITY = ("moasha",)
MOREA_POPULATION, MOREA_SAMPLE = 20, 5
FIDELITY = "epoch"


def _scheduler(method: str, bench: Benchmark, metrics: list[str], seed: int) -> Any:
    from syne_tune.optimizer.schedulers.single_fidelity_scheduler import SingleFidelityScheduler

    from .integrations.searchers import NSGA2, LocalSearch

    space = bench.space.syne_tune_space()
    _check_fidelities(method, bench)
    if method == "moasha":
        from syne_tune.optimizer.schedulers.multiobjective.moasha import MOASHA

        return MOASHA(space, metrics, do_minimize=True, time_attr=FIDELITY, max_t=max(bench.fidelities),
                      grace_period=min(bench.fidelities), reduction_factor=3, random_seed=seed)
    kwargs: dict[str, Any] = {}
    if method == "ehvi":
        from .integrations.ehvi import EHVI

        searcher = EHVI(space, bench.space.encode, random_seed=seed)
    elif method == "morea":  # Syne Tune's default population of 100 would make a 100-evaluation run random search
        searcher, kwargs = "regularized_evolution", {"population_size": MOREA_POPULATION, "sample_size": MOREA_SAMPLE}
    else:
        searcher = {"rs": "random_search", "ls": LocalSearch(space, random_seed=seed),
                    "nsga2": NSGA2(space, random_seed=seed)}[method]
    return SingleFidelityScheduler(space, metrics=metrics, do_minimize=True, searcher=searcher, random_seed=seed,
                                   searcher_kwargs=kwargs or None)


def run_method(bench: Benchmark, method: str, seed: int, max_evaluations: int = 100,
               objectives: Sequence[str] = ("valid_error", "params_fraction"),
               max_time: float | None = None) -> pd.DataFrame:
    """One simulated run: one row per result (``trial``, ``epoch``, simulated ``time`` in seconds, objectives).
    It ends after ``max_evaluations`` trials or, with ``max_time`` (simulated seconds from the start, a weight-sharing
    super-network's training included), when the clock reaches ``max_time``: a result that would arrive later is
    not seen (Syne Tune's ``max_wallclock_time``, on the simulated clock)."""
    from syne_tune.backend.trial_status import Trial
    from syne_tune.optimizer.scheduler import SchedulerDecision

    _check_methods([method])
    check_answered(bench, objectives)
    metrics = list(objectives)
    clock = bench.supernetwork_cost
    if max_time is not None and not max_time > clock:
        raise ValueError(f"max_time {max_time!r} s leaves nothing to search: {bench!r}'s simulated clock starts at "
                         f"{clock:.0f} s (its super-network's training time)")
    np.random.seed(seed)  # MO-ASHA samples from numpy's global generator
    scheduler = _scheduler(method, bench, metrics, seed)
    fields = list(bench.space.syne_tune_space())
    rows = []
    epochs = bench.fidelities if method in MULTI_FIDELITY else [None]
    for trial_id in range(max_evaluations):
        if max_time is not None and clock >= max_time:
            break
        suggestion = scheduler.suggest()
        if suggestion is None:
            break
        trial = Trial(trial_id=trial_id, config=suggestion.config, creation_time=datetime.datetime.now())
        if hasattr(scheduler, "on_trial_add"):
            scheduler.on_trial_add(trial)
        asked = {k: suggestion.config[k] for k in fields}
        # table only: answer with the table's nearest configuration
        config = asked if bench.covers_space else bench.nearest_config(asked)
        spent = 0.0
        for epoch in epochs:
            result = bench.query(config, epoch=epoch)
            check_values(bench, config, result, metrics, asked)
            clock += result["runtime"] - spent  # runtime is cumulative over epochs
            spent = result["runtime"]
            if max_time is not None and clock > max_time:  # the budget ends before this result arrives
                break
            record = {m: result[m] for m in metrics}
            record[FIDELITY] = result["epoch"]
            rows.append({"method": method, "scheme": bench.scheme, "seed": seed, "trial": trial_id, "time": clock, **record,
                         "config": config})
            if epoch is None:
                scheduler.on_trial_complete(trial, record)
            elif scheduler.on_trial_result(trial, record) == SchedulerDecision.STOP or epoch == epochs[-1]:
                scheduler.on_trial_complete(trial, record)
                break
    return pd.DataFrame(rows)


def check_answered(bench: Benchmark, objectives: Sequence[str]) -> None:
    """ValueError, before a run starts, when ``bench`` lacks a value for one of ``objectives`` (or for ``runtime``,
    the simulated clock) somewhere it answers (e.g. a table without a surrogate, some of whose rows have no latency
    measured): a run would otherwise stop at the first such configuration it draws."""
    answered = bench.answered_objectives
    lacking = [name for name in (*objective_names(objectives), "runtime") if name not in answered]
    if lacking:
        raise ValueError(f"{bench!r} has no value for {', '.join(lacking)} in every configuration it answers; "
                         f"objectives it always answers: {', '.join(answered)}"
                         + ("; backend 'auto' fills a table's gaps where a surrogate exists (small space)"
                            if bench.backend == "table" else ""))


def check_values(bench: Benchmark, config: Mapping[str, Any], result: Mapping[str, Any], metrics: Sequence[str],
                 asked: Mapping[str, Any] | None = None) -> None:
    """ValueError naming the objective when ``result`` (the answer for ``config``) has no value for one of
    ``metrics`` (or for ``runtime``, the simulated clock), and listing the objectives it has values for. ``asked``:
    the configuration a search proposed, where ``config`` is the table's nearest one to it."""
    missing = [m for m in (*metrics, "runtime") if not np.isfinite(result[m])]
    if missing:
        present = [name for name in OBJECTIVES if np.isfinite(result.get(name, np.nan))]
        where = (f"the table's nearest configuration {dict(config)} to {dict(asked)}"
                 if asked is not None and dict(asked) != dict(config) else f"{dict(config)}")
        raise ValueError(f"objective {missing[0]!r} has no value for {where} in {bench!r} (answered by the "
                         f"{result['source']}); objectives with values there: {', '.join(present)}")



def check_objectives(objectives: Sequence[str]) -> None:
    """An error unless ``objectives`` are two different known objectives (the protocol's hypervolume is 2-D):
    :func:`~plm_nasbench.objectives.objective_names`'s, or a ValueError for another number of them."""
    if len(objective_names(objectives)) != 2:
        raise ValueError(f"objectives must be two different objectives (the protocol's hypervolume is 2-D), got "
                         f"{tuple(objectives)!r}")


def _check_methods(methods: Sequence[str]) -> None:
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; known: {', '.join(METHODS)}")


def _check_fidelities(method: str, bench: Benchmark) -> None:
    if method in MULTI_FIDELITY and len(bench.fidelities) < 2:
        raise ValueError(f"{method} needs several fidelities (epochs); {bench!r} has {bench.fidelities}: "
                         "use the standalone scheme")


def natural_scheme(method: str) -> str:
    """The scheme a method runs on unless told otherwise: standalone for multi-fidelity methods (they need
    epochs), weight sharing for the others (the paper's setting for RS, LS, MO-REA, NSGA-II and EHVI)."""
    _check_methods([method])
    return "standalone" if method in MULTI_FIDELITY else "weight_sharing"


#: The Benchmark arguments that name a weight-sharing super-network.
SUPER_NETWORK_ARGS = ("strategy", "supernetwork_space")


def benchmarks_for(task: str, methods: Sequence[str], scheme: str = "auto", **kwargs: Any) -> dict[str, Benchmark]:
    """method -> the Benchmark it runs on (one per scheme; ``scheme="auto"``: each method's
    :func:`natural_scheme`; ``kwargs`` go to each, ``strategy`` and ``supernetwork_space`` to the weight-sharing
    one only), checked before anything runs: a benchmark must offer something to search
    (a surrogate or several table configurations) and multi-fidelity methods need several epochs."""
    _check_methods(methods)
    built: dict[str, Benchmark] = {}
    chosen = {}
    for method in methods:
        name = natural_scheme(method) if scheme == "auto" else scheme
        if name not in built:  # a standalone benchmark has no super-network to name
            options = {k: v for k, v in kwargs.items() if name == "weight_sharing" or k not in SUPER_NETWORK_ARGS}
            built[name] = Benchmark(task, scheme=name, **options)
        bench = chosen[method] = built[name]
        held = len(bench.configs()) if not bench.covers_space else None
        if held is not None and held < 2:
            raise ValueError(f"{method} on {bench!r}: the tables hold {held} configuration and there "
                             "is no surrogate, so there is nothing to search; generate the study that fills this "
                             "scheme (e.g. standalone-small) and rebuild the surrogates")
        _check_fidelities(method, bench)
    return chosen


_WORKER_BENCHES: dict[str, Benchmark] = {}


def _init_worker() -> None:
    """Each worker process computes on one thread, so that the workers share the cores without oversubscribing
    them: torch, which EHVI imports, reads these variables when it loads (importing it here would cost every
    worker seconds), and is told directly where the caller's main module, which spawn imports first, loaded it."""
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def _run_in_worker(args: tuple) -> pd.DataFrame:
    init_args, *job = args
    key = json.dumps(init_args, sort_keys=True, default=str)
    if key not in _WORKER_BENCHES:
        _WORKER_BENCHES[key] = Benchmark(**init_args)
    return run_method(_WORKER_BENCHES[key], *job)


def simulate(benchmarks: Mapping[str, Benchmark], seeds: Sequence[int], max_evaluations: int = 100,
             objectives: Sequence[str] = ("valid_error", "params_fraction"), workers: int = 1,
             max_time: float | None = None) -> pd.DataFrame:
    """Every (method, seed) run of ``benchmarks`` (method -> the Benchmark it runs on), concatenated in
    (method, seed) order; each run ends after ``max_evaluations`` trials or at ``max_time`` simulated seconds
    (see :func:`run_method`). ``workers > 1`` runs them in that many processes, each rebuilding the benchmarks
    from their ``init_args``. Runs on different schemes of one task share the hypervolume normalisation
    in :func:`add_regret` and one time axis. Final regrets compare methods at equal cost only under a
    ``max_time`` that every run reaches: after equal numbers of evaluations, a method of cheaper evaluations
    (weight sharing, or MO-ASHA stopping trials early) has spent less simulated time."""
    _check_methods(list(benchmarks))
    check_objectives(objectives)
    for bench in benchmarks.values():
        check_answered(bench, objectives)
    if not benchmarks or not len(seeds) or len(set(seeds)) != len(seeds):
        raise ValueError(f"simulate needs at least one method and one seed, and distinct seeds; got methods "
                         f"{list(benchmarks)} and seeds {list(seeds)}")
    if isinstance(max_evaluations, bool) or not isinstance(max_evaluations, (int, np.integer)) or max_evaluations < 1:
        raise ValueError(f"max_evaluations must be a positive integer, got {max_evaluations!r}")
    if max_time is not None and (isinstance(max_time, (bool, np.bool_))
                                 or not isinstance(max_time, (int, float, np.integer, np.floating)) or not max_time > 0):
        raise ValueError(f"max_time must be a positive number of simulated seconds (or None), got {max_time!r}")
    jobs = [(bench, m, s, max_evaluations, tuple(objectives), max_time) for m, bench in benchmarks.items()
            for s in seeds]
    if workers <= 1 or len(jobs) == 1:
        frames = [run_method(*job) for job in jobs]
    else:
        import multiprocessing
        import pickle
        from concurrent.futures import ProcessPoolExecutor

        for method, bench in benchmarks.items():  # each worker rebuilds the benchmarks from their arguments
            try:
                pickle.dumps(bench.init_args)
            except (pickle.PicklingError, AttributeError, TypeError) as err:
                raise ValueError(f"method {method!r}: its benchmark cannot be sent to worker processes ({err}); a "
                                 "surrogate passed as surrogates= must pickle (fit it with a module-level "
                                 "member_factory, not a lambda), or run with workers=1") from err
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker) as pool:
            frames = list(pool.map(_run_in_worker, [(b.init_args, *job) for b, *job in jobs]))
    empty = [f"{method} seed {seed}" for (_, method, seed, *_), frame in zip(jobs, frames) if frame.empty]
    if empty:  # a run without results would drop out of every score unseen
        raise ValueError(f"max_time {max_time!r} s ends before the first result of {len(empty)} run(s) "
                         f"({', '.join(empty[:5])}{', ...' if len(empty) > 5 else ''}): give a longer budget")
    return pd.concat(frames, ignore_index=True)


def capped_runs(results: pd.DataFrame, max_evaluations: int, max_time: float) -> list[str]:
    """The (method, seed) runs of :func:`simulate`'s ``results`` that made all ``max_evaluations`` trials and
    ended well before ``max_time`` (its last result more than 10% of the budget short of it): a time budget does
    not bind them, so they spent less simulated time than the others may have."""
    last = results.groupby(["method", "seed"]).agg(trials=("trial", "nunique"), time=("time", "max"))
    capped = last[(last["trials"] >= max_evaluations) & (last["time"] < 0.9 * max_time)]
    return [f"{method} seed {seed}" for method, seed in capped.index]


def add_regret(results: pd.DataFrame, objectives: Sequence[str] = ("valid_error", "params_fraction")) -> pd.DataFrame:
    """``results`` with ``hypervolume`` and ``regret`` (4 - hypervolume) after each result of each run, the
    objectives quantile-normalised over every value observed by every method and seed. ``results`` needs the
    columns ``method``, ``seed``, ``trial``, ``time`` and ``objectives`` (one row per result, as
    :func:`simulate` returns; rows of an optimizer of your own can join them)."""
    normaliser = QuantileNormaliser().fit(results[list(objectives)].to_numpy())
    out = results.copy()
    out["hypervolume"] = np.nan
    for _, index in results.groupby(["method", "seed"]).groups.items():
        ordered = results.loc[index].sort_values(["time", "trial"]).index
        normalised = normaliser.transform(results.loc[ordered, list(objectives)].to_numpy())
        out.loc[ordered, "hypervolume"] = hypervolume_trajectory(normalised)
    out["regret"] = BEST_HYPERVOLUME - out["hypervolume"]
    return out


def final_results(scored: pd.DataFrame) -> pd.DataFrame:
    """The last result of each (method, seed) run of :func:`add_regret`'s output, in (method, seed) order."""
    return scored.sort_values(["time", "trial"]).groupby(["method", "seed"]).last().reset_index()


def final_regret(scored: pd.DataFrame) -> dict[str, list[float]]:
    """method -> the final regret of each of its runs (seed order), from :func:`add_regret`'s output."""
    return {m: g["regret"].tolist() for m, g in final_results(scored).groupby("method")}
