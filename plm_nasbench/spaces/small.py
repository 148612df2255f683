"""SMALL: one depth, one head count and one FFN width shared by all kept layers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .base import Config, IntegerSpace, RngLike


class SmallSpace(IntegerSpace):
    """Keep the first ``num_layers`` layers, in each the first ``num_heads`` heads and ``num_units`` units.

    Ranges: ``num_layers`` in [0, L], ``num_heads`` in [0, H], ``num_units`` in [0, I]; the sampler
    is uniform per field.
    """

    name = "small"

    @property
    def bounds(self) -> dict[str, tuple[int, int]]:
        a = self.architecture
        return {"num_layers": (0, a.num_layers), "num_heads": (0, a.num_heads),
                "num_units": (0, a.intermediate_size)}

    def sample(self, rng: RngLike = None) -> Config:
        return self._uniform(rng)

    def masks(self, config: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        c = self.validate(config)
        a = self.architecture
        head_mask = np.zeros((a.num_layers, a.num_heads), dtype=bool)
        ffn_mask = np.zeros((a.num_layers, a.intermediate_size), dtype=bool)
        head_mask[: c["num_layers"], : c["num_heads"]] = True
        ffn_mask[: c["num_layers"], : c["num_units"]] = True
        return head_mask, ffn_mask

    @staticmethod
    def empty_networks(num_layers: Any, num_heads: Any, num_units: Any) -> np.ndarray:
        """Whether each configuration (arrays of its fields) keeps no layer: ``num_layers = 0``, or layers with
        neither heads nor units, which are removed. All of them are one network: embeddings, pooler and head."""
        num_layers, num_heads, num_units = (np.asarray(v) for v in (num_layers, num_heads, num_units))
        return (num_layers == 0) | ((num_heads == 0) & (num_units == 0))

    def layer_sizes(self, config: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        c = self.validate(config)
        kept = np.arange(self.architecture.num_layers) < c["num_layers"]
        return kept * c["num_heads"], kept * c["num_units"]
