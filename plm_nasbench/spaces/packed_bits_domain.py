"""A Syne Tune domain for the LARGE space's packed bit strings (imported only when asked for)."""

from __future__ import annotations

from typing import Any

import numpy as np
from syne_tune.config_space import Domain

from .large import pack_bits


class PackedBitsDomain(Domain):
    """Hex strings of ``num_bits`` packed bits, sampled with the size-uniform sampler.

    Syne Tune's random search and any searcher that only calls ``sample`` can use it; searchers that
    need a numeric encoding of each hyperparameter (Bayesian optimisation) cannot.
    """

    def __init__(self, num_bits: int) -> None:
        self.num_bits = int(num_bits)

    @property
    def value_type(self) -> type:
        return str

    def sample(self, spec: Any = None, size: int = 1, random_state: np.random.RandomState | None = None):
        state = random_state if random_state is not None else np.random
        values = []
        for _ in range(size):
            bits = np.zeros(self.num_bits, dtype=bool)
            bits[state.choice(self.num_bits, size=state.randint(0, self.num_bits + 1), replace=False)] = True
            values.append(pack_bits(bits))
        return values[0] if size == 1 else values

    def is_valid(self, value: Any) -> bool:
        if not isinstance(value, str) or len(value) != 2 * ((self.num_bits + 7) // 8):
            return False
        try:
            bytes.fromhex(value)
        except ValueError:
            return False
        return True

    def __len__(self) -> int:
        return 0  # too many values to count: Syne Tune reads 0 as "infinite"

    def match_string(self, value: Any) -> str:
        return str(value)

    @property
    def domain_str(self) -> str:
        return f"packed_bits({self.num_bits})"

    def __repr__(self) -> str:
        return self.domain_str

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PackedBitsDomain) and other.num_bits == self.num_bits
