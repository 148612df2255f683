"""Exact lookups in a benchmark table: (configuration, epoch, seed) -> objective values, single or vectorised.

Configurations of integer spaces are keyed by a mixed-radix integer code of their fields where every code
(times the table's epochs and seeds) fits in 64 bits (small, layer); those of other spaces (medium, whose codes
would overflow, and large) by their ``config_id``. Without a seed, a lookup returns the
mean over the seeds the table holds for that configuration and epoch (``n_seeds`` says how many). In ``small``,
every configuration that keeps no layer is the one empty network: where the table holds it, each of them is
answered by the table's empty network, whether or not that spelling of it was evaluated.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..spaces.base import IntegerSpace, SearchSpace
from ..spaces.small import SmallSpace
from ..objectives import OBJECTIVES, query_result


class ConfigNotInTableError(KeyError):
    """A configuration (or its epoch or seed) is not in the table."""

    def __str__(self) -> str:
        return str(self.args[0])


def _fits_in_int64(space: IntegerSpace, keys_per_config: int) -> bool:
    """Whether every configuration code of ``space``, times ``keys_per_config`` (epochs x seeds), fits in int64."""
    return math.prod(high - low + 1 for low, high in space.bounds.values()) * keys_per_config < 2**63


def describe_config(config: Mapping[str, Any], limit: int = 160) -> str:
    """``config`` as text for a message, cut at ``limit`` characters (a ``large`` configuration is ~2,300)."""
    text = str(dict(config))
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def integer_columns(space: IntegerSpace, configs: Sequence[Any]) -> dict[str, np.ndarray] | None:
    """The fields of ``configs`` as one integer array each, where every configuration is a mapping of exactly the
    space's fields to integers (not bools); None otherwise: such configurations (4.0, True, a missing field) take
    the per-configuration path, whose error names the configuration and the problem. Ranges are not checked."""
    fields = list(space.bounds)
    if not configs or not all(isinstance(c, Mapping) and len(c) == len(fields) for c in configs):
        return None
    try:
        columns = {f: [c[f] for c in configs] for f in fields}
    except KeyError:
        return None
    arrays = {f: np.array(values) for f, values in columns.items()}
    if (all(a.dtype.kind in "iu" for a in arrays.values())
            and not any({bool, np.bool_} & set(map(type, values)) for values in columns.values())):
        return arrays
    return None


def _config_json(text: str, row: int) -> Any:
    """The configuration the JSON ``text`` of a ``config`` column holds; ValueError naming the row where it is no
    JSON."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"the 'config' column of row #{row} is not JSON ({err.msg}): "
                         f"{text[:80]!r}{'...' if len(text) > 80 else ''}") from None


def frame_configs(space: SearchSpace, frame: pd.DataFrame) -> pd.DataFrame | list[dict[str, Any]]:
    """The configurations a DataFrame's rows hold: its columns named like ``space``'s fields (other columns are
    ignored), or, where it has none of them, its ``config`` column of JSON (as :meth:`Benchmark.table` and
    :meth:`Benchmark.pareto_front` return it). An integer space's fields come back as a DataFrame of integer
    columns (whole-number floats are accepted and converted, as pandas stores an integer column with a missing
    value as floats; integer columns are range-checked by ``validate_arrays`` where they are used); other spaces'
    as a list of dicts."""
    fields = list(space.largest())
    if len(frame) == 0:  # not frame.empty: rows without columns are an error below, not nothing
        return []
    if not any(f in frame.columns for f in fields) and "config" in frame.columns:
        return [_config_json(c, i) if isinstance(c, str) else c for i, c in enumerate(frame["config"])]
    missing = [f for f in fields if f not in frame.columns]
    if missing:
        raise ValueError(f"{space.name} configs: missing column(s) {', '.join(missing)}; expected the fields "
                         f"{', '.join(fields)}, or a 'config' column of JSON")
    columns = frame[fields].infer_objects()  # a DataFrame of Series rows has object columns
    if isinstance(space, IntegerSpace):
        if all(columns[f].dtype.kind in "iu" for f in fields):
            return columns  # integers already: their ranges are checked where they are used (validate_arrays)
        return pd.DataFrame(space.validate_arrays({f: columns[f].to_numpy() for f in fields}), columns=fields)
    return columns.to_dict("records")


class TableIndex:
    """The rows of one benchmark table indexed for fast exact lookups."""

    def __init__(self, frame: pd.DataFrame, space: SearchSpace, source: str = "table") -> None:
        self.space, self.source = space, source
        self.frame = frame.reset_index(drop=True)
        self.columns = [o.column for o in OBJECTIVES.values()]
        self.epochs = np.array(sorted(int(e) for e in self.frame["epoch"].unique()))
        self.seeds = np.array(sorted(int(s) for s in self.frame["seed"].unique()))
        self._integer = isinstance(space, IntegerSpace) and _fits_in_int64(space, len(self.epochs) * len(self.seeds))
        if self._integer:
            self.fields = list(space.bounds)
            lows = np.array([low for low, _ in space.bounds.values()], dtype=np.int64)
            sizes = np.array([high - low + 1 for low, high in space.bounds.values()], dtype=np.int64)
            self._lows = lows
            self._strides = np.cumprod(np.r_[1, sizes[::-1][:-1]])[::-1].astype(np.int64)
            configs = [json.loads(c) for c in self.frame["config"]]
            self._empty_code, self._empty_codes = None, frozenset()  # first the table's own keys
            arrays = {f: np.array([c[f] for c in configs]) for f in self.fields}
            codes = self._codes_of_arrays(arrays)
            empty = (self._empty(np.column_stack(list(arrays.values()))) if isinstance(space, SmallSpace)
                     else np.zeros(len(codes), dtype=bool))
            if empty.any():  # the key of the empty network, and all of its keys, for single lookups
                self._empty_code = int(codes[empty].min())
                every = (np.indices(sizes).reshape(len(sizes), -1) + lows[:, None]).T
                self._empty_codes = frozenset(((every[self._empty(every)] - lows) @ self._strides).tolist())
        else:
            self._ids = {cid: i for i, cid in enumerate(pd.unique(self.frame["config_id"]))}
            codes = self.frame["config_id"].map(self._ids).to_numpy(dtype=np.int64)
            empty = np.zeros(len(codes), dtype=bool)
        self.frame["_code"] = codes
        keys = np.where(empty, self._empty_code if empty.any() else 0, codes)  # the empty network's rows: one key
        epoch_pos = np.searchsorted(self.epochs, self.frame["epoch"].to_numpy())
        seed_pos = np.searchsorted(self.seeds, self.frame["seed"].to_numpy())
        values = self.frame[self.columns].to_numpy(dtype=np.float64)
        mean_keys = keys * len(self.epochs) + epoch_pos  # (config, epoch)
        seed_keys = mean_keys * len(self.seeds) + seed_pos  # (config, epoch, seed)
        # the empty network's rows answer alike (served_rows): one of them per (epoch, seed) answers
        once = ~(empty & pd.Series(seed_keys).duplicated().to_numpy())
        mean_keys, seed_keys, values = mean_keys[once], seed_keys[once], values[once]
        # seed means per (config, epoch)
        unique, inverse, counts = np.unique(mean_keys, return_inverse=True, return_counts=True)
        sums = np.zeros((len(unique), len(self.columns)))
        np.add.at(sums, inverse, np.nan_to_num(values, nan=0.0))
        present = np.zeros_like(sums)
        np.add.at(present, inverse, ~np.isnan(values))
        with np.errstate(invalid="ignore"):
            self._mean_values = np.where(present > 0, sums / np.maximum(present, 1), np.nan)
        self._mean_keys, self._mean_counts = unique, counts
        # single seeds per (config, epoch, seed)
        order = np.argsort(seed_keys, kind="stable")
        self._seed_keys, self._seed_values = seed_keys[order], values[order]
        first = np.unique(codes, return_index=True)[1]
        self._configs = {int(codes[i]): json.loads(self.frame["config"].iat[i]) for i in first}
        self._config_ids = {int(codes[i]): self.frame["config_id"].iat[i] for i in first}
        # one dict of ready answers per (epoch, seed) asked for, so a single lookup is one dict access
        self._answers: dict[tuple[int, int | None], dict[int, dict[str, Any]]] = {}  # (epoch, seed) positions
        self._answers_for(None, None)

    # -- keys ------------------------------------------------------------------------------------
    def _empty(self, fields: np.ndarray) -> np.ndarray:
        """Whether each configuration of a (configurations x fields) matrix of a ``small`` table keeps no layer."""
        columns = dict(zip(self.fields, fields.T))
        return SmallSpace.empty_networks(columns["num_layers"], columns["num_heads"], columns["num_units"])

    def _codes_of_arrays(self, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        fields = self.space.validate_arrays(arrays)
        codes = (fields - self._lows) @ self._strides
        if self._empty_code is not None:
            codes[self._empty(fields)] = self._empty_code
        return codes

    def code(self, config: Mapping[str, Any]) -> int:
        """The key of one configuration (validated; ValueError naming the bad field)."""
        config = self.space.validate(config)
        if self._integer:
            code = int(sum((config[f] - low) * s for f, low, s in zip(self.fields, self._lows, self._strides)))
            return self._empty_code if code in self._empty_codes else code
        cid = self.space.config_id(config)
        if cid not in self._ids:
            raise ConfigNotInTableError(self._missing(config))
        return self._ids[cid]

    def codes(self, configs: Sequence[Mapping[str, Any]] | pd.DataFrame) -> np.ndarray:
        """Keys of many configurations (a DataFrame, read by :func:`frame_configs`, or a sequence of dicts). Values
        must be integers as in :meth:`code`. A configuration the table lacks gets a key :meth:`lookup_many` finds
        nothing under (in spaces keyed by ``config_id``, -1), so that the caller reports every missing one."""
        if isinstance(configs, pd.DataFrame):
            configs = frame_configs(self.space, configs)
        if isinstance(configs, pd.DataFrame):
            if self._integer:
                return self._codes_of_arrays({f: configs[f].to_numpy() for f in self.fields})
            configs = configs.to_dict("records")
        if self._integer and (arrays := integer_columns(self.space, configs)) is not None:
            return self._codes_of_arrays(arrays)
        codes = np.empty(len(configs), dtype=np.int64)
        for i, config in enumerate(configs):
            try:
                codes[i] = self.code(config)
            except ConfigNotInTableError:
                codes[i] = -1  # keys are not negative
            except ValueError as err:
                raise type(err)(f"{err} (configuration #{i})") from None
        return codes

    # -- lookups ---------------------------------------------------------------------------------
    def _missing(self, config: Any, epoch: int | None = None, seed: int | None = None) -> str:
        what = f"configuration {describe_config(config)}"
        if epoch is not None:
            what += f" at epoch {epoch}"
        if seed is not None:
            what += f" with seed {seed}"
        return (f"{what} is not in the {self.source} ({len(self._configs):,} configurations, epochs "
                f"{self.epochs.tolist()}, seeds {self.seeds.tolist()})")

    def _epoch_pos(self, epoch: int | None) -> int:
        if epoch is None:
            return len(self.epochs) - 1
        pos = int(np.searchsorted(self.epochs, epoch))
        if pos == len(self.epochs) or self.epochs[pos] != epoch:
            raise ConfigNotInTableError(f"epoch {epoch} is not a fidelity of this table; fidelities: "
                                        f"{self.epochs.tolist()}")
        return pos

    def lookup(self, config: Mapping[str, Any], epoch: int | None = None, seed: int | None = None) -> dict[str, Any]:
        """Objective values of one configuration (seed mean when ``seed`` is None; last epoch when ``epoch`` is None)."""
        code = self.code(config)  # a bad configuration is reported first
        hit = self._answers_for(epoch, seed).get(code)
        if hit is None:
            raise ConfigNotInTableError(self._missing(config, epoch, seed))
        return dict(hit)

    def _seed_pos(self, seed: int) -> int:
        pos = int(np.searchsorted(self.seeds, seed))
        if pos == len(self.seeds) or self.seeds[pos] != seed:
            raise ConfigNotInTableError(f"seed {seed} is not in this table; seeds: {self.seeds.tolist()}")
        return pos

    def _answers_for(self, epoch: int | None, seed: int | None) -> dict[int, dict[str, Any]]:
        """Configuration code -> the answer of :meth:`lookup` at ``epoch`` and ``seed``, built on first use."""
        pos = self._epoch_pos(epoch)
        seed_pos = None if seed is None else self._seed_pos(seed)
        answers = self._answers.get((pos, seed_pos))
        if answers is None:
            n_epochs = len(self.epochs)
            if seed_pos is None:
                keys, values, counts = self._mean_keys, self._mean_values, self._mean_counts
            else:
                n_seeds = len(self.seeds)
                at_seed = self._seed_keys % n_seeds == seed_pos
                keys, values = self._seed_keys[at_seed] // n_seeds, self._seed_values[at_seed]
                counts = np.ones(len(keys), dtype=np.int64)
            at_epoch = keys % n_epochs == pos
            answer_seed = None if seed_pos is None else int(self.seeds[seed_pos])  # a Python int, whatever was asked
            answers = {int(k // n_epochs): query_result(v, int(self.epochs[pos]), answer_seed, int(n), self.source)
                       for k, v, n in zip(keys[at_epoch], values[at_epoch], counts[at_epoch])}
            self._answers[(pos, seed_pos)] = answers
        return answers

    def lookup_many(self, codes: np.ndarray, epoch: int | None = None,
                    seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Objective matrix (rows x objectives, NaN rows where absent) and the number of seeds behind each row
        (0 where the table lacks the key) for many keys."""
        keys = np.asarray(codes, dtype=np.int64) * len(self.epochs) + self._epoch_pos(epoch)
        if seed is None:
            table_keys, table_values, counts = self._mean_keys, self._mean_values, self._mean_counts
        else:
            keys = keys * len(self.seeds) + self._seed_pos(seed)
            table_keys, table_values = self._seed_keys, self._seed_values
            counts = np.ones(len(table_keys), dtype=np.int64)
        idx = np.minimum(np.searchsorted(table_keys, keys), len(table_keys) - 1)
        found = table_keys[idx] == keys
        return np.where(found[:, None], table_values[idx], np.nan), np.where(found, counts[idx], 0)

    def epoch(self, epoch: int | None) -> int:
        """The epoch a lookup at ``epoch`` answers (None: the last)."""
        return int(self.epochs[self._epoch_pos(epoch)])

    def configs(self) -> list[dict[str, Any]]:
        """Every configuration in the table."""
        return list(self._configs.values())

    def config_of(self, code: int) -> dict[str, Any]:
        return self._configs[code]
