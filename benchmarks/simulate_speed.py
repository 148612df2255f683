"""Wall-clock seconds of a simulated optimizer comparison on the shipped tables (the main job's workload).

    python benchmarks/simulate_speed.py [--task rte] [--methods rs,ls,morea,ehvi,moasha] [--seeds 10] [--evaluations 100]
"""

from __future__ import annotations

import argparse
import json
import os
import time

from plm_nasbench.provenance import cpu_model
from plm_nasbench.simulation import add_regret, benchmarks_for, simulate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="rte")
    parser.add_argument("--methods", default="rs,ls,morea,ehvi,moasha")
    parser.add_argument("--scheme", default="auto", help="auto: moasha standalone, the others weight sharing")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--evaluations", type=int, default=100)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    start = time.perf_counter()
    benchmarks = benchmarks_for(args.task, args.methods.split(","), args.scheme)
    results = simulate(benchmarks, range(args.seeds), args.evaluations, workers=args.workers)
    add_regret(results)
    total = time.perf_counter() - start
    per_method = {}
    for method, bench in benchmarks.items():
        t = time.perf_counter()
        simulate({method: bench}, [0], args.evaluations)
        per_method[method] = time.perf_counter() - t
    print(json.dumps({"task": args.task, "scheme": args.scheme, "methods": args.methods, "seeds": args.seeds,
                      "evaluations": args.evaluations, "workers": args.workers, "cpu": cpu_model(),
                      "total_seconds": total, "one_run_seconds_by_method": per_method, "rows": len(results)}, indent=2))


if __name__ == "__main__":
    main()
