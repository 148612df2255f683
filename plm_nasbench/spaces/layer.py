"""LAYER: one keep/drop bit per layer (attention and FFN together)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .base import Config, IntegerSpace, RngLike, as_generator


class LayerSpace(IntegerSpace):
    """Fields ``layer_0`` ... ``layer_{L-1}`` in {0, 1}; 1 keeps the whole layer.

    The sampler is the paper's size-uniform one: the number of kept layers is uniform in [0, L],
    then which layers are kept is uniform among subsets of that size.
    """

    name = "layer"

    @property
    def bounds(self) -> dict[str, tuple[int, int]]:
        return {f"layer_{i}": (0, 1) for i in range(self.architecture.num_layers)}

    def sample(self, rng: RngLike = None) -> Config:
        gen = as_generator(rng)
        n_layers = self.architecture.num_layers
        kept = gen.choice(n_layers, size=int(gen.integers(0, n_layers + 1)), replace=False)
        bits = np.zeros(n_layers, dtype=int)
        bits[kept] = 1
        return {f"layer_{i}": int(b) for i, b in enumerate(bits)}

    def masks(self, config: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        c = self.validate(config)
        a = self.architecture
        kept = np.array([c[f"layer_{i}"] == 1 for i in range(a.num_layers)])
        head_mask = np.repeat(kept[:, None], a.num_heads, axis=1)
        ffn_mask = np.repeat(kept[:, None], a.intermediate_size, axis=1)
        return head_mask, ffn_mask
