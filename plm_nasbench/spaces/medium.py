"""MEDIUM: a head count and an FFN width per layer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .base import Config, IntegerSpace, RngLike


class MediumSpace(IntegerSpace):
    """Fields ``heads_i`` in [0, H] and ``units_i`` in [0, I] for each layer i; the first ones are kept.

    The sampler is uniform per field.
    """

    name = "medium"

    @property
    def bounds(self) -> dict[str, tuple[int, int]]:
        a = self.architecture
        out: dict[str, tuple[int, int]] = {}
        for i in range(a.num_layers):
            out[f"heads_{i}"] = (0, a.num_heads)
            out[f"units_{i}"] = (0, a.intermediate_size)
        return out

    def sample(self, rng: RngLike = None) -> Config:
        return self._uniform(rng)

    def masks(self, config: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        heads, units = self.layer_sizes(config)
        a = self.architecture
        head_mask = np.arange(a.num_heads)[None, :] < heads[:, None]
        ffn_mask = np.arange(a.intermediate_size)[None, :] < units[:, None]
        return head_mask, ffn_mask

    def layer_sizes(self, config: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        c = self.validate(config)
        n = self.architecture.num_layers
        return (np.array([c[f"heads_{i}"] for i in range(n)]),
                np.array([c[f"units_{i}"] for i in range(n)]))
