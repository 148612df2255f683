"""How far other latency measurements of `small` configurations drift from the reference grid's timings.

Each configuration of a compared table (a committed latency study, or a folder of unmerged unit shards) is set
against the reference grid (`latency-small-grid`, 64-unit steps) interpolated linearly in `num_units` between the
two grid configurations with its layers and heads: latency is smooth in `num_units`, so a machine that times
like the grid's gives ratios near 1 (the first hold-out, `latency-small-samples`, reads about 1.07). Ratios well
above that mean the table was timed on a slower machine (or a slower spell of one) although its units passed the
plan's machine check. Configurations without layers are left out (one network, timed alike everywhere).

With ``--units``, one line per latency unit instead: its median ratio at batch 1 next to the ratios its machine
check recorded before and after its configurations (the unpruned network against the committed reference), and
the units' median of drift / check: how well the check foretells a unit's drift, for choosing the plan's
``latency_tolerance`` and the shards worth merging.

    python benchmarks/latency_drift.py                               # every committed small latency study
    python benchmarks/latency_drift.py --shards work/edition1/shards/latency-small-holdout-more
    python benchmarks/latency_drift.py --units --shards work/edition1/shards/latency-small-holdout-more
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


def machine_checks(manifest: Manifest, relpath: str) -> dict[str, dict | None]:
    """Each unit's machine check recorded in the provenance of the committed table ``relpath`` (None: unchecked,
    the first unit of its device and dtype, or made before the check recorded itself)."""
    checks: dict[str, dict | None] = {}
    for batch in manifest.tables[relpath].get("provenance", {}).get("batches", []):
        checks.update(batch.get("machine_checks") or {})
    return checks


def check_ratios(check: dict | None, objective: str) -> tuple[float, float]:
    """The ratios (here / tables) of ``objective`` that ``check`` found before and after the unit's configurations
    (NaN where it has none: unchecked, or made before the second check existed)."""
    before = (check or {}).get(objective, {}).get("ratio", np.nan)
    after = (check or {}).get("after", {}).get(objective, {}).get("ratio", np.nan)
    return float(before), float(after)


def unit_lines(name: str, table: pd.DataFrame, checks: dict[str, dict | None], reference: pd.DataFrame,
               objective: str) -> list[tuple[str, str, int, float, float, float]]:
    """(table, unit, configurations, median drift, check before, check after) of each unit in ``table``."""
    lines = []
    for unit, rows in table.groupby("unit_id"):
        ratios = drift(rows, reference, objective)
        if len(ratios):
            lines.append((name, str(unit), len(ratios), float(np.median(ratios)),
                          *check_ratios(checks.get(str(unit)), objective)))
    return lines


def print_units(lines: list[tuple[str, str, int, float, float, float]], objective: str) -> None:
    """The ``--units`` table, sorted by drift, and the median of drift / (mean check) over checked units."""
    print(f"| table | unit | configurations | {objective} drift | check before | check after |")
    print("|---|---|---|---|---|---|")
    cell = lambda v: "-" if np.isnan(v) else f"{v:.3f}"  # noqa: E731
    for name, unit, count, median, before, after in sorted(lines, key=lambda line: line[3]):
        print(f"| {name} | {unit} | {count} | {median:.3f} | {cell(before)} | {cell(after)} |")
    both = np.array([(m, (b + a) / 2) for _, _, _, m, b, a in lines if np.isfinite(b) and np.isfinite(a)])
    if len(both):
        excess = both[:, 0] / both[:, 1]
        print(f"\n{len(both)} units checked before and after: drift / mean check median {np.median(excess):.3f} "
              f"[{np.quantile(excess, 0.25):.3f}, {np.quantile(excess, 0.75):.3f}], range "
              f"{excess.min():.3f}-{excess.max():.3f}; correlation {np.corrcoef(both.T)[0, 1]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="data folder (default: the package's)")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--shards", action="append", default=[], type=Path,
                        help="a folder of unmerged latency unit shards (*.parquet) to compare as well; repeatable")
    parser.add_argument("--units", action="store_true",
                        help="one line per unit (batch 1), with the machine check it recorded")
    args = parser.parse_args()
    manifest = Manifest.load(args.data)
    found = grid_latency(manifest, args.model)
    if found is None:
        raise SystemExit(f"no reference grid latency table of model {args.model} in {manifest.root}")
    reference_path, reference = found
    tables = {p: manifest.read(p) for p in manifest.find(model=args.model, search_space="small")
              if manifest.tables[p].get("study", "").startswith("latency-") and p != reference_path}
    checks = {p: machine_checks(manifest, p) for p in tables}
    for folder in args.shards:
        files = sorted(folder.glob("*.parquet"))
        if not files:
            raise SystemExit(f"--shards {folder}: no *.parquet shard there")
        name = f"{folder} ({len(files)} unmerged units)"
        tables[name] = pd.concat([pd.read_parquet(f) for f in files])
        markers = [json.loads(f.with_suffix(".json").read_text()) for f in files if f.with_suffix(".json").is_file()]
        checks[name] = {m["unit_id"]: m.get("machine_check") for m in markers}
    if args.units:
        print(f"model {args.model}; per unit, ratio of measured to {reference_path} interpolated (median)")
        print_units([line for name, table in tables.items()
                     for line in unit_lines(name, table, checks[name], reference, OBJECTIVES[0])], OBJECTIVES[0])
        return
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
