"""How far other latency measurements of `small` configurations drift from the reference grid's timings.

Each configuration of a compared table (a committed latency study, or a folder of unmerged unit shards) is set
against the reference grid (`latency-small-grid`, 64-unit steps) interpolated linearly in `num_units` between the
two grid configurations with its layers and heads: latency is smooth in `num_units`, so a machine that times
like the grid's gives ratios near 1 (the first hold-out, `latency-small-samples`, reads about 1.07). Ratios well
above that mean the table was timed on a slower machine (or a slower spell of one) although its units passed the
plan's machine check. Configurations without layers are left out (one network, timed alike everywhere).

    python benchmarks/latency_drift.py                               # every committed small latency study
    python benchmarks/latency_drift.py --shards work/edition1/shards/latency-small-holdout-more
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from plm_nasbench.architecture import DEFAULT_MODEL
from plm_nasbench.surrogates.build import grid_interpolation, grid_latency
from plm_nasbench.surrogates.small import FIELDS
from plm_nasbench.tables import Manifest

OBJECTIVES = ("latency_b1_median", "latency_b32_median")


def drift(table: pd.DataFrame, reference: pd.DataFrame, objective: str) -> np.ndarray:
    """Each configuration's ``objective`` in ``table`` divided by the ``reference`` grid's value interpolated in
    ``num_units`` (configurations with layers whose (layers, heads) the grid holds)."""
    fields = np.array([[json.loads(c)[f] for f in FIELDS] for c in table["config"]], dtype=np.float64)
    ratios = table[objective].to_numpy(dtype=np.float64) / grid_interpolation(reference, fields, objective)
    return ratios[(fields[:, 0] > 0) & np.isfinite(ratios)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="data folder (default: the package's)")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--shards", action="append", default=[], type=Path,
                        help="a folder of unmerged latency unit shards (*.parquet) to compare as well; repeatable")
    args = parser.parse_args()
    manifest = Manifest.load(args.data)
    found = grid_latency(manifest, args.model)
    if found is None:
        raise SystemExit(f"no reference grid latency table of model {args.model} in {manifest.root}")
    reference_path, reference = found
    tables = {p: manifest.read(p) for p in manifest.find(model=args.model, search_space="small")
              if manifest.tables[p].get("study", "").startswith("latency-") and p != reference_path}
    for folder in args.shards:
        files = sorted(folder.glob("*.parquet"))
        if not files:
            raise SystemExit(f"--shards {folder}: no *.parquet shard there")
        tables[f"{folder} ({len(files)} unmerged units)"] = pd.concat([pd.read_parquet(f) for f in files])
    print(f"model {args.model}; ratio of measured to {reference_path} interpolated (median [quartiles])")
    print("| table | configurations | " + " | ".join(OBJECTIVES) + " |")
    print("|---|---|" + "---|" * len(OBJECTIVES))
    for name, table in sorted(tables.items()):
        ratios = [drift(table, reference, objective) for objective in OBJECTIVES]
        cells = [f"{np.median(r):.3f} [{np.quantile(r, 0.25):.3f}, {np.quantile(r, 0.75):.3f}]" if len(r) else "-"
                 for r in ratios]
        print(f"| {name} | {len(ratios[0])} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
