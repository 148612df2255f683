"""Syne Tune (0.16) integration: a Benchmark as a Syne Tune blackbox (``Benchmark.to_blackbox``), its simulated
backend (``SimulatedBackend``, from ``Benchmark.simulated_backend``), and export to Syne Tune's blackbox-repository
format.

``BenchmarkBlackbox`` answers from the Benchmark (table, then surrogate for the ``small`` space). The
fidelity is ``epoch``; the extra objective ``elapsed_time`` is the cost Syne Tune's simulator charges:
standalone, the cumulative training and evaluation time up to that epoch (so MO-ASHA can stop early);
weight sharing, the time to evaluate that sub-network on the super-network. The super-network's own
training time (``Benchmark.supernetwork_cost``) is paid once before any evaluation; simulations add it as an offset.
Spaces without a surrogate (layer, medium, large) answer a configuration outside the table with the
table's nearest configuration in ``encode()`` space (``nearest=True``, the default) or raise.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from syne_tune.backend.simulator_backend.events import SimulatorState
from syne_tune.backend.simulator_backend.time_keeper import SimulatedTimeKeeper
from syne_tune.blackbox_repository.blackbox import Blackbox
from syne_tune.blackbox_repository.simulated_tabular_backend import UserBlackboxBackend
from syne_tune.config_space import choice, randint

from ..benchmark import Benchmark, ConfigNotInTableError
from ..objectives import OBJECTIVE_NAMES, objective_names
from ..simulation import check_answered, check_values

ELAPSED_TIME = "elapsed_time"
FIDELITY = "epoch"


class BenchmarkBlackbox(Blackbox):
    """A Syne Tune ``Blackbox`` backed by a :class:`~plm_nasbench.Benchmark`."""

    def __init__(self, bench: Benchmark, objectives: tuple[str, ...] = OBJECTIVE_NAMES, nearest: bool = True) -> None:
        self.bench, self.objectives, self.nearest = bench, objective_names(objectives), nearest
        check_answered(bench, self.objectives)  # before a tuner starts, not at the first configuration without one
        self._fidelities = np.array(bench.fidelities)
        fidelity_space = {FIDELITY: randint(int(self._fidelities.min()), int(self._fidelities.max()))}
        super().__init__(bench.space.syne_tune_space(), fidelity_space, [*self.objectives, ELAPSED_TIME])

    @property
    def fidelity_values(self) -> np.ndarray:
        return self._fidelities

    @property
    def num_seeds(self) -> int:
        return max(1, len(self.bench.seeds))

    def _query(self, asked: dict[str, Any], epoch: int, seed: int | None) -> list[float]:
        if seed is not None and not 0 <= seed < self.num_seeds:
            raise ValueError(f"seed {seed!r}: this blackbox has {self.num_seeds} seed(s), 0 to {self.num_seeds - 1} "
                             "(or None: the mean over the table's seeds)")
        seed = seed if seed is not None and seed in self.bench.seeds else None
        config = asked
        try:
            result = self.bench.query(config, epoch=epoch, seed=seed)
        except ConfigNotInTableError:
            if seed is not None:  # the simulator drew a seed this configuration lacks: the mean over those it has
                return self._query(config, epoch, None)
            if not self.nearest:
                raise
            config = self.bench.nearest_config(config)
            result = self.bench.query(config, epoch=epoch)
        check_values(self.bench, config, result, self.objectives, asked)  # a scheduler must not decide on NaN
        return [float(result[name]) for name in self.objectives] + [float(result["runtime"])]

    def _objective_function(self, configuration: dict[str, Any], fidelity: dict | None = None,
                            seed: int | None = None) -> Any:
        config = {k: configuration[k] for k in self.configuration_space}
        if fidelity is None:
            return np.array([self._query(config, int(e), seed) for e in self._fidelities])
        return dict(zip(self.objectives_names, self._query(config, int(fidelity[FIDELITY]), seed)))


class _NextEventTimeKeeper(SimulatedTimeKeeper):
    """Syne Tune's simulated clock, except that ``advance(math.inf)`` moves it to the next pending event of the
    simulator (a trial's result or end), or leaves it where it is when none is pending."""

    def __init__(self, state: SimulatorState) -> None:
        super().__init__()
        self._state = state

    def advance(self, step: float) -> None:
        if step == math.inf:
            if self._state.event_heap:  # a heap of (time, count, event): its first entry comes next
                self.advance_to(self._state.event_heap[0][0])
            return
        super().advance(step)


class SimulatedBackend(UserBlackboxBackend):
    """Syne Tune's ``UserBlackboxBackend`` with a clock that jumps to the next event while the tuner waits.

    With ``Tuner(..., sleep_time=0, callbacks=[SimulatorCallback()])``, Syne Tune moves the simulated clock by
    ``tuner_sleep_time`` each time the tuner waits for a busy worker. A fixed step is either coarse (the default
    5 s charges a weight-sharing evaluation of a millisecond 5 s) or, at 0, leaves the clock to real time, so a
    simulation takes as long as the runs it simulates. Here ``tuner_sleep_time`` is ``math.inf`` unless given, and
    a wait moves the clock to the next result or trial end, as in a discrete-event simulation. The real time
    the tuner and scheduler spend still counts, as in Syne Tune. Relies on the simulator state of Syne Tune
    0.16's ``SimulatorBackend`` (``_simulator_state``, ``_time_keeper``)."""

    def __init__(self, blackbox: Blackbox, elapsed_time_attr: str, tuner_sleep_time: float = math.inf,
                 **kwargs: Any) -> None:
        super().__init__(blackbox=blackbox, elapsed_time_attr=elapsed_time_attr, tuner_sleep_time=tuner_sleep_time,
                         **kwargs)
        state, keeper = getattr(self, "_simulator_state", None), getattr(self, "_time_keeper", None)
        if not (isinstance(state, SimulatorState) and isinstance(getattr(state, "event_heap", None), list)
                and type(keeper) is SimulatedTimeKeeper):
            raise RuntimeError("this Syne Tune's simulator backend keeps its events or clock differently from Syne "
                               "Tune 0.16's, which SimulatedBackend was written for: pass tuner_sleep_time=<seconds> "
                               "to Syne Tune's own UserBlackboxBackend(blackbox=bench.to_blackbox(), "
                               "elapsed_time_attr='elapsed_time') instead")
        self._time_keeper = _NextEventTimeKeeper(state)


def tabular_blackbox(bench: Benchmark, objectives: tuple[str, ...] | None = None) -> Any:
    """The table's rows as a Syne Tune ``BlackboxTabular`` (configurations x seeds x epochs x objectives).

    Only measured values go in, and no cell is left empty: the seeds are those every configuration of the table
    has (the standalone tables hold three seeds of the unpruned network alone, so they export seed 0), and
    ``objectives=None`` takes every objective the table has a value for in every row (an objective named
    explicitly without one raises a ValueError). Each integer configuration field becomes a ``randint`` over the
    range the table holds (so a sampler can draw a configuration the table lacks); for searching, wrap the
    loaded blackbox with Syne Tune's ``add_surrogate`` (as Syne Tune does with its own tables of sampled
    configurations; the ranges keep its nearest-neighbour surrogate ordinal), or search
    ``Benchmark.to_blackbox()``, which the package's surrogate answers.
    """
    from syne_tune.blackbox_repository.blackbox_tabular import BlackboxTabular

    table = bench.table()
    present = table.groupby("config_id")["seed"].agg(set)
    seeds = sorted(set.intersection(*present))
    if not seeds:
        raise ValueError(f"{bench!r}: no seed is held by every configuration of the table, so no tabular blackbox "
                         "can be exported without empty cells")
    table = table[table["seed"].isin(seeds)]
    if objectives is None:
        objectives = tuple(name for name in OBJECTIVE_NAMES if table[bench.objective(name).column].notna().all())
    else:
        objectives = objective_names(objectives)
    empty = {name: int(table[bench.objective(name).column].isna().sum()) for name in objectives}
    lacking = ", ".join(f"{name} in {count} rows" for name, count in empty.items() if count)
    if lacking:
        raise ValueError(f"{bench!r}: the table has no value for {lacking} of {len(table)}; export the objectives "
                         "it has (objectives=None), which the package's surrogate can complete only in "
                         "Benchmark.to_blackbox()")
    fields = list(json.loads(table["config"].iat[0]))
    configs = table.drop_duplicates("config_id")
    hyperparameters = pd.DataFrame([json.loads(c) for c in configs["config"]])[fields]
    position = {cid: i for i, cid in enumerate(configs["config_id"])}
    epochs = bench.fidelities
    columns = [bench.objective(name).column for name in objectives] + ["cumulative_time"]
    values = np.full((len(configs), len(seeds), len(epochs), len(columns)), np.nan, dtype=np.float32)
    rows = table[["config_id", "seed", "epoch", *columns]].to_numpy()
    for cid, seed, epoch, *objective_values in rows:
        values[position[cid], seeds.index(int(seed)), epochs.index(int(epoch))] = objective_values
    if np.isnan(values).any():
        empty = np.isnan(values).any(axis=-1)
        names = [n for n, column in zip([*objectives, f"{ELAPSED_TIME} (cumulative_time)"], np.moveaxis(values, -1, 0))
                 if np.isnan(column).any()]
        raise ValueError(f"{bench!r}: {int(empty.sum())} (configuration, seed, epoch) cells of the table lack "
                         f"{', '.join(names)} (configurations with other epochs, or missing values), so it cannot be "
                         "exported as a tabular blackbox")
    # integer fields stay ordinal (a range): Syne Tune's add_surrogate then encodes them as numbers, where a choice
    # would be one-hot encoded and its nearest neighbours would ignore the order of the values
    space = {f: randint(int(values.min()), int(values.max())) if pd.api.types.is_integer_dtype(values)
             else choice(sorted(values.unique().tolist())) for f, values in hyperparameters.items()}
    return BlackboxTabular(hyperparameters, space, {FIDELITY: randint(min(epochs), max(epochs))}, values,
                           np.array(epochs), [*objectives, ELAPSED_TIME])


def serialize_blackbox(bench: Benchmark, path: str | Path, objectives: tuple[str, ...] | None = None) -> Path:
    """Write the table in Syne Tune's blackbox-repository format (one task) to folder ``path``; what goes in is
    :func:`tabular_blackbox`'s. ``syne_tune.blackbox_repository.blackbox_tabular.deserialize(path)`` reads it."""
    from syne_tune.blackbox_repository.blackbox_tabular import serialize

    path = Path(path)
    metadata = {"plm_nasbench": {"task": bench.task, "model": bench.model, "space": bench.space.name,
                                 "scheme": bench.scheme, "strategy": bench.strategy,
                                 "supernetwork_cost": bench.supernetwork_cost}}
    serialize({bench.task: tabular_blackbox(bench, objectives)}, str(path), metadata=metadata)
    return path
