"""The search-space interface shared by SMALL, LAYER, MEDIUM and LARGE.

A configuration is a plain ``dict``. Every space turns it into a head mask (layers x heads) and an
FFN mask (layers x units); everything else (parameter counts, per-layer sizes, extraction) follows
from those masks, so the four spaces differ only in how a configuration maps to masks.

Edge semantics, shared by masking and extraction:

* a layer with 0 heads skips attention: its attention block (including the LayerNorm after it)
  is the identity, so the hidden state passes through unchanged (residual only);
* a layer with 0 FFN units skips the FFN block and its LayerNorm;
* a layer with neither is removed; with no layers left, embeddings, pooler and head remain.
"""

from __future__ import annotations

import hashlib
import math
import json
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..architecture import Architecture

Config = dict[str, Any]
RngLike = np.random.Generator | int | None


def as_generator(rng: RngLike) -> np.random.Generator:
    """Accept a numpy Generator, an integer seed or None (fresh entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, (int, np.integer)) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be a numpy Generator, an integer seed or None, got {type(rng).__name__}")


class SearchSpace(ABC):
    """A space of sub-networks of one architecture."""

    name: str = ""

    def __init__(self, architecture: Architecture) -> None:
        if not isinstance(architecture, Architecture):
            raise TypeError(f"architecture must be an Architecture, got {type(architecture).__name__}")
        self.architecture = architecture

    def __repr__(self) -> str:
        a = self.architecture
        return (f"{type(self).__name__}(layers={a.num_layers}, heads={a.num_heads}, "
                f"units={a.intermediate_size})")

    # -- the part each space defines -------------------------------------------------------------
    @abstractmethod
    def sample(self, rng: RngLike = None) -> Config:
        """Draw one configuration with this space's sampler."""

    @abstractmethod
    def validate(self, config: Mapping[str, Any]) -> Config:
        """Check ``config`` and return it in canonical form; raise ValueError naming the bad field."""

    @abstractmethod
    def masks(self, config: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """Boolean head mask (layers x heads) and FFN mask (layers x units) of ``config``."""

    @abstractmethod
    def encode(self, config: Mapping[str, Any]) -> np.ndarray:
        """Fixed-length float vector in [0, 1] describing ``config`` (input of the surrogates)."""

    @abstractmethod
    def decode(self, vector: np.ndarray) -> Config:
        """Inverse of :meth:`encode`."""

    @abstractmethod
    def smallest(self) -> Config:
        """The configuration keeping nothing prunable."""

    @abstractmethod
    def largest(self) -> Config:
        """The configuration of the unpruned network."""

    @abstractmethod
    def syne_tune_space(self) -> dict[str, Any]:
        """The space as a Syne Tune config-space dict (name -> domain)."""

    @property
    @abstractmethod
    def num_configs(self) -> int:
        """Number of distinct configurations (an exact Python integer, possibly huge)."""

    # -- derived from the masks ------------------------------------------------------------------
    @property
    def encoding_size(self) -> int:
        """Length of :meth:`encode` vectors."""
        return len(self.encode(self.largest()))

    def layer_sizes(self, config: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """Number of kept heads and of kept FFN units in each layer."""
        head_mask, ffn_mask = self.masks(config)
        return head_mask.sum(axis=1), ffn_mask.sum(axis=1)

    def num_parameters(self, config: Mapping[str, Any]) -> int:
        """Exact parameter count of the sub-network (equal to its extracted model's)."""
        heads, units = self.layer_sizes(config)
        a = self.architecture
        return a.fixed_parameters() + sum(
            a.attention_parameters(int(h)) + a.ffn_parameters(int(u)) for h, u in zip(heads, units)
        )

    def params_fraction(self, config: Mapping[str, Any]) -> float:
        """Parameters of the sub-network divided by those of the unpruned network."""
        return self.num_parameters(config) / self.architecture.total_parameters()

    def config_id(self, config: Mapping[str, Any]) -> str:
        """Stable 16-hex-digit identifier of a configuration within this space."""
        canonical = json.dumps({"space": self.name, "config": self.validate(config)},
                               sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def network_id(self, config: Mapping[str, Any]) -> str:
        """Stable 16-hex-digit identifier of the network a configuration keeps: equal for configurations whose
        masks are equal (a layer keeping neither heads nor units is removed, so in ``small`` every configuration
        keeping no layer is one network), whatever the space."""
        heads, ffn = self.masks(config)
        digest = hashlib.sha256(repr((heads.shape, ffn.shape)).encode())
        digest.update(np.packbits(heads).tobytes() + np.packbits(ffn).tobytes())
        return digest.hexdigest()[:16]

    def _error(self, message: str) -> ValueError:
        return ValueError(f"{self.name} config: {message}")

    def _check_mapping(self, config: Any, expected: tuple[str, ...]) -> None:
        if not isinstance(config, Mapping):
            raise self._error(f"must be a mapping with fields {', '.join(expected)}; "
                              f"got {type(config).__name__}")
        missing = [k for k in expected if k not in config]
        extra = [str(k) for k in config if k not in expected]
        if missing:
            also = f" (and unknown field(s) {', '.join(extra)})" if extra else ""
            raise self._error(f"missing field(s) {', '.join(missing)}{also}; expected fields: {', '.join(expected)}")
        if extra:
            raise self._error(f"unknown field(s) {', '.join(extra)}; expected fields: {', '.join(expected)}")

    def _check_vector(self, vector: np.ndarray) -> np.ndarray:
        vector = np.asarray(vector, dtype=np.float64)
        if vector.shape != (self.encoding_size,):
            raise ValueError(f"{self.name} encoding must have shape ({self.encoding_size},), got {vector.shape}")
        if not np.all((vector >= 0) & (vector <= 1)):
            raise ValueError(f"{self.name} encoding values must lie in [0, 1]")
        return vector


class IntegerSpace(SearchSpace):
    """A space whose configurations are a fixed set of bounded integer fields."""

    @property
    @abstractmethod
    def bounds(self) -> dict[str, tuple[int, int]]:
        """Field name -> inclusive (low, high)."""

    def validate(self, config: Mapping[str, Any]) -> Config:
        bounds = self.bounds
        self._check_mapping(config, tuple(bounds))
        out = {}
        for key, (low, high) in bounds.items():
            value = config[key]
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
                raise self._error(f"field {key} must be an integer in [{low}, {high}], "
                                  f"got {value!r} ({type(value).__name__})")
            if not low <= value <= high:
                raise self._error(f"field {key} must be an integer in [{low}, {high}], got {value}")
            out[key] = int(value)
        return out

    def validate_arrays(self, arrays: Mapping[str, Any]) -> np.ndarray:
        """Many configurations at once: ``arrays`` maps each field to a column of values; returns the
        validated int64 matrix (configurations x fields, in the order of ``bounds``)."""
        columns = []
        for name, (low, high) in self.bounds.items():
            if name not in arrays:
                raise self._error(f"missing field {name}; expected fields: {', '.join(self.bounds)}")
            values = np.asarray(arrays[name])
            if values.dtype.kind == "f":
                fractional = np.flatnonzero(np.mod(values, 1) != 0)  # NaN included
                if len(fractional):
                    raise self._error(f"field {name} must be an integer in [{low}, {high}], got "
                                      f"{values[fractional[0]]} (configuration #{int(fractional[0])})")
            elif values.dtype.kind not in "iu":
                example = values.ravel()[:1].tolist()[0] if values.size else None
                raise self._error(f"field {name} must be an integer in [{low}, {high}], got values of type "
                                  f"{type(example).__name__} (for example {example!r})")
            bad = (values < low) | (values > high)  # before the cast: a whole float beyond int64 must not wrap
            if bad.any():
                raise self._error(f"field {name} must be an integer in [{low}, {high}], got {values[bad][0]} "
                                  f"(configuration #{int(np.flatnonzero(bad)[0])})")
            columns.append(values.astype(np.int64))
        return np.stack(columns, axis=1)

    def encode(self, config: Mapping[str, Any]) -> np.ndarray:
        config = self.validate(config)
        return np.array([config[k] / high for k, (_, high) in self.bounds.items()], dtype=np.float64)

    def decode(self, vector: np.ndarray) -> Config:
        vector = self._check_vector(vector)
        return {k: int(round(v * high)) for v, (k, (_, high)) in zip(vector, self.bounds.items())}

    @property
    def encoding_size(self) -> int:
        return len(self.bounds)

    @property
    def num_configs(self) -> int:
        return math.prod(high - low + 1 for low, high in self.bounds.values())

    def smallest(self) -> Config:
        return {k: low for k, (low, _) in self.bounds.items()}

    def largest(self) -> Config:
        return {k: high for k, (_, high) in self.bounds.items()}

    def syne_tune_space(self) -> dict[str, Any]:
        from syne_tune.config_space import randint

        return {k: randint(low, high) for k, (low, high) in self.bounds.items()}

    def _uniform(self, rng: RngLike) -> Config:
        gen = as_generator(rng)
        return {k: int(gen.integers(low, high + 1)) for k, (low, high) in self.bounds.items()}
