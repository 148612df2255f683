"""Rebuilding the shipped surrogates from the Parquet tables, with their quality report.

    python -m plm_nasbench.surrogates [--data data --out DIR] [--model minilm-l6-h384] [--grid-study ws-small-grid]

For every task with a ``small`` grid table (study ``ws-small-grid``, with ``ws-small-grid-offset``, the columns
between its columns, and ``ws-small-grid-offset-16``, the columns between those, where the task has them) the
weight-sharing surrogate is fitted on the grid and scored on the
full-resolution hold-out configurations (study ``ws-small-holdout``, with ``ws-small-holdout-more`` where the
task has it), which it never sees; for every task with
standalone learning curves (``standalone-small``, ``standalone-small-fp32``) a standalone surrogate (epoch as a
feature) learns from the curves the query API's table serves (one dtype: see
:func:`plm_nasbench.tables.served_rows`), scored on a fifth of their configurations held out, then refitted on
all. Both learn their latency objectives from the grid's latency table (``latency-small-grid``) where it
exists. Tables of other plans can name these studies otherwise (``--grid-study``, ``--holdout-study`` and
``--standalone-study`` with comma-separated lists, ``--latency-study``). Scores:
R^2, Spearman, Kendall tau and MAE per learned objective. Writes ``<out>/<model>/<scheme>/<strategy>/<task>/``,
``<out>/report.json`` and ``<out>/REPORT.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from ..atomic import write_atomic
from ..objectives import OBJECTIVES
from ..paths import PACKAGE_DATA, PACKAGE_SURROGATES, SURROGATES_ENV, surrogates_dir
from ..paths import data_dir as default_data_dir
from ..provenance import environment, now
from ..spaces import SmallSpace, get_search_space
from ..tables import Manifest, served_rows, supernetwork_costs
from .small import CALIBRATION_FOLDS, CHECKSUMS, FIELDS, MIN_CONFIGS, SmallSpaceSurrogate, outdated, read_record

#: The studies the surrogates learn from, by role, as edition 1 names them: the weight-sharing ``small`` grid
#: (comma-separated: the grid, and the grids of the columns between its columns where a task has them; a task's
#: tables of these studies are learned from together), its full-resolution hold-out (comma-separated: samples
#: scored together), the standalone learning curves (comma-separated: several studies, e.g. one per dtype), and the
#: latency of the grid's configurations (which the grid table carries too; every surrogate learns latency from it).
STUDIES = {"grid": "ws-small-grid,ws-small-grid-offset,ws-small-grid-offset-16",
           "holdout": "ws-small-holdout,ws-small-holdout-more",
           "standalone": "standalone-small,standalone-small-fp32",
           "latency": "latency-small-grid"}
#: The roles of :data:`STUDIES` that name comma-separated lists of studies.
LISTED_ROLES = ("standalone", "grid", "holdout")
STANDALONE_HOLDOUT_SHARE = 0.2
TARGET_KENDALL = 0.9
#: Resamples of the hold-out rows behind the interval of each headline Kendall tau (:func:`quality`).
BOOTSTRAP_RESAMPLES = 1000


def quality(truth: np.ndarray, predicted: np.ndarray, interval: bool = False) -> dict[str, Any]:
    """R^2, Spearman, Kendall tau and mean absolute error of predictions against the truth. With ``interval``,
    also ``kendall_tau_interval``: the 2.5th and 97.5th percentiles of Kendall tau over
    :data:`BOOTSTRAP_RESAMPLES` resamples of the rows (drawn with replacement, seed 0), how precisely these rows
    fix it; a resample with constant truths or predictions has no tau and is left out (NaN: all of them are)."""
    from scipy.stats import kendalltau, spearmanr
    from sklearn.metrics import mean_absolute_error, r2_score

    found: dict[str, Any] = {
        "r2": float(r2_score(truth, predicted)), "spearman": float(spearmanr(truth, predicted).statistic),
        "kendall_tau": float(kendalltau(truth, predicted).statistic),
        "mae": float(mean_absolute_error(truth, predicted)), "n": int(len(truth))}
    if interval:
        rng = np.random.default_rng(0)
        taus = [kendalltau(truth[rows], predicted[rows]).statistic
                for rows in (rng.integers(0, len(truth), len(truth)) for _ in range(BOOTSTRAP_RESAMPLES))]
        found["kendall_tau_interval"] = ([float(v) for v in np.nanpercentile(taus, [2.5, 97.5])]
                                         if np.isfinite(taus).any() else [float("nan")] * 2)
    return found


def plateau_sides(truth: np.ndarray, answer: np.ndarray, plateau: float) -> dict[str, Any]:
    """How the answers fall about an objective's ``plateau`` value: ``side_errors``, the rows whose answer lies on
    another side of it (below, at, above) than their truth, and ``kendall_tau_sides_right``, Kendall tau with
    those answers moved to their truth's side (onto the plateau value where the truth is on it, else just beside
    it). Where most truths are on the plateau, each row off it is compared with all of those, so a few answers
    on the wrong side of it move the headline tau far; this says how far."""
    from scipy.stats import kendalltau

    side = np.sign(truth - plateau)
    wrong = side != np.sign(answer - plateau)
    moved = np.where(wrong, plateau + side * 1e-9, answer)
    return {"side_errors": int(wrong.sum()), "kendall_tau_sides_right": float(kendalltau(truth, moved).statistic)}


def grid_interpolation(grid: pd.DataFrame, fields: np.ndarray, column: str) -> np.ndarray:
    """The value of ``column`` at each row of (num_layers, num_heads, num_units) ``fields``, interpolated linearly
    in ``num_units`` between the ``grid`` rows (at its last epoch) of the same layers and heads (NaN where the
    grid has none; beyond the grid's ends, its end value).

    A reference for the surrogates: how well the grid's own values, without any model, rank the hold-out."""
    fields = np.asarray(fields, dtype=np.float64)
    out = np.full(len(fields), np.nan)
    if "epoch" in grid:
        grid = grid[grid["epoch"] == grid["epoch"].max()]
    keep = np.isfinite(grid[column].to_numpy(dtype=np.float64))
    for (layers, heads), rows in grid[keep].groupby(["num_layers", "num_heads"]):
        rows = rows.groupby("num_units")[column].mean()
        at = (fields[:, 0] == layers) & (fields[:, 1] == heads)
        out[at] = np.interp(fields[at, 2], rows.index.to_numpy(dtype=np.float64), rows.to_numpy(dtype=np.float64))
    return out


def surrogate_folder(root: str | Path, model: str, scheme: str, strategy: str, task: str) -> Path:
    """Where the surrogate of (model, scheme, strategy, task) is kept."""
    return Path(root) / model / scheme / strategy / task


def fitted_elsewhere(folder: str | Path, manifest: Manifest,
                     read: Callable[[str], pd.DataFrame] | None = None) -> str | None:
    """Why the surrogate saved in ``folder`` does not serve the tables of ``manifest`` (None when it does): an
    older plm_nasbench wrote it, or the latency table it learned from is missing from that data folder or has
    changed since, or the rows it learned from may differ: a table it learned from or chose its rows among
    (``train_tables``, named with their SHA-256 in ``surrogate.json``) is missing or has changed, or a table was
    added that it would learn from (weight sharing: a table of its grid studies, ``grid_key``) or that its rows
    are chosen among (standalone: ``train_key``). A standalone surrogate records a fingerprint of its rows
    (``train_rows_sha256``), so then it reads the tables again and serves when its rows are unchanged (e.g.
    another dtype's table grew, but not enough to be the one the table serves). ``read`` (default
    ``manifest.read``) reads one table."""
    if not (Path(folder) / CHECKSUMS).is_file():
        return f"an older plm_nasbench built it (it has no {CHECKSUMS}): rebuild it"
    record = read_record(folder)
    lacking = outdated(record)
    if lacking:
        return f"an older plm_nasbench built it (it lacks {', '.join(lacking)}): rebuild it"
    if record.get("latency_table") is not None:
        if reason := _differs({record["latency_table"]: record.get("latency_sha256")}, manifest):
            return reason
    reason = _differs(dict(record["train_tables"]), manifest)
    if reason is None and record.get("grid_key"):
        grid = record["grid_key"]
        added = sorted({p for study in grid["studies"] for p in manifest.find(study=study, model=grid["model"],
                                                                             task=grid["task"])}
                       - set(record["train_tables"]))
        if added:
            reason = f"{', '.join(added)} came after it, and it learns from that grid too: rebuild it"
    if reason is None and record.get("train_key"):
        added = sorted(set(manifest.find(**record["train_key"])) - set(record["train_tables"]))
        if added:
            reason = f"{', '.join(added)} came after it, and can change which rows the table serves"
    if reason is None or "train_rows_sha256" not in record:
        return reason
    key = record["train_key"]
    found = standalone_rows(manifest, key["model"], key["task"], record["train_studies"], read)
    if found is not None and rows_fingerprint(found[0]) == record["train_rows_sha256"]:
        return None
    return f"{reason}, and the rows it learned from are not those the table serves now"


def _differs(learned: Mapping[str, str | None], manifest: Manifest) -> str | None:
    """Which of the ``learned`` tables (relpath -> SHA-256 when learned) ``manifest`` lacks or holds another
    version of (None: none)."""
    for relpath, sha256 in learned.items():
        entry = manifest.tables.get(relpath)
        if entry is None:
            return f"it learned from {relpath}, which {manifest.root} does not hold"
        if entry.get("sha256") != sha256:
            return (f"it learned from another version of {relpath} (SHA-256 {str(sha256)[:12]}..., "
                    f"{manifest.root} holds {str(entry.get('sha256'))[:12]}...)")
    return None


def rows_fingerprint(rows: pd.DataFrame) -> str:
    """A SHA-256 of a frame's values, columns and row order (equal frames, equal fingerprints). The values are
    hashed with their dtypes (pandas hashes an integer column and a float one of equal values differently), so a
    table written again with other column dtypes, or another pandas, can only make a surrogate look stale."""
    ordered = rows[sorted(rows.columns)]
    digest = hashlib.sha256(",".join(ordered.columns).encode())
    digest.update(pd.util.hash_pandas_object(ordered, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def standalone_rows(manifest: Manifest, model: str, task: str, studies: list[str],
                    read: Callable[[str], pd.DataFrame] | None = None) -> tuple[pd.DataFrame, dict[str, Any]] | None:
    """The learning curves a standalone surrogate of ``task`` learns from: the rows of ``studies`` among those the
    query API's standalone ``small`` table serves (:func:`plm_nasbench.tables.served_rows`: one dtype, the one
    with the most rows), or None when there are none; with the manifest keys those rows are chosen by."""
    key = {"model": model, "task": task, "search_space": "small", "scheme": "standalone", "strategy": "none"}
    rows = served_rows(manifest, model, task, "small", "standalone", "none", None, read)
    if rows is None or not rows["_study"].isin(studies).any():
        return None
    return rows[rows["_study"].isin(studies)].drop(columns="_study").reset_index(drop=True), key


def score(surrogate: SmallSpaceSurrogate, holdout: pd.DataFrame, grid: pd.DataFrame | None = None) -> dict[str, Any]:
    """Quality of every learned objective on ``holdout`` rows (at their largest epoch), the number of rows
    flagged out of data, and the largest relative error of the analytic FLOPs. With the ``grid`` the
    surrogate was fitted on, also the quality of :func:`grid_interpolation` on the same rows
    (``reference``). Per objective, besides all rows (their Kendall tau with its bootstrap interval): the rows
    of configurations the fit never saw (``unseen``: neither in ``grid`` nor with 0 layers, which is one network
    the grid holds), the rows off the objective's plateau (``off_plateau``, where it has one, with
    ``plateau_agreement``: the share of rows whose answer is the plateau value exactly when the truth is, and
    ``plateau_sides``: :func:`plateau_sides`), and ``calibration``: the share of truths within
    1.96 reported (calibrated) standard deviations of the answer, on all rows and on those whose answer is not
    the plateau value, and the Spearman correlation of the absolute error with that standard deviation on the
    latter (None with fewer than 10, or where either is constant)."""
    from scipy.stats import spearmanr

    if holdout.empty:
        return {"holdout_rows": 0, "objectives": {}}
    holdout = holdout[holdout["epoch"] == holdout["epoch"].max()]
    fields = holdout[list(FIELDS)].to_numpy()
    predicted = surrogate.predict(fields, int(holdout["epoch"].max()) if surrogate.max_epoch else None)
    unseen = ~SmallSpace.empty_networks(*fields.T)  # configurations the fit never saw: not a grid one, not the
                                                    # empty network (which the grid holds)
    if grid is not None:
        unseen &= ~holdout["config_id"].isin(grid["config_id"]).to_numpy()
    objectives = {}
    for name in (n for n in surrogate.ensembles if n in OBJECTIVES):  # not the plateau indicators
        truth = holdout[OBJECTIVES[name].column].to_numpy(dtype=np.float64)
        keep = np.isfinite(truth)
        if keep.sum() < 10:
            continue
        answer, spread = predicted[name], predicted[f"{name}_std"]
        reference = grid_interpolation(grid, fields, OBJECTIVES[name].column) if grid is not None else None
        subsets = {"all": keep, "unseen": keep & unseen}
        plateau = surrogate.metadata.get("plateaus", {}).get(name)
        if plateau is not None:
            subsets["off_plateau"] = keep & (truth != plateau)
        entry: dict[str, Any] = {}
        for subset, rows in subsets.items():
            if rows.sum() < 10:
                continue
            found = quality(truth[rows], answer[rows], interval=subset == "all")
            if reference is not None and np.isfinite(reference[rows]).all():
                found["reference"] = quality(truth[rows], reference[rows])
            if subset == "all":
                entry |= found
            else:
                entry[subset] = found
        error = np.abs(answer[keep] - truth[keep])
        within = error <= 1.96 * spread[keep]
        off_answer = answer[keep] != plateau
        entry["calibration"] = {  # is the reported standard deviation an honest uncertainty?
            "within_2sd": float(np.mean(within)),
            "within_2sd_off_plateau_answers": float(np.mean(within[off_answer])) if off_answer.any() else None,
            "off_plateau_answers": int(off_answer.sum()),
            # among answers off the plateau: plateau answers are exact (sd 0) or far off, which says little here
            "spearman_error_sd": float(spearmanr(error[off_answer], spread[keep][off_answer]).statistic)
            if off_answer.sum() >= 10 and np.ptp(error[off_answer]) > 0 and np.ptp(spread[keep][off_answer]) > 0
            else None}
        if plateau is not None:  # how often the answer is the plateau value exactly when the truth is
            entry["plateau_agreement"] = float(np.mean((answer[keep] == plateau) == (truth[keep] == plateau)))
            entry["off_plateau_rows"] = int(subsets["off_plateau"].sum())
            entry["plateau_sides"] = plateau_sides(truth[keep], answer[keep], plateau)
        objectives[name] = entry
    flops = holdout["flops"].to_numpy(dtype=np.float64)
    return {"holdout_rows": int(len(holdout)), "holdout_out_of_data": int(predicted["out_of_data"].sum()),
            "objectives": objectives,
            "flops_max_relative_error": float(np.max(np.abs(predicted["flops"] - flops) / flops))}


def grid_latency(manifest: Manifest, model: str, study: str = STUDIES["latency"]) -> tuple[str, pd.DataFrame] | None:
    """The latency table of the grid's configurations (``study``): its path and its rows with the
    ``small`` space's fields as columns; None when there is none. The surrogates learn their latency objectives
    from it: the configurations of a standalone table, and those of the grid between the grid's columns, are not
    timed, and latency does not depend on the training."""
    found = manifest.find(study=study, model=model)
    if not found:
        return None
    table = manifest.read(found[0]).reset_index(drop=True)
    fields = pd.DataFrame([json.loads(c) for c in table["config"]], columns=list(FIELDS))
    return found[0], pd.concat([table, fields], axis=1)


def _holdout_rows(tables: list[pd.DataFrame], grid: pd.DataFrame, strategy: str) -> tuple[pd.DataFrame, int]:
    """The rows of hold-out ``tables`` of ``strategy`` that score a surrogate fitted on ``grid``: those of the
    super-networks the grid's rows come from (where both record one: a hold-out measured on another network of the
    same task would score that network, not the surrogate), each configuration once (one network, one value);
    and the number of rows left out for another network."""
    holdout = pd.concat(tables, ignore_index=True)
    holdout = holdout[holdout["strategy"] == strategy]
    fitted = set(grid["supernetwork_id"].dropna()) if "supernetwork_id" in grid else set()
    other = (holdout["supernetwork_id"].notna() & ~holdout["supernetwork_id"].isin(fitted)
             if fitted and "supernetwork_id" in holdout else pd.Series(False, index=holdout.index))
    return holdout[~other].drop_duplicates(["config_id", "seed", "epoch"]), int(other.sum())


def _split_configs(table: pd.DataFrame, share: float, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows of a random ``1 - share`` of the configurations, and the rows of the rest."""
    ids = np.sort(table["config_id"].unique())
    if len(ids) < 2:
        return table, table.iloc[:0]
    held = set(np.random.default_rng(seed).choice(ids, max(1, round(share * len(ids))), replace=False))
    mask = table["config_id"].isin(held)
    return table[~mask], table[mask]


def build(data_root: str | Path, out_root: str | Path, model: str = "minilm-l6-h384", n_members: int = 3,
          studies: Mapping[str, str] | None = None, calibration_folds: int = CALIBRATION_FOLDS) -> dict[str, Any]:
    """Fit, score and save a surrogate per (scheme, strategy, task) that has a ``small`` training table.

    Weight sharing: fitted on a task's tables of the grid studies (``studies["grid"]``, comma-separated), scored
    on the full-resolution hold-out rows of the hold-out studies (``studies["holdout"]``, comma-separated; each
    configuration once, and only rows of the grid's super-networks: :func:`_holdout_rows`). Standalone: the
    curves of the studies ``studies["standalone"]`` (comma-separated) that the query API serves
    (:func:`standalone_rows`), scored after fitting on 80% of their configurations (at the last epoch, on the
    other 20%), then refitted on all. Both learn
    their latency objectives from the grid's latency table (``studies["latency"]``, :func:`grid_latency`) where
    there is one, else (weight sharing) from the grid's rows. ``studies`` overrides roles of :data:`STUDIES`.
    ``calibration_folds``: the folds of the cross-validation that calibrates each surrogate's uncertainty (0: none).
    Returns the report; raises ValueError when ``data_root`` holds neither a grid nor a standalone table of
    ``model``.
    """
    unknown = set(studies or {}) - set(STUDIES)
    if unknown:
        raise ValueError(f"unknown study role(s) {sorted(unknown)}; roles: {', '.join(STUDIES)}")
    studies = {**STUDIES, **(studies or {})}
    manifest = Manifest.load(data_root)
    held = sorted({str(e.get("study")) for e in manifest.tables.values() if e.get("model") == model})
    named = [f"{role} study {study!r}" for role, value in studies.items() if value != STUDIES[role]
             for study in value.split(",") if not manifest.find(study=study, model=model)]
    if named:  # a study asked for by name that is not there is a typo, not a role to skip
        raise ValueError(f"{data_root} holds no table of the {', '.join(named)} for model {model!r}; its studies "
                         f"of that model: {', '.join(held) or 'none'}")
    curves, grid_studies, holdout_studies = (studies[role].split(",") for role in LISTED_ROLES)
    grids: dict[str, list[str]] = {}  # task -> its tables of the grid studies
    for study in grid_studies:
        for relpath in manifest.find(study=study, model=model):
            grids.setdefault(manifest.tables[relpath]["task"], []).append(relpath)
    standalone_tasks = sorted({manifest.tables[p]["task"] for study in curves for p in manifest.find(study=study, model=model)})
    if not grids and not standalone_tasks:
        raise ValueError(f"{data_root} holds no table of study {' or '.join(map(repr, grid_studies))} "
                         "(weight sharing) or "
                         f"{' or '.join(map(repr, curves))} (standalone) for model {model!r}; its studies of that "
                         f"model: {', '.join(held) or 'none'}. Name the studies to learn from with --grid-study and "
                         "--standalone-study")
    report: dict[str, Any] = {"created": now(), "environment": environment(), "model": model,
                              "studies": studies, "surrogates": []}
    timed = grid_latency(manifest, model, studies["latency"])
    latency = timed[1] if timed else None
    for task, relpaths in sorted(grids.items()):
        train = pd.concat([manifest.read(p) for p in relpaths], ignore_index=True)
        space = get_search_space("small", model, task=task)
        incomplete = [f"{p} ({prov.get('units_done')} of {prov.get('units')} units)" for p in relpaths
                      if (prov := manifest.tables[p].get("provenance", {})).get("complete") is False]
        costs = supernetwork_costs(manifest, model, task)  # read once per task, for every strategy's network
        for strategy, rows in train.groupby("strategy"):
            entry = _entry(task, "weight_sharing", strategy, rows, {p: manifest.tables[p]["sha256"] for p in relpaths})
            if incomplete:  # a part of a grid (units run in order): the rest would be extrapolated
                _skip(entry, f"a grid is incomplete: {', '.join(incomplete)}",
                      surrogate_folder(out_root, model, "weight_sharing", strategy, task), report)
                continue
            surrogate = SmallSpaceSurrogate.fit(space, rows, n_members=n_members, latency=latency,
                                                calibration_folds=calibration_folds,
                                                supernetwork_costs=costs)
            surrogate.metadata["grid_key"] = {"model": model, "task": task, "studies": grid_studies}
            _learned_latency(surrogate, entry, timed, manifest, studies["latency"])
            holdouts = [p for study in holdout_studies for p in manifest.find(study=study, model=model, task=task)]
            if holdouts:
                holdout, other_networks = _holdout_rows([manifest.read(p) for p in holdouts], rows, strategy)
                entry |= {"holdout": f"{', '.join(holdouts)} (full-resolution configurations)",
                          **score(surrogate, holdout, rows), "holdout_other_networks": other_networks}
            _save(surrogate, entry, out_root, model, report)
    for task in standalone_tasks:
        found = standalone_rows(manifest, model, task, curves)
        if found is None:  # the served dtype has rows of other studies only (e.g. the unpruned runs)
            continue
        rows, key = found
        sources = manifest.find(**key)
        entry = _entry(task, "standalone", "none", rows, {p: manifest.tables[p]["sha256"] for p in sources})
        entry["train_dtype"] = str(rows["dtype"].iloc[0])
        folder = surrogate_folder(out_root, model, "standalone", "none", task)
        if rows["config_id"].nunique() * (1 - STANDALONE_HOLDOUT_SHARE) < MIN_CONFIGS:
            _skip(entry, f"{rows['config_id'].nunique()} configurations: too few to fit on "
                  f"{1 - STANDALONE_HOLDOUT_SHARE:.0%} of them ({MIN_CONFIGS} needed)", folder, report)
            continue
        space = get_search_space("small", model, task=task)
        fitted, held_out = _split_configs(rows, STANDALONE_HOLDOUT_SHARE)
        entry |= {"holdout": f"{held_out['config_id'].nunique()} of the table's configurations, "
                             "last epoch, fitted without them",
                  **score(SmallSpaceSurrogate.fit(space, fitted, n_members=n_members, latency=latency,
                                                  calibration_folds=calibration_folds), held_out)}
        surrogate = SmallSpaceSurrogate.fit(space, rows, n_members=n_members, latency=latency,
                                            calibration_folds=calibration_folds)
        surrogate.metadata.update(train_key=key, train_studies=curves, train_rows_sha256=rows_fingerprint(rows))
        _learned_latency(surrogate, entry, timed, manifest, studies["latency"])
        _save(surrogate, entry, out_root, model, report)
    write_atomic(Path(out_root) / "report.json", lambda p: p.write_text(json.dumps(report, indent=2)))
    write_atomic(Path(out_root) / "REPORT.md", lambda p: p.write_text(report_markdown(report)))
    return report


def _entry(task: str, scheme: str, strategy: str, rows: pd.DataFrame, tables: dict[str, str]) -> dict[str, Any]:
    """The start of a surrogate's report entry: what it learns from (``tables``: relpath -> SHA-256)."""
    return {"task": task, "scheme": scheme, "strategy": strategy, "train_tables": tables,
            "train_rows": int(len(rows)), "train_configs": int(rows["config_id"].nunique()), "objectives": {}}


def _learned_latency(surrogate: SmallSpaceSurrogate, entry: dict[str, Any], timed: tuple[str, pd.DataFrame] | None,
                     manifest: Manifest, study: str) -> None:
    """Record in ``surrogate`` and its report ``entry`` the latency table (``timed``: relpath and rows, of study
    ``study``) its latency objectives were learned from, if any."""
    if timed:
        entry["latency_from"] = study
        surrogate.metadata.update(latency_table=timed[0], latency_sha256=manifest.tables[timed[0]]["sha256"])


def _skip(entry: dict[str, Any], why: str, folder: Path, report: dict[str, Any]) -> None:
    """Report a table learned from by no surrogate (``why``), removing the one an earlier build saved for it."""
    entry["skipped_table"] = why
    shutil.rmtree(folder, ignore_errors=True)
    report["surrogates"].append(entry)


def _save(surrogate: SmallSpaceSurrogate, entry: dict[str, Any], out_root: str | Path, model: str,
          report: dict[str, Any]) -> None:
    """Save ``surrogate`` (recording the tables it learned from) and add its entry to ``report``."""
    entry["skipped"] = surrogate.metadata["skipped"]
    entry["anchoring"] = {name: trial | {"anchored": name in surrogate.metadata["anchors"]}
                          for name, trial in surrogate.metadata["anchoring"].items()}
    surrogate.metadata["train_tables"] = entry["train_tables"]
    surrogate.save(surrogate_folder(out_root, model, entry["scheme"], entry["strategy"], entry["task"]))
    report["surrogates"].append(entry)


def report_markdown(report: dict[str, Any]) -> str:
    """The human-readable quality report."""
    studies = {**STUDIES, **report.get("studies", {})}
    lines = [
        "# Surrogate quality",
        "",
        f"Model `{report['model']}` (all numbers here come from it, not from BERT-base). Each surrogate is an "
        "ensemble of XGBoost regressors per learned objective, asked at the `num_units` values of its training "
        "configurations and interpolated linearly in `num_units` between them. An objective learned from a grid "
        "is *anchored* where that wins a cross-validation between the grid's columns (fitted on every other "
        "`num_units` column, scored by Kendall tau on the columns between, as the hold-out lies between columns): "
        "then the surrogate answers the table's own value at each grid configuration (standard deviation 0) and "
        "interpolates those values in `num_units`; the ensembles still give the uncertainty between them. The "
        "column *at grid configurations* says which answers, with the trial's two taus. Its standard deviation is "
        "calibrated on answers cross-validated over the training configurations (cross-conformal, separately for "
        "answers that are the plateau value and for the others) so that about 95% of those answers' truths lie "
        "within 1.96 standard deviations of the answer; *within 1.96 sd* shows how far that carries to the hold-out "
        "(the errors, measured like the grid's, follow it; latency, memory and runtime, measured for the hold-out in "
        "other runs, do not). Weight sharing: fitted on a task's `small` grid tables "
        f"(`{studies['grid']}`: the grid, and the columns between its columns where the task has them) and scored on the full-resolution hold-out configurations (`{studies['holdout']}`: a uniform sample of "
        "the space, and a second one where the task has it; a configuration in both counts once), which it "
        f"never saw. Standalone: scored at the last epoch on {STANDALONE_HOLDOUT_SHARE:.0%} of the "
        f"configurations of the curves the table serves (studies `{studies['standalone']}`, one dtype per task) after "
        "fitting on the rest, then refitted on all; its latency and "
        f"memory objectives are learned from the grid's latency table (`{studies['latency']}`), as the weight-sharing "
        "surrogate's are (latency depends on the architecture and the machine, not on the training), and scored "
        "against the held-out rows' own measurements, made apart from the grid's (one sample of configurations "
        "for every task, hence the same rows for each). "
        f"Target: Kendall tau >= {TARGET_KENDALL} for valid_error on the weight-sharing hold-out. In square "
        "brackets after each Kendall tau of this table: the 2.5th and 97.5th percentiles of tau over "
        f"{BOOTSTRAP_RESAMPLES:,} bootstrap resamples "
        "of the hold-out rows, how precisely those rows fix it (most of a plateau task's rows tie on the plateau, "
        "so a few rows off it decide much of the tau, see the second table). "
        "Rebuild with `python -m plm_nasbench.surrogates`.",
        "",
        "The last column is a model-free baseline, not a surrogate: the hold-out configuration's value "
        "interpolated linearly in `num_units` between the two grid configurations with its layers and heads (the "
        "grid's steps are 64 units, 32 or 16 where a task has the columns between: see *training configs*). It uses the grid's measured values nearest to each hold-out configuration; "
        "where it falls short of the target too, the hold-out's order at 1-unit resolution is largely not fixed "
        "by the grid (evaluation noise, and ties on the constant-predictor plateau, see the README).",
        "",
        "Weight-sharing `runtime` is a sub-network's share of a batched evaluation (the measured total split in "
        "proportion to FLOPs), so it depends on how much work its batch shared: the grid's batches share depth and "
        "cost several times less per FLOP than the hold-out's uniform batches. Its R^2 on the hold-out is therefore "
        "below 0 while its ranks agree (Spearman); the surrogate answers the grid's rates, as the table does. "
        "No learned prediction is below the smallest value its ensemble was fitted on, and the configurations "
        "with 0 layers (one network) share one answer.",
        f"Created {report['created']} (plm_nasbench {report['environment']['plm_nasbench_version']}, "
        f"commit {report['environment']['git_commit']}).",
        "",
        "| task | scheme (strategy) | objective | R^2 | Spearman | Kendall tau | MAE | within 1.96 sd | hold-out rows "
        "| training configs | Kendall tau, grid interpolation | at grid configurations (tau between columns: "
        "table, ensemble) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for entry in sorted(report["surrogates"], key=lambda e: (e["task"], e["scheme"], e["strategy"])):
        scheme = entry["scheme"] + (f" ({entry['strategy']})" if entry["scheme"] == "weight_sharing"
                                    else f" ({entry['train_dtype']} curves)" if "train_dtype" in entry else "")
        for name, q in entry["objectives"].items():
            mark = (" (below target)" if name == "valid_error" and entry["scheme"] == "weight_sharing"
                    and q["kendall_tau"] < TARGET_KENDALL else "")
            reference = f"{q['reference']['kendall_tau']:.3f}" if "reference" in q else ""
            interval = (" [{:.2f}, {:.2f}]".format(*q["kendall_tau_interval"]) if "kendall_tau_interval" in q
                        else "")  # a report built before the intervals
            lines.append(f"| {entry['task']} | {scheme} | {name} | {q['r2']:.3f} | {q['spearman']:.3f} "
                         f"| {q['kendall_tau']:.3f}{interval}{mark} | {q['mae']:.4g} | {q['calibration']['within_2sd']:.2f} "
                         f"| {q['n']} | {entry['train_configs']:,} "
                         f"| {reference} | {_anchoring(entry.get('anchoring', {}).get(name))} |")
        if "skipped_table" in entry:
            lines.append(f"| {entry['task']} | {scheme} | (no surrogate yet: {entry['skipped_table']}) | | | | | | | "
                         f"{entry['train_configs']:,} | | |")
        elif not entry["objectives"]:
            why = (f"hold-out of {entry['holdout_rows']} rows: too few to score (10 needed)" if entry.get("holdout_rows")
                   else "no hold-out yet")
            lines.append(f"| {entry['task']} | {scheme} | ({why}) | | | | | | | {entry['train_configs']:,} | | |")
    lines += [f"\n{e['task']}: {e['holdout_other_networks']:,} hold-out rows measured on another super-network than "
              "the grid's are left out of its scores." for e in report["surrogates"] if e.get("holdout_other_networks")]
    lines += ["", "Beyond the headline (valid_error, same hold-out rows): Kendall tau on the configurations the fit never "
              "saw (*unseen*: hold-out configurations that are not grid ones and have at least 1 layer; the 0-layer "
              "network is one the grid holds) and on the rows whose truth is off the plateau (the constant "
              "predictor's error), each with the grid interpolation's in brackets; how often the answer is the "
              "plateau value exactly when the truth is; and whether the reported standard deviation is an honest "
              "uncertainty (the share of truths within 1.96 standard deviations of the answer, on all rows and on the rows "
              "whose answer is not the plateau value, and, on the latter, the Spearman correlation of the absolute error "
              "with the standard deviation). Most hold-out truths lie on the plateau, so the "
              "headline tau mostly scores the plateau decision; the off-plateau tau scores the ranking. *Wrong "
              "side*: the rows whose answer lies on another side of the plateau value (below, at, above) than their "
              "truth, and in brackets the tau with those answers moved to their truth's side (onto the plateau value, "
              "or just beside it): each row off the plateau is compared with every row on it, so these few rows "
              "weigh far more in the headline tau than the others.", "",
              "| task | scheme (strategy) | tau, unseen | tau, off the plateau (rows) | plateau agreement "
              "| wrong side (tau if right) | within 1.96 sd: all | answers off the plateau (rows) "
              "| Spearman(abs error, sd), answers off the plateau |",
              "|---|---|---|---|---|---|---|---|---|"]
    for entry in sorted(report["surrogates"], key=lambda e: (e["task"], e["scheme"], e["strategy"])):
        q = entry["objectives"].get("valid_error")
        if q is None:
            continue
        def tau(subset: str) -> str:
            found = q.get(subset)
            if found is None:
                return "n/a"
            reference = f" ({found['reference']['kendall_tau']:.3f})" if "reference" in found else ""
            return f"{found['kendall_tau']:.3f}{reference}"
        off = (f"{tau('off_plateau')} ({q['off_plateau_rows']})" if "off_plateau" in q
               else f"n/a ({q['off_plateau_rows']}: too few)" if "off_plateau_rows" in q else "no plateau")
        agreement = f"{q['plateau_agreement']:.3f}" if "plateau_agreement" in q else "n/a"
        sides = (f"{q['plateau_sides']['side_errors']} ({q['plateau_sides']['kendall_tau_sides_right']:.3f})"
                 if "plateau_sides" in q else "n/a")  # n/a too in a report built before it was counted
        scheme = entry["scheme"] + (f" ({entry['strategy']})" if entry["scheme"] == "weight_sharing" else "")
        calibration = q["calibration"]
        off_answers = (f"{calibration['within_2sd_off_plateau_answers']:.2f} ({calibration['off_plateau_answers']})"
                       if calibration["within_2sd_off_plateau_answers"] is not None else "none")
        lines.append(f"| {entry['task']} | {scheme} | {tau('unseen')} | {off} | {agreement} | {sides} "
                     f"| {calibration['within_2sd']:.2f} | {off_answers} | {_number(calibration['spearman_error_sd'])} |")
    errors = [f"{e['task']} {e['scheme']} {e['flops_max_relative_error']:.1e}"
              for e in report["surrogates"] if "flops_max_relative_error" in e]
    lines += ["", "Analytic objectives (num_params, params_fraction, flops) are computed, not learned; "
              "the largest relative FLOPs error on each hold-out: " + (", ".join(errors) or "none yet") + "."]
    return "\n".join(lines) + "\n"


def _anchoring(trial: dict[str, Any] | None) -> str:
    """What a surrogate answers at its grid configurations for one objective, with the trial that chose it."""
    if trial is None:
        return "ensemble (not tried: no grid of one epoch)"
    side = "table" if trial["anchored"] else "ensemble"
    return f"{side} ({trial['kendall_tau_anchored']:.4f}, {trial['kendall_tau_ensemble']:.4f})"


def _number(value: float | None) -> str:
    """A figure of the report with two decimals, or n/a."""
    return "n/a" if value is None else f"{value:.2f}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False, prog="python -m plm_nasbench.surrogates", description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="tables folder (default: $PLM_NASBENCH_DATA, else the package's data/)")
    parser.add_argument("--out", help="surrogates folder (default: $PLM_NASBENCH_SURROGATES, else the package's "
                                      "surrogates/); needed with tables other than the package's (--data or "
                                      "$PLM_NASBENCH_DATA), so that their surrogates never replace the package's")
    parser.add_argument("--model", default="minilm-l6-h384", help="the model whose tables to learn from (default "
                                                                  "minilm-l6-h384)")
    parser.add_argument("--members", type=int, default=3, help="XGBoost regressors per ensemble (default 3)")
    parser.add_argument("--calibration-folds", type=int, default=CALIBRATION_FOLDS,
                        help="folds of the cross-validation that calibrates the uncertainty (0: none, the ensembles' "
                             f"raw spread; else at least 2; default {CALIBRATION_FOLDS})")
    for role, study in STUDIES.items():
        plural = " (comma-separated)" if role in LISTED_ROLES else ""
        parser.add_argument(f"--{role}-study", default=study, help=f"study of the {role} tables{plural} (default {study})")
    args = parser.parse_args(argv)
    data, out = Path(args.data) if args.data else default_data_dir(), Path(args.out) if args.out else surrogates_dir()
    if data.resolve() != PACKAGE_DATA.resolve() and out.resolve() == PACKAGE_SURROGATES.resolve():
        parser.error(f"the tables in {data} are not the package's: name where their surrogates go with --out DIR "
                     f"(or ${SURROGATES_ENV}), so that they never replace the package's surrogates/")
    if args.members < 1:
        parser.error(f"--members must be at least 1, got {args.members}")
    if args.calibration_folds == 1 or args.calibration_folds < 0:
        parser.error(f"--calibration-folds must be 0 (none) or at least 2, got {args.calibration_folds}")
    if not data.is_dir():
        parser.exit(2, f"error: the tables folder {data} does not exist\n")
    try:
        report = build(data, out, args.model, args.members,
                       {role: getattr(args, f"{role}_study") for role in STUDIES}, args.calibration_folds)
    except (ValueError, FileNotFoundError) as err:
        parser.exit(2, f"error: {err}\n")
    print(report_markdown(report))


if __name__ == "__main__":
    main()
