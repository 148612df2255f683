"""The paper's evaluation protocol (Section 4.1): quantile normalisation, hypervolume, regret, average ranks.

Each objective is mapped to [0, 1] by the empirical quantiles of every value observed by every method and
seed on that task (all objectives minimised). The hypervolume of a two-objective front is measured
against the reference point (2, 2), so the best possible value is 4 and ``regret = 4 - hypervolume``.
Methods are ranked per (task, seed draw) by final regret; average ranks come from 1,000 bootstrap
draws that pick one run per method.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

REFERENCE_POINT = (2.0, 2.0)
BEST_HYPERVOLUME = 4.0


class QuantileNormaliser:
    """Maps each objective to [0, 1] by its quantiles over the fitting data, as scikit-learn's
    ``QuantileTransformer`` (uniform output) does for the paper's reference code: the fitted values, sorted, are
    the quantiles at 0, 1/(n-1), ..., 1; a value is interpolated linearly between them (tied quantiles: the mean
    of interpolating from below and from above); values at or below the smallest fitted value map to 0 and at or
    above the largest to 1. So the best value of each objective maps to 0, and a front holding the best of both
    objectives has hypervolume 4. (scikit-learn keeps at most 1,000 quantiles and interpolates between them;
    this keeps every fitted value.)"""

    def fit(self, values: np.ndarray) -> QuantileNormaliser:
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 2 or len(values) == 0:
            raise ValueError(f"values must be a non-empty 2-D array (points x objectives), got shape {values.shape}")
        if not np.isfinite(values).all():
            raise ValueError("values hold NaN or infinite entries")
        self.levels_ = np.linspace(0.0, 1.0, len(values))
        # the fitted values' percentiles at the levels (the sorted values, up to rounding), as scikit-learn takes them
        self.quantiles_ = np.maximum.accumulate(np.percentile(values, self.levels_ * 100, axis=0), axis=0)
        return self

    def transform(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64)
        levels = self.levels_
        out = np.empty_like(values)
        for j in range(values.shape[1]):
            quantiles, x = self.quantiles_[:, j], values[:, j]
            up = np.interp(x, quantiles, levels)
            down = -np.interp(-x, -quantiles[::-1], -levels[::-1])
            column = (up + down) / 2
            column[x >= quantiles[-1]] = 1.0
            column[x <= quantiles[0]] = 0.0
            out[:, j] = column
        return out


def _dominated(values: np.ndarray) -> np.ndarray:
    """Which rows are dominated by another row (minimisation); one sorted sweep for two objectives."""
    if values.shape[1] == 2 and len(values):
        order = np.lexsort((values[:, 1], values[:, 0]))
        x, y = values[order, 0], values[order, 1]
        lowest = np.minimum.accumulate(y)
        before = np.concatenate([[np.inf], lowest[:-1]])  # lowest second objective among rows with x' <= x
        # x of the first row reaching that lowest value: an equal second objective dominates only from a smaller x
        first = np.maximum.accumulate(np.where(y < before, np.arange(len(y)), 0))
        x_first = np.concatenate([[np.inf], x[first[:-1]]])
        dominated = np.empty(len(values), dtype=bool)
        dominated[order] = (y > before) | ((y == before) & (x_first < x))
        return dominated
    return np.array([np.any(np.all(values <= v, axis=1) & np.any(values < v, axis=1)) for v in values], dtype=bool)


def front_ranks(values: np.ndarray) -> np.ndarray:
    """Non-dominated sorting: 0 for the Pareto front, 1 for the front without it, and so on (minimisation)."""
    values = np.asarray(values, dtype=np.float64)
    ranks = np.full(len(values), -1)
    remaining = np.arange(len(values))
    rank = 0
    while len(remaining):
        dominated = _dominated(values[remaining])
        ranks[remaining[~dominated]] = rank
        remaining = remaining[dominated]
        rank += 1
    return ranks


def _objective_matrix(values: Any, name: str, columns: int | None = None) -> np.ndarray:
    """``values`` as a finite float matrix (rows x objectives), else a ValueError naming ``name``: NaN has no
    place in a dominance order (leave rows without a value out first)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:  # no points: an empty front
        return values.reshape(0, columns if columns is not None else (values.shape[-1] if values.ndim == 2 else 0))
    if values.ndim != 2 or (columns is not None and values.shape[1] != columns):
        shape = "n x 2" if columns == 2 else "rows x objectives"
        raise ValueError(f"{name} takes a {shape} array of objective values, got shape {values.shape}")
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        raise ValueError(f"{name}: row {int(np.flatnonzero(bad)[0])} is not finite ({values[bad][0].tolist()}); "
                         f"{int(bad.sum())} of {len(values)} rows are; leave them out first")
    return values


def pareto_mask(values: np.ndarray) -> np.ndarray:
    """Boolean mask of the non-dominated rows of ``values`` (rows x objectives, minimised, finite); of rows with
    equal values only the first is marked."""
    values = _objective_matrix(values, "pareto_mask")
    first = np.zeros(len(values), dtype=bool)
    first[np.unique(values, axis=0, return_index=True)[1]] = True
    return ~_dominated(values) & first


def non_dominated(points: np.ndarray) -> np.ndarray:
    """The non-dominated points (minimisation), duplicates removed, sorted by the first objective."""
    points = np.unique(_objective_matrix(points, "non_dominated"), axis=0)
    return points[~_dominated(points)]


def hypervolume_2d(points: np.ndarray, reference: Sequence[float] = REFERENCE_POINT) -> float:
    """Area dominated by ``points`` (n x 2, minimised) and bounded by ``reference``: a sweep over the points
    sorted by the first objective, each adding the strip below the lowest second objective seen so far."""
    points = _objective_matrix(points, "hypervolume_2d", columns=2)
    points = points[np.all(points < np.asarray(reference), axis=1)]
    if len(points) == 0:
        return 0.0
    points = points[np.lexsort((points[:, 1], points[:, 0]))]
    lowest = np.minimum.accumulate(points[:, 1])
    above = np.concatenate([[reference[1]], lowest[:-1]])
    return float(np.sum((reference[0] - points[:, 0]) * np.clip(above - points[:, 1], 0.0, None)))


def hypervolume_trajectory(points: np.ndarray, reference: Sequence[float] = REFERENCE_POINT) -> np.ndarray:
    """Hypervolume after each of the (normalised) points in evaluation order."""
    points = _objective_matrix(points, "hypervolume_trajectory", columns=2)
    volumes = np.array([hypervolume_2d(points[: i + 1], reference) for i in range(len(points))])
    return np.maximum.accumulate(volumes) if len(volumes) else volumes  # monotone, as exact arithmetic is


def average_ranks(final_regret: Mapping[str, Mapping[str, Sequence[float]]], draws: int = 1000,
                  seed: int = 0) -> dict[str, tuple[float, float]]:
    """Mean and standard deviation over bootstrap draws of each method's rank averaged over tasks.

    ``final_regret[task][method]`` lists one final regret per seed. Each draw picks one seed's run per
    method and task, ranks the methods per task (1 = best, ties share the mean rank) and averages over tasks.
    """
    from scipy.stats import rankdata

    tasks = sorted(final_regret)
    methods = sorted({m for task in tasks for m in final_regret[task]})
    for task in tasks:
        missing = set(methods) - set(final_regret[task])
        if missing:
            raise ValueError(f"task {task!r} has no runs of {sorted(missing)}")
    rng = np.random.default_rng(seed)
    samples = np.zeros((draws, len(methods)))
    for d in range(draws):
        per_task = []
        for task in tasks:
            values = [final_regret[task][m][rng.integers(len(final_regret[task][m]))] for m in methods]
            per_task.append(rankdata(values))
        samples[d] = np.mean(per_task, axis=0)
    return {m: (float(samples[:, i].mean()), float(samples[:, i].std())) for i, m in enumerate(methods)}
