"""``Benchmark``: one object answering queries for a (task, model, space, scheme, strategy) from the tables,
the surrogates, or the real evaluator."""

from __future__ import annotations

import functools
import json
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..architecture import MODELS, TASK_HEADS
from ..objectives import OBJECTIVES, Objective, objective_names
from ..paths import data_dir as default_data_dir
from ..paths import DATA_ENV, SURROGATES_ENV, surrogates_dir
from ..protocol import pareto_mask
from ..spaces import SEARCH_SPACES, SearchSpace, SmallSpace, get_search_space
from ..tables import MANIFEST_FILE, SCHEMES, Manifest, served_rows, supernetwork_costs, supernetwork_seconds
from .table import ConfigNotInTableError, TableIndex, describe_config, frame_configs, integer_columns

if TYPE_CHECKING:
    from ..surrogates import SmallSpaceSurrogate

BACKENDS = ("auto", "table", "surrogate", "live")
#: The super-network strategies of :mod:`plm_nasbench.training.strategies`, named here so that the query path
#: does not import torch (a test checks that the two agree).
STRATEGIES = ("standard", "random", "random-linear", "sandwich", "kd", "full")


def _folder(name: str, given: str | Path | None, env: str, default: Path, check: bool = True,
            required: bool = True) -> Path:
    """The ``data`` or ``surrogates`` folder: ``given``, else ``default`` (``$env``, else the package's). With
    ``check``, FileNotFoundError where it does not exist and was named (by ``given`` or ``$env``) or is
    ``required``."""
    folder = Path(given) if given is not None else default
    named = given is not None or os.environ.get(env)
    if check and not folder.is_dir() and (named or required):
        if named:
            raise FileNotFoundError(f"{name} folder {str(folder)!r} does not exist (it came from "
                                    f"{f'{name}= or --{name}' if given is not None else f'${env}'})")
        raise FileNotFoundError(f"the package's {name} folder {str(folder)!r} does not exist: plm_nasbench reads its "
                                f"shipped tables and surrogates from the source checkout, so install it editable "
                                f"from one (pip install -e .), or name a folder with {name}= or ${env}")
    return folder


def _serves(folder: Path, manifest: Manifest, read: Any) -> bool:
    """Whether the surrogate saved in ``folder`` extends the tables of ``manifest`` (a damaged one does not: the
    listing goes on, and loading it names the damaged file)."""
    from ..surrogates.build import fitted_elsewhere

    try:
        return fitted_elsewhere(folder, manifest, read) is None
    except (ValueError, FileNotFoundError):
        return False


def _check(name: str, value: Any, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; known: {', '.join(allowed)}")


def _set_rows(frame: pd.DataFrame, column: str, rows: np.ndarray, values: np.ndarray) -> None:
    """Write ``values`` into ``column`` of ``frame`` at positions ``rows``, in place, first adding the column where
    it is missing (NaN, or False for ``out_of_data``)."""
    if column not in frame:
        frame[column] = np.zeros(len(frame), dtype=bool) if column == "out_of_data" else np.full(len(frame), np.nan)
    written = frame[column].to_numpy(copy=True)
    written[rows] = values
    frame[column] = written


class Benchmark:
    """Queries of sub-networks of ``model`` fine-tuned on ``task``.

    ``backend``: ``table`` (exact lookups), ``surrogate`` (``small`` space only: any configuration, with
    uncertainty), ``live`` (the real evaluator; needs the task data and takes minutes), or ``auto`` (the
    table, else the surrogate, which answers the mean over seeds only, so a query with a seed the table lacks
    raises; objectives a table row lacks (the latency of a table regenerated without its latency
    study) are predicted by the surrogate and the answer's ``source`` is ``table+surrogate``; only a
    surrogate fitted on the tables under ``data``, as they are now (for a standalone one: on the rows they serve
    now), joins them, others are left out with a warning). Tables come from ``data`` (default
    ``$PLM_NASBENCH_DATA``, else the package's ``data/``), surrogates from ``surrogates`` (default
    ``$PLM_NASBENCH_SURROGATES``, else ``surrogates/``), or ``surrogates`` is itself a fitted
    :class:`~plm_nasbench.surrogates.SmallSpaceSurrogate` (one with scikit-learn members, which are not saved;
    ``auto`` then fills the tables' gaps from it without checking what it learned from). Seeds: ``query(...,
    seed=s)`` answers seed ``s``'s row; ``seed=None`` answers the mean over the seeds the table holds
    (``n_seeds`` in the result says how many).
    ``epoch=None`` means the last fidelity. Weight sharing: ``supernetwork_space`` picks the super-network
    by the space whose sampler trained it (edition 1 trains on ``small`` and evaluates every space on it;
    its ``ws-own-*`` studies train one per space). Where a task's tables hold runs of several dtypes (a
    float32 comparison beside bf16 runs), the rows of the dtype with the most rows answer (a tie: the first by
    name, ``bfloat16`` before ``float32``).
    """

    def __init__(self, task: str, model: str = "minilm-l6-h384", space: str = "small",
                 scheme: str = "weight_sharing", strategy: str = "full", backend: str = "auto", *,
                 data: str | Path | None = None, surrogates: str | Path | SmallSpaceSurrogate | None = None,
                 data_dir: str | Path | None = None, device: str = "cpu", supernetwork_space: str = "small") -> None:
        _check("task", task, list(TASK_HEADS))
        _check("model", model, list(MODELS))
        _check("search space", space, list(SEARCH_SPACES))
        _check("scheme", scheme, SCHEMES)
        _check("backend", backend, BACKENDS)
        if data_dir is not None and not Path(data_dir).is_dir():
            raise FileNotFoundError(f"data_dir {str(data_dir)!r} is not a folder; it holds the task data that "
                                    "backend='live' trains and evaluates on, in the GLUE layout (rte/train.tsv ...)")
        if scheme == "weight_sharing":
            _check("strategy", strategy, STRATEGIES)
            _check("supernetwork_space", supernetwork_space, list(SEARCH_SPACES))
        elif strategy not in ("full", "none", None) or supernetwork_space not in ("small", None):
            given = [f"{name} ({value!r})" for name, value, default in (("strategy", strategy, ("full", "none", None)),
                     ("supernetwork_space", supernetwork_space, ("small", None))) if value not in default]
            raise ValueError(f"scheme='standalone' fine-tunes each sub-network alone, so it has no super-network: "
                             f"leave {' and '.join(given)} out (strategy 'none' and supernetwork_space None are "
                             "what the benchmark reports)")
        self.task, self.model, self.scheme, self.backend = task, model, scheme, backend
        #: The arguments that rebuild this benchmark (e.g. in worker processes).
        self.init_args = {"task": task, "model": model, "space": space, "scheme": scheme, "strategy": strategy,
                          "backend": backend, "data": data, "surrogates": surrogates, "data_dir": data_dir,
                          "device": device, "supernetwork_space": supernetwork_space}
        self.strategy = strategy if scheme == "weight_sharing" else "none"
        self.supernetwork_space = supernetwork_space if scheme == "weight_sharing" else None
        self.space: SearchSpace = get_search_space(space, model, task=task)
        reads_tables = backend in ("auto", "table") or (backend == "surrogate" and data is not None)
        self._data_root = _folder("data", data, DATA_ENV, default_data_dir(), check=reads_tables)
        given = None if surrogates is None or isinstance(surrogates, (str, os.PathLike)) else surrogates
        if given is not None and backend not in ("auto", "surrogate"):
            raise ValueError(f"surrogates={type(given).__name__}(...) is asked by backend 'surrogate' or 'auto' "
                             f"only, not {backend!r}")
        self._surrogate_root = None if given is not None else _folder(
            "surrogates", surrogates, SURROGATES_ENV, surrogates_dir(), check=backend in ("auto", "surrogate"),
            required=backend == "surrogate")
        self._task_data_dir, self._device = data_dir, device
        self._index: TableIndex | None = None
        self._surrogate: Any = None
        self._left_out: Path | None = None  # the folder of a surrogate fitted on other tables than ``data``'s
        self._live: Any = None
        self._encoded: np.ndarray | None = None
        self._table_configs: list[dict[str, Any]] = []
        self._gaps: dict[tuple[int, int | None], tuple] = {}  # see _table_gaps
        # a surrogate backend given ``data`` checks that its surrogate learned from those tables
        self._manifest = Manifest.load(self._data_root) if reads_tables else None
        if backend in ("auto", "table"):
            self._index = self._load_table(required=backend == "table")
        if given is not None:
            self._surrogate = self._given_surrogate(given)
        elif backend == "surrogate" or (backend == "auto" and isinstance(self.space, SmallSpace)):
            self._surrogate = self._load_surrogate(required=backend == "surrogate")
        if backend == "auto" and self._index is None and self._surrogate is None:
            raise FileNotFoundError(f"{self._nothing_found()}; " + (
                f"the surrogate in {self._left_out} was left out (it learned from other tables)"
                if self._left_out else "no surrogate either"))
        self._fidelity_set = frozenset(self.fidelities)  # what every query's epoch is checked against

    # -- loading ---------------------------------------------------------------------------------
    def _nothing_found(self) -> str:
        trained = f", supernetwork_space={self.supernetwork_space!r}" if self.supernetwork_space else ""
        unlisted = "" if (self._data_root / MANIFEST_FILE).is_file() else (
            f" (it has no {MANIFEST_FILE}, which lists a data folder's tables with their checksums: copy it with the "
            "tables, or make the folder with `python -m generate merge`)")
        return (f"no table for task={self.task!r}, model={self.model!r}, space={self.space.name!r}, "
                f"scheme={self.scheme!r}, strategy={self.strategy!r}{trained} in {self._data_root}{unlisted}; "
                "`plm-nasbench info` lists what exists, `python -m generate` (in the source checkout) makes tables, "
                "backend='live' evaluates for real")

    def _load_table(self, required: bool) -> TableIndex | None:
        frame = served_rows(self._manifest, self.model, self.task, self.space.name, self.scheme, self.strategy,
                            self.supernetwork_space)
        if frame is None:
            if required:
                raise FileNotFoundError(self._nothing_found())
            return None
        return TableIndex(frame.drop(columns="_study"), self.space)

    def _given_surrogate(self, surrogate: Any) -> Any:
        """``surrogate``, a fitted :class:`~plm_nasbench.surrogates.SmallSpaceSurrogate` passed as ``surrogates=``
        (e.g. with scikit-learn members, which are not saved), once it fits this benchmark's space."""
        from ..surrogates import SmallSpaceSurrogate

        if not isinstance(surrogate, SmallSpaceSurrogate):
            raise TypeError(f"surrogates must be a folder (str or Path) or a fitted SmallSpaceSurrogate, got "
                            f"{type(surrogate).__name__}")
        if reason := self._outside_surrogates():
            raise ValueError(f"a SmallSpaceSurrogate cannot answer this benchmark: {reason}")
        if surrogate.space.architecture != self.space.architecture:
            raise ValueError(f"the surrogate was fitted for {surrogate.space!r}, not this benchmark's {self.space!r} "
                             f"(model {self.model!r}, task {self.task!r})")
        return surrogate

    def _outside_surrogates(self) -> str | None:
        """Why no surrogate can answer this benchmark (None where one can): they answer the small space of a
        super-network trained on it."""
        if self.supernetwork_space not in (None, "small"):
            return ("surrogates exist for super-networks trained on the small space only, not "
                    f"supernetwork_space={self.supernetwork_space!r}")
        if not isinstance(self.space, SmallSpace):
            return f"surrogates exist for the small space only, not space={self.space.name!r}"
        return None

    def _load_surrogate(self, required: bool) -> Any:
        if reason := self._outside_surrogates():
            if required:
                raise ValueError(f"{reason}; use backend='table' or 'live'")
            return None
        from ..surrogates import SmallSpaceSurrogate
        from ..surrogates.build import fitted_elsewhere, surrogate_folder

        folder = surrogate_folder(self._surrogate_root, self.model, self.scheme, self.strategy, self.task)
        if not (folder / "surrogate.json").is_file():
            if required:
                raise FileNotFoundError(f"no surrogate for {self.task}/{self.scheme}/{self.strategy} in {folder} "
                                        "(`Benchmark.available()` lists the benchmarks that have one); surrogates "
                                        "are built from a task's `small` grid or standalone curves by `python -m "
                                        "plm_nasbench.surrogates`")
            return None
        if self._manifest is not None and (reason := fitted_elsewhere(folder, self._manifest)):
            if self.backend == "surrogate":  # asked for alone: it answers, but not about those tables
                warnings.warn(f"the surrogate in {folder} did not learn from the tables in {self._data_root}: "
                              f"{reason}. Its answers are about the tables it learned from; to ask one fitted on "
                              f"these, build it with `python -m plm_nasbench.surrogates --data {self._data_root} "
                              f"--model {self.model} --out DIR` and pass surrogates=DIR", stacklevel=3)
                return SmallSpaceSurrogate.load(folder, self.space)
            warnings.warn(f"the surrogate in {folder} is left out: {reason}. backend='auto' answers from the tables "
                          f"in {self._data_root} alone; to extend them, build surrogates on them with `python -m "
                          f"plm_nasbench.surrogates --data {self._data_root} --model {self.model} --out DIR` and pass "
                          "surrogates=DIR (backend='surrogate' asks a surrogate alone)", stacklevel=3)
            self._left_out = folder
            return None
        return SmallSpaceSurrogate.load(folder, self.space)

    # -- what exists -----------------------------------------------------------------------------
    @classmethod
    def available(cls, data: str | Path | None = None, surrogates: str | Path | None = None) -> pd.DataFrame:
        """Every benchmark the tables under ``data`` answer (default: the package's): one row per set of
        ``Benchmark(task, model, space, scheme, strategy, supernetwork_space=...)`` arguments, with the table rows
        it answers from (``table_rows``: of one dtype and one super-network per seed, as it loads them), the
        studies they come from, their ``dtype``, the ``hardware`` that ran them (their training and evaluation
        times, hence ``runtime``, are that hardware's: several mean timings of several machines; latency and memory
        come from the latency tables, whose machines the manifest records) and whether a surrogate fitted on these tables (the
        versions ``data`` holds) extends it to the whole space. A table the manifest lists that the folder lacks (a
        partial copy) leaves out the benchmarks it serves, with a warning naming it; a damaged one raises."""
        from ..surrogates.build import surrogate_folder

        manifest = Manifest.load(_folder("data", data, DATA_ENV, default_data_dir()))
        surrogate_root = _folder("surrogates", surrogates, SURROGATES_ENV, surrogates_dir(), required=False)
        keys = set()
        for entry in manifest.tables.values():
            if entry.get("scheme") not in SCHEMES:  # latency tables answer no benchmark of their own
                continue
            strategies = entry["strategy"] if isinstance(entry["strategy"], list) else [entry["strategy"]]
            keys |= {(entry["task"], entry["model"], entry["search_space"], entry["scheme"], strategy,
                      entry.get("supernetwork_space")) for strategy in strategies}
        records, missing = [], set()
        read = functools.lru_cache(maxsize=None)(manifest.read)  # a table serving several benchmarks is read once
        for task, model, space, scheme, strategy, trained_on in sorted(keys, key=str):
            try:
                with warnings.catch_warnings():  # rows left out are counted out here, and named when one loads
                    warnings.simplefilter("ignore")
                    rows = served_rows(manifest, model, task, space, scheme, strategy, trained_on, read)
            except FileNotFoundError as err:  # a partial copy of the data folder: list what its files answer
                missing |= {p for p in manifest.find(model=model, task=task, search_space=space, scheme=scheme,
                                                     strategy=strategy) if not (manifest.root / p).is_file()} or {str(err)}
                continue
            if rows is None:
                continue
            folder = surrogate_folder(surrogate_root, model, scheme, strategy, task)
            surrogate = (space == "small" and trained_on in (None, "small") and (folder / "surrogate.json").is_file()
                         and _serves(folder, manifest, read))
            records.append({"task": task, "model": model, "space": space, "scheme": scheme, "strategy": strategy,
                            "supernetwork_space": trained_on, "table_rows": len(rows),
                            "studies": ", ".join(pd.unique(rows["_study"])), "dtype": rows["dtype"].iloc[0],
                            "hardware": "; ".join(sorted(set(rows["hardware"]))), "surrogate": surrogate})
        if missing:
            warnings.warn(f"{len(missing)} table(s) that {manifest.root / MANIFEST_FILE} lists are not in that folder "
                          f"({', '.join(sorted(missing))}); the benchmarks they serve are not listed", stacklevel=2)
        columns = ["task", "model", "space", "scheme", "strategy", "supernetwork_space", "table_rows", "studies",
                   "dtype", "hardware", "surrogate"]
        frame = pd.DataFrame(records, columns=columns)
        frame["supernetwork_space"] = pd.Series([r["supernetwork_space"] for r in records], dtype=object)
        return frame

    # -- metadata --------------------------------------------------------------------------------
    @property
    def objectives(self) -> dict[str, dict[str, Any]]:
        """Name -> direction, unit, kind, description, bounds over the table (None without a table, or where it
        holds no value) and the hypervolume reference point."""
        out = {}
        for name, objective in OBJECTIVES.items():
            entry: dict[str, Any] = {"minimise": objective.minimise, "unit": objective.unit, "kind": objective.kind,
                                     "description": objective.description, "column": objective.column, "bounds": None}
            if self._index is not None:
                column = self._index.frame[objective.column].to_numpy(dtype=np.float64)
                finite = column[np.isfinite(column)]
                entry["bounds"] = (float(finite.min()), float(finite.max())) if len(finite) else None
            entry["reference_point"] = 2.0  # after quantile normalisation to [0, 1] (paper Section 4.1)
            out[name] = entry
        return out

    @property
    def answered_objectives(self) -> tuple[str, ...]:
        """The objectives this benchmark has a value for wherever it answers: the analytic ones, those its surrogate
        learned (it answers off the table, and ``auto`` fills the table's gaps with them), and, answering from a
        table alone, those every table row holds (``live``: all of them)."""
        if self.backend == "live":
            return tuple(OBJECTIVES)
        learned = set(self._surrogate.learned) if self._surrogate is not None and self.backend != "table" else set()
        complete = self._index is not None and not learned

        def answered(name: str, objective: Objective) -> bool:
            return (objective.kind == "analytic" or name in learned
                    or complete and bool(self._index.frame[objective.column].notna().all()))

        return tuple(name for name, objective in OBJECTIVES.items() if answered(name, objective))

    @property
    def covers_space(self) -> bool:
        """Whether every configuration of the space can be answered (a surrogate is loaded)."""
        return self._surrogate is not None

    @property
    def seeds(self) -> list[int]:
        """Seeds the table holds."""
        return self._index.seeds.tolist() if self._index is not None else []

    @property
    def fidelities(self) -> list[int]:
        """Epochs the table holds (weight sharing: the super-network's epochs only); ``live``: those the real
        evaluator answers (the shipped tables' recipe)."""
        if self.backend == "live":
            from .live import DEFAULT_RECIPE

            epochs = DEFAULT_RECIPE["epochs"]
            return [epochs] if self.scheme == "weight_sharing" else list(range(1, epochs + 1))
        if self._index is not None:
            return self._index.epochs.tolist()
        return self._surrogate.fidelities if self._surrogate else []

    @functools.cached_property
    def supernetwork_cost(self) -> float:
        """Weight sharing: seconds the super-network took to fine-tune, paid once before any sub-network is
        evaluated (the mean over the table's seeds, or the one recorded with the surrogate); 0 for standalone. A
        network costs the same in every benchmark on it: the least training time its rows record in any table of
        the data folder (:func:`~plm_nasbench.tables.supernetwork_costs`; read on first use)."""
        if self.scheme != "weight_sharing":
            return 0.0
        if self._index is not None:
            costs = supernetwork_costs(self._manifest, self.model, self.task)
            seconds = supernetwork_seconds(self._index.frame, costs)
        else:
            seconds = self._surrogate.supernetwork_train_time if self._surrogate is not None else None
        return seconds if seconds is not None else 0.0

    def __repr__(self) -> str:
        return (f"Benchmark(task={self.task!r}, model={self.model!r}, space={self.space.name!r}, scheme={self.scheme!r}, "
                f"strategy={self.strategy!r}, backend={self.backend!r}"
                + (f", supernetwork_space={self.supernetwork_space!r})" if self.supernetwork_space not in (None, "small")
                   else ")"))

    # -- queries ---------------------------------------------------------------------------------
    def _off_table_hint(self, seed: int | None = None) -> str:
        """What answers a configuration (with ``seed``) the table does not hold, for this benchmark."""
        if seed is not None:  # the table lacks that seed, or that seed of the configuration
            return "query with seed=None for the mean over the seeds the table holds" + (
                " (off the table the surrogate predicts that mean)"
                if self.backend != "table" and self._surrogate is not None else "")
        if self.backend == "table" and isinstance(self.space, SmallSpace) and self.supernetwork_space in (None, "small"):
            return ("backend='surrogate' or 'auto' predicts it where a surrogate exists (`Benchmark.available()` "
                    "lists them); backend='live' evaluates it for real")
        if self._left_out is not None:
            return (f"the surrogate in {self._left_out} was left out (see the warning when this benchmark was made: "
                    "rebuild the surrogates with `python -m plm_nasbench.surrogates`); backend='live' evaluates it "
                    "for real")
        return ("no surrogate covers this benchmark (`Benchmark.available()` lists those that have one): "
                "`nearest_config(config)` gives the table's nearest configuration, backend='live' evaluates it for "
                "real")

    def _check_epoch_and_seed(self, epoch: Any, seed: Any) -> None:
        """A ValueError for an ``epoch`` or ``seed`` that is neither None nor an integer; a
        :class:`ConfigNotInTableError` for an epoch that is not one of :attr:`fidelities` (the surrogate answers
        only those too)."""
        for name, value in (("epoch", epoch), ("seed", seed)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer))):
                raise ValueError(f"{name} must be an integer or None, got {value!r} ({type(value).__name__})")
        if epoch is not None and epoch not in self._fidelity_set:
            raise ConfigNotInTableError(f"epoch {epoch} is not a fidelity of {self!r}; fidelities: {self.fidelities}"
                                        + (" (weight sharing: the super-network's epochs)"
                                           if self.scheme == "weight_sharing" else ""))

    def _row_config(self, row: pd.Series) -> dict[str, Any]:
        """The configuration a DataFrame row holds (see :func:`frame_configs`)."""
        configs = frame_configs(self.space, pd.DataFrame([row]))
        return configs.iloc[0].to_dict() if isinstance(configs, pd.DataFrame) else configs[0]

    def query(self, config: Mapping[str, Any], epoch: int | None = None, seed: int | None = None) -> dict[str, Any]:
        """Every objective of one configuration (a mapping of the space's fields, or a row of a DataFrame that
        :meth:`query_many` takes), plus ``epoch``, ``seed``, ``n_seeds`` and ``source``."""
        self._check_epoch_and_seed(epoch, seed)
        if isinstance(config, pd.Series):
            config = self._row_config(config)
        if self.backend == "live":
            return self._live_query(config, epoch, seed)
        if self._index is not None:
            try:
                result = self._index.lookup(config, epoch, seed)
            except ConfigNotInTableError as err:
                if self.backend == "table" or self._surrogate is None or seed is not None:
                    raise ConfigNotInTableError(f"{err}; {self._off_table_hint(seed)}") from None
            else:
                if any(result[name] != result[name] for name in self._fillable()):  # NaN: the table lacks it
                    gap = self._table_gaps(result["epoch"], seed)[2].get(self._index.code(config))
                    if gap:
                        result.update(gap, source="table+surrogate")
                return result
        valid = self.space.validate(config)  # first: the error for one configuration names no position
        predicted = self._surrogate_predict(self._fields([valid]), epoch, seed)
        return {name: values[:1].tolist()[0] for name, values in predicted.items()}  # Python scalars

    def query_many(self, configs: Iterable[Mapping[str, Any]] | pd.DataFrame, epoch: int | None = None,
                   seed: int | None = None) -> pd.DataFrame:
        """Objectives of many configurations (any iterable of mappings or DataFrame rows, or a DataFrame with the
        space's fields or a ``config`` column of JSON, such as :meth:`table` returns: see :func:`frame_configs`)
        as a DataFrame: one row each, in order, with the columns of :meth:`query` (every objective, ``epoch``,
        ``seed``, ``n_seeds``, ``source``); where the surrogate answers any, also its ``<objective>_std`` and
        ``out_of_data`` columns (NaN and False on table rows). A DataFrame's index is kept, so the answers align
        with it (assigned as columns, or ``pd.concat(axis=1)``; a join on a non-unique index multiplies rows)."""
        if isinstance(configs, Mapping):
            raise TypeError("query_many takes a sequence of configurations or a DataFrame, got one configuration "
                            "(a mapping): use query() for one")
        if isinstance(configs, (str, bytes)):
            raise TypeError(f"query_many takes a sequence of configurations or a DataFrame, got the string {configs!r}")
        index = None
        if isinstance(configs, pd.DataFrame):
            index, configs = configs.index, frame_configs(self.space, configs)
        else:  # an iterator is read once; arrays and Series of mappings become a list
            configs = [self._row_config(c) if isinstance(c, pd.Series) else c for c in configs]
        self._check_epoch_and_seed(epoch, seed)
        frame = self._answer_many(configs, epoch, seed)
        if index is not None:
            frame.index = index
        return frame

    def _answer_many(self, configs: list[Mapping[str, Any]] | pd.DataFrame, epoch: int | None,
                     seed: int | None) -> pd.DataFrame:
        """:meth:`query_many`'s answers, indexed 0..n-1, for checked ``epoch`` and ``seed``."""
        if self.backend == "live":
            records = configs.to_dict("records") if isinstance(configs, pd.DataFrame) else configs
            return pd.DataFrame([self._live_query(c, epoch, seed) for c in records])
        if self._index is None:
            return self._surrogate_frame(configs, epoch, seed)
        codes = self._index.codes(configs)
        values, counts = self._index.lookup_many(codes, epoch, seed)
        found = counts > 0
        frame = pd.DataFrame(values, columns=list(OBJECTIVES))
        frame["epoch"] = self._index.epoch(epoch)
        frame["seed"] = pd.Series([seed] * len(frame), dtype=object)
        frame["n_seeds"] = counts
        frame["source"] = np.where(found, "table", "")
        rows = np.flatnonzero(found & frame[self._fillable()].isna().any(axis=1).to_numpy())
        if len(rows):
            gap_codes, gap_columns, _ = self._table_gaps(self._index.epoch(epoch), seed)
            at = np.minimum(np.searchsorted(gap_codes, codes[rows]), max(len(gap_codes) - 1, 0))
            hit = gap_codes[at] == codes[rows] if len(gap_codes) else np.zeros(len(rows), dtype=bool)
            rows, at = rows[hit], at[hit]
            for name, column in gap_columns.items():
                _set_rows(frame, name, rows, column[at])
            frame.loc[rows, "source"] = "table+surrogate"
        if not found.all():
            missing = np.flatnonzero(~found)
            records = configs.iloc[missing] if isinstance(configs, pd.DataFrame) else [configs[i] for i in missing]
            if self.backend == "table" or self._surrogate is None or seed is not None:
                first = records.iloc[0].to_dict() if isinstance(records, pd.DataFrame) else records[0]
                raise ConfigNotInTableError(
                    f"{len(missing)} of {len(codes)} configurations are not in the table"
                    f"{'' if seed is None else f' with seed {seed}'} (first: #{missing[0]}, "
                    f"{describe_config(first)}); {self._off_table_hint(seed)}")
            predicted = self._surrogate_predict(self._fields(records), epoch, seed)
            for column in [*OBJECTIVES, "epoch", "n_seeds", "source"]:  # column by column: a 2-D assignment of
                values = frame[column].to_numpy(copy=True)               # mixed types goes through objects
                values[missing] = predicted[column]
                frame[column] = values
            for column in [c for c in predicted if c.endswith("_std") or c == "out_of_data"]:
                _set_rows(frame, column, missing, predicted[column])
        frame["num_params"] = frame["num_params"].astype("Int64")
        return frame

    def _fillable(self) -> list[str]:
        """The objectives that ``auto`` predicts where a table row lacks them: those its surrogate learned."""
        return list(self._surrogate.learned) if self.backend == "auto" and self._surrogate is not None else []

    def _table_gaps(self, epoch: int, seed: int | None
                    ) -> tuple[np.ndarray, dict[str, np.ndarray], dict[int, dict[str, Any]]]:
        """What ``auto`` puts in the gaps of the table's answers at (``epoch``, ``seed``), for the table
        configurations whose answer lacks an objective the surrogate learned: their keys (sorted), then per column
        one value each (those objectives, the table's where it has one and the surrogate's prediction at its
        nearest epoch where not; the surrogate's ``_std`` of what it gave, NaN elsewhere, for the objectives it
        gave anywhere; its ``out_of_data`` flag), and the same per key as a mapping of what a single query adds.
        Predicted for every such configuration at once when first asked, so that :meth:`query` stays a lookup and
        :meth:`query_many` gives the same answers."""
        if (epoch, seed) not in self._gaps:
            configs = self._index.configs()
            codes = self._index.codes(configs)
            answers, counts = self._index.lookup_many(codes, epoch, seed)
            fillable = self._fillable()
            positions = [list(OBJECTIVES).index(name) for name in fillable]
            rows = np.flatnonzero((counts > 0) & np.isnan(answers[:, positions]).any(axis=1))
            columns: dict[str, np.ndarray] = {}
            gave = np.zeros(len(rows), dtype=bool)
            if len(rows):
                surrogate = self._surrogate
                nearest = min(surrogate.fidelities, key=lambda e: (abs(e - int(epoch)), e))  # its nearest epoch
                predicted = surrogate.predict(self._fields([configs[i] for i in rows]), nearest)
                for name, position in zip(fillable, positions):
                    table = answers[rows, position]
                    fill = np.isnan(table) & np.isfinite(predicted[name])
                    columns[name] = np.where(fill, predicted[name], table)
                    if fill.any():
                        columns[f"{name}_std"] = np.where(fill, predicted[f"{name}_std"], np.nan)
                    gave |= fill
                columns["out_of_data"] = predicted["out_of_data"]
            order = np.flatnonzero(gave)
            order = order[np.argsort(codes[rows[order]])]
            columns = {name: column[order] for name, column in columns.items()}
            by_code = {int(code): {name: column[j].item() for name, column in columns.items()
                                   if column[j] == column[j]}  # not the NaN _std of a value the table has
                       for j, code in enumerate(codes[rows[order]])}
            self._gaps[epoch, seed] = (codes[rows[order]], columns, by_code)
        return self._gaps[epoch, seed]

    def _fields(self, configs: Any) -> np.ndarray:
        """Validated ``small`` fields (rows of num_layers, num_heads, num_units) of configurations or a DataFrame."""
        if isinstance(configs, pd.DataFrame):
            return self.space.validate_arrays({f: configs[f].to_numpy() for f in self.space.bounds if f in configs})
        if (arrays := integer_columns(self.space, configs)) is not None:
            return self.space.validate_arrays(arrays)
        fields = list(self.space.bounds)
        return np.array([[valid[f] for f in fields] for valid in map(self.space.validate, configs)], dtype=np.int64)

    def _surrogate_predict(self, fields: np.ndarray, epoch: int | None, seed: int | None) -> dict[str, np.ndarray]:
        """The surrogate's answers (every objective, ``<name>_std``, ``out_of_data``, then ``epoch``, ``seed``,
        ``n_seeds`` and ``source``) for validated ``small`` fields."""
        if self._surrogate is None:
            raise ValueError(f"no surrogate loaded for {self!r}")
        if seed is not None:
            raise ValueError("surrogates predict the mean over seeds: query with seed=None")
        predicted = self._surrogate.predict(fields, epoch)
        n = len(fields)
        epoch = epoch if epoch is not None else self.fidelities[-1]
        return {**predicted, "epoch": np.full(n, epoch), "seed": np.full(n, None), "n_seeds": np.zeros(n, dtype=np.int64),
                "source": np.full(n, "surrogate", dtype=object)}

    def _surrogate_frame(self, configs: Any, epoch: int | None, seed: int | None) -> pd.DataFrame:
        return pd.DataFrame(self._surrogate_predict(self._fields(configs), epoch, seed))

    def _live_query(self, config: Mapping[str, Any], epoch: int | None, seed: int | None) -> dict[str, Any]:
        from .live import LiveEvaluator

        if self._live is None:
            self._live = LiveEvaluator(self.task, self.model, self.space, self.scheme, self.strategy,
                                       self._task_data_dir, self._device,
                                       supernetwork_space=self.supernetwork_space or "small")
        return self._live.query(config, epoch, seed)

    # -- tables and sampling ---------------------------------------------------------------------
    def _no_table(self) -> Exception:
        """The error of a method that needs the table, for a benchmark without one: a ValueError where the backend
        reads none, a FileNotFoundError where none was found."""
        if self.backend in ("surrogate", "live"):
            return ValueError(f"backend={self.backend!r} loads no table; Benchmark(..., backend='table' or "
                              "'auto') answers from it")
        return FileNotFoundError(self._nothing_found())

    def table(self) -> pd.DataFrame:
        """Every table row this benchmark serves (all seeds and fidelities)."""
        if self._index is None:
            raise self._no_table()
        return self._index.frame.drop(columns="_code").copy()

    def configs(self) -> list[dict[str, Any]]:
        """Every configuration the table holds."""
        if self._index is None:
            raise self._no_table()
        return [dict(c) for c in self._index.configs()]

    def nearest_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The table configuration closest to ``config`` in ``encode()`` space (Euclidean)."""
        if self._index is None:
            raise self._no_table()
        if self._encoded is None:
            self._table_configs = self.configs()
            self._encoded = np.stack([self.space.encode(c) for c in self._table_configs])
        distances = np.linalg.norm(self._encoded - self.space.encode(config), axis=1)
        return dict(self._table_configs[int(np.argmin(distances))])

    def sample(self, n: int, seed: int | None = None) -> list[dict[str, Any]]:
        """``n`` configurations: distinct ones drawn from the table's configurations when the backend answers from
        the table only (so every one can be looked up), else from the search space's sampler."""
        for name, value in (("n", n), ("seed", seed)):
            if (value is not None or name == "n") and (isinstance(value, bool) or not isinstance(value, (int, np.integer))
                                                       or value < 0):
                raise ValueError(f"{name} must be a non-negative integer{' or None' if name == 'seed' else ''}, "
                                 f"got {value!r}")
        rng = np.random.default_rng(seed)
        if self._index is not None and (self._surrogate is None or self.backend == "table"):
            configs = self._index.configs()
            if n > len(configs):
                raise ValueError(f"n = {n} is more than the {len(configs):,} configurations the table holds (this "
                                 "benchmark answers those only); ask for fewer, or use a backend with a surrogate")
            return [dict(configs[i]) for i in rng.choice(len(configs), n, replace=False)]
        return [self.space.sample(rng) for _ in range(n)]

    def pareto_front(self, objectives: Sequence[str] = ("valid_error", "params_fraction"),
                     epoch: int | None = None) -> pd.DataFrame:
        """The table's non-dominated configurations (seed means at ``epoch``) for ``objectives``, sorted by the first,
        with each one's values and ``source`` as :meth:`query_many` answers them: on ``auto``, values a table row
        lacks (latency not measured) are the surrogate's, the row's ``source`` is then ``table+surrogate`` and its
        ``<name>_std`` and ``out_of_data`` columns say what was predicted (present where any row was). Of
        configurations with equal values in every objective (the ``small`` space's 0-layer ones, one network),
        only the first in the table is listed.

        Configurations still without a value for one of ``objectives`` (``table`` backend: e.g. no latency
        measured) are left out before dominance is decided, with a warning that counts them."""
        objectives = objective_names(objectives)
        self._check_epoch_and_seed(epoch, None)
        if self._index is None:
            raise self._no_table()
        configs = self._index.configs()
        _, counts = self._index.lookup_many(self._index.codes(configs), epoch)
        configs = [config for config, count in zip(configs, counts) if count]  # those with rows at this epoch
        answers = self.query_many(configs, epoch=epoch)
        predicted = [c for c in answers.columns if c.endswith("_std") or c == "out_of_data"]
        frame = answers[[*OBJECTIVES, "source", *predicted]].copy()  # num_params already Int64, as query_many gives it
        frame.insert(0, "config", [json.dumps(c, separators=(",", ":")) for c in configs])
        values = frame[list(objectives)].to_numpy(dtype=float)
        measured = np.isfinite(values).all(axis=1)
        if not measured.all():
            filled = " nor predicted by a surrogate" if self._fillable() else ""
            warnings.warn(f"pareto_front: {int((~measured).sum())} of {len(frame)} configurations lack "
                          f"{' or '.join(objectives)} in the table{filled} and are left out"
                          + ("; backend 'auto' fills them where a surrogate exists (small space)"
                             if self.backend == "table" else ""), stacklevel=2)
        frame = frame[measured].reset_index(drop=True)
        keep = pareto_mask(values[measured])
        return frame[keep].sort_values(list(objectives)).reset_index(drop=True)

    # -- Syne Tune (imported here only) --------------------------------------------------------------
    def to_blackbox(self, objectives: Sequence[str] | None = None, nearest: bool = True) -> Any:
        """This benchmark as a Syne Tune ``Blackbox``: fidelity ``epoch``, ``objectives`` (default:
        :attr:`answered_objectives`; one without a value for a configuration is an error, not a NaN passed to a
        scheduler) plus ``elapsed_time`` (the cost the simulator charges); with ``nearest``, configurations a table
        lacks (spaces without a surrogate) are answered by the table's nearest configuration."""
        from ..integrations.syne_tune import BenchmarkBlackbox

        return BenchmarkBlackbox(self, self.answered_objectives if objectives is None else objectives, nearest)

    def simulated_backend(self, objectives: Sequence[str] | None = None, **kwargs: Any) -> Any:
        """A Syne Tune backend on this benchmark (:class:`~plm_nasbench.integrations.syne_tune.SimulatedBackend`,
        a ``UserBlackboxBackend``), so any scheduler runs in simulated time: use it with
        ``Tuner(..., sleep_time=0, callbacks=[SimulatorCallback()])``. While the tuner waits for a busy worker,
        its clock jumps to the next result or trial end (Syne Tune's own moves by a fixed ``tuner_sleep_time``);
        ``kwargs`` go to the backend."""
        from ..integrations.syne_tune import ELAPSED_TIME, SimulatedBackend

        return SimulatedBackend(blackbox=self.to_blackbox(objectives), elapsed_time_attr=ELAPSED_TIME, **kwargs)

    @staticmethod
    def objective(name: str) -> Objective:
        """The metadata of objective ``name``."""
        _check("objective", name, list(OBJECTIVES))
        return OBJECTIVES[name]
