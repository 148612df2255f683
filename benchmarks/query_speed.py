"""Speed of the query API on the shipped tables, against Syne Tune's BlackboxTabular on the same rows.

Measures: constructing a Benchmark (table backend, and auto = table + surrogate), one table query
(median over many), table lookups per second in batch (query_many), surrogate predictions per second
in batch, and single lookups in a Syne Tune BlackboxTabular built from the same grid table.

    python benchmarks/query_speed.py [--task rte] [--batch 1000000] [--surrogate-batch 200000]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import pandas as pd

from plm_nasbench import Benchmark
from plm_nasbench.objectives import OBJECTIVES
from plm_nasbench.provenance import cpu_model


def per_call(fn, configs) -> float:
    times = []
    for config in configs:
        start = time.perf_counter_ns()
        fn(config)
        times.append(time.perf_counter_ns() - start)
    return float(np.median(times)) / 1e3


def syne_tune_blackbox(table: pd.DataFrame):
    from syne_tune.blackbox_repository.blackbox_tabular import BlackboxTabular
    from syne_tune.config_space import choice

    fields = ["num_layers", "num_heads", "num_units"]
    configs = table.drop_duplicates("config_id")[fields].reset_index(drop=True)
    position = {tuple(r): i for i, r in enumerate(configs.itertuples(index=False))}
    seeds = sorted(table["seed"].unique())
    values = np.full((len(configs), len(seeds), 1, len(OBJECTIVES)), np.nan, dtype=np.float32)
    for row in table.itertuples(index=False):
        values[position[(row.num_layers, row.num_heads, row.num_units)], seeds.index(row.seed), 0] = [
            getattr(row, o.column) for o in OBJECTIVES.values()]
    space = {f: choice(sorted(configs[f].unique().tolist())) for f in fields}
    return BlackboxTabular(configs, space, {"epoch": choice([5])}, values, np.array([5]), list(OBJECTIVES)), configs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="rte")
    parser.add_argument("--batch", type=int, default=1_000_000)
    parser.add_argument("--surrogate-batch", type=int, default=200_000)
    parser.add_argument("--single", type=int, default=20_000)
    args = parser.parse_args()
    report = {"task": args.task, "cpu": cpu_model(), "cpu_count": os.cpu_count()}

    start = time.perf_counter()
    bench = Benchmark(args.task, backend="table")
    report["construct_table_s"] = time.perf_counter() - start
    start = time.perf_counter()
    auto = Benchmark(args.task)
    report["construct_auto_s"] = time.perf_counter() - start

    rng = np.random.default_rng(0)
    configs = bench.sample(args.single, seed=0)
    report["table_query_us"] = per_call(bench.query, configs)
    batch = pd.DataFrame(bench.sample(args.batch, seed=1))
    start = time.perf_counter()
    bench.query_many(batch)
    report["table_lookups_per_s"] = args.batch / (time.perf_counter() - start)

    space = auto.space
    random = pd.DataFrame({f: rng.integers(low, high + 1, args.surrogate_batch) for f, (low, high) in space.bounds.items()})
    auto._surrogate.predict(random.iloc[:100].to_numpy())  # warm-up: builds the KD-tree
    start = time.perf_counter()
    auto._surrogate_frame(random, None, None)
    report["surrogate_predictions_per_s"] = args.surrogate_batch / (time.perf_counter() - start)
    report["surrogate_query_us"] = per_call(lambda c: auto._surrogate_frame([c], None, None),
                                            [space.sample(rng) for _ in range(2000)])

    grid = bench.table()
    grid = grid[grid["num_units"] % 64 == 0]
    blackbox, hp = syne_tune_blackbox(grid)
    st_configs = [dict(zip(hp.columns, (int(v) for v in hp.iloc[i]))) for i in rng.integers(0, len(hp), 5000)]
    report["syne_tune_query_us"] = per_call(lambda c: blackbox.objective_function(c, {"epoch": 5}, seed=0), st_configs)
    ours = [dict(c) for c in st_configs]
    report["table_query_us_same_configs"] = per_call(bench.query, ours)
    report["speedup_vs_syne_tune_single"] = report["syne_tune_query_us"] / report["table_query_us_same_configs"]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
