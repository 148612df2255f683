"""Speed of the query API on the shipped tables, against Syne Tune's BlackboxTabular on the same rows.

Measures: constructing a Benchmark (table backend, and auto = table + surrogate) and its first
surrogate answer (which imports XGBoost and loads the ensembles), one table query
(median over many), table lookups per second in batch (query_many), surrogate predictions per second
in batch and single surrogate queries, both through the XGBoost ensembles (cold; also after importing
Syne Tune, which sets OMP_NUM_THREADS=1) and once the surrogate has materialised the space (warm; the
first call of a batch larger than the space materialises it), and single lookups (seed 0) in a Syne
Tune BlackboxTabular built from the same rows.

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
from plm_nasbench.surrogates.small import CALL_COST_ROWS


def per_call(fn, configs) -> float:
    times = []
    for config in configs:
        start = time.perf_counter_ns()
        fn(config)
        times.append(time.perf_counter_ns() - start)
    return float(np.median(times)) / 1e3


def batch_rate(make: Callable[[], Benchmark], configs: pd.DataFrame, materialised: bool | None = None) -> float:
    """Configurations answered per second by one query_many call on ``make()`` (the median of three); with
    ``materialised``, checks that the surrogate had (or had not) materialised the space after the call."""
    rates = []
    for _ in range(3):
        bench = make()
        start = time.perf_counter()
        bench.query_many(configs)
        rates.append(len(configs) / (time.perf_counter() - start))
        if materialised is not None and bool(bench._surrogate._materialised) != materialised:
            raise RuntimeError(f"expected the surrogate {'' if materialised else 'not '}to have materialised the space")
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
    start = time.perf_counter()  # the first answer off the table imports XGBoost and loads the ensembles
    if auto.query({"num_layers": 3, "num_heads": 5, "num_units": 333})["source"] != "surrogate":
        raise RuntimeError("the configuration meant to be off the table is in it")
    report["first_surrogate_query_s"] = time.perf_counter() - start

    rng = np.random.default_rng(0)
    configs = bench.sample(args.single, seed=0)
    report["table_query_us"] = per_call(bench.query, configs)
    space = bench.space
    space_size = space.num_configs
    if args.surrogate_batch < space_size:
        parser.error(f"--surrogate-batch must be at least the space's {space_size:,} configurations")
    random = pd.DataFrame({f: rng.integers(low, high + 1, args.surrogate_batch) for f, (low, high) in space.bounds.items()})
    singles = [space.sample(rng) for _ in range(2000)]

    def fresh() -> Benchmark:
        """A surrogate benchmark that has not materialised the space yet (the KD-tree is built)."""
        surrogate = Benchmark(args.task, backend="surrogate")
        surrogate.query_many(random.iloc[:1])
        return surrogate

    # Cold: through the XGBoost ensembles (single queries, and a batch of half the space, stay below the
    # materialisation threshold); first call: a batch larger than the space, which materialises it; warm: after.
    cold = fresh()
    report["surrogate_query_us_cold"] = per_call(cold.query, singles[:space_size // (2 * CALL_COST_ROWS)])
    if cold._surrogate._materialised:
        raise RuntimeError("the cold single queries materialised the space")
    half = random.iloc[:space_size // 2]
    report["surrogate_predictions_per_s_ensembles"] = batch_rate(fresh, half, materialised=False)
    report["surrogate_predictions_per_s_first_call"] = batch_rate(fresh, random, materialised=True)
    warm = fresh()
    warm.query_many(random)
    report["surrogate_predictions_per_s"] = batch_rate(lambda: warm, random, materialised=True)
    report["surrogate_query_us"] = per_call(warm.query, singles)
    report["auto_query_us_table_hit"] = per_call(auto.query, configs[:5000])

    batch = pd.DataFrame(bench.sample(args.batch, seed=1))
    start = time.perf_counter()
    bench.query_many(batch)
    report["table_lookups_per_s"] = args.batch / (time.perf_counter() - start)

    # importing Syne Tune sets OMP_NUM_THREADS=1, which makes XGBoost (and so the surrogates) single-threaded
    from plm_nasbench.integrations.syne_tune import tabular_blackbox

    report["surrogate_predictions_per_s_ensembles_after_syne_tune_import"] = batch_rate(fresh, half, materialised=False)
    blackbox = tabular_blackbox(bench)  # Syne Tune's BlackboxTabular over the same rows
    st_configs = bench.sample(5000, seed=2)
    report["syne_tune_query_us"] = per_call(lambda c: blackbox.objective_function(c, {"epoch": 5}, seed=0), st_configs)
    report["table_query_us_same_configs"] = per_call(lambda c: bench.query(c, seed=0), st_configs)
    report["speedup_vs_syne_tune_single"] = report["syne_tune_query_us"] / report["table_query_us_same_configs"]
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
