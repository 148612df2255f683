"""Multi-objective searchers Syne Tune 0.16 lacks, as Syne Tune searchers (all objectives minimised).

* ``LocalSearch`` (paper Appendix D): after ``num_initial`` random configurations, mutate one randomly
  chosen hyperparameter of a randomly chosen member of the current Pareto front of observed results.
* ``NSGA2``: non-dominated sorting genetic algorithm II, asynchronous: parents by binary tournament on
  (front rank, crowding distance), uniform crossover, per-field mutation with probability 1 / fields;
  every ``population_size`` completed offspring, the population is cut back to the best
  ``population_size`` of parents and offspring.

Both use them with ``SingleFidelityScheduler(config_space, metrics, do_minimize=True, searcher=...)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from syne_tune.optimizer.schedulers.searchers.searcher import BaseSearcher

from ..protocol import front_ranks


def crowding_distance(values: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance of points of one front (boundary points get infinity)."""
    values = np.asarray(values, dtype=np.float64)
    n, m = values.shape
    distance = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for j in range(m):
        order = np.argsort(values[:, j])
        span = values[order[-1], j] - values[order[0], j]
        distance[order[0]] = distance[order[-1]] = np.inf
        if span > 0:
            distance[order[1:-1]] += (values[order[2:], j] - values[order[:-2], j]) / span
    return distance


class _MultiObjectiveSearcher(BaseSearcher):
    """Shared parts: the given initial points, then ``num_initial`` random configurations, then ``_propose()``."""

    def __init__(self, config_space: dict[str, Any], points_to_evaluate: list[dict] | None = None,
                 random_seed: int | None = None, num_initial: int = 10) -> None:
        super().__init__(config_space, points_to_evaluate, random_seed)
        self.rng = np.random.RandomState(self.random_seed)
        self.fields = [k for k, v in config_space.items() if hasattr(v, "sample")]
        self.observed: list[tuple[dict[str, Any], np.ndarray]] = []
        self.num_initial = num_initial

    def suggest(self, **kwargs: Any) -> dict[str, Any] | None:
        initial = self._next_points_to_evaluate()
        if initial is not None:
            return initial
        if len(self.observed) < self.num_initial:
            return self._random()
        return self._propose()

    def _propose(self) -> dict[str, Any]:
        raise NotImplementedError

    def _random(self) -> dict[str, Any]:
        return {k: (v.sample(random_state=self.rng) if k in self.fields else v) for k, v in self.config_space.items()}

    def _random_many(self, n: int) -> list[dict[str, Any]]:
        """``n`` random configurations, each field drawn for all of them at once (Python scalars, as ``_random``)."""
        if n == 1:  # a domain's sample(size=1) returns the value itself, not a list
            return [self._random()]
        columns = {k: ([x.item() if isinstance(x, np.generic) else x for x in v.sample(random_state=self.rng, size=n)]
                       if k in self.fields else [v] * n) for k, v in self.config_space.items()}
        return [dict(zip(columns, values)) for values in zip(*columns.values())]

    def _mutate(self, config: dict[str, Any], probability: float | None = None) -> dict[str, Any]:
        child = dict(config)
        if probability is None:
            chosen = [self.fields[self.rng.randint(len(self.fields))]]
        else:
            chosen = [f for f in self.fields if self.rng.rand() < probability] or [self.fields[self.rng.randint(len(self.fields))]]
        for name in chosen:
            domain = self.config_space[name]
            for _ in range(10):  # draw a value different from the current one where the domain allows
                value = domain.sample(random_state=self.rng)
                if value != config[name]:
                    break
            child[name] = value
        return child

    def on_trial_complete(self, trial_id: int, config: dict[str, Any], metrics: list[float]) -> None:
        self.observed.append(({k: config[k] for k in self.config_space}, np.asarray(metrics, dtype=np.float64)))


class LocalSearch(_MultiObjectiveSearcher):
    """Multi-objective local search around the observed Pareto front (see the module docstring)."""

    def _propose(self) -> dict[str, Any]:
        values = np.stack([m for _, m in self.observed])
        front = np.flatnonzero(front_ranks(values) == 0)
        parent = self.observed[front[self.rng.randint(len(front))]][0]
        return self._mutate(parent)


class NSGA2(_MultiObjectiveSearcher):
    """NSGA-II, asynchronous (see the module docstring)."""

    def __init__(self, config_space: dict[str, Any], points_to_evaluate: list[dict] | None = None,
                 random_seed: int | None = None, population_size: int = 20) -> None:
        super().__init__(config_space, points_to_evaluate, random_seed, num_initial=population_size)
        self.population_size = population_size
        self.population: list[tuple[dict[str, Any], np.ndarray]] = []
        self.offspring: list[tuple[dict[str, Any], np.ndarray]] = []

    @staticmethod
    def _fronts_and_crowding(members: list[tuple[dict, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        """Each member's front (0 = non-dominated) and its crowding distance within that front."""
        values = np.stack([m for _, m in members])
        ranks = front_ranks(values)
        crowd = np.zeros(len(members))
        for r in np.unique(ranks):
            index = np.flatnonzero(ranks == r)
            crowd[index] = crowding_distance(values[index])
        return ranks, crowd

    def _select(self, members: list[tuple[dict, np.ndarray]], k: int) -> list[tuple[dict, np.ndarray]]:
        ranks, crowd = self._fronts_and_crowding(members)
        order = np.lexsort((-crowd, ranks))
        return [members[i] for i in order[:k]]

    def _tournament(self) -> dict[str, Any]:
        ranks, crowd = self._fronts_and_crowding(self.population)
        a, b = self.rng.randint(len(self.population), size=2)
        better = a if (ranks[a], -crowd[a]) <= (ranks[b], -crowd[b]) else b
        return self.population[better][0]

    def _propose(self) -> dict[str, Any]:
        first, second = self._tournament(), self._tournament()
        child = {k: (first[k] if self.rng.rand() < 0.5 else second[k]) for k in self.config_space}
        return self._mutate(child, probability=1.0 / len(self.fields))

    def on_trial_complete(self, trial_id: int, config: dict[str, Any], metrics: list[float]) -> None:
        super().on_trial_complete(trial_id, config, metrics)
        member = self.observed[-1]
        if len(self.population) < self.population_size:
            self.population.append(member)
            return
        self.offspring.append(member)
        if len(self.offspring) >= self.population_size:
            self.population = self._select(self.population + self.offspring, self.population_size)
            self.offspring = []
