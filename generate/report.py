"""The README's coverage tables (from ``data/MANIFEST.json``) and one plot per task of the ``small`` grid.

    python -m generate.report [--data data] [--readme README.md] [--plots docs/plots] [--data-dir ../shared/datasets]
                              [--reference CSV] [--reference-sizes CSV] [--allow-missing]

The coverage table replaces the text between ``<!-- coverage:start -->`` and ``<!-- coverage:end -->``
in the README, and the unpruned-model sanity check (next to the errors of the best constant predictor and
of the paper's BERT-base) the text between ``<!-- unpruned:start -->`` and ``<!-- unpruned:end -->``, and
the error-against-size table the text between ``<!-- sizes:start -->`` and ``<!-- sizes:end -->``, and
the float32-against-bf16 comparison of standalone runs the text between ``<!-- dtypes:start -->`` and
``<!-- dtypes:end -->``, and what the tables cost to make the text between ``<!-- cost:start -->`` and
``<!-- cost:end -->``. Plots: validation error against parameter fraction, one point per grid configuration.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import kendalltau

from plm_nasbench.paths import data_dir as default_data_dir
from plm_nasbench.plots import figure, finish
from plm_nasbench.tables import Manifest, supernetwork_costs
from plm_nasbench.atomic import replace_block

START, END = "<!-- coverage:start -->", "<!-- coverage:end -->"
UNPRUNED_START, UNPRUNED_END = "<!-- unpruned:start -->", "<!-- unpruned:end -->"
SIZES_START, SIZES_END = "<!-- sizes:start -->", "<!-- sizes:end -->"
DTYPES_START, DTYPES_END = "<!-- dtypes:start -->", "<!-- dtypes:end -->"
COST_START, COST_END = "<!-- cost:start -->", "<!-- cost:end -->"
BLOCKS = ((START, END), (UNPRUNED_START, UNPRUNED_END), (SIZES_START, SIZES_END), (DTYPES_START, DTYPES_END),
          (COST_START, COST_END))  # the README blocks this command rewrites
SIZE_STUDIES = ("ws-small-grid", "ws-small-holdout")
GRID_STUDY = "ws-small-grid"
UNPRUNED_STUDIES = ("standalone-unpruned", "standalone-unpruned-fp32")


def coverage_markdown(manifest: Manifest) -> str:
    """A markdown table: one line per table file with what it covers and where it was made."""
    lines = ["| table | task | space | scheme | strategy | rows | configs | seeds | rows with latency | model | dtype "
             "| hardware | complete |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    results = [p for p in sorted(manifest.tables) if manifest.tables[p].get("scheme") != "latency"]
    for relpath in results:
        entry = manifest.tables[relpath]
        frame = manifest.read(relpath)
        prov = entry["provenance"]
        strategy = entry.get("strategy")
        strategy = ", ".join(strategy) if isinstance(strategy, list) else strategy
        lines.append(
            f"| `{relpath}` | {entry.get('task')} | {entry.get('search_space')} | {entry.get('scheme')} | {strategy} "
            f"| {entry['rows']:,} | {frame['config_id'].nunique():,} | {frame['seed'].nunique()} "
            f"| {int(frame['latency_b1_median'].notna().sum()):,} "
            f"| {entry.get('model')} | {', '.join(prov.get('dtype', []))} | {'; '.join(prov.get('hardware', []))} "
            f"| {'yes' if prov.get('complete') else 'partial'} |")
    if len(lines) == 2:
        lines.append("| (no tables yet) |" + " |" * 12)
    latency = [p for p in sorted(manifest.tables) if manifest.tables[p].get("scheme") == "latency"]
    if latency:
        lines += ["", "Latency tables (one row per configuration, joined onto the tables above by configuration):", "",
                  "| table | space | configs | dtype | torch threads | hardware | hours | complete |",
                  "|---|---|---|---|---|---|---|---|"]
    for relpath in latency:
        entry = manifest.tables[relpath]
        prov = entry["provenance"]
        lines.append(f"| `{relpath}` | {entry.get('search_space')} | {entry['rows']:,} | {', '.join(prov['dtype'])} "
                     f"| {', '.join(map(str, prov['torch_threads']))} | {'; '.join(prov['hardware'])} "
                     f"| {prov['wall_seconds'] / 3600:.2f} | {'yes' if prov['complete'] else 'partial'} |")
    return "\n".join(lines)


def plot_grids(manifest: Manifest, folder: Path) -> list[Path]:
    """One PNG per task with a ``small`` grid table: valid error against parameter fraction."""
    written = []
    for relpath in manifest.find(study=GRID_STUDY):
        frame = manifest.read(relpath)
        task, model = frame["task"].iloc[0], frame["model"].iloc[0]
        plt = figure()
        fig, ax = plt.subplots(figsize=(5.5, 4))
        points = ax.scatter(frame["params_fraction"], frame["valid_error"], c=frame["num_layers"], s=6, cmap="viridis")
        fig.colorbar(points, ax=ax, label="num_layers")
        ax.set_xlabel("parameter fraction of the unpruned model")
        ax.set_ylabel(f"validation error (1 - {frame['metric'].iloc[0]})")
        title = f"{task}: small grid, {len(frame):,} sub-networks\n{model}, weight sharing (full)"
        written.append(finish(plt, fig, ax, folder / f"small-grid-{task}.png", title, legend=False))
    return written


def constant_error(frame: pd.DataFrame, data_dir: str | Path) -> float:
    """The best constant predictor's test error on the test split a table's rows were scored on (same
    data seed and caps), read from ``data_dir``."""
    from plm_nasbench.tasks import load_task
    from plm_nasbench.tasks.metrics import constant_prediction_error

    for column in ("task", "data_seed", "max_train", "max_valid", "max_test", "rows_test"):
        if frame[column].nunique(dropna=False) > 1:
            raise ValueError(f"the rows disagree on {column!r} ({sorted(frame[column].astype(str).unique())}): "
                             "they were not scored on one test split")
    row = frame.iloc[0]
    caps = {name: (None if pd.isna(row[name]) else int(row[name])) for name in ("max_train", "max_valid", "max_test")}
    data = load_task(row["task"], data_dir, data_seed=int(row["data_seed"]), allow_partial=True, **caps)
    if len(data.test) != int(row["rows_test"]):
        raise ValueError(f"{row['task']}: the test split read from {data_dir} has {len(data.test)} rows, the table "
                         f"was scored on {int(row['rows_test'])}: not the same data")
    return constant_prediction_error(data.spec.metric, data.test.labels, data.spec.is_regression)


def unpruned_markdown(manifest: Manifest, reference_csv: Path | None, data_dir: str | Path | None = None) -> str:
    """Test error of the unpruned model fine-tuned alone (mean and std over seeds, last epoch) per task, next to
    the best constant predictor's error on the same test split (when ``data_dir`` holds the task data) and the
    paper's BERT-base figures (when ``reference_csv``, data_unpruned_model.csv of the paper's results, is given)."""
    reference = None
    if reference_csv is not None and Path(reference_csv).is_file():
        frame = pd.read_csv(reference_csv)
        reference = frame[frame["model"] == "bert-base-cased"].groupby("dataset")["test_error"].agg(["mean", "count"])
    lines = ["| task | metric | our test error (mean ± std) | seeds | dtype | constant predictor's test error "
             "| paper BERT-base test error (seeds) |",
             "|---|---|---|---|---|---|---|"]
    rows = []
    for relpath in (p for study in UNPRUNED_STUDIES for p in manifest.find(study=study)):
        frame = manifest.read(relpath)
        last = frame[frame["epoch"] == frame["epoch"].max()]
        task = last["task"].iloc[0]
        paper = (f"{reference.loc[task, 'mean']:.3f} ({int(reference.loc[task, 'count'])})"
                 if reference is not None and task in reference.index else "n/a")
        constant = "n/a"
        if data_dir is not None and (Path(data_dir) / task).is_dir():
            constant = f"{constant_error(last, data_dir):.3f}"
        spread = f" ± {last['test_error'].std(ddof=1):.3f}" if len(last) > 1 else ""
        dtypes = ", ".join(sorted(set(last["dtype"])))
        rows.append((task, dtypes, f"| {task} | {last['metric'].iloc[0]} | {last['test_error'].mean():.3f}{spread} "
                                   f"| {len(last)} | {dtypes} | {constant} | {paper} |"))
    lines += [line for *_, line in sorted(rows)]
    if len(lines) == 2:
        lines.append("| (no unpruned runs yet) |" + " |" * 6)
    return "\n".join(lines)


def sizes_markdown(manifest: Manifest, reference_csv: Path | None) -> str:
    """Per task and parameter-fraction threshold, the test error of the weight-sharing ``small`` sub-network with the
    lowest validation error (seed means) within the threshold (``full`` strategy, grid and hold-out tables), next to
    the paper's BERT-base weight-sharing random search at the same thresholds (mean over seeds) when
    ``reference_csv`` (data_relative_to_model_size_ws_nas.csv of the paper's results) exists."""
    frames = [manifest.read(p) for study in SIZE_STUDIES for p in manifest.find(study=study)]
    if not frames:
        return "(no weight-sharing small tables yet)"
    ours = pd.concat(frames, ignore_index=True)
    ours = ours[ours["strategy"] == "full"].groupby(["task", "config_id"], as_index=False)[  # seed means
        ["valid_error", "test_error", "params_fraction"]].mean().sort_values(["valid_error", "params_fraction"])
    paper = None
    if reference_csv is not None and Path(reference_csv).is_file():
        frame = pd.read_csv(reference_csv)
        frame = frame[(frame["method"] == "random_search") & (frame["model"] == "bert-base-cased")]
        frame = frame[frame["runtime"] == frame.groupby("dataset")["runtime"].transform("max")]
        paper = frame.groupby(["dataset", "threshold"])["test_error"].mean()
    thresholds = (sorted(paper.index.get_level_values("threshold").unique()) if paper is not None
                  else [round(t, 2) for t in np.linspace(0.25, 1.0, 14)])
    tasks = sorted(ours["task"].unique())
    header = ["params fraction <="] + [f"{t} ({name})" for t in tasks for name in ("ours", "paper")]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for threshold in thresholds:
        # the paper's thresholds as they are (0.5386, not 0.54), two decimals at least
        cells = [f"{threshold:.2f}" if round(threshold, 2) == threshold else f"{threshold:.4g}"]
        for task in tasks:
            within = ours[(ours["task"] == task) & (ours["params_fraction"] <= threshold + 1e-12)]
            cells.append(f"{within['test_error'].iloc[0]:.3f}" if len(within) else "-")
            cells.append(f"{paper[task, threshold]:.3f}" if paper is not None and (task, threshold) in paper.index
                         else "n/a")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def dtypes_markdown(manifest: Manifest) -> str:
    """Per task and pair of devices, the standalone runs made in both float32 and bf16 (same configuration, seed
    and epoch, any study): how many curves, how often the two give the same error, their mean and largest
    difference, and the Kendall tau between the two dtypes' last-epoch validation errors over the configurations.
    Runs on two devices (a GPU's bf16 run against a CPU's float32 one) differ by their device's random streams
    and kernels too, so they are counted apart."""
    frames = [manifest.read(p) for p in manifest.find(scheme="standalone")]
    keys = ["task", "config_id", "seed", "epoch"]
    lines = ["| task | devices (bf16 / float32) | curves | epochs | valid error: same / mean abs diff / max | "
             "test error: same / mean abs diff / max | Kendall tau, last-epoch valid error |",
             "|---|---|---|---|---|---|---|"]
    if frames:
        rows = pd.concat(frames, ignore_index=True).drop_duplicates(keys + ["dtype", "device"])
        pairs = rows[rows["dtype"] == "bfloat16"].merge(rows[rows["dtype"] == "float32"], on=keys,
                                                         suffixes=("_bf16", "_fp32"))
        for (task, bf16_device, fp32_device), both in pairs.groupby(["task", "device_bf16", "device_fp32"]):
            cells = [task, f"{bf16_device} / {fp32_device}", f"{len(both.groupby(['config_id', 'seed'])):,}",
                     str(both["epoch"].nunique())]
            for column in ("valid_error", "test_error"):
                diff = (both[f"{column}_bf16"] - both[f"{column}_fp32"]).abs()
                cells.append(f"{int((diff < 1e-9).sum())} of {len(diff)} / {diff.mean():.4f} / {diff.max():.4f}")
            last = both[both["epoch"] == both["epoch"].max()]
            tau = (kendalltau(last["valid_error_bf16"], last["valid_error_fp32"]).statistic
                   if len(last) >= 3 else float("nan"))
            cells.append("n/a (fewer than 3 curves)" if np.isnan(tau) else f"{tau:.3f}")
            lines.append("| " + " | ".join(cells) + " |")
    if len(lines) == 2:
        lines.append("| (no standalone runs in both dtypes yet) |" + " |" * 6)
    return "\n".join(lines)


def _threads(recorded: list[int]) -> str:
    return ", ".join(str(t) if t else "not recorded" for t in sorted(set(recorded)))


def cost_markdown(manifest: Manifest) -> str:
    """What the tables cost to make, from their own rows and provenance. Per model and study (summed over its tasks):
    the runs (task, strategy, configuration and seed), the hours of training (standalone) and of evaluation its
    rows record, runs per second of those hours, the wall hours of its units (provenance ``wall_seconds``: they also
    hold loading, and the training of any super-network a unit trained) and the torch threads the units ran on.
    Then each task's super-networks with their training hours (the least each records:
    :func:`~plm_nasbench.tables.supernetwork_costs`) and the latency tables' wall hours. Work that was redone or
    withheld is not in the tables and not counted."""
    lines = ["| model | study | scheme | tasks | runs | training hours | evaluation hours | runs per second "
             "| unit wall hours | torch threads |", "|---|---|---|---|---|---|---|---|---|---|"]
    studies: dict[tuple[str, str], list[str]] = {}
    for relpath in sorted(manifest.tables):
        entry = manifest.tables[relpath]
        if entry.get("scheme") != "latency":
            studies.setdefault((str(entry.get("model")), str(entry.get("study"))), []).append(relpath)
    recorded = wall = 0.0
    for (model, study), paths in sorted(studies.items()):
        frame = pd.concat([manifest.read(p) for p in paths], ignore_index=True)
        runs = len(frame.drop_duplicates(["task", "strategy", "config_id", "seed"]))
        train, evaluate = float(frame["train_time"].sum()), float(frame["eval_time"].sum())
        provenance = [manifest.tables[p]["provenance"] for p in paths]
        hours = sum(prov.get("wall_seconds", 0.0) for prov in provenance) / 3600
        recorded, wall = recorded + train + evaluate, wall + hours
        rate = f"{runs / (train + evaluate):.3g}" if train + evaluate > 0 else "n/a"
        threads = [t for prov in provenance for t in prov.get("torch_threads", [0])]
        lines.append(f"| {model} | {study} | {', '.join(sorted(set(frame['scheme'])))} | {frame['task'].nunique()} "
                     f"| {runs:,} | {train / 3600:.2f} | {evaluate / 3600:.2f} | {rate} | {hours:.2f} "
                     f"| {_threads(threads)} |")
    if len(lines) == 2:
        return "(no tables yet)"
    supernetworks, trained = [], 0.0
    shared = {(manifest.tables[p]["model"], manifest.tables[p]["task"]) for p in manifest.find(scheme="weight_sharing")}
    for model, task in sorted(shared):
        costs = supernetwork_costs(manifest, model, task)
        hours = sum(costs.values()) / 3600
        trained += hours
        if costs:
            supernetworks.append(f"| {model} | {task} | {len(costs)} | {hours:.2f} |")
    if supernetworks:
        lines += ["", "| model | task | super-networks | training hours |", "|---|---|---|---|", *supernetworks]
    latency = [manifest.tables[p]["provenance"] for p in manifest.find(scheme="latency")]
    timed = sum(prov.get("wall_seconds", 0.0) for prov in latency) / 3600
    lines += ["", f"In all the rows record {recorded / 3600:.1f} hours of training and evaluation ({wall:.1f} wall hours "
                  f"of their units), the super-networks {trained:.1f} hours of training, and the {len(latency)} "
                  f"latency tables took {timed:.1f} wall hours (torch threads "
                  f"{_threads([t for prov in latency for t in prov.get('torch_threads', [0])]) or 'none'})."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False, prog="python -m generate.report", description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(default_data_dir()))
    parser.add_argument("--readme", default="README.md")
    parser.add_argument("--plots", default="docs/plots")
    parser.add_argument("--reference", default="../shared/reference/plm-pruning-results/data_unpruned_model.csv",
                        help="the paper's unpruned-model results (CSV), for the sanity-check table")
    parser.add_argument("--reference-sizes",
                        default="../shared/reference/plm-pruning-results/data_relative_to_model_size_ws_nas.csv",
                        help="the paper's weight-sharing error-against-size results (CSV), for the sizes table")
    parser.add_argument("--data-dir", default="../shared/datasets",
                        help="task data (GLUE layout), for the constant predictor's error in the sanity-check table")
    parser.add_argument("--allow-missing", action="store_true",
                        help="write the README blocks even when a reference or the task data is missing (their "
                             "columns then read n/a); without it, a missing input is an error and nothing is written")
    args = parser.parse_args(argv)
    missing = [f"{flag} {path} does not exist: {lost} would read n/a" for flag, path, lost in (
        ("--reference", args.reference, "the paper's column of the sanity-check table"),
        ("--reference-sizes", args.reference_sizes, "the paper's columns of the sizes table"),
        ("--data-dir", args.data_dir, "the constant predictor's column")) if not Path(path).exists()]
    if missing and not args.allow_missing:  # the committed README's columns would be overwritten with n/a
        parser.exit(2, "error: " + "; ".join(missing) + ". Give the paths (the defaults assume the checkout beside "
                    "shared/), or --allow-missing\n")
    for problem in missing:
        print(f"warning: {problem}", file=sys.stderr)
    readme = Path(args.readme)
    text = readme.read_text() if readme.is_file() else ""
    lacking = [f"{start} ... {end}" for start, end in BLOCKS if start not in text or end not in text]
    if lacking:  # checked before any block is written, so that a README is never left half updated
        parser.exit(2, f"error: {readme} lacks the block(s) {'; '.join(lacking)} that this command rewrites\n")
    manifest = Manifest.load(args.data)
    blocks = [coverage_markdown(manifest), unpruned_markdown(manifest, Path(args.reference), args.data_dir),
              sizes_markdown(manifest, Path(args.reference_sizes)), dtypes_markdown(manifest), cost_markdown(manifest)]
    for (start, end), block in zip(BLOCKS, blocks, strict=True):  # all computed before any is written
        replace_block(Path(args.readme), start, end, block)
    for path in plot_grids(manifest, Path(args.plots)):
        print(f"wrote {path}")
    print("\n\n".join(blocks))


if __name__ == "__main__":
    main()
