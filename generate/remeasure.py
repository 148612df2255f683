"""Measuring the peak-memory columns of committed latency tables again, with today's method, keeping their latency.

Edition 1 first measured peak memory as the process's peak resident set size, which overstates the peak of
sub-networks whose layers differ in shape (see :mod:`plm_nasbench.evaluation.memory`). Latency needs a quiet
machine, but the allocator's peak does not depend on what else runs, so the memory columns can be measured
again on their own: each configuration of a latency table goes through the same passes as in a latency unit
(:func:`plm_nasbench.evaluation.latency.measure_latency`: two warm-up passes, the third measured) at the
table's batch sizes, dtype and torch threads, and only ``memory_b{b}_peak_mb`` are replaced. Each batch of the
table's provenance then says the method (``memory_peaks``) and when, where and by which code its memory was
measured again (``memory_remeasured``). A table is written once all of its rows are measured, in one step; a
table whose batches already record the method is left as it is, so an interrupted run resumes with the table
it was measuring. Finally the plan's tables re-join the new columns (:func:`generate.merge.merge`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pandas as pd

from plm_nasbench.locking import exclusive_lock
from plm_nasbench.provenance import environment, now
from plm_nasbench.tables import ChecksumError, Manifest

from .merge import MERGE_LOCK, batch_totals, merge, table_path
from .plan import Plan
from .store import ShardStore
from .units import MachineMismatchError, check_device, device_type, latency_machine, latency_model


def measured_memory(plan: Plan, table: pd.DataFrame, device: str = "cpu", progress: bool = True) -> pd.DataFrame:
    """The ``memory_b{b}_peak_mb`` columns of latency ``table``'s rows measured here, for the plan's batch sizes,
    each row in its ``latency_dtype`` with its ``latency_threads`` torch threads (the allocator's peak depends on
    the threads: on 2026-12-03, one thread instead of two moved it by up to 0.4 MiB)."""
    import torch
    from tqdm.auto import tqdm

    from plm_nasbench.evaluation.latency import measure_latency
    from plm_nasbench.models import architecture_of, extract_subnetwork
    from plm_nasbench.spaces import get_search_space

    model = latency_model(plan, device)
    spaces = {s: get_search_space(s, architecture_of(model)) for s in table["search_space"].unique()}
    columns = {f"memory_b{b}_peak_mb": [] for b in plan.latency_batch_sizes}
    threads = torch.get_num_threads()
    try:
        for _, row in tqdm(table.iterrows(), total=len(table), desc="memory", unit="config", disable=not progress):
            torch.set_num_threads(int(row["latency_threads"]))
            space = spaces[row["search_space"]]
            sub = extract_subnetwork(model, space, json.loads(row["config"]), share_weights=True)
            for b in plan.latency_batch_sizes:
                stats = measure_latency(sub, plan.max_length, b, repeats=1, dtype=str(row["latency_dtype"]))
                columns[f"memory_b{b}_peak_mb"].append(stats["peak_memory_mb"])
    finally:
        torch.set_num_threads(threads)
    return pd.DataFrame(columns, index=table.index)


def remeasure_memory(plan: Plan, store: ShardStore, data_root: str | Path, studies: set[str] | None = None,
                     device: str = "cpu", progress: bool = True) -> dict[str, Any]:
    """Measure the memory columns of the plan's latency tables under ``data_root`` again (those of the latency
    ``studies``, default all) where their batches record another method, then re-join the plan's tables (a merge
    of the latency studies, whose report is returned under ``merge``). Returns the tables ``remeasured`` (with the
    largest change in MiB), those already ``current``, the studies with no table (``missing``), and the tables
    left as they are: ``damaged`` (failing their checksum), ``stale`` (rows of units the plan does not have: other
    settings) and ``changed`` (written by someone else meanwhile). Every table's rows must have been timed on this
    device type and processor model (and the plan's ``latency_hardware``): the allocator's requests follow the
    kernels, which follow the processor. Devices and dtypes are checked before anything is measured."""
    from plm_nasbench.evaluation.memory import peak_method

    check_device(device, set())
    machine = latency_machine(plan, device, f"the memory measurements of plan {plan.name!r}",
                              "run remeasure-memory on that machine (memory follows the processor's kernels)")
    method = peak_method(device)
    report: dict[str, Any] = {"remeasured": {}, "current": [], "missing": [], "damaged": {}, "stale": {},
                              "changed": {}}
    units = [u for u in plan.units if u.scheme == "latency" and (not studies or u.study in studies)]
    latency_studies = sorted({u.study for u in units})
    todo: list[tuple[str, dict[str, Any], pd.DataFrame]] = []
    manifest = Manifest.load(data_root)
    for study in latency_studies:
        relpath = table_path(plan, study, None)
        if relpath not in manifest.tables:
            report["missing"].append(study)
            continue
        entry = manifest.tables[relpath]
        if all(b.get("memory_peaks") == [method] for b in entry["provenance"]["batches"]):
            report["current"].append(relpath)
            continue
        try:
            table = manifest.read(relpath)
        except (ChecksumError, FileNotFoundError) as err:
            report["damaged"][relpath] = f"{err}; restore it (git) and run again"
            continue
        if not set(table["unit_id"]) <= {u.unit_id for u in units if u.study == study}:
            report["stale"][relpath] = ("rows of units this plan does not have (other settings: batch sizes, "
                                        "max_length, dtype?); left as it is")
            continue
        timed = {(device_type(str(d)), str(h)) for d, h in zip(table["latency_device"], table["hardware"])}
        if timed != {(device_type(device), machine)}:
            raise MachineMismatchError(
                f"{relpath} was timed on {', '.join(sorted(f'{h} ({d})' for d, h in timed))}; its memory columns are "
                f"measured again only there, and this is {machine} ({device_type(device)})")
        check_device(device, set(table["latency_dtype"].astype(str)))
        todo.append((relpath, entry, table))
    here = environment(device)
    for relpath, entry, table in todo:
        started, clock = now(), time.perf_counter()
        memory = measured_memory(plan, table, device, progress)
        record = {"method": method, "started": started, "finished": now(), "seconds": time.perf_counter() - clock,
                  "hardware": machine, "rows": len(table),
                  **{k: here.get(k) for k in ("cpu_signature", "git_commit", "torch", "plm_nasbench_version")}}
        with exclusive_lock(Path(data_root) / MERGE_LOCK):
            manifest = Manifest.load(data_root)
            current = manifest.tables.get(relpath, {})
            if current.get("sha256") != entry["sha256"] or current.get("provenance") != entry["provenance"]:
                report["changed"][relpath] = "written by another process while measuring; measure it again"
                continue
            change = (memory - table[memory.columns]).abs().max().max()
            batches = [dict(b, memory_peaks=[method], memory_remeasured=record) for b in entry["provenance"]["batches"]]
            manifest.write_table(relpath, table.assign(**memory),
                                 {**manifest.provenance(relpath), **batch_totals(batches), "batches": batches})
        report["remeasured"][relpath] = {"rows": len(table), "largest_change_mb": float(change),
                                         "seconds": record["seconds"]}
    report["merge"] = merge(plan, store, data_root, only={(s, None) for s in latency_studies})
    return report
