"""What this machine's super-network cache holds, next to the tables' rows that came from each super-network.

``python -m generate cache`` lists every cached super-network (and every training interrupted part-way)
with the number of table rows under ``data/`` that carry its ``supernetwork_id``: on a machine that is not
kept, the cache is what makes the weight-sharing units of a (task, strategy) cheap to run now, and the row
counts show which tables a super-network already made.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd

from plm_nasbench.tables import Manifest


def table_rows_by_supernetwork(data_root: str | Path) -> Counter:
    """``supernetwork_id`` -> the number of weight-sharing rows under ``data_root`` that carry it."""
    manifest = Manifest.load(data_root)
    counts: Counter = Counter()
    for relpath in manifest.find(scheme="weight_sharing"):
        ids = manifest.read(relpath)["supernetwork_id"].dropna()
        counts.update(ids.value_counts().to_dict())
    return counts


def cache_report(data_root: str | Path, cache_root: str | Path | None = None) -> pd.DataFrame:
    """One row per cached (or interrupted) super-network, with ``table_rows``: its rows in the tables."""
    from plm_nasbench.models.checkpoints import cached_checkpoints

    frame = pd.DataFrame(cached_checkpoints(cache_root), columns=[
        "model", "task", "strategy", "seed", "supernetwork_space", "supernetwork_id", "state", "epochs_done",
        "training_seconds", "finished", "dtype", "epochs", "train_rows", "folder"])
    for column in ("epochs_done", "epochs", "train_rows"):
        frame[column] = frame[column].astype("Int64")
    rows = table_rows_by_supernetwork(data_root)
    frame["table_rows"] = [rows.get(i, 0) if isinstance(i, str) else 0 for i in frame["supernetwork_id"]]
    frame["training_hours"] = (frame.pop("training_seconds").astype(float) / 3600).round(2)
    return frame
