"""Merging finished shards into the benchmark tables under ``data/`` and recording them in the manifest.

One table per (study, task): ``<data>/<model>/<study>/<task>.parquet``. Latency studies are not
tables of their own: their columns are joined onto every table's rows by (search_space, config_id).
A table is written only when every unit of its study and task is done (``partial=True`` writes what
there is); corrupt shards are discarded, reported, and left for the next ``run`` to redo.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import pandas as pd

from plm_nasbench.tables import ChecksumError, Manifest, conform, write_parquet

from .plan import Plan, WorkUnit
from .store import ShardStore
from .units import LATENCY_COLUMNS


def _latency(store: ShardStore, units: list[WorkUnit]) -> tuple[pd.DataFrame | None, dict[str, list[dict]]]:
    """The done latency units' rows (one per search space and configuration, with the ``latency_study`` that
    measured it) and their shards' markers by study."""
    frames, markers = [], defaultdict(list)
    for unit in units:
        if store.state(unit) == "done":
            frame, marker = store.read(unit)
            frames.append(frame.assign(latency_study=unit.study))
            markers[unit.study].append(marker)
    if not frames:
        return None, {}
    frame = pd.concat(frames, ignore_index=True)
    return frame.drop_duplicates(["search_space", "config_id"], keep="last"), dict(markers)


def _latency_provenance(table: pd.DataFrame, markers: dict[str, list[dict]]) -> dict[str, Any]:
    """Where the latency columns joined onto ``table`` come from: the studies, hardware, threads and times."""
    measured = table[table["latency_study"].notna()] if "latency_study" in table else table.iloc[:0]
    studies = sorted(set(measured["latency_study"]))
    runs = [m for study in studies for m in markers[study]]
    if not runs:
        return {"rows_measured": 0}
    return {"rows_measured": int(len(measured)), "studies": studies,
            "hardware": sorted({m["hardware"] for m in runs}),
            "torch_threads": sorted({int(t) for t in measured["latency_threads"]}),
            "started": min(m["started"] for m in runs), "finished": max(m["finished"] for m in runs),
            "wall_seconds": sum(m["seconds"] for m in runs)}


def merge(plan: Plan, store: ShardStore, data_root: str | Path, partial: bool = False) -> dict[str, Any]:
    """Write every complete (study, task) table and update the manifest; returns what was written and skipped."""
    manifest = Manifest.load(data_root)
    groups: dict[tuple[str, str], list[WorkUnit]] = defaultdict(list)
    latency_units = []
    for unit in plan.units:
        if unit.scheme == "latency":
            latency_units.append(unit)
        else:
            groups[(unit.study, unit.task)].append(unit)
    report: dict[str, Any] = {"written": {}, "incomplete": {}, "corrupt": []}
    for unit in plan.units:
        if store.state(unit) == "corrupt":
            report["corrupt"].append(str(store.shard_path(unit)))
            store.discard(unit)
    latency, latency_markers = _latency(store, latency_units)
    for (study, task), units in sorted(groups.items()):
        done = [u for u in units if store.state(u) == "done"]
        if len(done) < len(units) and not (partial and done):
            report["incomplete"][f"{study}/{task}"] = f"{len(done)}/{len(units)} units done"
            continue
        frames, markers = [], []
        for unit in done:
            try:
                frame, marker = store.read(unit)
            except ChecksumError as err:
                report["corrupt"].append(str(err))
                store.discard(unit)
                continue
            frames.append(frame)
            markers.append(marker)
        if not frames:
            continue
        table = pd.concat(frames, ignore_index=True)
        if latency is not None:
            table = table.drop(columns=[c for c in LATENCY_COLUMNS if c in table.columns])
            table = table.merge(latency, on=["search_space", "config_id"], how="left")
        latency_provenance = _latency_provenance(table, latency_markers)
        table = table.drop(columns=["latency_study"], errors="ignore")
        relpath = f"{plan.model}/{study}/{task}.parquet"
        table = conform(table, relpath)
        digest = write_parquet(table, Path(data_root) / relpath)
        environments = {m["environment"].get("git_commit") for m in markers}
        first = markers[0]["environment"]
        manifest.record(relpath, table, digest, {
            "study": study, "plan": plan.name, "plan_file": plan.source, "units": len(units), "units_done": len(done),
            "complete": len(done) == len(units), "wall_seconds": sum(m["seconds"] for m in markers),
            "started": min(m["started"] for m in markers), "finished": max(m["finished"] for m in markers),
            "hardware": sorted({m["hardware"] for m in markers}),
            "torch_threads": sorted({m["environment"].get("torch_threads", 0) for m in markers}),  # 0: not recorded
            "git_commits": sorted(c or "unknown" for c in environments),
            "plm_nasbench_version": first.get("plm_nasbench_version"), "torch": first.get("torch"),
            "transformers": first.get("transformers"), "python": first.get("python"),
            "dtype": sorted(set(table["dtype"])), "latency": latency_provenance,
        })
        report["written"][relpath] = len(table)
    manifest.save()
    return report
