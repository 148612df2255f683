"""Computing committed rows again and comparing: does this machine and set-up reproduce the tables?

``python -m generate verify PLAN --study S --task T --configs N`` draws ``N`` configurations from the
committed rows of the selected weight-sharing or standalone units, computes them again exactly as
``run`` would (same unit, same settings; a weight-sharing unit trains its super-network first unless
it is cached), and compares every result column with the committed value. Weight-sharing ``small``
configurations are computed with the one-layer companions that give them the summation order they had
among their unit's configurations (see :mod:`plm_nasbench.evaluation.shared_passes`). Latency is not verified:
timings belong to the machine that measured them (``run`` checks the machine before it measures).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from plm_nasbench.tables import Manifest

from .merge import table_path
from .plan import Plan, WorkUnit
from .units import hardware, run_unit

#: The columns a rerun must reproduce (timing columns measure the machine and are not compared).
COMPARED = ("valid_metric", "valid_error", "test_metric", "test_error", "num_params", "params_fraction", "flops")
_KEYS = ["unit_id", "config_id", "seed", "epoch"]


def _config_ids(plan: Plan, unit: WorkUnit) -> list[str]:
    from plm_nasbench.spaces import get_search_space

    space = get_search_space(unit.space, plan.model, task=unit.task)
    return [space.config_id(json.loads(c)) for c in unit.configs]


def _with_companions(unit: WorkUnit, drawn: list[str]) -> tuple[str, ...]:
    """The configurations to compute again for the ``drawn`` ones of ``unit``: a weight-sharing unit of the
    ``small`` space evaluated its configurations together, in an order of summation that depends on which were
    there (:func:`plm_nasbench.evaluation.shared_passes.companions`), so the drawn ones are evaluated with the
    cheap one-layer companions that restore it; their rows are not compared."""
    if unit.scheme != "weight_sharing" or unit.space != "small":
        return tuple(drawn)
    from plm_nasbench.evaluation.shared_passes import companions

    extra = companions(unit.config_dicts(), [json.loads(c) for c in drawn])
    return (*drawn, *(json.dumps(c, separators=(",", ":")) for c in extra))


def draw(plan: Plan, units: list[WorkUnit], data_root: str | Path, n: int, seed: int = 0
         ) -> tuple[list[WorkUnit], pd.DataFrame]:
    """Up to ``n`` configurations drawn at random (``seed``) from the committed rows of ``units``: those units
    cut down to the drawn configurations, and the committed rows of the drawn configurations."""
    if n < 1:
        raise ValueError(f"--configs must be a positive number of configurations, got {n}")
    checkable = [u for u in units if u.scheme in ("weight_sharing", "standalone")]
    if not checkable:
        raise ValueError("no weight-sharing or standalone unit selected (latency is not verified: timings belong "
                         "to the machine that measured them)")
    manifest = Manifest.load(data_root)
    tables = [manifest.read(p) for p in sorted({table_path(plan, u.study, u.task) for u in checkable})
              if p in manifest.tables]
    held = {pair for table in tables for pair in zip(table["unit_id"], table["config_id"])}
    candidates = [(unit, config, cid) for unit in checkable
                  for config, cid in zip(unit.configs, _config_ids(plan, unit)) if (unit.unit_id, cid) in held]
    if not candidates:
        raise ValueError("the tables hold no rows of the selected units yet: run and merge them first")
    picked = [candidates[i] for i in
              np.sort(np.random.default_rng(seed).choice(len(candidates), min(n, len(candidates)), replace=False))]
    by_unit: dict[str, list[str]] = {}
    for unit, config, _ in picked:
        by_unit.setdefault(unit.unit_id, []).append(config)
    cut = [dataclasses.replace(u, configs=_with_companions(u, by_unit[u.unit_id])) for u in checkable
           if u.unit_id in by_unit]
    wanted = {(unit.unit_id, cid) for unit, _, cid in picked}
    rows = pd.concat(tables, ignore_index=True)
    keep = [pair in wanted for pair in zip(rows["unit_id"], rows["config_id"])]
    return cut, rows[keep].reset_index(drop=True)


def compare(committed: pd.DataFrame, recomputed: pd.DataFrame) -> dict[str, Any]:
    """Per compared column: rows, how many are equal, the largest absolute difference; and the super-network ids
    on either side (weight sharing; the committed side is empty for rows made before ids were recorded)."""
    joined = committed.merge(recomputed, on=_KEYS, suffixes=("_committed", "_recomputed"), validate="one_to_one")
    if len(joined) != len(committed):
        raise ValueError(f"the rerun gave {len(joined)} of the {len(committed)} committed rows")
    columns = {}
    for name in COMPARED:
        old = joined[f"{name}_committed"].to_numpy(dtype=np.float64)
        new = joined[f"{name}_recomputed"].to_numpy(dtype=np.float64)
        both = np.isfinite(old) & np.isfinite(new)
        same = (old == new) | (np.isnan(old) & np.isnan(new))
        columns[name] = {"rows": int(len(joined)), "equal": int(same.sum()),
                         "missing_on_one_side": int((np.isnan(old) != np.isnan(new)).sum()),
                         "max_abs_difference": float(np.abs(old - new)[both].max()) if both.any() else 0.0}
    ids = {side: sorted({str(v) for v in joined[f"supernetwork_id_{side}"].dropna()})
           for side in ("committed", "recomputed")} if "supernetwork_id_committed" in joined else {}
    return {"columns": columns, "supernetwork_ids": ids, "committed_hardware": sorted(set(joined["hardware_committed"]))}


def verify(plan: Plan, units: list[WorkUnit], data_root: str | Path, data_dir: str | None, n: int,
           device: str = "cpu", seed: int = 0) -> dict[str, Any]:
    """Compute ``n`` committed configurations of ``units`` again (see :func:`draw`) and :func:`compare`."""
    cut, committed = draw(plan, units, data_root, n, seed)
    recomputed = pd.concat([run_unit(plan, unit, data_dir, device) for unit in cut], ignore_index=True)
    report = compare(committed, recomputed)
    report["hardware"] = hardware(device)
    report["configs"] = int(len(committed[["unit_id", "config_id"]].drop_duplicates()))
    report["companions"] = sum(len(u.configs) for u in cut) - report["configs"]
    return report


def reproduced(report: dict[str, Any], tolerance: float = 0.0) -> bool:
    """Whether every compared column agrees within ``tolerance`` (absolute; 0: bit for bit) and, where the
    committed rows record super-network ids, the rerun's super-network is the same."""
    ids = report["supernetwork_ids"]
    same_network = not ids.get("committed") or ids["committed"] == ids["recomputed"]
    return same_network and all(c["missing_on_one_side"] == 0 and c["max_abs_difference"] <= tolerance
                                and (tolerance > 0 or c["equal"] == c["rows"]) for c in report["columns"].values())
