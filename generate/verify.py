"""Computing committed rows again and comparing: does this machine and set-up reproduce the tables?

``python -m generate verify PLAN --study S --task T --configs N`` draws ``N`` configurations from the
committed rows of the selected weight-sharing or standalone units, computes them again exactly as
``run`` would (same unit, same settings; a weight-sharing unit trains its super-network first unless
it is cached), and compares every result column with the committed value. Weight-sharing ``small``
configurations are computed with the one-layer companions that give them the summation order they had
among their unit's configurations (see :mod:`plm_nasbench.evaluation.shared_passes`). Latency is not verified:
timings belong to the machine that measured them (``run`` checks the machine before it measures).

``verify --record-id`` gives rows made before super-network ids were recorded their id: it computes ``N``
configurations of each such unit again and, when all are reproduced bit for bit, writes the id of the network
that reproduced a unit into that unit's rows, with the check in the unit's manifest batch
(:func:`record_supernetwork_id`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from plm_nasbench.locking import exclusive_lock
from plm_nasbench.provenance import git_commit, now
from plm_nasbench.tables import Manifest

from .merge import ID_EVIDENCE, MERGE_LOCK, mixed_supernetworks, table_path
from .plan import Plan, WorkUnit
from .units import hardware, run_unit


class NotRecorded(ValueError):
    """``verify --record-id`` found no proof to give rows their super-network id (nothing was written)."""


#: The columns a rerun must reproduce (timing columns measure the machine and are not compared).
COMPARED = ("valid_metric", "valid_error", "test_metric", "test_error", "num_params", "params_fraction", "flops")
_KEYS = ["unit_id", "config_id", "seed", "epoch"]


def _tables(plan: Plan, units: list[WorkUnit]) -> list[str]:
    """The tables (paths under the data folder) that hold the rows of ``units``."""
    return sorted({table_path(plan, u.study, u.task) for u in units})


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


def draw(plan: Plan, units: list[WorkUnit], data_root: str | Path, n: int, seed: int = 0, per_unit: bool = False
         ) -> tuple[list[WorkUnit], pd.DataFrame]:
    """Up to ``n`` configurations (``per_unit``: of each unit) drawn at random (``seed``) from the committed rows
    of ``units``: those units cut down to the drawn configurations, and the committed rows of the drawn
    configurations. ``per_unit`` draws from a unit's rows off the tables' commonest (valid_error, test_error)
    where it has any: that is the constant predictor's plateau where there is one, which a network predicting
    one class scores whatever its weights, so reproducing such a row proves little about the network."""
    if n < 1:
        raise ValueError(f"--configs must be a positive number of configurations, got {n}")
    checkable = [u for u in units if u.scheme in ("weight_sharing", "standalone")]
    if not checkable:
        raise ValueError("no weight-sharing or standalone unit selected (latency is not verified: timings belong "
                         "to the machine that measured them)")
    manifest = Manifest.load(data_root)
    tables = [manifest.read(p) for p in _tables(plan, checkable) if p in manifest.tables]
    held = {pair for table in tables for pair in zip(table["unit_id"], table["config_id"])}
    candidates = [(unit, config, cid) for unit in checkable
                  for config, cid in zip(unit.configs, _config_ids(plan, unit)) if (unit.unit_id, cid) in held]
    if not candidates:
        raise ValueError("the tables hold no rows of the selected units yet: run and merge them first")
    rows = pd.concat(tables, ignore_index=True)
    groups = [candidates]
    if per_unit:
        common = rows.groupby(["valid_error", "test_error"]).size().idxmax()
        plain = {(u, c) for u, c, v, t in zip(rows["unit_id"], rows["config_id"], rows["valid_error"],
                                             rows["test_error"]) if (v, t) == common}
        groups = [[c for c in candidates if c[0] is unit] for unit in checkable]
        groups = [[c for c in group if (c[0].unit_id, c[2]) not in plain] or group for group in groups]
    rng = np.random.default_rng(seed)
    picked = [group[i] for group in groups if group
              for i in np.sort(rng.choice(len(group), min(n, len(group)), replace=False))]
    by_unit: dict[str, list[str]] = {}
    for unit, config, _ in picked:
        by_unit.setdefault(unit.unit_id, []).append(config)
    cut = [dataclasses.replace(u, configs=_with_companions(u, by_unit[u.unit_id])) for u in checkable
           if u.unit_id in by_unit]
    wanted = {(unit.unit_id, cid) for unit, _, cid in picked}
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


def unit_digests(table: pd.DataFrame, unit_ids: set[str]) -> dict[str, str]:
    """SHA-256 of the rows (all columns, in order) of each unit of ``unit_ids`` in ``table``: what tells whether a
    unit's rows changed when the table did (another unit's rows given their id meanwhile)."""
    digests = {}
    for unit_id in sorted(set(table["unit_id"]) & unit_ids):
        rows = table[table["unit_id"] == unit_id]
        digests[unit_id] = hashlib.sha256(pd.util.hash_pandas_object(rows, index=False).to_numpy().tobytes()).hexdigest()
    return digests


def verify(plan: Plan, units: list[WorkUnit], data_root: str | Path, data_dir: str | None, n: int,
           device: str = "cpu", seed: int = 0, per_unit: bool = False) -> dict[str, Any]:
    """Compute ``n`` committed configurations (``per_unit``: of each unit) of ``units`` again (see :func:`draw`)
    and :func:`compare`; the report names the units computed again (``units``), the versions of their tables
    (``tables``) and a digest of each unit's rows there (``unit_rows``)."""
    manifest = Manifest.load(data_root)  # the versions compared (taken first: a later change is one since)
    tables = {p: manifest.tables[p]["sha256"] for p in _tables(plan, units) if p in manifest.tables}
    ids = {u.unit_id for u in units}
    unit_rows = {p: unit_digests(manifest.read(p), ids) for p in tables}
    cut, committed = draw(plan, units, data_root, n, seed, per_unit)
    recomputed = pd.concat([run_unit(plan, unit, data_dir, device) for unit in cut], ignore_index=True)
    report = compare(committed, recomputed)
    report["hardware"] = hardware(device)
    report["configs"] = int(len(committed[["unit_id", "config_id"]].drop_duplicates()))
    report["companions"] = sum(len(u.configs) for u in cut) - report["configs"]
    drawn = committed.groupby("unit_id")["config_id"].nunique()
    networks = (recomputed.groupby("unit_id")["supernetwork_id"].agg(lambda ids: sorted({str(i) for i in ids.dropna()}))
                if "supernetwork_id" in recomputed else {})  # standalone rows have no super-network
    report["units"] = {u.unit_id: {"configs": int(drawn.get(u.unit_id, 0)),
                                   "supernetwork_ids": networks.get(u.unit_id, [])} for u in cut}
    report["tables"], report["unit_rows"] = tables, unit_rows
    return report


def reproduced(report: dict[str, Any], tolerance: float = 0.0) -> bool:
    """Whether every compared column agrees within ``tolerance`` (absolute; 0: bit for bit) and, where the
    committed rows record super-network ids, the rerun's super-network is the same."""
    ids = report["supernetwork_ids"]
    same_network = not ids.get("committed") or ids["committed"] == ids["recomputed"]
    return same_network and all(c["missing_on_one_side"] == 0 and c["max_abs_difference"] <= tolerance
                                and (tolerance > 0 or c["equal"] == c["rows"]) for c in report["columns"].values())


def unrecorded(plan: Plan, units: list[WorkUnit], data_root: str | Path) -> list[WorkUnit]:
    """The weight-sharing units of ``units`` with committed rows that record no ``supernetwork_id`` (made before
    ids were recorded)."""
    manifest = Manifest.load(data_root)
    shared = [u for u in units if u.scheme == "weight_sharing"]
    lacking: set[str] = set()
    for relpath in _tables(plan, shared):
        if relpath in manifest.tables:
            table = manifest.read(relpath)
            lacking |= set(table.loc[table["supernetwork_id"].isna(), "unit_id"])
    return [u for u in shared if u.unit_id in lacking]


def record_supernetwork_id(plan: Plan, units: list[WorkUnit], data_root: str | Path,
                           report: dict[str, Any]) -> dict[str, int]:
    """Write into the committed rows of ``units`` that record no super-network id the id that ``report`` (of
    :func:`verify`, ``per_unit``) computed their unit again on, with the check in the unit's manifest batch
    (``supernetwork_id_evidence``: the id, when, where, at which commit, how many configurations). Refused
    (:class:`NotRecorded`, nothing written) unless every unit was computed again, all its rows bit for bit, on
    one super-network; and unless the units' rows are those that were verified (other rows of their tables may
    have changed since: another process recording its units' ids), no row of a unit records another id
    and, afterwards, the rows of each (strategy, seed, super-network space) of a table come from one network.
    Returns the rows written per table."""
    left = sorted({u.unit_id for u in units} - set(report["units"]))
    if left:
        raise NotRecorded(f"{len(left)} unit(s) were not computed again ({', '.join(left[:3])}): each unit's rows "
                          "need one of its configurations reproduced")
    if not reproduced(report):
        raise NotRecorded("the committed rows were not reproduced bit for bit: no id is recorded")
    ids = {u.unit_id: report["units"][u.unit_id]["supernetwork_ids"] for u in units}
    several = {u: found for u, found in ids.items() if len(found) != 1}
    if several:
        unit, found = next(iter(several.items()))
        raise NotRecorded(f"unit {unit} was computed again on {len(found)} super-networks ({', '.join(found) or 'none'}), "
                          "not one: no id is recorded")
    check = {"checked": now(), "hardware": report["hardware"], "git_commit": git_commit()}
    changes = []
    with exclusive_lock(Path(data_root) / MERGE_LOCK):
        manifest = Manifest.load(data_root)
        for relpath in _tables(plan, units):
            if relpath not in manifest.tables:
                raise NotRecorded(f"{relpath} left the manifest since it was verified: verify again")
            table = manifest.read(relpath)
            if (manifest.tables[relpath]["sha256"] != report["tables"].get(relpath)
                    and unit_digests(table, set(ids)) != report.get("unit_rows", {}).get(relpath)):
                raise NotRecorded(f"the rows of the verified units in {relpath} changed since they were verified: "
                                  "verify again")
            mended = {}
            for unit_id in sorted(set(table["unit_id"]) & set(ids)):
                rows = (table["unit_id"] == unit_id).to_numpy()
                held = set(table.loc[rows, "supernetwork_id"].dropna().astype(str)) - set(ids[unit_id])
                if held:
                    raise NotRecorded(f"rows of unit {unit_id} in {relpath} record super-network {', '.join(held)}, "
                                      f"not {ids[unit_id][0]}, which computed them again: no id is recorded")
                missing = rows & table["supernetwork_id"].isna().to_numpy()
                if missing.any():
                    table.loc[missing, "supernetwork_id"] = ids[unit_id][0]
                    mended[unit_id] = int(missing.sum())
            if not mended:
                continue
            if mixed_supernetworks(table):
                raise NotRecorded(f"{relpath}: with these ids, its rows of one strategy, seed and super-network space "
                                  "would come from several super-networks, or partly from none recorded: every unit of "
                                  "it whose rows lack an id must be computed again together, and rows that record "
                                  "another network cannot join them")
            batched = {u for b in manifest.tables[relpath]["provenance"]["batches"] for u in b["unit_seconds"]}
            if set(mended) - batched:
                raise NotRecorded(f"{relpath}: unit(s) {', '.join(sorted(set(mended) - batched))} are in no batch of "
                                  "its manifest entry, so the check would have nowhere to be kept")
            changes.append((relpath, table, mended))
        for relpath, table, mended in changes:  # every table checked before any is written
            provenance = manifest.provenance(relpath)
            provenance["batches"] = [_with_evidence(batch, mended, ids, report, check) for batch in provenance["batches"]]
            manifest.write_table(relpath, table, provenance)
    return {relpath: sum(mended.values()) for relpath, _, mended in changes}


def _with_evidence(batch: dict[str, Any], mended: dict[str, int], ids: dict[str, list[str]], report: dict[str, Any],
                   check: dict[str, Any]) -> dict[str, Any]:
    """``batch`` with the id check of each of its units in ``mended`` added under ``supernetwork_id_evidence``."""
    evidence = {u: {"supernetwork_id": ids[u][0], **check, "configs_reproduced": report["units"][u]["configs"],
                    "rows_given_the_id": mended[u]} for u in batch["unit_seconds"] if u in mended}
    if not evidence:
        return batch
    return {**batch, ID_EVIDENCE: {**batch.get(ID_EVIDENCE, {}), **evidence}}
