"""Where the weight-sharing surrogates lose Kendall tau on the hold-out, and what other designs score.

For each task with a ``small`` grid and hold-out table, fits the ensemble design (``SmallSpaceSurrogate``'s
plateau indicator plus an error ensemble on every row, interpolated in ``num_units``), the anchored one the shipped
surrogates answer valid_error with (the table's values at its configurations, the line between them; chosen by
``fit``'s own trial between grid columns) and some alternatives, each with several seeds,
and prints valid_error Kendall tau (mean and standard deviation over seeds) on the hold-out and in two
cross-validations on the grid (the fair basis for choosing a design: the hold-out is for reporting):
5-fold over random grid configurations, and between columns (fitted on the grid configurations whose
``num_units`` is a multiple of 128, scored on the others, which lie halfway between two of those, as the
hold-out's lie between grid values).
It also scores the ensemble design fitted with half of the hold-out added to the grid (on the other half),
and splits its loss: with the plateau decision taken from the truth, and with the
error ensemble replaced by the truth off the plateau.

With ``--hyperparameters`` it compares XGBoost settings for the ensemble design instead, in the same
cross-validations.

    python benchmarks/surrogate_variants.py [--tasks rte mrpc] [--seeds 3] [--hyperparameters]
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy.stats import kendalltau

from plm_nasbench.spaces import get_search_space
from plm_nasbench.surrogates.ensemble import DEFAULT_PARAMS, EnsembleRegressor, xgboost_member
from plm_nasbench.surrogates.small import FIELDS, SmallSpaceSurrogate
from plm_nasbench.tables import Manifest

Variant = Callable[[pd.DataFrame, pd.DataFrame, int], np.ndarray]


def _features(frame: pd.DataFrame, with_size: bool) -> np.ndarray:
    x = frame[list(FIELDS)].to_numpy(dtype=np.float64) / np.array([6.0, 12.0, 1536.0])
    return np.column_stack([x, frame["params_fraction"].to_numpy()]) if with_size else x


def hurdle(with_size: bool = False, off_plateau_only: bool = False, monotone: bool = False) -> Variant:
    """A plateau indicator plus an error ensemble (3 XGBoost members), configurable."""
    def predict(train: pd.DataFrame, test: pd.DataFrame, seed: int) -> np.ndarray:
        x, x_test = _features(train, with_size), _features(test, with_size)
        y = train["valid_error"].to_numpy()
        values, counts = np.unique(y, return_counts=True)
        plateau = values[counts.argmax()]
        params = {"monotone_constraints": "(" + ",".join(["-1"] * x.shape[1]) + ")"} if monotone else {}
        on = EnsembleRegressor(1, seed=seed, bootstrap=False).fit(x, (y == plateau).astype(float)).predict(x_test) >= 0.5
        rows = y != plateau if off_plateau_only else np.ones(len(y), bool)
        error = EnsembleRegressor(3, lambda s: xgboost_member(s, **params), seed).fit(x[rows], y[rows])
        return np.where(on, plateau, error.predict(x_test))
    return predict


def shipped(space, interpolate: bool = True, params: dict | None = None, anchored: tuple[str, ...] = ()) -> Variant:
    """``SmallSpaceSurrogate``'s ensembles interpolated in ``num_units`` between the training configurations' values,
    or asked at each configuration (no interpolation), or with other XGBoost ``params``; ``anchored=("valid_error",)``:
    answering the training rows' own values at their configurations and the line between them (what the shipped
    surrogates do where their trial between grid columns picks it; named here, so that every cross-validation
    scores the same design)."""
    def predict(train: pd.DataFrame, test: pd.DataFrame, seed: int) -> np.ndarray:
        members = (lambda s: xgboost_member(s, **params)) if params else None
        surrogate = SmallSpaceSurrogate.fit(space, train, objectives=("valid_error",), seed=seed, member_factory=members,
                                            calibration_folds=0, anchored=anchored)  # answers only: no uncertainty
        fields = test[list(FIELDS)].to_numpy(dtype=np.int64)
        return (surrogate.predict(fields) if interpolate else surrogate._learned(fields, None))["valid_error"]
    return predict


def kendall_cv(variant: Variant, grid: pd.DataFrame, seed: int, folds: int = 5) -> float:
    fold = np.random.default_rng(100 + seed).integers(0, folds, len(grid))
    predicted = np.empty(len(grid))
    for k in range(folds):
        predicted[fold == k] = variant(grid[fold != k], grid[fold == k], seed)
    return float(kendalltau(grid["valid_error"], predicted).statistic)


def kendall_between_columns(variant: Variant, grid: pd.DataFrame, seed: int) -> float:
    fitted = grid["num_units"] % 128 == 0
    return float(kendalltau(grid.loc[~fitted, "valid_error"], variant(grid[fitted], grid[~fitted], seed)).statistic)


#: XGBoost settings compared with ``--hyperparameters`` (each overrides ``DEFAULT_PARAMS``).
HYPERPARAMETERS = {"shipped (60 trees, depth 6, rate 0.15)": {},
                   "400 trees, rate 0.05": {"n_estimators": 400, "learning_rate": 0.05},
                   "150 trees, rate 0.1": {"n_estimators": 150, "learning_rate": 0.1},
                   "depth 4": {"max_depth": 4}, "depth 8": {"max_depth": 8},
                   "min_child_weight 3": {"min_child_weight": 3.0}, "no row subsampling": {"subsample": 1.0}}


def compare_hyperparameters(tasks: list[str], seeds: int, manifest: Manifest) -> None:
    """The shipped design's valid_error Kendall tau under each of :data:`HYPERPARAMETERS`: in the two
    cross-validations on the grid (the basis for choosing) and on the hold-out (for reference)."""
    for task in tasks:
        grid = manifest.read(manifest.find(study="ws-small-grid", task=task)[0])
        holdout = manifest.read(manifest.find(study="ws-small-holdout", task=task)[0])
        space = get_search_space("small", grid["model"].iloc[0], task=task)
        truth = holdout["valid_error"].to_numpy()
        print(f"\n{task}: valid_error Kendall tau, mean +- std over {seeds} seeds")
        print(f"{'XGBoost members':40s} {'grid 5-fold CV':>15s} {'between columns':>15s} {'hold-out':>15s}")
        for name, params in HYPERPARAMETERS.items():
            variant = shipped(space, params=params)
            scores = [[kendall_cv(variant, grid, s) for s in range(seeds)],
                      [kendall_between_columns(variant, grid, s) for s in range(seeds)],
                      [kendalltau(truth, variant(grid, holdout, s)).statistic for s in range(seeds)]]
            print(f"{name:40s} " + " ".join(f"{np.mean(v):8.3f} +- {np.std(v):.3f}" for v in scores), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["rte", "mrpc"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--data", default=None, help="data folder (default: the package's)")
    parser.add_argument("--hyperparameters", action="store_true",
                        help="compare XGBoost settings for the shipped design instead of the designs")
    args = parser.parse_args()
    manifest = Manifest.load(args.data)
    print(f"XGBoost members: {DEFAULT_PARAMS}")
    if args.hyperparameters:
        compare_hyperparameters(args.tasks, args.seeds, manifest)
        return
    for task in args.tasks:
        grid = manifest.read(manifest.find(study="ws-small-grid", task=task)[0])
        holdout = manifest.read(manifest.find(study="ws-small-holdout", task=task)[0])
        space = get_search_space("small", grid["model"].iloc[0], task=task)
        variants = {"ensembles, interpolated in num_units": shipped(space),
                    "anchored (shipped on every grid's valid_error)": shipped(space, anchored=("valid_error",)),
                    "without interpolation in num_units": shipped(space, interpolate=False),
                    "error model fitted off the plateau only": hurdle(off_plateau_only=True),
                    "parameter fraction as a fourth feature": hurdle(with_size=True),
                    "both of the above": hurdle(with_size=True, off_plateau_only=True),
                    "monotone constraints (error falls with size)": hurdle(monotone=True)}
        truth = holdout["valid_error"].to_numpy()
        print(f"\n{task}: grid {len(grid)} rows, hold-out {len(holdout)} rows; valid_error Kendall tau, "
              f"mean +- std over {args.seeds} seeds")
        print(f"{'variant':48s} {'hold-out':>15s} {'grid 5-fold CV':>15s} {'between columns':>15s}")
        for name, variant in variants.items():
            scores = [[kendalltau(truth, variant(grid, holdout, s)).statistic for s in range(args.seeds)],
                      [kendall_cv(variant, grid, s) for s in range(args.seeds)],
                      [kendall_between_columns(variant, grid, s) for s in range(args.seeds)]]
            print(f"{name:48s} " + " ".join(f"{np.mean(v):8.3f} +- {np.std(v):.3f}" for v in scores))
        halves = {"grid": [], "grid + half the hold-out": []}
        for seed in range(args.seeds):
            part = np.random.default_rng(seed).random(len(holdout)) < 0.5
            for name, train in (("grid", grid), ("grid + half the hold-out", pd.concat([grid, holdout[part]]))):
                predicted = shipped(space)(train, holdout[~part], seed)
                halves[name].append(kendalltau(truth[~part], predicted).statistic)
        print("more full-resolution training rows, shipped design scored on the other half of the hold-out: "
              + ", ".join(f"{name} {np.mean(v):.3f} +- {np.std(v):.3f}" for name, v in halves.items()))
        surrogate = SmallSpaceSurrogate.fit(space, grid, objectives=("valid_error",), calibration_folds=0)
        fields = holdout[list(FIELDS)].to_numpy(dtype=np.int64)
        x = surrogate._features(space, fields, None, None)
        plateau = surrogate.metadata["plateaus"]["valid_error"]
        on = surrogate.ensembles["valid_error.plateau"].predict(x) >= 0.5
        error = surrogate.ensembles["valid_error"].predict(x)
        true_on = truth == plateau
        print(f"shipped design's ensembles at each configuration, seed 0: {true_on.mean():.0%} of the hold-out on the plateau ({plateau:.4f}), "
              f"{(on != true_on).sum()} plateau decisions wrong; Kendall tau with the plateau decision from the "
              f"truth {kendalltau(truth, np.where(true_on, plateau, error)).statistic:.3f}, with the truth off "
              f"the plateau {kendalltau(truth, np.where(on, plateau, truth)).statistic:.3f}, among the "
              f"configurations off it {kendalltau(truth[~true_on], error[~true_on]).statistic:.3f}")


if __name__ == "__main__":
    main()
