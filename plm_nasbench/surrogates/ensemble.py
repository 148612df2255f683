"""An ensemble regressor with an uncertainty: XGBoost members by default, scikit-learn ones pluggable.

Each member is fitted on a bootstrap resample with its own seed; the prediction is the members' mean
and the uncertainty their standard deviation. XGBoost ensembles save to a folder of gzip-compressed
XGBoost UBJSON models (XGBoost's own binary JSON format) plus ``ensemble.json`` (their SHA-256s, checked on
loading), and load without pickle. Ensembles of scikit-learn members (``member_factory``) fit and predict, for
experiments; they cannot be saved, since scikit-learn has no stable pickle-free format.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_directory

#: 60 trees of depth 6 at learning rate 0.15: on the RTE hold-out as accurate as 400 trees at 0.05 (R^2 0.926
#: against 0.933) and 8x faster to predict (benchmarks/query_speed.py); in the cross-validations on the RTE and
#: MRPC grids no other setting tried is better on both (benchmarks/surrogate_variants.py --hyperparameters).
DEFAULT_PARAMS = {"n_estimators": 60, "max_depth": 6, "learning_rate": 0.15, "subsample": 0.9,
                  "min_child_weight": 1.0, "tree_method": "hist", "n_jobs": 2}


def xgboost_member(seed: int, **params: Any) -> Any:
    """One XGBoost regressor with the default hyperparameters (overridable)."""
    from xgboost import XGBRegressor

    return XGBRegressor(**{**DEFAULT_PARAMS, **params}, random_state=seed)


class EnsembleRegressor:
    """``fit(X, y)`` then ``predict(X)`` (mean) or ``predict_with_std(X)``; plain numpy in and out.

    ``member_factory(seed)`` builds one unfitted regressor with ``fit``/``predict`` (default: XGBoost).
    """

    def __init__(self, n_members: int = 3, member_factory: Callable[[int], Any] | None = None,
                 seed: int = 0, bootstrap: bool = True) -> None:
        if isinstance(n_members, (bool, np.bool_)) or not isinstance(n_members, (int, np.integer)) or n_members < 1:
            raise ValueError(f"n_members must be a positive integer, got {n_members!r}")
        self.n_members, self.seed, self.bootstrap = int(n_members), seed, bootstrap
        self.member_factory = member_factory or xgboost_member
        self.members: list[Any] = []
        self.n_features: int | None = None

    @staticmethod
    def _check_x(X: Any, n_features: int | None) -> np.ndarray:
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2:
            raise ValueError(f"X must be a 2-D array (samples x features), got shape {X.shape}")
        if n_features is not None and X.shape[1] != n_features:
            raise ValueError(f"X has {X.shape[1]} features; the surrogate was fitted on {n_features}")
        if not np.isfinite(X).all():
            raise ValueError("X holds NaN or infinite values")
        return X

    def fit(self, X: Any, y: Any) -> EnsembleRegressor:
        """Fit every member (on a bootstrap resample of the rows when ``bootstrap``)."""
        X = self._check_x(X, None)
        y = np.asarray(y, dtype=np.float64)
        if y.shape != (len(X),):
            raise ValueError(f"y must have shape ({len(X)},), got {y.shape}")
        if not np.isfinite(y).all():
            raise ValueError("y holds NaN or infinite values: drop those rows first")
        rng = np.random.default_rng(self.seed)
        self.members = []
        for k in range(self.n_members):
            rows = rng.integers(0, len(X), len(X)) if self.bootstrap else np.arange(len(X))
            self.members.append(self.member_factory(self.seed + k).fit(X[rows], y[rows]))
        self.n_features = X.shape[1]
        return self

    def _predictions(self, X: Any) -> np.ndarray:
        if not self.members:
            raise RuntimeError("the surrogate is not fitted: call fit(X, y) or load it first")
        X = self._check_x(X, self.n_features)
        return np.stack([self._predict_member(m, X) for m in self.members])

    @staticmethod
    def _predict_member(member: Any, X: np.ndarray) -> np.ndarray:
        if hasattr(member, "get_booster"):
            return member.get_booster().inplace_predict(X)
        return np.asarray(member.predict(X), dtype=np.float64)

    def predict(self, X: Any) -> np.ndarray:
        """Mean prediction of the members."""
        return self._predictions(X).mean(axis=0)

    def predict_with_std(self, X: Any) -> tuple[np.ndarray, np.ndarray]:
        """Mean prediction and the members' standard deviation (the uncertainty)."""
        predictions = self._predictions(X)
        return predictions.mean(axis=0), predictions.std(axis=0)

    def save(self, folder: str | Path, metadata: dict[str, Any] | None = None) -> None:
        """Write the members as gzip-compressed XGBoost UBJSON files plus ``ensemble.json`` (XGBoost members only),
        which records each member file's SHA-256 and the XGBoost version that wrote it."""
        import xgboost

        if not self.members or not all(hasattr(m, "get_booster") for m in self.members):
            raise TypeError("only fitted XGBoost ensembles can be saved (a stable, pickle-free format); "
                            "scikit-learn members are for experiments")
        files = {f"member{k}.ubj.gz": gzip.compress(bytes(m.get_booster().save_raw(raw_format="ubj")), mtime=0)
                 for k, m in enumerate(self.members)}
        record = {"n_members": self.n_members, "n_features": self.n_features, "seed": self.seed,
                  "bootstrap": self.bootstrap, "format": "xgboost-ubj-gzip", "xgboost": xgboost.__version__,
                  "sha256": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
                  **(metadata or {})}
        with atomic_directory(folder) as staging:
            for name, data in files.items():
                (staging / name).write_bytes(data)
            (staging / "ensemble.json").write_text(json.dumps(record, indent=2, default=str))

    @staticmethod
    def _saved_meta(folder: Path) -> dict[str, Any]:
        """``ensemble.json`` of the ensemble saved in ``folder``, with the checksums of its member files present."""
        meta_file = folder / "ensemble.json"
        if not meta_file.is_file():
            raise FileNotFoundError(f"{meta_file} does not exist: not a saved surrogate")
        try:
            meta = json.loads(meta_file.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{meta_file} is not valid JSON ({err}): the surrogate is damaged; rebuild it with "
                             "python -m plm_nasbench.surrogates (or restore it from git)") from err
        if "sha256" not in meta:
            raise ValueError(f"{meta_file} records no checksums of its members: an older plm_nasbench saved it; "
                             "rebuild it with python -m plm_nasbench.surrogates")
        if len(meta["sha256"]) != meta.get("n_members"):
            raise ValueError(f"{meta_file} records {len(meta['sha256'])} member checksums for {meta.get('n_members')} "
                             "members: the surrogate is damaged; rebuild it with python -m plm_nasbench.surrogates "
                             "(or restore it from git)")
        missing = [name for name in meta["sha256"] if not (folder / name).is_file()]
        if missing:
            raise FileNotFoundError(f"the ensemble in {folder} lacks {', '.join(missing)}")
        return meta

    @staticmethod
    def _member_bytes(folder: Path, name: str, expected: str) -> bytes:
        """The bytes of member file ``name``, checked against the SHA-256 ``ensemble.json`` records for it."""
        data = (folder / name).read_bytes()
        actual = hashlib.sha256(data).hexdigest()
        if actual != expected:
            raise ValueError(f"{folder / name}: SHA-256 is {actual}, ensemble.json records {expected}; the file is "
                             "damaged or was changed: rebuild the surrogates with python -m plm_nasbench.surrogates "
                             "(or restore it from git)")
        return data

    @classmethod
    def check_saved(cls, folder: str | Path) -> dict[str, Any]:
        """The metadata of the ensemble saved in ``folder``, every member file checked against the SHA-256
        recorded for it: FileNotFoundError naming what is missing, ValueError naming a damaged file."""
        folder = Path(folder)
        meta = cls._saved_meta(folder)
        for name, expected in meta["sha256"].items():
            cls._member_bytes(folder, name, expected)
        return meta

    @classmethod
    def load(cls, folder: str | Path) -> tuple[EnsembleRegressor, dict[str, Any]]:
        """An ensemble saved with :meth:`save`, and its metadata (each member file read once and checked as in
        :meth:`check_saved`)."""
        import xgboost

        folder = Path(folder)
        meta = cls._saved_meta(folder)
        ensemble = cls(meta["n_members"], seed=meta["seed"], bootstrap=meta["bootstrap"])
        ensemble.n_features = meta["n_features"]
        for name, expected in meta["sha256"].items():
            member = xgboost.XGBRegressor()
            member.load_model(bytearray(gzip.decompress(cls._member_bytes(folder, name, expected))))
            ensemble.members.append(member)
        return ensemble, meta
