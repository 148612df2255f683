"""LARGE: one keep bit per attention head and per FFN unit.

A configuration is ``{"heads": HEX, "units": HEX}``: the head mask (layers x heads) and the FFN mask
(layers x units), each flattened row-major, packed eight bits to a byte (most significant bit first,
zero padding at the end) and written as lowercase hexadecimal. For the 6-layer MiniLM that is
18 hex digits for 72 heads and 2,304 for 9,216 units; never thousands of dict keys.
Build configurations from masks with :meth:`LargeSpace.from_masks`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .base import Config, RngLike, SearchSpace, as_generator

FIELDS = ("heads", "units")


def pack_bits(bits: np.ndarray) -> str:
    """Pack a boolean array (flattened row-major) into lowercase hex."""
    return np.packbits(np.asarray(bits, dtype=bool).ravel()).tobytes().hex()


def unpack_bits(text: str, count: int) -> np.ndarray:
    """Inverse of :func:`pack_bits` for ``count`` bits (no validation)."""
    return np.unpackbits(np.frombuffer(bytes.fromhex(text), dtype=np.uint8), count=count).astype(bool)


def size_uniform_bits(gen: np.random.Generator, count: int) -> np.ndarray:
    """A size-uniform sampler: the number of set bits is uniform in [0, count], then which (the large space draws
    heads and units each so; the older reference code drew one number over both together)."""
    bits = np.zeros(count, dtype=bool)
    bits[gen.choice(count, size=int(gen.integers(0, count + 1)), replace=False)] = True
    return bits


class LargeSpace(SearchSpace):
    """One bit per head (L*H) and per FFN unit (L*I).

    The sampler draws the number of kept heads uniformly in [0, L*H] and the number of kept units
    uniformly in [0, L*I], then which ones, so that sizes spread over the whole range (sampling
    every bit independently would concentrate them around one half).
    """

    name = "large"

    @property
    def shapes(self) -> dict[str, tuple[int, int]]:
        """Mask shape of each field."""
        a = self.architecture
        return {"heads": (a.num_layers, a.num_heads), "units": (a.num_layers, a.intermediate_size)}

    def _num_bits(self, field: str) -> int:
        rows, cols = self.shapes[field]
        return rows * cols

    def from_masks(self, head_mask: np.ndarray, ffn_mask: np.ndarray) -> Config:
        """Configuration keeping exactly the heads and units set in the two boolean masks."""
        out = {}
        for field, mask in zip(FIELDS, (head_mask, ffn_mask)):
            mask = np.asarray(mask)
            if mask.shape != self.shapes[field]:
                raise self._error(f"{field} mask must have shape {self.shapes[field]}, got {mask.shape}")
            out[field] = pack_bits(mask)
        return out

    def sample(self, rng: RngLike = None) -> Config:
        gen = as_generator(rng)
        return {field: pack_bits(size_uniform_bits(gen, self._num_bits(field))) for field in FIELDS}

    def validate(self, config: Mapping[str, Any]) -> Config:
        self._check_mapping(config, FIELDS)
        out = {}
        for field in FIELDS:
            value, bits = config[field], self._num_bits(field)
            digits = 2 * ((bits + 7) // 8)
            allowed = f"a string of {digits} hex digits ({bits} packed bits, {' x '.join(map(str, self.shapes[field]))})"
            if not isinstance(value, str):
                raise self._error(f"field {field} must be {allowed}; got {type(value).__name__}")
            if len(value) != digits:
                raise self._error(f"field {field} must be {allowed}; got {len(value)} characters")
            try:
                raw = bytes.fromhex(value)
            except ValueError:
                raise self._error(f"field {field} must be {allowed}; it has non-hex characters") from None
            padding = 8 * len(raw) - bits
            if padding and raw[-1] & ((1 << padding) - 1):
                raise self._error(f"field {field}: the {padding} padding bit(s) after bit {bits} must be 0")
            out[field] = value.lower()
        return out

    def masks(self, config: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        c = self.validate(config)
        head_mask, ffn_mask = (unpack_bits(c[f], self._num_bits(f)).reshape(self.shapes[f]) for f in FIELDS)
        return head_mask, ffn_mask

    def encode(self, config: Mapping[str, Any]) -> np.ndarray:
        head_mask, ffn_mask = self.masks(config)
        return np.concatenate([head_mask.ravel(), ffn_mask.ravel()]).astype(np.float64)

    def decode(self, vector: np.ndarray) -> Config:
        bits = self._check_vector(vector) >= 0.5
        n_heads = self._num_bits("heads")
        return self.from_masks(bits[:n_heads].reshape(self.shapes["heads"]),
                               bits[n_heads:].reshape(self.shapes["units"]))

    @property
    def encoding_size(self) -> int:
        return self._num_bits("heads") + self._num_bits("units")

    @property
    def num_configs(self) -> int:
        return 2 ** self.encoding_size

    def smallest(self) -> Config:
        return {f: pack_bits(np.zeros(self._num_bits(f), dtype=bool)) for f in FIELDS}

    def largest(self) -> Config:
        return {f: pack_bits(np.ones(self._num_bits(f), dtype=bool)) for f in FIELDS}

    def syne_tune_space(self) -> dict[str, Any]:
        from .packed_bits_domain import PackedBitsDomain

        return {f: PackedBitsDomain(self._num_bits(f)) for f in FIELDS}
