"""The surrogate of one ``small``-space table: learned objectives from ensembles, analytic ones computed exactly.

Features are the space's ``encode()`` vectors (plus epoch / max epoch when the table has several
fidelities). ``num_params`` and ``params_fraction`` come from the exact parameter formulas; ``flops``
from the FLOPs formula (:mod:`plm_nasbench.evaluation.flops`) with the test split's length moments,
which are recovered exactly from the table's FLOPs column. Every learned prediction carries the
ensemble's standard deviation, and every configuration an out-of-data flag: True when its encoding is
farther from all training configurations than any training configuration is from its nearest neighbour
(the configurations keeping no layer, one network, share one flag: False where the training rows hold any).

Plateaus: a learned objective whose training values repeat one value exactly in at least
``PLATEAU_SHARE`` of the rows (sub-networks that predict one class for every input all have the
class-prior error) also gets a second model (one XGBoost member fitted on every row) on the 0/1 indicator of that value;
where it predicts at least 0.5 the ensembles' answer is the plateau value itself (exactly at the knots below;
between a knot on the plateau and one off it, the interpolation between the two answers). Without it, near-equal predictions
for tied configurations would order at random, and on RTE (81% of the hold-out on the plateau) Kendall's
tau could not exceed about 0.6.

Uncertainty: the ensemble's standard deviation alone is too narrow an interval (on the STS-B hold-out 59% of
the truths lay within 1.96 standard deviations of the answer). ``fit`` therefore calibrates it on
cross-validated answers (``calibration_folds`` folds over the training configurations, a cross-conformal
scheme with a normalised score): every fold's configurations are answered by a surrogate fitted without
them, the score of an answer is ``|error| / (sd + offset)`` (``offset``: the median sd of the answers off the
plateau; where that is 0, their mean absolute error), and the reported standard deviation is
``scale * (sd + offset)``, where ``1.96 * scale`` is the score's ``CALIBRATION_LEVEL`` quantile, taken separately
for answers that are the plateau value and for the others (the two are wrong in different ways: a plateau
answer is exact or off by far). So about 95% of the cross-validated answers' truths lie within 1.96 reported
standard deviations, in each group; new configurations measured like the training ones should fare alike
(on the weight-sharing hold-outs the errors do), values measured in other runs (a hold-out's own timings)
need not. The scale is applied after the interpolation below, by whether the interpolated answer is the
plateau value.

Between training configurations: trees answer piecewise-constant, so a configuration whose ``num_units``
lies between two values the training rows have (the knots, with 0 and the largest; the grid's step by 64;
objectives learned from a latency table: that table's values alone, so they do not depend on the task)
would take one side's answer. The surrogate therefore asks the ensembles only at the knots and interpolates every
learned objective (and its standard deviation) linearly in ``num_units`` between the two knots around it
(beyond the outer knots: the outer knot's answer). At a knot the answer is the ensembles' own (an anchored
objective's: see below). On the hold-out this lifts valid_error Kendall tau on every task with a grid
(``benchmarks/surrogate_variants.py``).

Anchored objectives: where the training rows form a grid (every (num_layers, num_heads) pair at each of
their ``num_units`` values), trees smooth over what the grid measured, and a hold-out configuration, which lies
between two grid columns, is often ordered better by the line between its two measured neighbours (on every
task's valid_error hold-out: the grid-interpolation column of ``surrogates/REPORT.md``, and the ``anchored``
variant of ``benchmarks/surrogate_variants.py``). ``fit`` therefore tries both per objective: the ensembles
fitted on every other ``num_units`` column, answering as they are and anchored, each scored by Kendall tau on
the columns between (the grid alone decides; the hold-out stays for reporting). Where the anchored answers
score higher, the objective is anchored: at each configuration its rows hold, the answer is their value (the
mean over seeds; their common value where they agree), with standard deviation 0; within a (num_layers,
num_heads) pair, answers between its first and last such configuration lie on the line between their values
(outside that range, and in pairs without any, the ensembles answer as before); the ensembles still give the
standard deviation between them, calibrated by the same cross-validation (whose folds leave configurations out
of the anchors too). The configurations keeping no layer, one network, share the median answer, so their
standard deviation is 0 only where every one the rows hold has that value. Tables of several epochs (learning
curves) are not grids in this sense and are never anchored.

Materialisation: the ``small`` space is finite (139,867 configurations for MiniLM), so the first
question for an epoch is answered by asking the ensembles at every (num_layers, num_heads, knot) once
(7 x 13 x 25 = 2,275 points for a surrogate fitted on the grid) and interpolating the whole space from
them; every later answer is an array lookup.
"""

from __future__ import annotations

import functools
import json
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..atomic import write_atomic
from ..objectives import OBJECTIVES, objective_names
from ..provenance import sha256_file
from ..spaces import SmallSpace
from ..tables import LATENCY_FIELDS, supernetwork_seconds
from .ensemble import EnsembleRegressor

LEARNED = tuple(name for name, o in OBJECTIVES.items() if o.kind == "learned")
FIELDS = ("num_layers", "num_heads", "num_units")
PLATEAU_SHARE = 0.1
PLATEAU_SUFFIX = ".plateau"
#: The cross-validation that calibrates the uncertainty: its folds over the training configurations, and the share
#: of truths meant to lie within 1.96 reported standard deviations of the answer.
CALIBRATION_FOLDS = 5
CALIBRATION_LEVEL = 0.95


def _moments_basis(space: SmallSpace, layers: np.ndarray, heads: np.ndarray, units: np.ndarray) -> np.ndarray:
    """Per-config coefficients of (sum T, sum T^2, number of sequences) in the FLOPs formula, per example."""
    a = space.architecture
    d, width = a.hidden_size, heads * a.head_size
    linear = layers * (2 * d * 3 * width + 2 * width * d + 4 * d * units)
    quadratic = layers * 4 * width
    head = np.full(len(layers), 2 * d * d + 2 * d * a.head.num_outputs, dtype=np.float64)
    return np.stack([linear, quadratic, head], axis=1).astype(np.float64)


def outdated(record: dict[str, Any]) -> list[str]:
    """The keys a ``surrogate.json`` record lacks that this version needs (an older plm_nasbench wrote it)."""
    return [key for key in ("units_knots", "latency_units_knots", "epochs", "supernetwork_train_time", "floors",
                            "train_tables", "calibration", "anchors") if key not in record]


#: The file a saved surrogate's folder ends with: the SHA-256 of ``surrogate.json`` and of each ensemble's
#: ``ensemble.json`` (which records its member files' own), so loading detects any changed or missing file.
CHECKSUMS = "checksums.json"


def _files_to_check(objectives: Sequence[str]) -> list[str]:
    """The files of a saved surrogate with ensembles ``objectives`` that ``checksums.json`` covers."""
    return ["surrogate.json", *(f"{name}/ensemble.json" for name in objectives)]


def read_record(folder: str | Path) -> dict[str, Any]:
    """The ``surrogate.json`` record of the surrogate saved in ``folder``, once it and every ensemble's
    ``ensemble.json`` match the SHA-256 sums in ``checksums.json``: FileNotFoundError naming a missing file,
    ValueError naming a changed one (or a folder an older plm_nasbench wrote, without checksums)."""
    folder = Path(folder)
    meta_file, sums_file = folder / "surrogate.json", folder / CHECKSUMS
    if not meta_file.is_file():
        raise FileNotFoundError(f"{meta_file} does not exist: no surrogate saved in {folder}")
    rebuild = "rebuild it with python -m plm_nasbench.surrogates (or restore it from git)"
    if not sums_file.is_file():
        raise ValueError(f"{sums_file} does not exist: the surrogate in {folder} was written by an older "
                         f"plm_nasbench, or its save did not finish; {rebuild}")
    try:
        sums = json.loads(sums_file.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{sums_file} is not valid JSON ({err}): the surrogate is damaged; {rebuild}") from err
    for relpath, expected in sums.items():
        path = folder / relpath
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing (listed in {sums_file}): the surrogate is incomplete; "
                                    f"{rebuild}")
        actual = sha256_file(path)
        if actual != expected:
            raise ValueError(f"{path}: SHA-256 is {actual}, {CHECKSUMS} records {expected}; the file is damaged or "
                             f"was changed: {rebuild}")
    record = json.loads(meta_file.read_text())
    unlisted = [f for f in _files_to_check(record.get("objectives", [])) if f not in sums]
    if unlisted:
        raise ValueError(f"{sums_file} does not cover {', '.join(unlisted)}: the surrogate is damaged; {rebuild}")
    return record


def write_checksums(folder: str | Path) -> None:
    """Record (atomically) the SHA-256 sums :func:`read_record` checks, of the surrogate saved in ``folder``."""
    folder = Path(folder)
    objectives = json.loads((folder / "surrogate.json").read_text()).get("objectives", [])
    sums = {relpath: sha256_file(folder / relpath) for relpath in _files_to_check(objectives)}
    write_atomic(folder / CHECKSUMS, lambda p: p.write_text(json.dumps(sums, indent=1, sort_keys=True)))


def _shape(space: SmallSpace) -> tuple[int, ...]:
    """The number of values of each field of ``space`` (every field starts at 0)."""
    return tuple(high + 1 for _, high in space.bounds.values())


#: The fewest configurations with values an objective is learned from.
MIN_CONFIGS = 10


def _conformal_scales(answers: np.ndarray) -> dict[str, float | int] | None:
    """``offset``, ``scale`` and ``plateau_scale`` (see the module docstring) from held-out ``answers``: rows of
    absolute error, raw standard deviation and whether the answer is the plateau value; None when there are too
    few answers for the quantile (fewer than 19 at a level of 0.95). A group with too few takes the quantile of
    all answers."""
    error, spread, on_plateau = answers[0], answers[1], answers[2].astype(bool)
    off = spread[~on_plateau] if (~on_plateau).any() else spread
    offset = float(np.median(off)) or float(np.mean(error)) or 1.0  # a positive offset keeps the scores finite
    score = error / (spread + offset)

    def quantile(values: np.ndarray) -> float | None:
        rank = int(np.ceil(CALIBRATION_LEVEL * (len(values) + 1)))  # the conformal rank: the rank-th smallest score
        return float(np.sort(values)[rank - 1]) / 1.96 if rank <= len(values) else None

    pooled = quantile(score)
    if pooled is None:
        return None
    scales = {"offset": offset, "scale": quantile(score[~on_plateau]), "plateau_scale": quantile(score[on_plateau])}
    return {k: pooled if v is None else v for k, v in scales.items()} | {
        "answers": int(len(score)), "plateau_answers": int(on_plateau.sum())}


class SmallSpaceSurrogate:
    """Predicts every objective of ``small``-space configurations of one (model, task, scheme, strategy)."""

    def __init__(self, space: SmallSpace, ensembles: dict[str, EnsembleRegressor | Path], train_x: np.ndarray,
                 flops_moments: np.ndarray, max_epoch: int | None, metadata: dict[str, Any]) -> None:
        """``ensembles``: by name, each fitted or the folder it was saved in (loaded on first use, so that a
        benchmark that never asks its surrogate never imports XGBoost). ``train_x``: the encodings of the
        training configurations (without epoch), which the out-of-data flag measures distances to."""
        self.space, self.metadata = space, metadata
        self._ensembles = ensembles
        self._learned_names = tuple(name for name in LEARNED if name in ensembles)
        self.train_x, self.flops_moments, self.max_epoch = train_x, flops_moments, max_epoch
        a = space.architecture
        self._attention = np.array([a.attention_parameters(h) for h in range(a.num_heads + 1)], dtype=np.int64)
        self._ffn = np.array([a.ffn_parameters(u) for u in range(a.intermediate_size + 1)], dtype=np.int64)
        self._tree = None
        self._radius = float(metadata.get("ood_radius", 0.0))
        # answers for the whole space: by epoch (0: none), every objective and the learned ones alone; the others
        self._materialised: dict[int, dict[str, np.ndarray]] = {}
        self._learned_materialised: dict[int, dict[str, np.ndarray]] = {}
        self._fixed: dict[str, np.ndarray] | None = None

    def __getstate__(self) -> dict[str, Any]:
        """What pickling keeps (e.g. to send it to worker processes): not the answers computed for the whole space,
        which are recomputed on first use (about 78 MB for a five-epoch surrogate)."""
        state = dict(self.__dict__)
        state.update(_materialised={}, _learned_materialised={}, _fixed=None, _tree=None)
        state.pop("_every_config", None)
        return state

    # -- construction ----------------------------------------------------------------------------
    @classmethod
    def fit(cls, space: SmallSpace, table: pd.DataFrame, objectives: tuple[str, ...] = LEARNED,
            n_members: int = 3, seed: int = 0, member_factory: Any = None,
            latency: pd.DataFrame | None = None, calibration_folds: int = CALIBRATION_FOLDS,
            epochs: Sequence[int] | None = None, anchored: Sequence[str] | None = None,
            supernetwork_costs: Mapping[str, float] | None = None) -> SmallSpaceSurrogate:
        """Fit one ensemble per learned objective on the rows of ``table`` (one ``small`` table), and calibrate
        their uncertainty by a cross-validation with ``calibration_folds`` folds over its configurations (0: none,
        the ensembles' raw standard deviations; see the module docstring). ``epochs``: the fidelities it answers
        (default: the table's; the folds of the calibration keep the whole table's).

        ``latency``: rows of a latency table of the ``small`` space (fields and latency columns, one row per
        configuration). When given, the latency objectives are learned from it instead of ``table``: they
        depend on the architecture and the machine, not on the task or the training (a standalone table whose
        configurations were never timed still gets them).

        ``anchored``: the objectives that answer their rows' own values at the configurations those rows hold
        (see the module docstring); None: each objective learned from a grid whose side wins the cross-validation
        between columns, none for tables of several epochs.

        ``supernetwork_costs``: what each super-network cost to train, by id
        (:func:`~plm_nasbench.tables.supernetwork_costs`), for the training time the surrogate records (without
        them, the least its rows record)."""
        if not isinstance(space, SmallSpace):
            raise TypeError(f"SmallSpaceSurrogate needs the small space, got {type(space).__name__}")
        objectives, anchored = cls._check_fit_arguments(space, table, objectives, n_members, latency,
                                                        calibration_folds, anchored)
        epochs = sorted(int(e) for e in (table["epoch"].unique() if epochs is None else epochs))
        max_epoch = int(epochs[-1]) if len(epochs) > 1 else None
        x = cls._features(space, table[list(FIELDS)].to_numpy(), table["epoch"].to_numpy(), max_epoch)
        sources = {"table": (table, x)}
        if latency is not None:
            sources["latency"] = (latency, cls._features(space, latency[list(FIELDS)].to_numpy(),
                                                         np.full(len(latency), max_epoch or 0), max_epoch))
        ensembles, skipped, plateaus, learned_from, floors = {}, {}, {}, {}, {}
        for name in objectives:
            learned_from[name] = "latency" if latency is not None and OBJECTIVES[name].column in LATENCY_FIELDS else "table"
            rows, x_rows = sources[learned_from[name]]
            y = rows[OBJECTIVES[name].column].to_numpy(dtype=np.float64)
            keep = np.isfinite(y)
            configs = len(rows.loc[keep, list(FIELDS)].drop_duplicates())
            if configs < MIN_CONFIGS:  # e.g. latency measured only for the unpruned model so far
                skipped[name] = f"only {configs} configurations with values ({int(keep.sum())} rows)"
                continue
            ensembles[name] = EnsembleRegressor(n_members, member_factory, seed).fit(x_rows[keep], y[keep])
            floors[name] = float(y[keep].min())
            values, counts = np.unique(y[keep], return_counts=True)
            if counts.max() >= PLATEAU_SHARE * keep.sum():
                plateaus[name] = float(values[counts.argmax()])
                on_plateau = (y[keep] == plateaus[name]).astype(np.float64)
                ensembles[name + PLATEAU_SUFFIX] = EnsembleRegressor(1, member_factory, seed, bootstrap=False).fit(
                    x_rows[keep], on_plateau)  # a decision, not an uncertainty: one member on every row
        if not ensembles:
            raise ValueError(f"nothing to learn: no objective has values for {MIN_CONFIGS} configurations or more "
                             f"({'; '.join(f'{k}: {v}' for k, v in skipped.items())})")
        trial: dict[str, Any] = {}
        if anchored is None:
            anchored, trial = cls._choose_anchored(space, table, latency, learned_from, n_members, seed,
                                                   member_factory, epochs)
        elif anchored and max_epoch is not None:
            raise ValueError(f"anchored objectives need a table of one epoch; this one has epochs {epochs}")
        anchors = {name: cls._anchors(space, sources[learned_from[name]][0], name)
                   for name in anchored if name in ensembles}
        basis = _moments_basis(space, *(table[f].to_numpy(dtype=np.float64) for f in FIELDS))
        moments = np.linalg.lstsq(basis, table["flops"].to_numpy(dtype=np.float64), rcond=None)[0]
        configs = np.unique(x[:, :len(FIELDS)], axis=0)  # the training configurations' encodings, without epoch
        ends = [0, space.bounds["num_units"][1]]
        knots = np.unique(np.concatenate([ends, *(rows["num_units"].to_numpy() for rows, _ in sources.values())]))
        latency_knots = None if latency is None else np.unique(np.concatenate([ends, latency["num_units"].to_numpy()]))
        metadata = {"rows": int(len(table)), "configs": int(len(configs)), "skipped": skipped,
                    "epochs": [int(e) for e in epochs],
                    "supernetwork_train_time": supernetwork_seconds(table, supernetwork_costs),
                    "units_knots": knots.astype(int).tolist(),
                    "latency_units_knots": None if latency_knots is None else latency_knots.astype(int).tolist(),
                    "learned_from": {k: v for k, v in learned_from.items() if k in ensembles},
                    "plateaus": plateaus, "floors": floors, "ood_radius": cls._nearest_neighbour_radius(configs),
                    "anchors": anchors, "anchoring": trial,
                    "calibration": {"folds": 0, "level": CALIBRATION_LEVEL, "objectives": {}}}
        surrogate = cls(space, ensembles, configs, moments, max_epoch, metadata)
        if calibration_folds:
            def fit_fold(rows: pd.DataFrame, latency_rows: pd.DataFrame | None) -> SmallSpaceSurrogate | None:
                try:
                    return cls.fit(space, rows, objectives, n_members, seed, member_factory, latency=latency_rows,
                                   calibration_folds=0, epochs=epochs, anchored=tuple(anchors))
                except ValueError:  # nothing left to learn without this fold
                    return None
            metadata["calibration"] = surrogate._calibrate(fit_fold, table, latency, calibration_folds, seed)
        return surrogate

    @staticmethod
    def _check_fit_arguments(space: SmallSpace, table: pd.DataFrame, objectives: Sequence[str], n_members: Any,
                             latency: pd.DataFrame | None, calibration_folds: Any,
                             anchored: Sequence[str] | None) -> tuple[tuple[str, ...], tuple[str, ...] | None]:
        """``objectives`` and ``anchored`` as tuples of names, once every argument of :meth:`fit` is checked (before
        any fitting): ValueError naming the argument, column or value and what is allowed."""
        objectives = objective_names(objectives)
        analytic = [name for name in objectives if name not in LEARNED]
        if analytic:
            raise ValueError(f"objectives {', '.join(map(repr, analytic))} are computed exactly, never learned; "
                             f"learned objectives: {', '.join(LEARNED)}")
        if anchored is not None:
            anchored = tuple(objective_names(anchored)) if len(anchored) else ()
            stray = [name for name in anchored if name not in objectives]
            if stray:
                raise ValueError(f"anchored names {', '.join(map(repr, stray))}, which is not among the objectives "
                                 f"to learn ({', '.join(objectives)})")
        for what, value, smallest in (("n_members", n_members, 1), ("calibration_folds", calibration_folds, 0)):
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < smallest:
                raise ValueError(f"{what} must be an integer >= {smallest}, got {value!r}")
        if calibration_folds == 1:
            raise ValueError("calibration_folds must be 0 (none) or at least 2, got 1")
        for what, rows in (("table", table), ("latency", latency)):
            if rows is None:
                continue
            missing = [c for c in (*FIELDS, *(["epoch"] if what == "table" else [])) if c not in rows]
            if missing:
                raise ValueError(f"{what} lacks the column(s) {', '.join(missing)}")
            if not len(rows):
                raise ValueError(f"{what} has no rows to learn from")
            try:
                space.validate_arrays({f: rows[f].to_numpy() for f in FIELDS})
            except ValueError as err:
                raise ValueError(f"{what}: {err}") from None
        return objectives, anchored

    @staticmethod
    def _anchors(space: SmallSpace, rows: pd.DataFrame, name: str) -> list[list]:
        """[indices, values]: the configurations (``np.ravel_multi_index`` over the fields) of ``rows`` with a value
        of objective ``name``, and each one's value (the mean over its rows)."""
        values = rows[OBJECTIVES[name].column].to_numpy(dtype=np.float64)
        keep = np.isfinite(values)
        index = np.ravel_multi_index(tuple(rows.loc[keep, list(FIELDS)].to_numpy(dtype=np.int64).T), _shape(space))
        groups = pd.Series(values[keep]).groupby(index).agg(["mean", "min", "max"])
        # equal values keep their value exactly (a mean of equal floats can differ in the last bit: off a plateau)
        anchor = groups["min"].where(groups["min"] == groups["max"], groups["mean"])
        return [anchor.index.astype(int).tolist(), anchor.astype(float).tolist()]

    @staticmethod
    def _grid_columns(rows: pd.DataFrame) -> np.ndarray | None:
        """The sorted ``num_units`` values of ``rows`` when they form a grid (every (num_layers, num_heads) pair
        the rows have at every one of at least 5 such values), else None."""
        units = np.unique(rows["num_units"].to_numpy())
        pairs = len(rows[["num_layers", "num_heads"]].drop_duplicates())
        held = len(rows[list(FIELDS)].drop_duplicates())
        return units if len(units) >= 5 and held == pairs * len(units) else None

    @classmethod
    def _choose_anchored(cls, space: SmallSpace, table: pd.DataFrame, latency: pd.DataFrame | None,
                         learned_from: dict[str, str], n_members: int, seed: int, member_factory: Any,
                         epochs: Sequence[int]) -> tuple[tuple[str, ...], dict[str, Any]]:
        """The objectives to anchor, and the trial that chose them: per objective learned from a grid, Kendall tau
        of a surrogate with and one without anchors, both fitted on the grid's every other ``num_units`` column
        and scored on the columns between (as the hold-out's configurations lie between grid columns). An
        objective is anchored where that tau is the higher."""
        if len(epochs) > 1:
            return (), {}
        sources = {"table": table, "latency": latency}
        columns = {k: cls._grid_columns(rows) for k, rows in sources.items() if rows is not None}
        candidates = tuple(name for name, source in learned_from.items() if columns.get(source) is not None)
        if not candidates:
            return (), {}
        fitted_units = {k: units[::2] for k, units in columns.items() if units is not None}
        coarse = {k: rows[rows["num_units"].isin(fitted_units[k])] if k in fitted_units else rows
                  for k, rows in sources.items() if rows is not None}
        try:
            plain = cls.fit(space, coarse["table"], tuple(learned_from), n_members, seed, member_factory,
                            latency=coarse.get("latency"), calibration_folds=0, epochs=epochs, anchored=())
        except ValueError:  # the columns fitted on leave an objective too few configurations
            return (), {}
        anchors = {name: cls._anchors(space, coarse[learned_from[name]], name) for name in candidates
                   if name in plain.learned}
        answers = {"ensemble": plain, "anchored": cls(space, plain.ensembles, plain.train_x, plain.flops_moments,
                                                      plain.max_epoch, {**plain.metadata, "anchors": anchors})}
        from scipy.stats import kendalltau

        record, chosen = {}, []
        for name in candidates:
            rows = sources[learned_from[name]]
            scored = rows[~rows["num_units"].isin(fitted_units[learned_from[name]])]
            truth = scored[OBJECTIVES[name].column].to_numpy(dtype=np.float64)
            scored, truth = scored[np.isfinite(truth)], truth[np.isfinite(truth)]
            fields = scored[list(FIELDS)].to_numpy(dtype=np.int64)
            taus = {side: float(kendalltau(truth, s.predict(fields)[name]).statistic) for side, s in answers.items()
                    if name in s.learned}
            if len(taus) < 2 or not np.isfinite(list(taus.values())).all():  # e.g. constant answers: no order
                continue
            record[name] = {f"kendall_tau_{side}": tau for side, tau in taus.items()} | {"rows": int(len(truth))}
            if taus["anchored"] > taus["ensemble"]:
                chosen.append(name)
        return tuple(chosen), record

    def _calibrate(self, fit_fold: Callable[[pd.DataFrame, pd.DataFrame | None], SmallSpaceSurrogate | None],
                   table: pd.DataFrame, latency: pd.DataFrame | None, folds: int, seed: int) -> dict[str, Any]:
        """The ``calibration`` metadata: per learned objective, ``offset`` and the ``scale`` of answers off the
        plateau (``plateau_scale``: of answers that are the plateau value), from a ``folds``-fold
        cross-validation over the configurations of ``table`` and ``latency`` (``fit_fold(table, latency)`` fits
        an uncalibrated surrogate on the rows of the other folds, None when they leave nothing to learn), and
        ``skipped``: why an objective is left uncalibrated (its raw standard deviation answers). Each source's
        configurations are drawn into folds apart (each objective learns from one source), so the objectives
        learned from a latency table are calibrated alike whatever the task's table holds."""
        sources = {"table": table, "latency": latency}
        record: dict[str, Any] = {"folds": folds, "level": CALIBRATION_LEVEL, "objectives": {}, "skipped": {}}
        fold_rows, too_few = {}, {}
        for source, rows in sources.items():
            if rows is None:
                continue
            fields = rows[list(FIELDS)].to_numpy(dtype=np.int64, copy=True)
            fields[SmallSpace.empty_networks(*fields.T)] = 0  # every configuration keeping no layer: key 0
            keys = np.ravel_multi_index(tuple(fields.T), self._shape())
            configs, inverse = np.unique(keys, return_inverse=True)
            held_out = len(configs) - int(configs[0] == 0)
            if held_out < folds * MIN_CONFIGS:
                too_few[source] = f"{held_out} configurations: too few for {folds} folds of {MIN_CONFIGS}"
            fold_rows[source] = (np.random.default_rng(seed).permutation(len(configs)) % folds)[inverse]
            # the empty network (no layer kept) is never held out: a fit always has it (the full one does), and
            # scoring its many configurations as one unseen network would weigh one extrapolation hundreds of times
            fold_rows[source][keys == 0] = -1
        record["skipped"] = {name: too_few[self.metadata["learned_from"][name]] for name in self.learned
                             if self.metadata["learned_from"][name] in too_few}
        if len(record["skipped"]) == len(self.learned):
            return record
        scores: dict[str, list[np.ndarray]] = {name: [] for name in self.learned}
        for k in range(folds):
            fitted = fit_fold(table[fold_rows["table"] != k],
                              None if latency is None else latency[fold_rows["latency"] != k])
            for name in (n for n in self.learned if fitted is not None and n in fitted.learned
                         and n not in record["skipped"]):
                source = self.metadata["learned_from"][name]
                scores[name].append(fitted._held_out_answers(name, sources[source][fold_rows[source] == k]))
        for name, found in ((n, f) for n, f in scores.items() if n not in record["skipped"]):
            scales = _conformal_scales(np.concatenate(found, axis=1)) if len(found) == folds else None
            if scales is not None:
                record["objectives"][name] = scales
            else:
                answers = sum(part.shape[1] for part in found)
                record["skipped"][name] = (f"learned in {len(found)} of {folds} folds" if len(found) < folds else
                                           f"{answers} held-out answers: too few for the {CALIBRATION_LEVEL} quantile")
        return record

    def _held_out_answers(self, name: str, rows: pd.DataFrame) -> np.ndarray:
        """Rows of (absolute error, raw standard deviation, whether the answer is the plateau value) of the
        answers for objective ``name`` to ``rows`` (each at its epoch; rows without a value left out)."""
        truth = rows[OBJECTIVES[name].column].to_numpy(dtype=np.float64)
        rows, truth = rows[np.isfinite(truth)], truth[np.isfinite(truth)]
        if self.max_epoch is None:
            epochs = np.zeros(len(rows), dtype=np.int64)  # one fidelity
        else:  # rows of a latency table have no epoch: latency does not depend on it
            epochs = rows["epoch"].to_numpy() if "epoch" in rows else np.full(len(rows), self.max_epoch)
        index = np.ravel_multi_index(tuple(rows[list(FIELDS)].to_numpy(dtype=np.int64).T), self._shape())
        answer, spread = np.empty(len(rows)), np.empty(len(rows))
        for epoch in np.unique(epochs):  # one materialised space per epoch
            at = epochs == epoch
            learned = self._learned_space(int(epoch) if self.max_epoch else None)
            answer[at], spread[at] = learned[name][index[at]], learned[f"{name}_std"][index[at]]
        return np.stack([np.abs(answer - truth), spread, self._on_plateau(name, answer)])

    @property
    def learned(self) -> tuple[str, ...]:
        """The learned objectives this surrogate predicts (without loading its ensembles)."""
        return self._learned_names

    @property
    def ensembles(self) -> dict[str, EnsembleRegressor]:
        """The fitted ensembles by objective (``<name>.plateau`` for plateau indicators)."""
        if any(isinstance(e, Path) for e in self._ensembles.values()):
            self._ensembles = {name: EnsembleRegressor.load(e)[0] if isinstance(e, Path) else e
                               for name, e in self._ensembles.items()}
        return self._ensembles

    @staticmethod
    def _nearest_neighbour_radius(x: np.ndarray) -> float:
        from scipy.spatial import cKDTree

        if len(x) < 2:
            return 0.0
        distances, _ = cKDTree(x).query(x, k=2)
        return float(distances[:, 1].max())

    @staticmethod
    def _features(space: SmallSpace, fields: np.ndarray, epochs: np.ndarray | None, max_epoch: int | None) -> np.ndarray:
        highs = np.array([high for _, high in space.bounds.values()], dtype=np.float64)
        x = np.asarray(fields, dtype=np.float64) / highs
        if max_epoch is not None:
            x = np.column_stack([x, np.asarray(epochs, dtype=np.float64) / max_epoch])
        return x

    # -- prediction ------------------------------------------------------------------------------
    def predict(self, fields: np.ndarray, epoch: int | None = None) -> dict[str, np.ndarray]:
        """Every objective (and ``<name>_std`` for learned ones, plus ``out_of_data``) for ``fields``: an array of
        shape (n, 3), rows of (num_layers, num_heads, num_units) integers (or one such row), at ``epoch`` (None:
        the last of :attr:`fidelities`); ValueError naming a field outside the space, a fractional or NaN value,
        another shape or an epoch the surrogate does not answer."""
        fields = np.asarray(fields)
        if fields.dtype == object:  # e.g. a DataFrame's nullable columns: the values' own types decide
            fields = np.array(fields.tolist())
        if fields.size == 0:  # no configuration (e.g. a DataFrame without rows)
            fields = np.empty((0, len(FIELDS)), dtype=np.int64)
        if fields.ndim == 1 and len(fields) == len(FIELDS):  # one configuration
            fields = fields[np.newaxis]
        if fields.ndim != 2 or fields.shape[1] != len(FIELDS):
            raise ValueError(f"fields must be an array of shape (n, {len(FIELDS)}), rows of ({', '.join(FIELDS)}); "
                             f"got shape {fields.shape}")
        if fields.dtype != np.int64:  # fractions, NaN and values beyond int64 are refused before any cast
            fields = self.space.validate_arrays(dict(zip(FIELDS, fields.T)))
        highs = np.array(self._shape()) - 1
        outside = (fields < 0) | (fields > highs)
        if outside.any():
            row, column = np.argwhere(outside)[0]
            raise ValueError(f"{FIELDS[column]} must be in [0, {highs[column]}], got {fields[row, column]}")
        if epoch is not None and (isinstance(epoch, (bool, np.bool_)) or not isinstance(epoch, (int, np.integer))
                                  or epoch not in self.fidelities):
            raise ValueError(f"epoch must be one of the fidelities this surrogate answers, {self.fidelities} (or "
                             f"None: the last), got {epoch!r}")
        if self.max_epoch is not None and epoch is None:
            epoch = self.max_epoch
        index = np.ravel_multi_index(tuple(fields.T), self._shape())
        return {name: values[index] for name, values in self.predict_space(epoch).items()}

    def predict_space(self, epoch: int | None) -> dict[str, np.ndarray]:
        """Every objective for every configuration of the space at a checked ``epoch`` (in
        ``np.ravel_multi_index`` order over the fields' sizes), computed on first use and kept: the learned ones
        (:meth:`_learned_space`), the analytic ones and ``out_of_data`` (the same at every epoch)."""
        key = self._key(epoch)
        if key not in self._materialised:
            if self._fixed is None:
                every = self._every_config
                self._fixed = self._analytic(every)
                self._fixed["out_of_data"] = outside = self.out_of_data(self._features(self.space, every, None, None))
                # the configurations keeping no layer are one network, answered alike: in the data where any is
                highs = np.array(self._shape()) - 1
                trained = np.rint(self.train_x[:, :len(FIELDS)] * highs).astype(np.int64)
                outside[SmallSpace.empty_networks(*every.T)] = not SmallSpace.empty_networks(*trained.T).any()
            self._materialised[key] = self._learned_space(epoch) | self._fixed
        return self._materialised[key]

    @functools.cached_property
    def _every_config(self) -> np.ndarray:
        """The fields of every configuration of the space, one row each, in ``np.ravel_multi_index`` order."""
        return np.stack(np.unravel_index(np.arange(self.space.num_configs), self._shape()), axis=1)

    def _key(self, epoch: int | None) -> int:
        """The key of ``epoch``'s answers in the caches (0 for surrogates without an epoch feature)."""
        return epoch if self.max_epoch is not None else 0

    @property
    def fidelities(self) -> list[int]:
        """The epochs of the table it was fitted on: the only ones its answers stand for."""
        return list(self.metadata["epochs"])

    @property
    def supernetwork_train_time(self) -> float | None:
        """Weight sharing: seconds the super-network of the table it was fitted on took to fine-tune."""
        return self.metadata["supernetwork_train_time"]

    def _shape(self) -> tuple[int, ...]:
        """The number of values of each field (every field starts at 0)."""
        return _shape(self.space)

    @property
    def units_knots(self) -> np.ndarray:
        """Where the ensembles of objectives learned from the table are asked, sorted: every ``num_units`` of the
        rows fitted on (the table's and, where latency is learned from a latency table, that table's), plus 0 and
        the largest."""
        return np.asarray(self.metadata["units_knots"], dtype=np.int64)

    def _knot_groups(self) -> list[tuple[np.ndarray, tuple[str, ...]]]:
        """(knots, learned objectives asked there): objectives learned from a latency table are asked at its
        ``num_units`` values alone (with 0 and the largest), so that their answers do not depend on the task
        whose table the surrogate also learned from; every other objective at :attr:`units_knots`."""
        latency_knots = self.metadata["latency_units_knots"]
        timed = tuple(name for name in LEARNED if self.metadata["learned_from"].get(name) == "latency")
        if latency_knots is None or not timed:
            return [(self.units_knots, LEARNED)]
        return [(self.units_knots, tuple(name for name in LEARNED if name not in timed)),
                (np.asarray(latency_knots, dtype=np.int64), timed)]

    def _learned_space(self, epoch: int | None) -> dict[str, np.ndarray]:
        """Every learned objective and its reported ``<name>_std`` for every configuration of the space at a
        checked ``epoch``, computed on first use and kept: asked of the ensembles at every (layers, heads, knot)
        and interpolated linearly in ``num_units`` between knots, their standard deviations then calibrated;
        anchored objectives answer their anchors, and between them their line (see the module docstring)."""
        key = self._key(epoch)
        if key in self._learned_materialised:
            return self._learned_materialised[key]
        shape = self._shape()
        pairs = np.stack(np.unravel_index(np.arange(shape[0] * shape[1]), shape[:2]), axis=1)
        units = np.arange(shape[2])
        out = {}
        for knots, names in self._knot_groups():
            at_knots = np.column_stack([np.repeat(pairs, len(knots), axis=0), np.tile(knots, len(pairs))])
            for name, values in self._learned(at_knots, epoch, names).items():
                rows = values.reshape(len(pairs), len(knots))
                out[name] = np.concatenate([np.interp(units, knots, row) for row in rows])
        anchors = {name: (np.asarray(index, dtype=np.int64), np.asarray(values, dtype=np.float64))
                   for name, (index, values) in self.metadata["anchors"].items()}
        for name, (index, values) in anchors.items():  # the rows' own values, between them linear
            pair, held = np.divmod(index, shape[2])
            for p in np.unique(pair):
                at = pair == p
                low, high = held[at].min(), held[at].max()
                out[name][p * shape[2] + low:p * shape[2] + high + 1] = np.interp(units[low:high + 1], held[at],
                                                                                  values[at])
        for name in self.learned:
            out[f"{name}_std"] = self._calibrated_std(name, out[name], out[f"{name}_std"])
        empty = SmallSpace.empty_networks(*self._every_config.T)  # one network (embeddings, pooler and head)
        for values in out.values():
            values[empty] = np.median(values[empty])
        for name, (index, values) in anchors.items():  # an anchored answer is the measurement
            on_empty = empty[index]
            out[f"{name}_std"][index[~on_empty]] = 0.0
            if on_empty.any() and np.ptp(values[on_empty]) == 0:  # the empty network's answer is their median
                out[f"{name}_std"][empty] = 0.0
        if self.max_epoch is not None and epoch > 1 and "runtime" in out:  # cumulative: never less than before
            out["runtime"] = np.maximum(out["runtime"], self._learned_space(epoch - 1)["runtime"])
        self._learned_materialised[key] = out
        return out

    def _on_plateau(self, name: str, answer: np.ndarray) -> np.ndarray:
        """Whether each answer for objective ``name`` is its plateau value (all False without a plateau)."""
        return answer == self.metadata["plateaus"].get(name)

    def _calibrated_std(self, name: str, answer: np.ndarray, spread: np.ndarray) -> np.ndarray:
        """The reported standard deviation of objective ``name`` for answers ``answer`` whose ensembles' standard
        deviation is ``spread``: ``scale * (spread + offset)``, with the plateau answers' scale where the answer
        is the plateau value (``spread`` itself where the objective is not calibrated)."""
        calibration = self.metadata["calibration"]["objectives"].get(name)
        if calibration is None:
            return spread
        return np.where(self._on_plateau(name, answer), calibration["plateau_scale"], calibration["scale"]) * (spread + calibration["offset"])

    def _learned(self, fields: np.ndarray, epoch: int | None,
                 names: Sequence[str] = LEARNED) -> dict[str, np.ndarray]:
        """Each learned objective of ``names`` and its ``<name>_std`` (the ensembles' own, uncalibrated) for rows of
        fields, through the ensembles (NaN for an objective without one)."""
        x = self._features(self.space, fields, np.full(len(fields), epoch or 0), self.max_epoch)
        out: dict[str, np.ndarray] = {}
        for name in names:
            if name in self.ensembles:
                mean, std = self.ensembles[name].predict_with_std(x)
                # trees' sums can dip below every measured value (to negative seconds near 0): no answer is below
                # the smallest value it was fitted on
                floor = self.metadata["floors"][name]
                out[name], out[f"{name}_std"] = np.maximum(mean.astype(np.float64), floor), std.astype(np.float64)
                if name + PLATEAU_SUFFIX in self.ensembles:
                    on_plateau = self.ensembles[name + PLATEAU_SUFFIX].predict(x) >= 0.5
                    out[name] = np.where(on_plateau, self.metadata["plateaus"][name], out[name])
            else:
                out[name] = out[f"{name}_std"] = np.full(len(fields), np.nan)
        return out

    def _analytic(self, fields: np.ndarray) -> dict[str, np.ndarray]:
        """``num_params``, ``params_fraction`` and ``flops`` of rows of fields, from their exact formulas."""
        layers, heads, units = fields.T
        a = self.space.architecture
        params = a.fixed_parameters() + layers * (self._attention[heads] + self._ffn[units])
        basis = _moments_basis(self.space, layers.astype(np.float64), heads.astype(np.float64), units.astype(np.float64))
        return {"num_params": params, "params_fraction": params / a.total_parameters(), "flops": basis @ self.flops_moments}

    def out_of_data(self, x: np.ndarray) -> np.ndarray:
        """Whether each encoded configuration lies farther from the training data than its own spacing."""
        from scipy.spatial import cKDTree

        if self._tree is None:
            self._tree = cKDTree(self.train_x[:, :len(FIELDS)])
        distances, _ = self._tree.query(x, k=1)
        return distances > self._radius + 1e-9

    # -- storage ---------------------------------------------------------------------------------
    def save(self, folder: str | Path) -> None:
        """Write every ensemble (gzip-compressed XGBoost UBJSON, :meth:`EnsembleRegressor.save`) and ``surrogate.json``
        (training configurations, FLOPs moments, metadata)."""
        folder = Path(folder)
        meta_file = folder / "surrogate.json"
        try:  # the ensembles an earlier save here wrote: the only folders this one may remove
            earlier = set(json.loads(meta_file.read_text()).get("objectives", [])) if meta_file.is_file() else set()
        except (json.JSONDecodeError, AttributeError):
            earlier = set()
        for name, ensemble in self.ensembles.items():
            ensemble.save(folder / name)
        record = {"space": "small", "architecture": self.space.architecture.to_dict(), "max_epoch": self.max_epoch,
                  "flops_moments": self.flops_moments.tolist(), "train_x": self.train_x.round(8).tolist(),
                  "objectives": sorted(self.ensembles), **self.metadata}
        (folder / CHECKSUMS).unlink(missing_ok=True)  # until the new sums are written, the folder does not load
        write_atomic(meta_file, lambda p: p.write_text(json.dumps(record)))
        ours = {*LEARNED, *(name + PLATEAU_SUFFIX for name in LEARNED)}  # names an ensemble's folder can have
        for name in sorted(earlier & ours - set(self.ensembles)):  # an earlier fit's that this one no longer has
            if (folder / name / "ensemble.json").is_file():
                shutil.rmtree(folder / name)
        write_checksums(folder)

    @classmethod
    def load(cls, folder: str | Path, space: SmallSpace) -> SmallSpaceSurrogate:
        """A surrogate written by :meth:`save` (no pickle). Its ensembles are checked to be complete here and
        read on first use."""
        folder = Path(folder)
        record = read_record(folder)
        lacking = outdated(record)
        if lacking:
            raise ValueError(f"the surrogate in {folder} was built by an older plm_nasbench (no {', '.join(lacking)} "
                             "in surrogate.json): rebuild it with python -m plm_nasbench.surrogates")
        if record["architecture"] != space.architecture.to_dict():
            raise ValueError(f"the surrogate in {folder} was fitted for another architecture than {space!r}")
        ensembles = {name: folder / name for name in record["objectives"]}
        for path in ensembles.values():
            EnsembleRegressor.check_saved(path)
        metadata = {k: v for k, v in record.items()
                    if k not in ("space", "architecture", "max_epoch", "flops_moments", "train_x", "objectives")}
        return cls(space, ensembles, np.array(record["train_x"]), np.array(record["flops_moments"]),
                   record["max_epoch"], metadata)
