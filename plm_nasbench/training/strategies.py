"""The six super-network training strategies (paper Section 4.1.3), one optimisation step each.

* ``standard``: the full network with the task loss;
* ``random``: one sampled sub-network with the task loss;
* ``random-linear``: a sampled sub-network with probability p rising linearly from 0 to 1 over
  training, else the full network;
* ``sandwich``: the full network, the smallest and ``num_random`` sampled sub-networks, task loss each;
* ``kd``: the full network with the task loss, one sampled sub-network distilled from its logits;
* ``full``: sandwich, with the smallest and the sampled sub-networks distilled from the full network.

Gradients of all networks in a step are summed before the single optimiser step. Sub-networks
come from the search space's sampler.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..models.masking import masked
from ..spaces import SearchSpace
from .losses import distillation_loss, task_loss

STRATEGIES = ("standard", "random", "random-linear", "sandwich", "kd", "full")


@dataclass(frozen=True)
class StrategySettings:
    """Knobs of the strategies (paper Table A: 2 random sub-networks, temperature 10)."""

    name: str = "full"
    num_random: int = 2
    temperature: float = 10.0

    def __post_init__(self) -> None:
        if self.name not in STRATEGIES:
            raise ValueError(f"unknown strategy {self.name!r}; known strategies: {', '.join(STRATEGIES)}")
        if not isinstance(self.num_random, int) or self.num_random < 0:
            raise ValueError(f"num_random must be a non-negative integer, got {self.num_random!r}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be positive, got {self.temperature!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form, recorded with every result."""
        return asdict(self)


def _logits(model: Any, inputs: dict[str, Any]) -> Any:
    return model(**inputs).logits


def strategy_step(model: Any, inputs: dict[str, Any], labels: Any, space: SearchSpace, settings: StrategySettings,
                  rng: np.random.Generator, progress: float, regression: bool) -> float:
    """Forward and backward passes of one step; returns the summed loss (the caller steps the optimiser)."""
    name = settings.name
    total = 0.0

    def run(config: dict | None, teacher: Any = None) -> Any:
        nonlocal total
        if config is None:
            logits = _logits(model, inputs)
        else:
            with masked(model, space, config):
                logits = _logits(model, inputs)
        loss = (task_loss(logits, labels, regression) if teacher is None
                else distillation_loss(logits, teacher, labels, regression, settings.temperature))
        loss.backward()
        total += float(loss.detach())
        return logits.detach()

    if name == "standard":
        run(None)
    elif name == "random":
        run(space.sample(rng))
    elif name == "random-linear":
        run(space.sample(rng) if rng.random() < progress else None)
    else:
        teacher = run(None)
        distil = teacher if name in ("kd", "full") else None
        if name != "kd":
            run(space.smallest(), distil)
        for _ in range(1 if name == "kd" else settings.num_random):
            run(space.sample(rng), distil)
    return total
