"""``data/MANIFEST.json``: every table file with its checksum, row count, what it holds and where it came from."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..paths import data_dir as default_data_dir
from ..provenance import now, sha256_file
from ..atomic import write_atomic
from .files import ChecksumError, parquet_bytes, read_parquet
from .schema import SCHEMA_VERSION

MANIFEST_FILE = "MANIFEST.json"
#: Suffix of a table's new version while its manifest entry is written (see :meth:`Manifest.write_table`).
PENDING = ".pending"
#: Per-table fields that say what a table holds (and can be searched on).
KEY_FIELDS = ("model", "task", "search_space", "scheme", "strategy", "supernetwork_space", "study")


@dataclass
class Manifest:
    """The index of the tables in one data folder."""

    root: Path
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION
    updated: str | None = None

    @classmethod
    def load(cls, root: str | Path | None = None) -> Manifest:
        """The manifest of folder ``root`` (default: the package's data folder); empty if it has none."""
        root = Path(root) if root is not None else default_data_dir()
        file = root / MANIFEST_FILE
        if not file.is_file():
            return cls(root)
        try:
            record = json.loads(file.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{file} is not valid JSON: {err}") from err
        version = record.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(f"{file} has schema version {version}; this plm_nasbench reads version {SCHEMA_VERSION}")
        return cls(root, record.get("tables", {}), version, record.get("updated"))

    def save(self) -> None:
        """Write the manifest atomically."""
        self.updated = now()
        text = json.dumps({"schema_version": self.schema_version, "updated": self.updated,
                           "tables": dict(sorted(self.tables.items()))}, indent=2, default=str)
        write_atomic(self.root / MANIFEST_FILE, lambda p: p.write_text(text + "\n"))

    def record(self, relpath: str, frame: pd.DataFrame, sha256: str, provenance: dict[str, Any]) -> None:
        """Enter table ``relpath`` (already written with checksum ``sha256``) with its keys and provenance."""
        keys = {}
        for name in KEY_FIELDS:
            if name in provenance:
                keys[name] = provenance[name]
            elif name in frame.columns:
                values = frame[name].dropna().unique()
                if len(values):  # a column that is empty here (e.g. supernetwork_space of standalone runs) is no key
                    keys[name] = str(values[0]) if len(values) == 1 else sorted(map(str, values))
        entry = {**keys, "sha256": sha256, "rows": int(len(frame)),
                 "provenance": {k: v for k, v in provenance.items() if k not in keys}}
        self.tables[relpath] = json.loads(json.dumps(entry, default=str))  # as save() writes it and load() reads it

    def provenance(self, relpath: str) -> dict[str, Any]:
        """What :meth:`write_table` takes to enter table ``relpath`` again as it is entered now: its key fields and
        its provenance, as one mapping (a copy to change, e.g. its ``batches``)."""
        entry = self.tables[relpath]
        keys = {k: v for k, v in entry.items() if k not in ("sha256", "rows", "provenance")}  # model, task, study...
        return {**keys, **entry["provenance"]}

    def write_table(self, relpath: str, frame: pd.DataFrame, provenance: dict[str, Any]) -> bool:
        """Write ``frame`` as table ``relpath`` and enter it (see :meth:`record`), the two as one step: the table
        is written beside its place (``<relpath>.pending``), the manifest saved, then the table moved into place.
        A write interrupted before that move is completed or undone by :meth:`finish_interrupted`. Returns False,
        touching no file, when the manifest already holds this very entry (same bytes, same provenance) and the
        file has those bytes."""
        target = self.root / relpath
        earlier = self.tables.get(relpath)
        data = parquet_bytes(frame)
        self.record(relpath, frame, hashlib.sha256(data).hexdigest(), provenance)
        if earlier == self.tables[relpath] and target.is_file() and sha256_file(target) == earlier["sha256"]:
            return False
        pending = target.with_name(target.name + PENDING)
        write_atomic(pending, lambda staging: staging.write_bytes(data))
        if target.exists():  # the table keeps its permissions (a cluster's group may share the tables)
            os.chmod(pending, target.stat().st_mode & 0o7777)
        self.save()
        os.replace(pending, target)
        return True

    def finish_interrupted(self) -> list[str]:
        """Complete the table writes that :meth:`write_table` began and did not finish: a ``.pending`` table whose
        bytes the manifest records replaces the table; any other is removed (its entry was never saved). Returns
        the tables completed. Call it where no other process writes this folder (``generate`` holds a lock)."""
        completed = []
        for pending in sorted(self.root.rglob(f"*.parquet{PENDING}")):
            if not pending.is_file():
                continue
            relpath = pending.relative_to(self.root).as_posix()[:-len(PENDING)]
            entry = self.tables.get(relpath)
            if entry is not None and sha256_file(pending) == entry["sha256"]:
                os.replace(pending, self.root / relpath)
                completed.append(relpath)
            else:
                pending.unlink()
        return completed

    def find(self, **keys: Any) -> list[str]:
        """Relative paths of the tables whose key fields equal ``keys`` (e.g. ``task="rte", scheme="standalone"``);
        a table holding several values of a key (e.g. the strategy ablation) matches each of them."""
        unknown = set(keys) - set(KEY_FIELDS)
        if unknown:
            raise ValueError(f"unknown manifest key(s) {sorted(unknown)}; known: {', '.join(KEY_FIELDS)}")
        def matches(entry: dict[str, Any], key: str, value: Any) -> bool:
            held = entry.get(key)
            return held == value or (isinstance(held, list) and value in held)

        return sorted(p for p, entry in self.tables.items() if all(matches(entry, k, v) for k, v in keys.items()))

    def read(self, relpath: str) -> pd.DataFrame:
        """Table ``relpath``, its checksum verified against the manifest."""
        if relpath not in self.tables:
            raise KeyError(f"{relpath} is not in {self.root / MANIFEST_FILE}; tables: {', '.join(self.tables) or 'none'}")
        try:
            return read_parquet(self.root / relpath, self.tables[relpath]["sha256"])
        except FileNotFoundError as err:
            raise FileNotFoundError(f"{err}, though {self.root / MANIFEST_FILE} lists it: the folder holds part of "
                                    "the tables (copy the file from the source of this folder) or lost it (restore "
                                    "it, or merge its study again)") from err
        except ChecksumError as err:
            pending = self.root / (relpath + PENDING)
            if pending.is_file():
                raise ChecksumError(f"{err}. A merge that was interrupted left {pending}: merging again "
                                    "(`python -m generate merge PLAN`) completes it") from err
            raise

    def verify(self) -> dict[str, str]:
        """Check every table's checksum; returns {relpath: problem} for the bad ones (empty when all are sound)."""
        problems = {}
        for relpath in self.tables:
            try:
                self.read(relpath)
            except (ValueError, FileNotFoundError) as err:
                problems[relpath] = str(err)
        return problems
