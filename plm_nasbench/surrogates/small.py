"""The surrogate of one ``small``-space table: learned objectives from ensembles, analytic ones computed exactly.

Features are the space's ``encode()`` vectors (plus epoch / max epoch when the table has several
fidelities). ``num_params`` and ``params_fraction`` come from the exact parameter formulas; ``flops``
from the FLOPs formula (:mod:`plm_nasbench.evaluation.flops`) with the test split's length moments,
which are recovered exactly from the table's FLOPs column. Every learned prediction carries the
ensemble's standard deviation, and every configuration an out-of-data flag: True when its encoding is
farther from all training configurations than any training configuration is from its nearest neighbour.

Plateaus: a learned objective whose training values repeat one value exactly in at least
``PLATEAU_SHARE`` of the rows (sub-networks that predict one class for every input all have the
class-prior error) also gets a second model (one XGBoost member fitted on every row) on the 0/1 indicator of that value;
where it predicts at least 0.5 the surrogate answers the plateau value itself. Without it, near-equal predictions
for tied configurations would order at random, and on RTE (81% of the hold-out on the plateau) Kendall's
tau could not exceed about 0.6.

Materialisation: the ``small`` space is finite (139,867 configurations for MiniLM), so once the
ensembles have been asked about as much as predicting the whole space would cost (a call counts as
``len(rows)``, at least ``CALL_COST_ROWS`` for XGBoost's per-call overhead), the surrogate predicts every
configuration of that epoch once and answers from the resulting arrays from then on. The answers do not
change (the same features go through the same trees); repeated single queries and large batches get cheap.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..atomic import write_atomic
from ..objectives import OBJECTIVES
from ..spaces import SmallSpace
from .ensemble import EnsembleRegressor

LEARNED = tuple(name for name, o in OBJECTIVES.items() if o.kind == "learned")
FIELDS = ("num_layers", "num_heads", "num_units")
PLATEAU_SHARE = 0.1
PLATEAU_SUFFIX = ".plateau"
#: One call into the ensembles costs about what predicting this many rows in one batch does (XGBoost's
#: per-call overhead; benchmarks/query_speed.py measures both).
CALL_COST_ROWS = 300


def _moments_basis(space: SmallSpace, layers: np.ndarray, heads: np.ndarray, units: np.ndarray) -> np.ndarray:
    """Per-config coefficients of (sum T, sum T^2, number of sequences) in the FLOPs formula, per example."""
    a = space.architecture
    d, width = a.hidden_size, heads * a.head_size
    linear = layers * (2 * d * 3 * width + 2 * width * d + 4 * d * units)
    quadratic = layers * 4 * width
    head = np.full(len(layers), 2 * d * d + 2 * d * a.head.num_outputs, dtype=np.float64)
    return np.stack([linear, quadratic, head], axis=1).astype(np.float64)


class SmallSpaceSurrogate:
    """Predicts every objective of ``small``-space configurations of one (model, task, scheme, strategy)."""

    def __init__(self, space: SmallSpace, ensembles: dict[str, EnsembleRegressor | Path], train_x: np.ndarray,
                 flops_moments: np.ndarray, max_epoch: int | None, metadata: dict[str, Any]) -> None:
        """``ensembles``: by name, each fitted or the folder it was saved in (loaded on first use, so that a
        benchmark that never asks its surrogate never imports XGBoost)."""
        self.space, self.metadata = space, metadata
        self._ensembles = ensembles
        self.train_x, self.flops_moments, self.max_epoch = train_x, flops_moments, max_epoch
        a = space.architecture
        self._attention = np.array([a.attention_parameters(h) for h in range(a.num_heads + 1)], dtype=np.int64)
        self._ffn = np.array([a.ffn_parameters(u) for u in range(a.intermediate_size + 1)], dtype=np.int64)
        self._tree = None
        self._radius = float(metadata.get("ood_radius", 0.0))
        self._asked: dict[int, int] = {}  # epoch -> rows asked of the ensembles so far (at least CALL_COST_ROWS a call)
        self._materialised: dict[int, dict[str, np.ndarray]] = {}

    # -- construction ----------------------------------------------------------------------------
    @classmethod
    def fit(cls, space: SmallSpace, table: pd.DataFrame, objectives: tuple[str, ...] = LEARNED,
            n_members: int = 3, seed: int = 0, member_factory: Any = None) -> SmallSpaceSurrogate:
        """Fit one ensemble per learned objective on the rows of ``table`` (one ``small`` table)."""
        if not isinstance(space, SmallSpace):
            raise TypeError(f"SmallSpaceSurrogate needs the small space, got {type(space).__name__}")
        epochs = sorted(table["epoch"].unique())
        max_epoch = int(epochs[-1]) if len(epochs) > 1 else None
        x = cls._features(space, table[list(FIELDS)].to_numpy(), table["epoch"].to_numpy(), max_epoch)
        ensembles, skipped, plateaus = {}, {}, {}
        for name in objectives:
            y = table[OBJECTIVES[name].column].to_numpy(dtype=np.float64)
            keep = np.isfinite(y)
            configs = len(table.loc[keep, list(FIELDS)].drop_duplicates())
            if configs < 10:  # e.g. latency measured only for the unpruned model so far
                skipped[name] = f"only {configs} configurations with values ({int(keep.sum())} rows)"
                continue
            ensembles[name] = EnsembleRegressor(n_members, member_factory, seed).fit(x[keep], y[keep])
            values, counts = np.unique(y[keep], return_counts=True)
            if counts.max() >= PLATEAU_SHARE * keep.sum():
                plateaus[name] = float(values[counts.argmax()])
                on_plateau = (y[keep] == plateaus[name]).astype(np.float64)
                ensembles[name + PLATEAU_SUFFIX] = EnsembleRegressor(1, member_factory, seed, bootstrap=False).fit(
                    x[keep], on_plateau)  # a decision, not an uncertainty: one member on every row
        basis = _moments_basis(space, *(table[f].to_numpy(dtype=np.float64) for f in FIELDS))
        moments = np.linalg.lstsq(basis, table["flops"].to_numpy(dtype=np.float64), rcond=None)[0]
        unique_x = np.unique(x, axis=0)
        metadata = {"rows": int(len(table)), "configs": int(len(unique_x)), "skipped": skipped,
                    "plateaus": plateaus, "ood_radius": cls._nearest_neighbour_radius(unique_x)}
        return cls(space, ensembles, unique_x, moments, max_epoch, metadata)

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
        """Every objective (and ``<name>_std`` for learned ones, plus ``out_of_data``) for rows of
        (num_layers, num_heads, num_units) integer ``fields``; ValueError naming a field outside the space."""
        fields = np.asarray(fields, dtype=np.int64).reshape(-1, 3)
        highs = np.array(self._shape()) - 1
        outside = (fields < 0) | (fields > highs)
        if outside.any():
            row, column = np.argwhere(outside)[0]
            raise ValueError(f"{list(self.space.bounds)[column]} must be in [0, {highs[column]}], got {fields[row, column]}")
        if self.max_epoch is not None:
            epoch = self.max_epoch if epoch is None else epoch
            if not 1 <= epoch <= self.max_epoch:
                raise ValueError(f"epoch must be in [1, {self.max_epoch}], got {epoch}")
        key = epoch if self.max_epoch is not None else 0  # weight-sharing surrogates have no epoch feature
        if key not in self._materialised:
            self._asked[key] = self._asked.get(key, 0) + max(len(fields), CALL_COST_ROWS)
            if self._asked[key] < self.space.num_configs:
                return self._predict_rows(fields, epoch)
            self._materialised[key] = self._predict_rows(self._all_fields(), epoch)
        index = np.ravel_multi_index(tuple(fields.T), self._shape())
        return {name: values[index] for name, values in self._materialised[key].items()}

    def _shape(self) -> tuple[int, ...]:
        """The number of values of each field (every field starts at 0)."""
        return tuple(high + 1 for _, high in self.space.bounds.values())

    def _all_fields(self) -> np.ndarray:
        """Every configuration of the space, in the order of ``np.ravel_multi_index`` over :meth:`_shape`."""
        return np.stack(np.unravel_index(np.arange(self.space.num_configs), self._shape()), axis=1)

    def _predict_rows(self, fields: np.ndarray, epoch: int | None) -> dict[str, np.ndarray]:
        """What :meth:`predict` answers, computed through the ensembles."""
        layers, heads, units = fields.T
        x = self._features(self.space, fields, np.full(len(fields), epoch or 0), self.max_epoch)
        out: dict[str, np.ndarray] = {}
        for name in OBJECTIVES:
            if name in self.ensembles:
                out[name], out[f"{name}_std"] = self.ensembles[name].predict_with_std(x)
                if name + PLATEAU_SUFFIX in self.ensembles:
                    on_plateau = self.ensembles[name + PLATEAU_SUFFIX].predict(x) >= 0.5
                    out[name] = np.where(on_plateau, self.metadata["plateaus"][name], out[name])
            elif OBJECTIVES[name].kind == "learned":
                out[name] = out[f"{name}_std"] = np.full(len(fields), np.nan)
        a = self.space.architecture
        params = a.fixed_parameters() + layers * (self._attention[heads] + self._ffn[units])
        out["num_params"] = params
        out["params_fraction"] = params / a.total_parameters()
        basis = _moments_basis(self.space, layers.astype(np.float64), heads.astype(np.float64), units.astype(np.float64))
        out["flops"] = basis @ self.flops_moments
        out["out_of_data"] = self.out_of_data(x[:, :3])
        return out

    def out_of_data(self, x: np.ndarray) -> np.ndarray:
        """Whether each encoded configuration lies farther from the training data than its own spacing."""
        from scipy.spatial import cKDTree

        if self._tree is None:
            self._tree = cKDTree(self.train_x[:, :3])
        distances, _ = self._tree.query(x, k=1)
        return distances > self._radius + 1e-9

    # -- storage ---------------------------------------------------------------------------------
    def save(self, folder: str | Path) -> None:
        """Write every ensemble (XGBoost JSON) and ``surrogate.json`` (training points, FLOPs moments, metadata)."""
        folder = Path(folder)
        for name, ensemble in self.ensembles.items():
            ensemble.save(folder / name)
        record = {"space": "small", "architecture": self.space.architecture.to_dict(), "max_epoch": self.max_epoch,
                  "flops_moments": self.flops_moments.tolist(), "train_x": self.train_x.round(8).tolist(),
                  "objectives": sorted(self.ensembles), **self.metadata}
        write_atomic(folder / "surrogate.json", lambda p: p.write_text(json.dumps(record)))
        for stale in folder.iterdir():  # ensembles of an earlier fit that this one no longer has
            if stale.is_dir() and stale.name not in self.ensembles:
                shutil.rmtree(stale)

    @classmethod
    def load(cls, folder: str | Path, space: SmallSpace) -> SmallSpaceSurrogate:
        """A surrogate written by :meth:`save` (no pickle). Its ensembles are checked to be complete here and
        read on first use."""
        folder = Path(folder)
        meta_file = folder / "surrogate.json"
        if not meta_file.is_file():
            raise FileNotFoundError(f"{meta_file} does not exist: no surrogate saved in {folder}")
        record = json.loads(meta_file.read_text())
        if record["architecture"] != space.architecture.to_dict():
            raise ValueError(f"the surrogate in {folder} was fitted for another architecture than {space!r}")
        ensembles = {name: folder / name for name in record["objectives"]}
        for path in ensembles.values():
            EnsembleRegressor.check_saved(path)
        metadata = {k: v for k, v in record.items()
                    if k not in ("space", "architecture", "max_epoch", "flops_moments", "train_x", "objectives")}
        return cls(space, ensembles, np.array(record["train_x"]), np.array(record["flops_moments"]),
                   record["max_epoch"], metadata)
