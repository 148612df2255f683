"""Merging finished shards into the benchmark tables under ``data/`` and recording them in the manifest.

One table per (study, task): ``<data>/<model>/<study>/<task>.parquet``; a latency study's table is
``<data>/<model>/<study>/latency.parquet`` (one row per configuration, no task), and its columns are
joined onto every table's rows by (search_space, config_id).

The tables are the record of what is done, not the work folder: a merge keeps the rows a table
already holds for units that have no shard here (a fresh clone, another machine's run) and adds the
finished shards, so a resumed generation never loses committed rows. Each table's provenance keeps
one *batch* per merge of new shards (the seconds of each of its units, dates, hardware, versions);
the table-level figures are summed over the units it holds. A table is written only when every unit
of its study and task is done (``partial=True`` writes what there is), and only when it or its entry
changes; corrupt shards are discarded, reported, and left for the next ``run`` to redo; a committed
table that fails its checksum is reported *damaged* and left for ``git`` to restore. Nothing committed is dropped silently: a table
holding rows of units the plan does not have (the plan changed) is left as it is and reported
*stale*, a table whose rows would lose their latency columns is left as it is and reported *held*, and
a weight-sharing table whose rows of one (strategy, seed, super-network space) would come from two
different super-networks (one was trained again, say after its cache was lost, and came out different,
or old rows carry no id) is left as it is and reported *mixed*.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

import pandas as pd

from plm_nasbench.locking import exclusive_lock
from plm_nasbench.tables import (COLUMNS, LATENCY_COLUMNS, LATENCY_FIELDS, MANIFEST_FILE, ChecksumError, Manifest,
                                 conform)

from .plan import Plan, WorkUnit
from .store import ShardStore
from .units import MACHINE_CHECK

_VERSIONS = ("plm_nasbench_version", "torch", "transformers", "python")
MERGE_LOCK = ".merge.lock"
#: How peak memory was measured in units run before the method was recorded (until commit ebb9810).
OLD_MEMORY_PEAK = "peak resident set size (VmHWM)"


def table_path(plan: Plan, study: str, task: str | None) -> str:
    """Where the table of ``study`` on ``task`` lives under the data folder (``task=None``: a latency study)."""
    return f"{plan.model}/{study}/{task or 'latency'}.parquet"


def _planned(plan: Plan) -> dict[str, set[str]]:
    """Table path -> the ids of the plan's units whose rows it holds."""
    tables: dict[str, set[str]] = defaultdict(set)
    for unit in plan.units:
        tables[table_path(plan, unit.study, unit.task)].add(unit.unit_id)
    return tables


def merged_units(plan: Plan, data_root: str | Path) -> dict[str, float]:
    """``plan``'s units whose rows a table under ``data_root`` already holds (checksums verified), each with the
    wall seconds it took. Stale tables (rows of units the plan does not have) count for nothing, with a warning. A
    table that fails its checksum is named in a warning and its units (as its manifest entry lists them) count as
    merged, so that they are not run again while it can be restored. Waits for a merge into the same folder to finish
    (and completes one that was interrupted), so it never reads a table newer than its manifest entry. A folder
    without a manifest holds nothing (and is left as it is)."""
    if not (Path(data_root) / MANIFEST_FILE).is_file():
        return {}
    with exclusive_lock(Path(data_root) / MERGE_LOCK):
        manifest = Manifest.load(data_root)
        manifest.finish_interrupted()
        seconds: dict[str, float] = {}
        for relpath, planned in sorted(_planned(plan).items()):
            if relpath not in manifest.tables:
                continue
            batches = manifest.tables[relpath]["provenance"]["batches"]
            try:
                held = set(manifest.read(relpath)["unit_id"].unique())
            except (ChecksumError, FileNotFoundError) as err:
                held = {u for batch in batches for u in batch["unit_seconds"]}
                warnings.warn(f"{err}. Its {len(held)} unit(s) count as merged and are not run again: restore the file "
                              f"(in a git checkout: `git checkout -- {manifest.root / relpath}`), or delete it and its entry in "
                              f"{manifest.root / MANIFEST_FILE} to run them again", stacklevel=2)
            if held <= planned:
                for batch in batches:
                    seconds.update((u, s) for u, s in batch["unit_seconds"].items() if u in held)
            else:  # said now, before units are run for a table that merge will then refuse to write
                warnings.warn(f"{manifest.root / relpath} is stale: {len(held - planned)} of its units are not in "
                              f"plan {plan.name!r} (was the plan changed?), so none of its units count as merged and "
                              "`merge` will leave the table as it is; restore the plan, or give this one a data "
                              "folder of its own (--data)", stacklevel=2)
        return seconds


#: A batch's key for each latency unit's machine check (its marker's ``MACHINE_CHECK``).
_CHECKS = "machine_checks"
#: A batch's key for the check that gave each of its units' rows their super-network id after they were made
#: (``python -m generate verify --record-id``, :func:`generate.verify.record_supernetwork_id`).
ID_EVIDENCE = "supernetwork_id_evidence"
#: A batch's key for when each unit's run finished (batches merged before it was recorded give their own end).
_FINISHED = "unit_finished"
#: The batch keys that hold one entry per unit, narrowed with the units a table keeps.
_PER_UNIT = (_CHECKS, ID_EVIDENCE, _FINISHED)


def _batch(markers: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """What one merge of freshly run shards records (``markers``: unit id -> its marker): each unit's seconds,
    dates, hardware and software, and each latency unit's machine check (``machine_checks``)."""
    environments = [m["environment"] for m in markers.values()]
    checks = {u: m[MACHINE_CHECK] for u, m in sorted(markers.items()) if MACHINE_CHECK in m}
    return {**({_CHECKS: checks} if checks else {}),
            "unit_seconds": {u: m["seconds"] for u, m in sorted(markers.items())},
            _FINISHED: {u: m["finished"] for u, m in sorted(markers.items())},
            "started": min(m["started"] for m in markers.values()),
            "finished": max(m["finished"] for m in markers.values()),
            "hardware": sorted({m["hardware"] for m in markers.values()}),
            "memory_peaks": sorted({m.get("memory_peak", OLD_MEMORY_PEAK) for m in markers.values()}),
            "cpu_signatures": sorted({e.get("cpu_signature") or "unknown" for e in environments}),
            "torch_threads": sorted({e.get("torch_threads", 0) for e in environments}),  # 0: not recorded
            "git_commits": sorted({e.get("git_commit") or "unknown" for e in environments}),
            **{k: sorted({str(e.get(k)) for e in environments}) for k in _VERSIONS}}


def _kept(batch: dict[str, Any], unit_seconds: dict[str, float]) -> dict[str, Any]:
    """``batch`` narrowed to the units of ``unit_seconds`` (those whose rows the table keeps; the others were run
    again and are another batch's now)."""
    narrowed = {key: {u: v for u, v in batch[key].items() if u in unit_seconds} for key in _PER_UNIT if key in batch}
    kept = {k: v for k, v in batch.items() if k not in _PER_UNIT}
    return {**{k: v for k, v in narrowed.items() if v}, **kept, "unit_seconds": unit_seconds}


def batch_totals(batches: list[dict[str, Any]]) -> dict[str, Any]:
    """Table-level provenance summed over its batches."""
    def union(key: str) -> list[Any]:
        missing = {"cpu_signatures": ["unknown"], "memory_peaks": [OLD_MEMORY_PEAK]}.get(key, [])  # batches merged
        return sorted({v for b in batches for v in b.get(key, missing)})                  # before it was recorded

    return {"wall_seconds": sum(s for b in batches for s in b["unit_seconds"].values()),
            "started": min(b["started"] for b in batches), "finished": max(b["finished"] for b in batches),
            **{k: union(k) for k in ("hardware", "memory_peaks", "cpu_signatures", "torch_threads", "git_commits",
                                     *_VERSIONS)}}


def _gather(store: ShardStore | None, manifest: Manifest, relpath: str, units: list[WorkUnit],
            report: dict[str, Any]) -> tuple[pd.DataFrame | None, list[dict[str, Any]], int] | None:
    """The rows of one table's done units: its earlier rows for units without a done shard, then the done shards
    (none without a ``store``: the committed rows alone), in plan order; with the table's batches and its number
    of done units. A shard merged before (its unit's seconds are recorded) adds nothing: the table keeps that
    unit's rows and batch. None when its committed table fails its checksum (left as it is, for ``git`` to
    restore) or is stale (left as it is)."""
    frames: dict[str, pd.DataFrame] = {}
    markers: dict[str, dict[str, Any]] = {}
    for unit in units:
        if store is None or store.state(unit) != "done":
            continue
        try:
            frame, marker = store.read(unit)
        except ChecksumError as err:
            report["corrupt"].append(str(err))
            continue
        frames[unit.unit_id] = frame
        markers[unit.unit_id] = marker
    batches, kept, parts = [], set(), []
    if relpath in manifest.tables:
        try:
            earlier = manifest.read(relpath)
        except (ChecksumError, FileNotFoundError) as err:
            report["damaged"][relpath] = str(err)
            return None
        planned = {u.unit_id for u in units}
        stale = ~earlier["unit_id"].isin(planned)
        if stale.any():
            report["stale"][relpath] = (
                f"{int(stale.sum())} of its rows come from units this plan does not have (was the plan changed?); "
                f"left as it is. To rebuild it from this plan, delete the file and its entry in {manifest.root}/"
                "MANIFEST.json, then run and merge again")
            return None
        recorded = {u: s for b in manifest.tables[relpath]["provenance"]["batches"] for u, s in b["unit_seconds"].items()}
        ended = {u: b.get(_FINISHED, {}).get(u, b["finished"])
                 for b in manifest.tables[relpath]["provenance"]["batches"] for u in b["unit_seconds"]}
        older = set()
        for unit_id in set(earlier["unit_id"]) & set(markers):
            if recorded.get(unit_id) == markers[unit_id]["seconds"]:  # this very shard was merged before
                del frames[unit_id], markers[unit_id]
            elif markers[unit_id]["finished"] < ended[unit_id]:  # a run older than the rows merged (another work
                older.add(unit_id)  # folder's): the newer rows stay (times are to the second: within one, a rerun)
                del frames[unit_id], markers[unit_id]
        if older:
            report["older"][relpath] = (f"{len(older)} shard(s) of units whose merged rows come from a later run "
                                        "were left out (the latest run of a unit wins)")
        rerun = set(earlier["unit_id"]) & set(markers)
        if rerun:  # new runs of units merged before
            report["replaced"][relpath] = f"{len(rerun)} unit(s) run again here replace their earlier rows"
        earlier = earlier[~earlier["unit_id"].isin(markers)]
        kept = set(earlier["unit_id"])
        for batch in manifest.tables[relpath]["provenance"]["batches"]:
            unit_seconds = {u: s for u, s in batch["unit_seconds"].items() if u in kept}
            if unit_seconds:
                batches.append(_kept(batch, unit_seconds))
        if len(earlier):
            parts.append(earlier)
    parts += frames.values()
    if markers:
        batches.append(_batch(markers))
    if not parts:
        return None, batches, len(kept) + len(markers)
    table = pd.concat(parts, ignore_index=True)
    position = {u.unit_id: i for i, u in enumerate(units)}
    table = table.iloc[table["unit_id"].map(position).argsort(kind="stable")].reset_index(drop=True)
    return table, batches, len(kept) + len(markers)


def mixed_supernetworks(table: pd.DataFrame) -> str | None:
    """What is wrong when rows of one (strategy, seed, super-network space) of ``table`` come from several
    super-networks; None when nothing is. Rows without an id (made before ids were recorded) count as one
    super-network of their own, as :class:`plm_nasbench.Benchmark` counts them: nothing shows they match."""
    if "supernetwork_id" not in table or table["supernetwork_id"].isna().all():
        return None
    keys = ["strategy", "seed", "supernetwork_space"]
    ids = table[keys].astype(str).assign(supernetwork_id=table["supernetwork_id"].astype("string").fillna("none recorded"))
    counts = ids.groupby(keys)["supernetwork_id"].unique()
    mixed = counts[counts.map(len) > 1]
    if mixed.empty:
        return None
    (strategy, seed, space), found = next(iter(mixed.items()))
    return (f"its rows of strategy {strategy}, seed {seed} (super-network trained on {space}) would come from "
            f"{len(found)} different super-networks ({', '.join(sorted(found))}); left as it is. A super-network "
            "trained again, after its cache was lost, can come out different (another machine), and rows made "
            "before ids were recorded cannot be matched: to keep one super-network per table, delete the shards of "
            "the units that ran on the other one and run them again while its cache exists, or delete the table "
            "and its manifest entry and run every unit of it again")


def _latency_provenance(table: pd.DataFrame, studies: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Where the latency columns joined onto ``table`` come from: the studies, hardware, threads and times."""
    if "latency_study" not in table:  # no latency table joined (none merged yet, or the plan has none)
        return {"rows_measured": 0}
    measured = table[table["latency_study"].notna()]
    names = sorted(set(measured["latency_study"]))
    if not names:
        return {"rows_measured": 0}
    return {"rows_measured": int(len(measured)), "studies": names,
            "hardware": sorted({h for n in names for h in studies[n]["hardware"]}),
            "memory_peaks": sorted({m for n in names for m in studies[n]["memory_peaks"]}),
            "cpu_signatures": sorted({c for n in names for c in studies[n]["cpu_signatures"]}),
            "torch_threads": sorted({int(t) for t in measured["latency_threads"]}),
            "started": min(studies[n]["started"] for n in names), "finished": max(studies[n]["finished"] for n in names),
            "wall_seconds": sum(studies[n]["wall_seconds"] for n in names)}


def merge(plan: Plan, store: ShardStore, data_root: str | Path, partial: bool = False,
          only: set[tuple[str, str | None]] | None = None) -> dict[str, Any]:
    """Write every complete (study, task) table, or those in ``only``, and the latency tables (which every table
    joins), and update the manifest; returns the tables written, those left unchanged (nothing new: no file is
    touched), incomplete, stale, held back, mixed or replaced, those whose shards were older than their merged rows
    (``older``: another work folder's run of a unit merged since from a later one), the corrupt shards discarded,
    and the committed
    tables that fail their checksum (``damaged``: left as they are). Where ``only`` names a latency study, the plan's other tables already in ``data_root`` are written
    too, from their committed rows alone (partial ones included, new shards left for their own merge), so that
    they copy its new columns. Merges into one data folder wait for each other (a lock file ``.merge.lock`` there), so none
    overwrites another's manifest entries."""
    with exclusive_lock(Path(data_root) / MERGE_LOCK):
        return _merge(plan, store, data_root, partial, only)


def _merge(plan: Plan, store: ShardStore, data_root: str | Path, partial: bool,
           only: set[tuple[str, str | None]] | None) -> dict[str, Any]:
    manifest = Manifest.load(data_root)
    manifest.finish_interrupted()
    groups: dict[tuple[str, str | None], list[WorkUnit]] = defaultdict(list)
    for unit in plan.units:
        groups[(unit.study, unit.task)].append(unit)
    report: dict[str, Any] = {"written": {}, "unchanged": {}, "incomplete": {}, "corrupt": [], "damaged": {},
                              "stale": {}, "held": {}, "mixed": {}, "replaced": {}, "older": {}}
    requested = only
    rejoined: set[tuple[str, str | None]] = set()  # tables in data/ that only copy a merged latency study's columns:
    if only is not None and any(groups[k][0].scheme == "latency" for k in only if k in groups):  # their committed rows
        rejoined = {k for k in groups if groups[k][0].scheme != "latency" and k not in only  # alone, partial ones too
                    and table_path(plan, *k) in manifest.tables}
        only = only | rejoined
    for unit in plan.units:
        if requested is not None and unit.scheme != "latency" and (unit.study, unit.task) not in requested:
            continue  # shards of tables not merged now are checked when those are
        if store.state(unit) == "corrupt":
            with store.lock(unit) as held:  # a run holding the unit is redoing it
                if held and store.state(unit) == "corrupt":
                    report["corrupt"].append(str(store.shard_path(unit)))
                    store.discard(unit)

    def write(study: str, task: str | None, table: pd.DataFrame, columns: Any,
              provenance: dict[str, Any]) -> pd.DataFrame:
        """Write ``table`` conformed to ``columns`` and enter it in the manifest; returns what was written."""
        relpath = table_path(plan, study, task)
        table = conform(table, relpath, columns)
        wrote = manifest.write_table(relpath, table, provenance)  # entered one at a time: a failure later loses none
        report["written" if wrote else "unchanged"][relpath] = len(table)
        return table

    def gathered(study: str, task: str | None) -> tuple[pd.DataFrame, dict[str, Any]] | None:
        """The table to write (None: none) and its provenance."""
        units = groups[(study, task)]
        result = _gather(None if (study, task) in rejoined else store, manifest, table_path(plan, study, task), units,
                         report)
        if result is None:
            return None
        table, batches, done = result
        if done < len(units) and not ((partial or (study, task) in rejoined) and done):
            report["incomplete"][f"{study}/{task or 'latency'}"] = f"{done}/{len(units)} units done"
            return None
        return table, {"study": study, "plan": plan.name, "plan_file": plan.source, "units": len(units),
                       "units_done": done, "complete": done == len(units), **batch_totals(batches), "batches": batches}

    latency_frames, latency_studies = [], {}
    for (study, task) in sorted(k for k in groups if groups[k][0].scheme == "latency"):
        result = gathered(study, task)
        if result is None:
            continue
        table, provenance = result
        table = write(study, None, table, LATENCY_COLUMNS,  # conformed: every latency column, even unmeasured ones
                      {"model": plan.model, "scheme": "latency", **provenance,
                       "dtype": sorted(set(table["latency_dtype"]))})
        latency_frames.append((provenance["finished"], table.assign(latency_study=study)))
        latency_studies[study] = provenance
    latency = None
    if latency_frames:  # a configuration measured by several studies takes the newest measurement
        latency = pd.concat([f for _, f in sorted(latency_frames, key=lambda x: x[0])], ignore_index=True)
        latency = latency.drop_duplicates(["search_space", "config_id"], keep="last")
        latency = latency[["search_space", "config_id", "latency_study", *LATENCY_FIELDS]]
    damaged = sorted(set(report["damaged"]) & {table_path(plan, *k) for k in groups if groups[k][0].scheme == "latency"})
    for (study, task) in sorted(k for k in groups if groups[k][0].scheme != "latency" and (only is None or k in only)):
        result = gathered(study, task)
        if result is None:
            continue
        table, provenance = result
        relpath = table_path(plan, study, task)
        if damaged:  # its rows would be joined without the measurements that table holds
            report["held"][relpath] = (f"the latency table(s) {', '.join(damaged)} fail their checksum, so its rows "
                                       "would lose latency columns; restore them (git) and merge again")
            continue
        had = table["latency_b1_median"].notna() if "latency_b1_median" in table else pd.Series(False, table.index)
        table = table.drop(columns=[c for c in LATENCY_FIELDS if c in table.columns])
        if latency is not None:
            table = table.merge(latency, on=["search_space", "config_id"], how="left")
        lost = had & table["latency_study"].isna() if "latency_study" in table else had
        if lost.any():
            report["held"][relpath] = (f"{int(lost.sum())} of its rows would lose their latency columns: the latency "
                                       "study that measured them has no table here; merge or run it first")
            continue
        mixed = mixed_supernetworks(table)
        if mixed:
            report["mixed"][relpath] = mixed
            report["replaced"].pop(relpath, None)  # nothing was replaced: the table is left as it is
            continue
        provenance["latency"] = _latency_provenance(table, latency_studies)
        write(study, task, table.drop(columns=["latency_study"], errors="ignore"), COLUMNS,
              {**provenance, "dtype": sorted(set(table["dtype"]))})
    return report
