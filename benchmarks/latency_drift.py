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
from plm_nasbench.tables import Manifest

REFERENCE = "latency-small-grid"
OBJECTIVES = ("latency_b1_median", "latency_b32_median")


def _with_config(table: pd.DataFrame) -> pd.DataFrame:
    config = pd.DataFrame([json.loads(c) for c in table["config"]], index=table.index)
    return pd.concat([table, config], axis=1)


def drift(table: pd.DataFrame, reference: pd.DataFrame, objective: str) -> np.ndarray:
    """Each configuration's ``objective`` in ``table`` divided by the reference grid's value interpolated in
    ``num_units`` (configurations with layers whose (layers, heads) the grid holds)."""
    ratios = []
    for (layers, heads), group in _with_config(table).groupby(["num_layers", "num_heads"]):
        grid = reference[(reference["num_layers"] == layers) & (reference["num_heads"] == heads)]
        if layers == 0 or len(grid) < 2:
            continue
        grid = grid.sort_values("num_units")
        expected = np.interp(group["num_units"], grid["num_units"], grid[objective])
        ratios.append(group[objective].to_numpy() / expected)
    return np.concatenate(ratios) if ratios else np.array([])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="data folder (default: the package's)")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--shards", action="append", default=[], type=Path,
                        help="a folder of unmerged latency unit shards (*.parquet) to compare as well; repeatable")
    args = parser.parse_args()
    manifest = Manifest.load(args.data)
    found = manifest.find(model=args.model, study=REFERENCE)
    if not found:
        raise SystemExit(f"no {REFERENCE} table of model {args.model} in {manifest.root}")
    reference = _with_config(manifest.read(found[0]))
    tables = {p: manifest.read(p) for p in manifest.find(model=args.model, search_space="small")
              if manifest.tables[p].get("study", "").startswith("latency-") and p != found[0]}
    for folder in args.shards:
        files = sorted(folder.glob("*.parquet"))
        if not files:
            raise SystemExit(f"--shards {folder}: no *.parquet shard there")
        tables[f"{folder} ({len(files)} unmerged units)"] = pd.concat([pd.read_parquet(f) for f in files])
    print(f"model {args.model}; ratio of measured to {REFERENCE} interpolated (median [quartiles])")
    print("| table | configurations | " + " | ".join(OBJECTIVES) + " |")
    print("|---|---|" + "---|" * len(OBJECTIVES))
    for name, table in sorted(tables.items()):
        cells = []
        for objective in OBJECTIVES:
            r = drift(table, reference, objective)
            cells.append(f"{np.median(r):.3f} [{np.quantile(r, 0.25):.3f}, {np.quantile(r, 0.75):.3f}]" if len(r) else "-")
        print(f"| {name} | {len(drift(table, reference, OBJECTIVES[0]))} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
