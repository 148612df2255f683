"""Rebuilding the shipped surrogates from the Parquet tables, with their quality report.

    python -m plm_nasbench.surrogates [--data data] [--out surrogates] [--model minilm-l6-h384]

For every task with a ``small`` grid table (study ``ws-small-grid``) the surrogate is fitted on the grid
and scored on the full-resolution hold-out configurations (study ``ws-small-holdout``), which it never
sees: R^2, Spearman, Kendall tau and MAE per learned objective. Writes ``<out>/<model>/<scheme>/<strategy>/<task>/``,
``<out>/report.json`` and ``<out>/REPORT.md``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import write_atomic
from ..objectives import OBJECTIVES
from ..paths import data_dir as default_data_dir
from ..paths import surrogates_dir
from ..provenance import environment, now
from ..spaces import get_search_space
from ..tables import Manifest
from .small import FIELDS, SmallSpaceSurrogate

TRAIN_STUDY, HOLDOUT_STUDY = "ws-small-grid", "ws-small-holdout"
TARGET_KENDALL = 0.9


def quality(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """R^2, Spearman, Kendall tau and mean absolute error of predictions against the truth."""
    from scipy.stats import kendalltau, spearmanr
    from sklearn.metrics import mean_absolute_error, r2_score

    return {"r2": float(r2_score(truth, predicted)), "spearman": float(spearmanr(truth, predicted).statistic),
            "kendall_tau": float(kendalltau(truth, predicted).statistic),
            "mae": float(mean_absolute_error(truth, predicted)), "n": int(len(truth))}


def surrogate_folder(root: str | Path, model: str, scheme: str, strategy: str, task: str) -> Path:
    """Where the surrogate of (model, scheme, strategy, task) is kept."""
    return Path(root) / model / scheme / strategy / task


def build(data_root: str | Path, out_root: str | Path, model: str = "minilm-l6-h384", n_members: int = 3
          ) -> dict[str, Any]:
    """Fit, score and save the surrogate of every task that has a grid table; returns the report."""
    manifest = Manifest.load(data_root)
    report: dict[str, Any] = {"created": now(), "environment": environment(), "model": model,
                              "train_study": TRAIN_STUDY, "holdout_study": HOLDOUT_STUDY, "tasks": {}}
    for relpath in manifest.find(study=TRAIN_STUDY, model=model):
        train = manifest.read(relpath)
        task, scheme, strategy = train["task"].iloc[0], train["scheme"].iloc[0], train["strategy"].iloc[0]
        space = get_search_space("small", model, task=task)
        surrogate = SmallSpaceSurrogate.fit(space, train, n_members=n_members)
        entry: dict[str, Any] = {"train_table": relpath, "train_rows": int(len(train)),
                                 "train_sha256": manifest.tables[relpath]["sha256"], "objectives": {},
                                 "skipped": surrogate.metadata["skipped"]}
        holdouts = manifest.find(study=HOLDOUT_STUDY, model=model, task=task)
        if holdouts:
            holdout = manifest.read(holdouts[0])
            predicted = surrogate.predict(holdout[list(FIELDS)].to_numpy())
            entry["holdout_table"], entry["holdout_rows"] = holdouts[0], int(len(holdout))
            entry["holdout_out_of_data"] = int(predicted["out_of_data"].sum())
            for name in (n for n in surrogate.ensembles if n in OBJECTIVES):  # not the plateau indicators
                truth = holdout[OBJECTIVES[name].column].to_numpy(dtype=np.float64)
                keep = np.isfinite(truth)
                if keep.sum() >= 10:
                    entry["objectives"][name] = quality(truth[keep], predicted[name][keep])
            flops = holdout["flops"].to_numpy(dtype=np.float64)
            entry["flops_max_relative_error"] = float(np.max(np.abs(predicted["flops"] - flops) / flops))
        folder = surrogate_folder(out_root, model, scheme, strategy, task)
        surrogate.metadata.update(train_table=relpath, train_sha256=entry["train_sha256"])
        surrogate.save(folder)
        report["tasks"][task] = entry
    write_atomic(Path(out_root) / "report.json", lambda p: p.write_text(json.dumps(report, indent=2)))
    write_atomic(Path(out_root) / "REPORT.md", lambda p: p.write_text(report_markdown(report)))
    return report


def report_markdown(report: dict[str, Any]) -> str:
    """The human-readable quality report."""
    lines = [
        "# Surrogate quality",
        "",
        f"Model `{report['model']}` (all numbers here come from it, not from BERT-base). Each surrogate is an "
        f"ensemble of XGBoost regressors fitted on the `small` grid table (`{report['train_study']}`) and scored "
        f"on the full-resolution hold-out configurations (`{report['holdout_study']}`), which it never saw. "
        f"Target: Kendall tau >= {TARGET_KENDALL} for valid_error. Rebuild with `python -m plm_nasbench.surrogates`.",
        f"Created {report['created']} (plm_nasbench {report['environment']['plm_nasbench_version']}, "
        f"commit {report['environment']['git_commit']}).",
        "",
        "| task | objective | R^2 | Spearman | Kendall tau | MAE | hold-out rows |",
        "|---|---|---|---|---|---|---|",
    ]
    for task, entry in sorted(report["tasks"].items()):
        for name, q in entry["objectives"].items():
            mark = " (below target)" if name == "valid_error" and q["kendall_tau"] < TARGET_KENDALL else ""
            lines.append(f"| {task} | {name} | {q['r2']:.3f} | {q['spearman']:.3f} | {q['kendall_tau']:.3f}{mark} "
                         f"| {q['mae']:.4g} | {q['n']} |")
        if not entry["objectives"]:
            lines.append(f"| {task} | (no hold-out table yet) | | | | | |")
    lines += ["", "Analytic objectives (num_params, params_fraction, flops) are computed, not learned; "
              "the largest relative FLOPs error on the hold-out per task: " + ", ".join(
                  f"{t} {e['flops_max_relative_error']:.1e}" for t, e in sorted(report["tasks"].items())
                  if "flops_max_relative_error" in e) + "."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m plm_nasbench.surrogates", description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(default_data_dir()))
    parser.add_argument("--out", default=str(surrogates_dir()))
    parser.add_argument("--model", default="minilm-l6-h384")
    parser.add_argument("--members", type=int, default=3)
    args = parser.parse_args(argv)
    report = build(args.data, args.out, args.model, args.members)
    print(report_markdown(report))


if __name__ == "__main__":
    main()
