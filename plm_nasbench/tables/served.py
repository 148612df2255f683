"""Which table rows answer a (model, task, space, scheme, strategy, super-network space): of the dtype with the most
rows and of one super-network per seed. The query API answers from these rows and the standalone surrogates learn
from them, so that the two never disagree on which runs count."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd

from ..spaces.small import SmallSpace
from .files import ChecksumError
from .manifest import Manifest
from .schema import LATENCY_FIELDS

#: The columns one run of a network measures, which can differ between two runs of the same network (timings).
MEASURED = ("valid_metric", "valid_error", "test_metric", "test_error", "train_time", "eval_time", "cumulative_time",
            *(name for name in LATENCY_FIELDS if name.endswith(("_median", "_iqr", "_peak_mb"))))


def _one_answer_for_the_empty_network(frame: pd.DataFrame) -> pd.DataFrame:
    """``small`` space: every configuration that keeps no layer (0 layers, or layers with neither heads nor units)
    is one network (embeddings, pooler and head), run and timed once per configuration. Their measured columns
    (:data:`MEASURED`) take the median over those rows of each (seed, epoch), so that an answer does not depend on
    which of them is asked: with their own timings an optimizer could draw such configurations until one came
    with a fast one. A row without a measurement takes the others' (it is the same network: the standalone
    tables' timings, measured for few configurations, then answer every configuration of the empty network). The
    table files keep every measurement."""
    if "num_layers" not in frame:
        return frame
    fields = (frame[f].to_numpy(dtype=np.float64, na_value=np.nan) for f in ("num_layers", "num_heads", "num_units"))
    empty = SmallSpace.empty_networks(*fields)
    if not empty.any():
        return frame
    frame = frame.copy()
    columns = [c for c in MEASURED if c in frame]
    medians = frame.loc[empty].groupby(["seed", "epoch"], dropna=False)[columns].transform("median")
    frame.loc[empty, columns] = medians.to_numpy()
    return frame


def _one_supernetwork_per_seed(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of one super-network per seed: where tables hold several for one seed (a strategy trained again,
    e.g. on another machine, for the strategy ablation), the one with the most rows answers (ties: the smaller
    id), so that no answer mixes sub-networks of different super-networks; rows without a ``supernetwork_id``
    (made before it was recorded) count as one. Dropped rows are named in a warning."""
    if "supernetwork_id" not in frame:
        return frame
    ids = frame["supernetwork_id"].astype("string").fillna("")
    sizes = pd.DataFrame({"seed": frame["seed"], "id": ids}).value_counts().reset_index(name="rows")
    chosen = dict(sizes.sort_values(["seed", "rows", "id"], ascending=[True, False, True])
                  .drop_duplicates("seed")[["seed", "id"]].to_numpy())
    keep = (ids == frame["seed"].map(chosen)).to_numpy()
    if not keep.all():
        dropped = frame[~keep].assign(id=ids[~keep]).groupby(["seed", "id", "_study"]).size()
        warnings.warn(f"{int((~keep).sum())} rows come from other super-networks than the one with the most rows "
                      f"of their seed and are left out: " + ", ".join(
                          f"seed {s}, id {i or 'missing'} ({n} rows of {study})" for (s, i, study), n in dropped.items())
                      + " (`Manifest.load(data).find(study=...)` finds a study's own table)", stacklevel=5)
    return frame[keep]


def supernetwork_costs(manifest: Manifest, model: str, task: str) -> dict[str, float]:
    """Seconds each super-network of (``model``, ``task``) took to fine-tune, by ``supernetwork_id``: the least
    ``supernetwork_train_time`` its rows record in any weight-sharing table of ``manifest``. Tables made on one
    network after it was trained again (its cache lost) record each training's time; the timings come from a
    shared machine, so the least is the closest to the network's cost, and every benchmark on that network (any
    space, backend or table) charges the same. Reads those tables (checksums verified; one that fails is left
    out, with a warning), two columns kept."""
    columns = ["supernetwork_id", "supernetwork_train_time"]
    times = []
    for path in manifest.find(model=model, task=task, scheme="weight_sharing"):
        try:
            table = manifest.read(path)
        except (ChecksumError, FileNotFoundError) as err:  # another table's damage is no reason to fail here
            warnings.warn(f"{err}; its super-networks' training times are left out of their costs", stacklevel=2)
            continue
        if set(columns) <= set(table.columns):
            times.append(table[columns])
    if not times:
        return {}
    frame = pd.concat(times, ignore_index=True).dropna()
    return {str(i): float(t) for i, t in frame.groupby("supernetwork_id")["supernetwork_train_time"].min().items()}


def served_rows(manifest: Manifest, model: str, task: str, space: str, scheme: str, strategy: str,
                supernetwork_space: str | None,
                read: Callable[[str], pd.DataFrame] | None = None) -> pd.DataFrame | None:
    """The table rows a Benchmark with these arguments answers from (None: none), with a ``_study`` column: the
    rows of its (model, task, space, scheme, strategy, super-network space) in ``manifest``'s tables, of the dtype
    with the most rows (a tie: the first by name, ``bfloat16`` before ``float32``), of one super-network per seed,
    one row per (config_id, seed, epoch), the configurations of the empty network answering alike
    (:func:`_one_answer_for_the_empty_network`). ``read`` (default ``manifest.read``) reads one table; it is not
    modified."""
    paths = manifest.find(model=model, task=task, search_space=space, scheme=scheme, strategy=strategy)
    if not paths:
        return None
    read = read or manifest.read
    frame = pd.concat([read(p).assign(_study=manifest.tables[p].get("study", p)) for p in paths],
                      ignore_index=True)
    keep = (frame["strategy"] == strategy) & (frame["search_space"] == space)
    if supernetwork_space is not None:
        keep &= frame["supernetwork_space"] == supernetwork_space
    frame = frame[keep]
    if frame.empty:
        return None
    counts = frame["dtype"].value_counts()
    frame = frame[frame["dtype"] == min(counts.index[counts == counts.max()])]  # a tie: the first by name
    frame = _one_supernetwork_per_seed(frame)
    frame = frame.drop_duplicates(["config_id", "seed", "epoch"], keep="first").reset_index(drop=True)
    return _one_answer_for_the_empty_network(frame)
