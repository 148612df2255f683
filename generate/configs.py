"""Which configurations a study evaluates: a grid, every configuration, a seeded sample, or the largest."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import numpy as np

from plm_nasbench.spaces.base import IntegerSpace, SearchSpace

from .checks import check_number

SELECTIONS = ("grid", "all", "sample", "largest")
#: What a sample's ``n`` counts: distinct configurations, or distinct networks (configurations with other masks).
DISTINCT = ("configs", "networks")


def check_selection(selection: Mapping[str, Any], where: str) -> None:
    """Raise ValueError naming ``where`` if ``selection`` is malformed."""
    kind = selection.get("kind")
    if kind not in SELECTIONS:
        raise ValueError(f"{where}: configs.kind is {kind!r}; allowed: {', '.join(SELECTIONS)}")
    allowed = {"grid": {"kind", "steps", "offsets"}, "all": {"kind"}, "sample": {"kind", "n", "seed", "distinct"},
               "largest": {"kind"}}[kind]
    extra = set(selection) - allowed
    if extra:
        raise ValueError(f"{where}: configs has unknown key(s) {sorted(extra)} for kind {kind!r}; "
                         f"allowed: {', '.join(sorted(allowed))}")
    if kind == "sample":
        check_number(selection.get("n"), "configs.n", where, smallest=1)
        check_number(selection.get("seed"), "configs.seed", where)
        if selection.get("distinct", "configs") not in DISTINCT:
            raise ValueError(f"{where}: configs.distinct is {selection['distinct']!r}; allowed: {', '.join(DISTINCT)}")


def select_configs(space: SearchSpace, selection: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The configurations ``selection`` names, in a deterministic order.

    ``grid``: every combination of an integer space's fields, field f stepping by ``steps[f]`` (default 1)
    from its lower bound, with the upper bound always included; ordered so that configurations that
    differ only in ``num_layers`` are adjacent. ``offsets[f]`` (default 0, below ``steps[f]``) starts field f
    that far above its lower bound, and a positive one leaves the upper bound out: the grid then fills the
    columns between those of the same grid without offsets, sharing none of its configurations. ``all``: the
    grid with step 1. ``sample``: ``n`` distinct configurations from the space's sampler seeded with ``seed``;
    with ``distinct = "networks"``, of distinct networks (:meth:`~plm_nasbench.spaces.base.SearchSpace.network_id`:
    the ``small`` sampler draws a configuration keeping no layer one time in seven, all of them one network).
    ``largest``: the unpruned network.
    """
    kind = selection["kind"]
    if kind == "largest":
        return [space.largest()]
    if kind == "sample":
        if selection["n"] > space.num_configs:
            raise ValueError(f"configs.n = {selection['n']} is more than the {space.name!r} space's "
                             f"{space.num_configs:,} configurations (kind \"all\" takes every one)")
        rng = np.random.default_rng(selection["seed"])
        key = space.network_id if selection.get("distinct", "configs") == "networks" else space.config_id
        seen: dict[str, dict[str, Any]] = {}
        for _ in range(100 * selection["n"]):
            config = space.sample(rng)
            seen.setdefault(key(config), config)
            if len(seen) == selection["n"]:
                return list(seen.values())
        raise ValueError(f"space {space.name!r} gave only {len(seen)} distinct configurations in "
                         f"{100 * selection['n']} draws; asked for n = {selection['n']} (kind \"all\" takes every "
                         "configuration of a small integer space)")
    if not isinstance(space, IntegerSpace):
        raise ValueError(f"configs.kind {kind!r} needs an integer space (small, layer, medium); "
                         f"space {space.name!r} is not one: use kind 'sample'")
    for key in ("steps", "offsets"):
        if not isinstance(selection.get(key, {}), Mapping):
            raise ValueError(f"configs.{key} must be a table of fields, e.g. {{num_units = 64}}, got "
                             f"{selection[key]!r}")
    steps, offsets = (dict(selection.get(key, {})) for key in ("steps", "offsets"))
    for key, given in (("steps", steps), ("offsets", offsets)):
        unknown = set(given) - set(space.bounds)
        if unknown:
            raise ValueError(f"configs.{key} names unknown field(s) {sorted(unknown)}; fields: {', '.join(space.bounds)}")
    axes = {}
    for name, (low, high) in space.bounds.items():
        step = steps.get(name, 1)
        if isinstance(step, bool) or not isinstance(step, int) or step < 1:
            raise ValueError(f"configs.steps.{name} must be a positive integer, got {step!r}")
        offset = offsets.get(name, 0)
        if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset < step:
            raise ValueError(f"configs.offsets.{name} must be an integer from 0 to {step - 1} (below "
                             f"configs.steps.{name} = {step}), got {offset!r}")
        values = set(range(low + offset, high + 1, step))
        axes[name] = sorted(values | {high} if offset == 0 else values)
    names = list(axes)
    order = [n for n in names if n != "num_layers"] + [n for n in names if n == "num_layers"]
    configs = [dict(zip(order, values)) for values in itertools.product(*(axes[n] for n in order))]
    return [space.validate({n: c[n] for n in names}) for c in configs]
