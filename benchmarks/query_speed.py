"""Speed of the query API on the shipped tables, against Syne Tune's BlackboxTabular on the same rows.

Measures: constructing a Benchmark (table backend, and auto = table + surrogate) and its first
surrogate answer (which imports XGBoost, loads the ensembles and predicts the space), one table query
(median over many), table lookups per second in batch (query_many, of a DataFrame and of a list of
dicts), surrogate predictions per second in batch (of both), on the first call of a process (which predicts the whole space once; also after importing
Syne Tune, which sets OMP_NUM_THREADS=1) and on later calls, ``auto`` answers per second in batch for
random configurations (a few from the table, the rest from the surrogate), single ``auto`` queries of table
configurations (all, and those whose row lacks an objective the surrogate fills in), single surrogate queries, and single
lookups (seed 0) in a Syne Tune BlackboxTabular built from the same rows.

    python benchmarks/query_speed.py [--task rte] [--batch 1000000] [--surrogate-batch 200000]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from plm_nasbench import Benchmark
from plm_nasbench.provenance import cpu_model


def per_call(fn, configs) -> float:
    times = []
    for config in configs:
        start = time.perf_counter_ns()
        fn(config)
        times.append(time.perf_counter_ns() - start)
    return float(np.median(times)) / 1e3


def batch_rate(make: Callable[[], Benchmark], configs: pd.DataFrame | list[dict]) -> float:
    """Configurations answered per second by one query_many call on ``make()`` (the median of three)."""
    rates = []
    for _ in range(3):
        bench = make()
        start = time.perf_counter()
        bench.query_many(configs)
        rates.append(len(configs) / (time.perf_counter() - start))
    return float(np.median(rates))


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
    start = time.perf_counter()  # the first answer off the table imports XGBoost, loads the ensembles, predicts the space
    if auto.query({"num_layers": 3, "num_heads": 5, "num_units": 333})["source"] != "surrogate":
        raise RuntimeError("the configuration meant to be off the table is in it")
    report["first_surrogate_query_s"] = time.perf_counter() - start

    rng = np.random.default_rng(0)
    table_configs = bench.configs()  # the queries draw the table's configurations with replacement

    def draw(n: int, seed: int) -> list[dict]:
        picks = np.random.default_rng(seed).integers(0, len(table_configs), n)
        return [table_configs[i] for i in picks]

    configs = draw(args.single, seed=0)
    report["table_query_us"] = per_call(bench.query, configs)
    space = bench.space
    random = pd.DataFrame({f: rng.integers(low, high + 1, args.surrogate_batch) for f, (low, high) in space.bounds.items()})
    singles = [space.sample(rng) for _ in range(2000)]

    def fresh() -> Benchmark:
        """A surrogate benchmark with its ensembles loaded that has not predicted the space yet."""
        surrogate = Benchmark(args.task, backend="surrogate")
        surrogate._surrogate.ensembles  # reads the ensembles (a once-per-process cost, measured above)
        return surrogate

    report["surrogate_predictions_per_s_first_call"] = batch_rate(fresh, random)
    warm = fresh()
    warm.query_many(random)
    report["surrogate_predictions_per_s"] = batch_rate(lambda: warm, random)
    report["surrogate_query_us"] = per_call(warm.query, singles)
    report["surrogate_predictions_per_s_list_of_dicts"] = batch_rate(lambda: warm, random.to_dict("records"))
    auto.query_many(random)  # auto predicts the space on its first call too: time later calls
    report["auto_mostly_off_table_per_s"] = batch_rate(lambda: auto, random)  # 2% of random configurations are in it
    report["auto_query_us_table_hit"] = per_call(auto.query, configs[:5000])
    # table rows lacking an objective (e.g. latency not measured): auto fills them from the surrogate, predicted for
    # every such row of the table at its first one (done above), so a single query stays a lookup
    gaps = [c for c in configs[:5000] if auto.query(c)["source"] == "table+surrogate"]
    report["auto_query_us_table_gap"] = per_call(auto.query, gaps) if gaps else None

    batch = pd.DataFrame(draw(args.batch, seed=1))
    start = time.perf_counter()
    bench.query_many(batch)
    report["table_lookups_per_s"] = args.batch / (time.perf_counter() - start)
    listed = batch.to_dict("records")  # as sample() and configs() return them
    start = time.perf_counter()
    bench.query_many(listed)
    report["table_lookups_per_s_list_of_dicts"] = args.batch / (time.perf_counter() - start)

    # importing Syne Tune sets OMP_NUM_THREADS=1, which makes XGBoost (and so the surrogates) single-threaded
    from plm_nasbench.integrations.syne_tune import tabular_blackbox

    report["surrogate_predictions_per_s_first_call_after_syne_tune_import"] = batch_rate(fresh, random)
    blackbox = tabular_blackbox(bench)  # Syne Tune's BlackboxTabular over the same rows
    st_configs = draw(5000, seed=2)
    report["syne_tune_query_us"] = per_call(lambda c: blackbox.objective_function(c, {"epoch": 5}, seed=0), st_configs)
    report["table_query_us_same_configs"] = per_call(lambda c: bench.query(c, seed=0), st_configs)
    report["speedup_vs_syne_tune_single"] = report["syne_tune_query_us"] / report["table_query_us_same_configs"]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
