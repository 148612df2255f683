"""The objectives a benchmark query returns: name, direction, unit, and where their values come from."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Objective:
    """One objective. ``kind``: 'learned' (measured in the tables, predicted by surrogates), 'analytic'
    (computed exactly for any configuration) or 'measured' (hardware figures from the tables)."""

    name: str
    column: str
    unit: str
    kind: str
    description: str
    minimise: bool = True


OBJECTIVES: dict[str, Objective] = {o.name: o for o in [
    Objective("valid_error", "valid_error", "1 - metric", "learned", "error on the validation split (30% of train)"),
    Objective("test_error", "test_error", "1 - metric", "learned", "error on the test split (GLUE dev set)"),
    Objective("num_params", "num_params", "parameters", "analytic", "exact parameter count, head included"),
    Objective("params_fraction", "params_fraction", "fraction", "analytic", "parameters / unpruned parameters"),
    Objective("flops", "flops", "FLOPs per example", "analytic", "forward FLOPs per test example"),
    Objective("latency", "latency_b1_median", "seconds", "learned",
              "median forward latency at batch size 1, max_length tokens, on the tables' machine"),
    Objective("latency_b32", "latency_b32_median", "seconds", "learned",
              "median forward latency at batch size 32, max_length tokens"),
    Objective("memory_b32", "memory_b32_peak_mb", "MiB", "learned", "weights + activation peak at batch size 32"),
    Objective("runtime", "cumulative_time", "seconds", "learned",
              "cost of the evaluation: standalone, training and evaluation up to this epoch; "
              "weight sharing, evaluating the sub-network on the super-network"),
]}

#: Objectives every query returns, in order.
OBJECTIVE_NAMES = tuple(OBJECTIVES)


def objective_names(objectives: Sequence[str]) -> tuple[str, ...]:
    """``objectives`` as a tuple of known objective names: TypeError for a single string (a sequence of names is
    wanted), ValueError for an empty sequence, an unknown name (listing the known ones) or a name given twice."""
    if isinstance(objectives, str):
        raise TypeError(f"objectives must be a sequence of objective names, e.g. ('valid_error', 'params_fraction'), "
                        f"got the string {objectives!r}")
    names = tuple(objectives)
    unknown = [name for name in names if name not in OBJECTIVES]
    if unknown:
        raise ValueError(f"unknown objective(s) {', '.join(map(repr, unknown))}; known: {', '.join(OBJECTIVES)}")
    if not names or len(set(names)) < len(names):
        raise ValueError(f"objectives must name at least one objective, each once; got {names}")
    return names


def query_result(values: Sequence[float], epoch: int, seed: int | None, n_seeds: int, source: str) -> dict[str, Any]:
    """One query's answer: every objective (``values`` in the order of ``OBJECTIVES``) and where it came from."""
    out: dict[str, Any] = {name: float(v) for name, v in zip(OBJECTIVES, values)}
    out["num_params"] = int(out["num_params"])
    out.update(epoch=epoch, seed=seed, n_seeds=n_seeds, source=source)
    return out
