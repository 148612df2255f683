"""Where units' results live until they are merged: one Parquet shard and one JSON marker per unit.

A unit is done when its marker exists and its shard's SHA-256 matches the marker. The shard is
written (atomically) before the marker, so a killed run leaves at most an unmarked shard, which is
redone; a shard whose bytes no longer match is reported as corrupt and redone, never merged. A unit
without a shard whose rows a table in ``data/`` already holds is *merged*: it is not run again.
"""

from __future__ import annotations

import collections
import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from plm_nasbench.locking import exclusive_lock
from plm_nasbench.provenance import sha256_file
from plm_nasbench.atomic import write_atomic
from plm_nasbench.tables.files import ChecksumError, read_parquet, write_parquet

from .plan import Plan, WorkUnit
from .units import RESUME_STAMP


class ShardStore:
    """The shards of one plan under ``work_dir/<plan name>/``; ``merged``: the units the tables already hold, with
    the seconds each took (see :func:`generate.merge.merged_units`)."""

    def __init__(self, plan: Plan, work_dir: str | Path, merged: Mapping[str, float] | None = None) -> None:
        self.plan = plan
        self.root = Path(work_dir) / plan.name
        self.merged = dict(merged or {})

    def shard_path(self, unit: WorkUnit) -> Path:
        return self.root / "shards" / unit.study / f"{unit.unit_id}.parquet"

    def marker_path(self, unit: WorkUnit) -> Path:
        return self.root / "shards" / unit.study / f"{unit.unit_id}.json"

    def resume_dir(self, unit: WorkUnit) -> Path:
        """Where a unit in progress keeps what a killed run would otherwise lose (removed when its shard is written)."""
        return self.root / "resume" / unit.study / unit.unit_id

    def saved_progress(self, unit: WorkUnit) -> bool:
        """Whether an earlier run of the unit left finished curves or a training state in :meth:`resume_dir`."""
        folder = self.resume_dir(unit)
        return folder.is_dir() and any(p.name != RESUME_STAMP for p in folder.iterdir())

    def drop_progress(self, unit: WorkUnit) -> None:
        """Remove the unit's :meth:`resume_dir` (it is done)."""
        shutil.rmtree(self.resume_dir(unit), ignore_errors=True)

    def lock(self, unit: WorkUnit) -> Any:
        """A non-blocking lock on the unit, so two runs of the same plan never work on it at once."""
        return exclusive_lock(self.root / "locks" / f"{unit.unit_id}.lock", blocking=False)

    def state(self, unit: WorkUnit) -> str:
        """'done', 'merged' (in a table, with no intact shard here: a damaged one is not worth computing the unit
        again), 'pending' or 'corrupt' (a marked shard whose bytes do not match its checksum)."""
        marker, shard = self.marker_path(unit), self.shard_path(unit)
        if not marker.is_file():
            return "merged" if unit.unit_id in self.merged else "pending"
        try:
            intact = shard.is_file() and sha256_file(shard) == json.loads(marker.read_text())["sha256"]
        except (json.JSONDecodeError, KeyError, TypeError):  # not a marker (TypeError: not a JSON object)
            intact = False
        return "done" if intact else "merged" if unit.unit_id in self.merged else "corrupt"

    def seconds(self, unit: WorkUnit) -> float:
        """Wall-clock seconds a finished unit took (from its marker)."""
        return float(json.loads(self.marker_path(unit).read_text())["seconds"])

    def status(self, units: list[WorkUnit]) -> str:
        """A text table per (study, task): units done here (not merged yet), merged into a table, pending and corrupt, hours
        the done and merged units took, and the hours left if each unit still to run (pending or corrupt) costs
        the median of those of the same study and task (a study's first unit may also have trained its
        super-network; a merged unit counts the seconds its table's manifest entry records for it). Where none of
        them has run, the hours left are borrowed, marked ``~``: each configuration costs the median
        per-configuration seconds of the finished units most like its own (same scheme, space, task, super-network
        space and epochs, else same scheme and space: another study's latency units, say); ``?`` where none ran."""
        states: dict[tuple[str, str], collections.Counter] = collections.defaultdict(collections.Counter)
        seconds: dict[tuple[str, str], list[float]] = collections.defaultdict(list)
        per_config: dict[tuple, list[float]] = collections.defaultdict(list)  # seconds a configuration, by likeness
        waiting: dict[tuple[str, str], int] = collections.Counter()  # configurations of the units still to run
        kinds: dict[tuple[str, str], tuple[tuple, tuple]] = {}  # (study, task) -> (closest likeness, broad likeness)
        for unit in units:
            state = self.state(unit)
            if state == "done" and unit.unit_id in self.merged:  # its shard is still here, its rows in a table too
                state = "merged"
            key = (unit.study, unit.task or "-")
            states[key][state] += 1
            kinds[key] = ((unit.scheme, unit.space, unit.task, unit.supernetwork_space, unit.epochs),
                          (unit.scheme, unit.space))
            if state in ("done", "merged"):
                took = self.seconds(unit) if state == "done" else self.merged[unit.unit_id]
                seconds[key].append(took)
                for likeness in kinds[key]:
                    per_config[likeness].append(took / max(len(unit.configs), 1))
            else:
                waiting[key] += len(unit.configs)
        width = max([28, *(len(study) for study, _ in states)])  # the study column fits the longest name
        lines = [f"{'study':{width}s} {'task':6s} {'done':>5s} {'merged':>7s} {'pending':>8s} {'corrupt':>8s} "
                 f"{'hours':>7s} {'eta h':>7s}"]
        spent_total, eta_total, unknown, borrowed = 0.0, 0.0, False, False
        for (study, task), c in states.items():
            spent = sum(seconds[study, task]) / 3600
            left = c["pending"] + c["corrupt"]
            eta, shown = None, f"{'?':>7s}"
            if seconds[study, task]:
                eta = float(np.median(seconds[study, task])) * left / 3600
                shown = f"{eta:7.1f}"
            elif left and (rates := next((per_config[k] for k in kinds[study, task] if per_config[k]), None)):
                eta = float(np.median(rates)) * waiting[study, task] / 3600
                shown, borrowed = f"{eta:6.1f}~", True
            unknown |= eta is None and left > 0
            spent_total += spent
            eta_total += eta or 0.0
            lines.append(f"{study:{width}s} {task:6s} {c['done']:5d} {c['merged']:7d} {c['pending']:8d} "
                         f"{c['corrupt']:8d} {spent:7.2f} {shown}")
        total = {k: sum(c[k] for c in states.values()) for k in ("done", "merged", "pending", "corrupt")}
        lines.append(f"{'total':{width + 7}s} {total['done']:5d} {total['merged']:7d} {total['pending']:8d} "
                     f"{total['corrupt']:8d} "
                     f"{spent_total:7.2f} {eta_total:7.1f}" + (" + the studies marked ?" if unknown else "")
                     + (" (~: estimated from other units like them)" if borrowed else ""))
        return "\n".join(lines)

    def discard(self, unit: WorkUnit) -> None:
        """Remove a unit's marker and shard so that it is run again."""
        self.marker_path(unit).unlink(missing_ok=True)
        self.shard_path(unit).unlink(missing_ok=True)

    def write(self, unit: WorkUnit, frame: pd.DataFrame, meta: dict[str, Any]) -> None:
        """Store a finished unit's rows, then its marker (both atomically)."""
        digest = write_parquet(frame, self.shard_path(unit))
        record = dict(meta, unit_id=unit.unit_id, study=unit.study, rows=len(frame), sha256=digest)
        text = json.dumps(record, indent=2, default=str)
        write_atomic(self.marker_path(unit), lambda p: p.write_text(text))
        self.drop_progress(unit)

    def read(self, unit: WorkUnit) -> tuple[pd.DataFrame, dict[str, Any]]:
        """A done unit's rows and marker, the checksum verified."""
        marker = json.loads(self.marker_path(unit).read_text())
        try:
            return read_parquet(self.shard_path(unit), marker["sha256"]), marker
        except FileNotFoundError as err:
            raise ChecksumError(f"{self.shard_path(unit)} is missing but marked done") from err
