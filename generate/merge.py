"""Merging finished shards into the benchmark tables under ``data/`` and recording them in the manifest.

One table per (study, task): ``<data>/<model>/<study>/<task>.parquet``; a latency study's table is
``<data>/<model>/<study>/latency.parquet`` (one row per configuration, no task), and its columns are
joined onto every table's rows by (search_space, config_id).

The tables are the record of what is done, not the work folder: a merge keeps the rows a table
already holds for units that have no shard here (a fresh clone, another machine's run) and adds the
finished shards, so a resumed generation never loses committed rows. Each table's provenance keeps
one *batch* per merge of shards (their units, wall time, hardware, versions); the table-level
figures are summed over its batches. A table is written only when every unit of its study and task
is done (``partial=True`` writes what there is); corrupt shards are discarded, reported, and left
for the next ``run`` to redo.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import pandas as pd

from plm_nasbench.locking import exclusive_lock
from plm_nasbench.tables import (COLUMNS, LATENCY_COLUMNS, LATENCY_FIELDS, ChecksumError, Manifest, conform,
                                 write_parquet)

from .plan import Plan, WorkUnit
from .store import ShardStore

_VERSIONS = ("plm_nasbench_version", "torch", "transformers", "python")
MERGE_LOCK = ".merge.lock"


def table_path(plan: Plan, study: str, task: str | None) -> str:
    """Where the table of ``study`` on ``task`` lives under the data folder (``task=None``: a latency study)."""
    return f"{plan.model}/{study}/{task or 'latency'}.parquet"


def merged_units(plan: Plan, data_root: str | Path) -> dict[str, float]:
    """``plan``'s units whose rows a table under ``data_root`` already holds (checksums verified), each with the
    wall seconds it took: the mean over the units of the merge batch it came in."""
    manifest = Manifest.load(data_root)
    paths = {table_path(plan, u.study, u.task) for u in plan.units} & set(manifest.tables)
    seconds = {}
    for relpath in sorted(paths):
        held = set(manifest.read(relpath)["unit_id"].unique())
        for batch in _earlier_batches(manifest.tables[relpath], held):
            seconds.update({uid: batch["wall_seconds"] / len(batch["units"]) for uid in batch["units"] if uid in held})
    return seconds


def _batch(markers: list[dict[str, Any]], unit_ids: set[str]) -> dict[str, Any]:
    """What one merge of freshly run shards records: their units, time, hardware and software."""
    environments = [m["environment"] for m in markers]
    return {"units": sorted(unit_ids), "wall_seconds": sum(m["seconds"] for m in markers),
            "started": min(m["started"] for m in markers), "finished": max(m["finished"] for m in markers),
            "hardware": sorted({m["hardware"] for m in markers}),
            "torch_threads": sorted({e.get("torch_threads", 0) for e in environments}),  # 0: not recorded
            "git_commits": sorted({e.get("git_commit") or "unknown" for e in environments}),
            **{k: sorted({str(e.get(k)) for e in environments}) for k in _VERSIONS}}


def _earlier_batches(entry: dict[str, Any], unit_ids: set[str]) -> list[dict[str, Any]]:
    """The batches of a table already in the manifest; a table merged before batches were recorded counts as
    one batch of all its units (``unit_ids``), with the figures its provenance gave."""
    prov = entry["provenance"]
    if "batches" in prov:
        return prov["batches"]
    keys = ("wall_seconds", "started", "finished", "hardware", "torch_threads", "git_commits")
    return [{"units": sorted(unit_ids), **{k: prov[k] for k in keys},
             **{k: [str(prov.get(k))] for k in _VERSIONS}}]


def _totals(batches: list[dict[str, Any]]) -> dict[str, Any]:
    """Table-level provenance summed over its batches."""
    union = lambda key: sorted({v for b in batches for v in b[key]})  # noqa: E731
    return {"wall_seconds": sum(b["wall_seconds"] for b in batches),
            "started": min(b["started"] for b in batches), "finished": max(b["finished"] for b in batches),
            **{k: union(k) for k in ("hardware", "torch_threads", "git_commits", *_VERSIONS)}}


def _gather(plan: Plan, store: ShardStore, manifest: Manifest, relpath: str, units: list[WorkUnit],
            report: dict[str, Any]) -> tuple[pd.DataFrame | None, list[dict[str, Any]], int] | None:
    """The rows of one table's done units: its earlier rows for units without a done shard, then the done shards;
    with the table's batches and its number of done units. None when its committed table fails its checksum
    (left as it is, for ``git`` to restore) or holds rows of units the plan does not have (left as it is)."""
    frames, markers, fresh = [], [], set()
    for unit in units:
        if store.state(unit) != "done":
            continue
        try:
            frame, marker = store.read(unit)
        except ChecksumError as err:
            report["corrupt"].append(str(err))
            store.discard(unit)
            continue
        frames.append(frame)
        markers.append(marker)
        fresh.add(unit.unit_id)
    batches, kept = [], set()
    if relpath in manifest.tables:
        try:
            earlier = manifest.read(relpath)
        except (ChecksumError, FileNotFoundError) as err:
            report["corrupt"].append(str(err))
            return None
        planned = {u.unit_id for u in units}
        stale = ~earlier["unit_id"].isin(planned)
        if stale.any():
            report["stale"][relpath] = (f"{int(stale.sum())} of its rows come from units this plan does not have "
                                        "(was the plan changed?); left as it is: delete it to rebuild it from this plan")
            return None
        earlier = earlier[earlier["unit_id"].isin(planned - fresh)]
        kept = set(earlier["unit_id"])
        for batch in _earlier_batches(manifest.tables[relpath], kept):
            if kept & set(batch["units"]):
                batches.append(dict(batch, units=sorted(kept & set(batch["units"]))))
        if len(earlier):
            frames.insert(0, earlier)
    if markers:
        batches.append(_batch(markers, fresh))
    if not frames:
        return None, batches, len(kept) + len(fresh)
    table = pd.concat(frames, ignore_index=True)
    position = {u.unit_id: i for i, u in enumerate(units)}  # rows in plan order, however they were gathered
    table = table.iloc[table["unit_id"].map(position).argsort(kind="stable")].reset_index(drop=True)
    return table, batches, len(kept) + len(fresh)


def _latency_provenance(table: pd.DataFrame, studies: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Where the latency columns joined onto ``table`` come from: the studies, hardware, threads and times."""
    measured = table[table["latency_study"].notna()] if "latency_study" in table else table.iloc[:0]
    names = sorted(set(measured["latency_study"]))
    if not names:
        return {"rows_measured": 0}
    return {"rows_measured": int(len(measured)), "studies": names,
            "hardware": sorted({h for n in names for h in studies[n]["hardware"]}),
            "torch_threads": sorted({int(t) for t in measured["latency_threads"]}),
            "started": min(studies[n]["started"] for n in names), "finished": max(studies[n]["finished"] for n in names),
            "wall_seconds": sum(studies[n]["wall_seconds"] for n in names)}


def merge(plan: Plan, store: ShardStore, data_root: str | Path, partial: bool = False) -> dict[str, Any]:
    """Write every complete (study, task) table, and the latency tables, and update the manifest; returns what
    was written, what was left incomplete, what was corrupt and which tables are stale. Merges into one data
    folder wait for each other (a lock file ``.merge.lock`` there), so none overwrites another's manifest entries."""
    with exclusive_lock(Path(data_root) / MERGE_LOCK):
        return _merge(plan, store, data_root, partial)


def _merge(plan: Plan, store: ShardStore, data_root: str | Path, partial: bool) -> dict[str, Any]:
    manifest = Manifest.load(data_root)
    groups: dict[tuple[str, str | None], list[WorkUnit]] = defaultdict(list)
    for unit in plan.units:
        groups[(unit.study, unit.task)].append(unit)
    report: dict[str, Any] = {"written": {}, "incomplete": {}, "corrupt": [], "stale": {}}
    for unit in plan.units:
        if store.state(unit) == "corrupt":
            report["corrupt"].append(str(store.shard_path(unit)))
            store.discard(unit)

    def write(study: str, task: str | None, table: pd.DataFrame, columns: Any, provenance: dict[str, Any]) -> None:
        relpath = table_path(plan, study, task)
        table = conform(table, relpath, columns)
        manifest.record(relpath, table, write_parquet(table, Path(data_root) / relpath), provenance)
        report["written"][relpath] = len(table)

    def gathered(study: str, task: str | None) -> tuple[pd.DataFrame, dict[str, Any]] | None:
        units = groups[(study, task)]
        result = _gather(plan, store, manifest, table_path(plan, study, task), units, report)
        if result is None:
            return None
        table, batches, done = result
        if done < len(units) and not (partial and done):
            report["incomplete"][f"{study}/{task or 'latency'}"] = f"{done}/{len(units)} units done"
        if table is None:
            return None
        return table, {"study": study, "plan": plan.name, "plan_file": plan.source, "units": len(units),
                       "units_done": done, "complete": done == len(units), **_totals(batches), "batches": batches}

    latency_frames, latency_studies = [], {}
    for (study, task) in sorted(k for k in groups if groups[k][0].scheme == "latency"):
        result = gathered(study, task)
        if result is None:
            continue
        table, provenance = result
        table = conform(table, table_path(plan, study, None), LATENCY_COLUMNS)
        latency_frames.append(table.assign(latency_study=study))
        latency_studies[study] = provenance
        if provenance["complete"] or partial:
            write(study, None, table, LATENCY_COLUMNS,
                  {"model": plan.model, "scheme": "latency", **provenance, "dtype": sorted(set(table["latency_dtype"]))})
    latency = None
    if latency_frames:
        latency = pd.concat(latency_frames, ignore_index=True).drop_duplicates(["search_space", "config_id"],
                                                                                keep="last")
        latency = latency[["search_space", "config_id", "latency_study", *LATENCY_FIELDS]]
    for (study, task) in sorted(k for k in groups if groups[k][0].scheme != "latency"):
        result = gathered(study, task)
        if result is None:
            continue
        table, provenance = result
        if not (provenance["complete"] or partial):
            continue
        table = table.drop(columns=[c for c in LATENCY_FIELDS if c in table.columns])
        if latency is not None:
            table = table.merge(latency, on=["search_space", "config_id"], how="left")
        provenance["latency"] = _latency_provenance(table, latency_studies)
        write(study, task, table.drop(columns=["latency_study"], errors="ignore"), COLUMNS,
              {**provenance, "dtype": sorted(set(table["dtype"]))})
    manifest.save()
    return report
