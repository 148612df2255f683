"""The columns of a benchmark table: name, type and meaning (schema version 1).

Long format, one row per (configuration, seed, fidelity). ``config_id`` identifies a configuration
within its search space; ``small`` tables carry its three fields as typed columns, every table
carries ``config`` (the configuration as compact JSON; ``large`` packs its bit masks as hex).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import pandas as pd

SCHEMA_VERSION = 1
SCHEMES = ("weight_sharing", "standalone")
#: The columns a latency study measures, once per configuration: joined onto every table by (search_space, config_id).
LATENCY_FIELDS = ("latency_b1_median", "latency_b1_iqr", "latency_b32_median", "latency_b32_iqr",
                  "memory_b1_peak_mb", "memory_b32_peak_mb", "latency_device", "latency_dtype", "latency_threads")


@dataclass(frozen=True)
class Column:
    """One table column: its name, pandas dtype, whether it may hold missing values, and what it means."""

    name: str
    dtype: str
    description: str
    nullable: bool = False


_COLUMNS = [
    Column("model", "string", "registered pre-trained model the network was cut from"),
    Column("task", "string", "task name"),
    Column("search_space", "string", "search space of the configuration"),
    Column("scheme", "string", "weight_sharing (evaluated on a fine-tuned super-network) or standalone "
                               "(fine-tuned on its own)"),
    Column("strategy", "string", "super-network training strategy (weight_sharing); 'none' for standalone"),
    Column("seed", "int64", "training seed (super-network or standalone run; also initialises the head)"),
    Column("config_id", "string", "identifier of the configuration within its search space"),
    Column("config", "string", "the configuration as compact JSON"),
    Column("num_layers", "Int64", "small space: layers kept", nullable=True),
    Column("num_heads", "Int64", "small space: heads kept per layer", nullable=True),
    Column("num_units", "Int64", "small space: FFN units kept per layer", nullable=True),
    Column("epoch", "int64", "fidelity: fine-tuning epochs done (weight_sharing: the super-network's epochs)"),
    Column("metric", "string", "name of the task metric (accuracy, f1, matthews, spearman)"),
    Column("valid_metric", "float64", "metric on the validation split (30% of the task's training set)"),
    Column("valid_error", "float64", "1 - valid_metric"),
    Column("test_metric", "float64", "metric on the test split (the GLUE dev set; IMDB test; SWAG validation)"),
    Column("test_error", "float64", "1 - test_metric"),
    Column("num_params", "int64", "exact parameter count of the sub-network, head included"),
    Column("params_fraction", "float64", "num_params / the unpruned model's parameters"),
    Column("flops", "float64", "mean forward FLOPs per test example at its tokenised length"),
    Column("latency_b1_median", "float64", "median forward latency, batch 1, max_length tokens (s)", True),
    Column("latency_b1_iqr", "float64", "interquartile range of that latency (s)", True),
    Column("latency_b32_median", "float64", "median forward latency, batch 32, max_length tokens (s)", True),
    Column("latency_b32_iqr", "float64", "interquartile range of that latency (s)", True),
    Column("memory_b1_peak_mb", "float64", "weights + measured activation peak, batch 1 (MiB)", True),
    Column("memory_b32_peak_mb", "float64", "weights + measured activation peak, batch 32 (MiB)", True),
    Column("latency_device", "string", "device latency and memory were measured on", True),
    Column("latency_dtype", "string", "dtype latency and memory were measured in", True),
    Column("latency_threads", "Int64", "torch CPU threads during the latency measurement", True),
    Column("train_time", "float64", "standalone: seconds of training in this epoch; weight_sharing: 0"),
    Column("eval_time", "float64", "seconds to evaluate valid and test at this fidelity"),
    Column("cumulative_time", "float64", "standalone: seconds of training and evaluation up to this epoch; "
                                         "weight_sharing: eval_time"),
    Column("supernetwork_train_time", "float64", "weight_sharing: seconds the super-network took to fine-tune "
                                                 "(shared by all its sub-networks)", True),
    Column("supernetwork_space", "string", "weight_sharing: space whose sampler trained the super-network", True),
    Column("supernetwork_id", "string", "weight_sharing: the first 16 hex digits of the super-network weights' "
                                        "SHA-256, which tells rows of one super-network from another's (missing in "
                                        "rows made before 2026-12-02)", True),
    Column("max_length", "int64", "maximum tokenised sequence length"),
    Column("max_train", "Int64", "cap on training examples (missing: none)", True),
    Column("max_valid", "Int64", "cap on validation examples (missing: none)", True),
    Column("max_test", "Int64", "cap on test examples (missing: none)", True),
    Column("rows_train", "int64", "training examples used"),
    Column("rows_valid", "int64", "validation examples used"),
    Column("rows_test", "int64", "test examples used"),
    Column("data_seed", "int64", "seed of the 70/30 train/valid split and of the caps"),
    Column("partial_data", "bool", "whether the task data was partial (e.g. QNLI's 9,999-row train sample)"),
    Column("dtype", "string", "dtype of training and evaluation (float32, or bfloat16 autocast)"),
    Column("device", "string", "device of training and evaluation"),
    Column("hardware", "string", "CPU (and GPU) model the row was produced on"),
    Column("unit_id", "string", "work unit that produced the row (see the plan)"),
]

COLUMNS: dict[str, Column] = {c.name: c for c in _COLUMNS}

#: The columns of a latency table (one row per configuration a latency study measured; no task, no seed).
LATENCY_COLUMNS: dict[str, Column] = {c.name: c for c in [
    COLUMNS["search_space"], COLUMNS["config_id"], COLUMNS["config"],
    *(COLUMNS[name] for name in LATENCY_FIELDS),  # a plan may measure only some of the batch sizes
    replace(COLUMNS["hardware"], description="CPU (and GPU) model the latency was measured on"),
    COLUMNS["unit_id"]]}


def conform(frame: pd.DataFrame, source: str = "table", columns: Mapping[str, Column] = COLUMNS) -> pd.DataFrame:
    """``frame`` with exactly the columns of schema ``columns`` (default: a results table), in order and cast
    to their types.

    Raises ValueError naming ``source`` and the offending column when one is missing, unknown,
    holds missing values where none are allowed, or cannot be cast.
    """
    missing = [n for n, c in columns.items() if n not in frame.columns and not c.nullable]
    if missing:
        raise ValueError(f"{source}: missing column(s) {', '.join(missing)} (schema version {SCHEMA_VERSION})")
    unknown = [n for n in frame.columns if n not in columns]
    if unknown:
        raise ValueError(f"{source}: unknown column(s) {', '.join(unknown)}; see plm_nasbench.tables.COLUMNS "
                         "and LATENCY_COLUMNS")
    out = {}
    for name, column in columns.items():
        values = frame[name] if name in frame.columns else pd.Series([None] * len(frame), index=frame.index)
        if not column.nullable and values.isna().any():
            raise ValueError(f"{source}: column {name} has missing values at rows "
                             f"{list(values.index[values.isna()][:5])}; it must always be set")
        try:
            out[name] = values.astype(column.dtype)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{source}: column {name} cannot be read as {column.dtype}: {err}") from err
    result = pd.DataFrame(out)
    if "scheme" not in result:
        return result
    bad = sorted(set(result["scheme"]) - set(SCHEMES))
    if bad:
        raise ValueError(f"{source}: column scheme holds {bad}; allowed: {', '.join(SCHEMES)}")
    return result


def describe() -> Mapping[str, str]:
    """Column name -> meaning, for documentation."""
    return {n: c.description for n, c in COLUMNS.items()}


def supernetwork_seconds(rows: pd.DataFrame, costs: Mapping[str, float] | None = None) -> float | None:
    """Seconds the super-network(s) behind weight-sharing ``rows`` took to fine-tune, the mean over their seeds
    (None where no row records it, as in standalone tables). A seed's network costs what ``costs`` (see
    :func:`~plm_nasbench.tables.served.supernetwork_costs`) gives for its ``supernetwork_id``, else the least
    ``supernetwork_train_time`` its rows record: a network trained again (say, after its cache was lost) records
    each training's time, and whichever row comes first must not decide."""
    if "supernetwork_train_time" not in rows:
        return None
    timed = rows.dropna(subset=["supernetwork_train_time"])
    if timed.empty:
        return None
    ids = (timed["supernetwork_id"] if "supernetwork_id" in timed else pd.Series(pd.NA, index=timed.index))
    known = ids.map(dict(costs or {})).astype("float64")
    seconds = known.fillna(timed["supernetwork_train_time"].astype("float64"))
    return float(seconds.groupby(timed["seed"]).min().mean())
