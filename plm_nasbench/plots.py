"""Plots of simulated optimizer comparisons and of the tables (PNG, matplotlib's Agg backend)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .atomic import write_atomic
from .protocol import BEST_HYPERVOLUME, non_dominated


def figure() -> Any:
    """matplotlib.pyplot on the file-only Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def finish(plt: Any, fig: Any, ax: Any, path: Path, title: str, legend: bool = True) -> Path:
    """Title, legend and grid, then write the figure to ``path`` atomically and close it."""
    ax.set_title(title, fontsize=9)
    if legend:
        ax.legend()
    ax.grid(alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    write_atomic(path, lambda p: fig.savefig(p, dpi=110, format="png"))
    plt.close(fig)
    return path


def plot_regret(scored: pd.DataFrame, path: Path, title: str) -> Path:
    """Median regret over simulated time per method, with the interquartile band over seeds."""
    plt = figure()
    fig, ax = plt.subplots(figsize=(6, 4))
    start, end = max(scored["time"].min(), 1e-3), scored["time"].max()
    log_time = end > 10 * start  # when the runs span more than a decade (e.g. standalone and weight sharing)
    grid = np.geomspace(start, end, 200) if log_time else np.linspace(start, end, 200)
    for method, runs in scored.groupby("method"):
        curves = []
        for _, run in runs.groupby("seed"):
            run = run.sort_values("time")
            position = np.searchsorted(run["time"].to_numpy(), grid, side="right") - 1
            # before a run's first result nothing is dominated: hypervolume 0, regret 4
            curves.append(np.where(position >= 0, run["regret"].to_numpy()[np.maximum(position, 0)], BEST_HYPERVOLUME))
        curves = np.array(curves)
        median = np.median(curves, axis=0)
        low, high = np.percentile(curves, 25, axis=0), np.percentile(curves, 75, axis=0)
        ax.plot(grid, median, label=method)
        ax.fill_between(grid, low, high, alpha=0.2)
    if log_time:
        ax.set_xscale("log")
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel("regret (4 - hypervolume)")
    return finish(plt, fig, ax, path, title)


def plot_fronts(results: pd.DataFrame, objectives: tuple[str, str], path: Path, title: str,
                scatter: bool = False) -> Path:
    """Each method's Pareto front of everything it observed over all seeds (``scatter``: all points too)."""
    plt = figure()
    fig, ax = plt.subplots(figsize=(6, 4))
    for method, runs in results.groupby("method"):
        values = runs[list(objectives)].to_numpy()
        front = non_dominated(values)
        line, = ax.step(front[:, 0], front[:, 1], where="post", marker=".", label=method)
        if scatter:
            ax.scatter(values[:, 0], values[:, 1], s=5, alpha=0.35, color=line.get_color())
    ax.set_xlabel(objectives[0])
    ax.set_ylabel(objectives[1])
    return finish(plt, fig, ax, path, title)


def plot_ranks(ranks: dict[str, tuple[float, float]], path: Path, title: str) -> Path:
    """Average rank (bootstrap mean and standard deviation) per method."""
    plt = figure()
    fig, ax = plt.subplots(figsize=(5, 3.5))
    methods = sorted(ranks, key=lambda m: ranks[m][0])
    ax.bar(methods, [ranks[m][0] for m in methods], yerr=[ranks[m][1] for m in methods], capsize=4)
    ax.set_ylabel("average rank (lower is better)")
    return finish(plt, fig, ax, path, title, legend=False)
