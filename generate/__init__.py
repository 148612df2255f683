"""Generation of the benchmark tables: plans, work units, executors (local, Ray), merging into ``data/``.

    python -m generate plan   PLAN.toml            # list the work units
    python -m generate run    PLAN.toml [--executor local|ray] [--unit-index I] [--study NAME]
    python -m generate status PLAN.toml
    python -m generate merge  PLAN.toml            # shards -> data/*.parquet + data/MANIFEST.json
    python -m generate verify PLAN.toml --study NAME --task T [--configs N]   # compute committed rows again
    python -m generate remeasure-memory PLAN.toml  # latency tables' memory columns measured again, re-joined
    python -m generate cache                       # super-networks cached here, with the rows each made
"""
