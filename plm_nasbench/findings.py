"""The paper's qualitative findings, recomputed on this package's tables.

    python -m plm_nasbench.findings [--tasks rte,mrpc] [--only d] [--seeds 10] [--readme README.md] [--plots docs/plots]

Four comparisons, each on every task whose tables hold it (a task without them is listed as missing):

(a) search spaces: 100 random sub-networks of each space (``draws`` draws without replacement from the
    space's weight-sharing table of sampler-drawn configurations; the ``layer`` space has 64 in all),
    hypervolume of validation error against parameter fraction; once on one super-network per task
    trained on the ``small`` space, once on each space's own super-network where those tables exist;
(b) super-network strategies: the same 100 ``small`` configurations on each strategy's super-network, and
    the strategies' average ranks over the tasks that have all six (1,000 bootstrap resamples of the
    configurations);
(c) RS, LS, MO-REA and EHVI in weight sharing: average ranks over seeds and tasks (1,000 bootstrap draws);
(d) MO-ASHA against RS in standalone fine-tuning: regret over simulated time, every run given the same time.

Every hypervolume is the protocol's (:mod:`plm_nasbench.protocol`): objectives quantile-normalised over
all values compared together, reference point (2, 2). The numbers replace the text between
``<!-- findings:start -->`` and ``<!-- findings:end -->`` in the README; the plots go to ``docs/plots``.

Under each section's heading a stamp (an HTML comment) records the tasks it includes and what it read of them:
the checksums of their tables and, where surrogates answer, of the latency table they learned from and of the tasks'
surrogates. ``--check`` recomputes the stamps from the tables as they are now and names the sections whose inputs
changed since or that more tasks could now include (exit status 1), without recomputing any comparison; a table
of a task a section left out (too few tables for it) leaves the section current.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .architecture import DEFAULT_MODEL
from .atomic import read_block, replace_block
from .benchmark.core import STRATEGIES
from .paths import data_dir as default_data_dir
from .paths import surrogates_dir as default_surrogates_dir
from .plots import plot_fronts, plot_ranks, plot_regret
from .protocol import QuantileNormaliser, average_ranks, hypervolume_2d
from .provenance import sha256_file
from .surrogates.build import STUDIES as SURROGATE_STUDIES
from .surrogates.build import surrogate_folder
from .surrogates.small import CHECKSUMS
from .simulation import final_regret, final_results
from .tables import Manifest, served_rows

START, END = "<!-- findings:start -->", "<!-- findings:end -->"
OBJECTIVES = ("valid_error", "params_fraction")
#: Tables of sampler-drawn configurations per space (the small grid is not a random sample of the space): on one
#: super-network per task trained by sampling the small space, and on super-networks trained on each space.
#: tag -> (description, space -> study).
SPACE_STUDIES = {
    "spaces-shared": ("one super-network trained on small", {"small": "ws-small-holdout", "layer": "ws-layer",
                                                             "medium": "ws-medium", "large": "ws-large"}),
    "spaces-own": ("each space's own super-network", {"small": "ws-small-holdout", "layer": "ws-own-layer",
                                                      "medium": "ws-own-medium", "large": "ws-own-large"}),
}
SPACE_SAMPLE, SPACE_DRAWS = 100, 10
UNRECORDED = "not recorded"  # (a)'s super_network of a table whose rows predate super-network ids
ABLATION_STUDY = "ws-strategy-ablation"
WS_METHODS = ("rs", "ls", "morea", "ehvi")
STANDALONE_METHODS = ("rs", "moasha")
MIN_STANDALONE_CONFIGS = 20  # learning curves a task needs before (d) is computed on it
COMPARISONS = ("a", "b", "c", "d")
EQUAL_TIME_CAP = 10  # (d): a run under a time budget makes at most this many times the evaluations random search does
#: Section kinds whose benchmarks answer from surrogates: tag -> (scheme, strategy) of those surrogates.
SURROGATE_SECTIONS = {"ws": ("weight_sharing", "full"), "standalone": ("standalone", "none")}
#: A section's stamp: its kind (the tag of its plots), model, the tasks it includes and the digest of their inputs.
STAMP = re.compile(r"<!-- inputs: (?P<tag>[\w-]+) model=(?P<model>\S+) tasks=(?P<tasks>\S*) sha256=(?P<digest>[0-9a-f]{16}) -->")


def _hypervolumes(groups: dict[str, list[np.ndarray]]) -> dict[str, list[float]]:
    """Hypervolume of each point set, every set normalised by the quantiles of all of them together."""
    normaliser = QuantileNormaliser().fit(np.concatenate([p for sets in groups.values() for p in sets]))
    return {name: [hypervolume_2d(normaliser.transform(p)) for p in sets] for name, sets in groups.items()}


def _study_table(manifest: Manifest, study: str, task: str, model: str) -> pd.DataFrame | None:
    paths = manifest.find(model=model, study=study, task=task)
    return manifest.read(paths[0]) if paths else None


def compare_spaces(manifest: Manifest, task: str, studies: dict[str, str], n: int = SPACE_SAMPLE,
                   draws: int = SPACE_DRAWS, seed: int = 0,
                   model: str = DEFAULT_MODEL) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """(a) Per space (``studies``: space -> table study), the hypervolume of ``draws`` random draws of ``n``
    sub-networks (all of them when the table has fewer), the super-network its table comes from
    (``super_network``: its id, or ``not recorded`` for rows made before ids were), and the points of the first
    draw; None when the task has fewer than two of the tables (of ``model``)."""
    rng = np.random.default_rng(seed)
    samples: dict[str, list[pd.DataFrame]] = {}
    best: dict[str, float] = {}
    made_by: dict[str, str] = {}
    for space, study in studies.items():
        table = _study_table(manifest, study, task, model)
        if table is None:
            continue
        table = table[table["strategy"] == "full"].drop_duplicates("config_id")
        size = min(n, len(table))
        samples[space] = [table.iloc[rng.choice(len(table), size, replace=False)] for _ in range(draws)]
        best[space] = float(table["valid_error"].min())
        ids = table["supernetwork_id"].dropna().unique() if "supernetwork_id" in table else []
        made_by[space] = ", ".join(sorted(map(str, ids))) or UNRECORDED
    if len(samples) < 2:
        return None
    volumes = _hypervolumes({s: [d[list(OBJECTIVES)].to_numpy() for d in draws_] for s, draws_ in samples.items()})
    summary = pd.DataFrame([{"space": s, "sub_networks": len(samples[s][0]), "hypervolume_mean": np.mean(v),
                             "hypervolume_std": np.std(v), "best_valid_error_in_table": best[s],
                             "super_network": made_by[s]}
                            for s, v in volumes.items()])
    points = pd.concat([d[0].assign(method=s) for s, d in samples.items()], ignore_index=True)
    return summary.sort_values("hypervolume_mean", ascending=False, ignore_index=True), points


def _several_supernetworks(task: str, summary: pd.DataFrame) -> str | None:
    """A note when the space tables of :func:`compare_spaces`' ``summary`` are not known to come from one
    super-network: they record different ids, or some record none (made before ids were recorded)."""
    made_by = summary.set_index("space")["super_network"]
    known = set(made_by[made_by != UNRECORDED])
    if len(set(made_by)) < 2:
        return None
    if len(known) > 1:
        return (f"On {task} these tables come from {len(known)} super-networks (`super_network`), each trained alike "
                "(strategy `full` on the `small` space's sampler, the plan's settings): the spaces are compared across "
                "super-networks too.")
    unknown = ", ".join(f"`{s}`" for s in made_by.index[made_by == UNRECORDED])
    return (f"On {task} the tables of {unknown} were made before super-network ids were recorded: that they share "
            f"the others' super-network ({', '.join(sorted(known))}) is not recorded.")


def compare_strategies(manifest: Manifest, task: str,
                       model: str = DEFAULT_MODEL) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """(b) Per super-network strategy, the hypervolume of the ablation's common configurations (valid and
    test error against parameter fraction); None when the task has no ablation table (of ``model``)."""
    table = _study_table(manifest, ABLATION_STUDY, task, model)
    if table is None:
        return None
    common = set.intersection(*(set(g["config_id"]) for _, g in table.groupby("strategy")))
    table = table[table["config_id"].isin(common)]
    rows = {}
    for split in ("valid_error", "test_error"):
        sets = {s: [g[[split, "params_fraction"]].to_numpy()] for s, g in table.groupby("strategy")}
        for strategy, (volume,) in _hypervolumes(sets).items():
            rows.setdefault(strategy, {"strategy": strategy, "configs": len(common)})[f"hypervolume_{split[:-6]}"] = volume
    summary = pd.DataFrame(list(rows.values())).sort_values("hypervolume_valid", ascending=False, ignore_index=True)
    missing = [{"strategy": s, "configs": 0, "hypervolume_valid": "not run yet", "hypervolume_test": "not run yet"}
               for s in STRATEGIES if s not in rows]
    if missing:  # a partial ablation says which strategies it lacks
        summary = pd.concat([summary.astype(object), pd.DataFrame(missing)], ignore_index=True)
    return summary, table.rename(columns={"strategy": "method"})


def rank_strategies(compared: dict[str, pd.DataFrame], draws: int = 1000,
                    seed: int = 0) -> tuple[list[str], dict[str, tuple[float, float]]] | None:
    """(b) across tasks, from :func:`compare_strategies`' points per task: the tasks whose ablation has every
    strategy, and each strategy's rank by valid-error hypervolume averaged over them (1 = best), as (mean,
    standard deviation) over ``draws`` bootstrap resamples of the ablation's common configurations (per draw and
    task one resample, shared by every strategy: the comparison stays paired). None when no task has all
    strategies."""
    from scipy.stats import rankdata

    points = {}
    for task, table in compared.items():
        if set(table["method"]) == set(STRATEGIES):
            per_config = table.groupby(["method", "config_id"])[list(OBJECTIVES)].mean()  # seeds averaged
            configs = sorted(per_config.index.unique("config_id"))
            points[task] = {s: per_config.loc[s].reindex(configs).to_numpy() for s in STRATEGIES}
    if not points:
        return None
    rng = np.random.default_rng(seed)
    ranks = np.zeros((draws, len(STRATEGIES)))
    for d in range(draws):
        per_task = []
        for sets in points.values():
            rows = rng.integers(0, len(sets[STRATEGIES[0]]), len(sets[STRATEGIES[0]]))
            volumes = _hypervolumes({s: [sets[s][rows]] for s in STRATEGIES})
            per_task.append(rankdata([-volumes[s][0] for s in STRATEGIES]))
        ranks[d] = np.mean(per_task, axis=0)
    return sorted(points), {s: (float(ranks[:, i].mean()), float(ranks[:, i].std())) for i, s in enumerate(STRATEGIES)}


def compare_optimizers(tasks: Sequence[str], methods: Sequence[str], scheme: str, seeds: int, evaluations: int,
                       data: Path | None, surrogates: Path | None, workers: int, backend: str = "auto",
                       equal_time: bool = False) -> tuple[dict[str, pd.DataFrame], dict[str, float | None]]:
    """(c)/(d) Simulated runs of ``methods`` on ``scheme`` per task, with regret (:func:`add_regret`), and each
    task's time budget in seconds (None: none). Without ``equal_time`` every run makes ``evaluations`` trials;
    with it every run gets the simulated time random search needs for ``evaluations`` trials (the median over
    the seeds), so methods whose trials cost less (MO-ASHA stops some early) make more of them (at most
    ``EQUAL_TIME_CAP`` times ``evaluations``). ``backend="table"`` answers only from real rows (a proposal
    gets the table's nearest configuration)."""
    from .simulation import add_regret, benchmarks_for, capped_runs, simulate

    if equal_time and "rs" not in methods:
        raise ValueError(f"equal_time sets the budget by random search's time, so methods must include 'rs'; got "
                         f"{list(methods)}")
    scored, budgets = {}, {}
    for task in tasks:
        benchmarks = benchmarks_for(task, methods, scheme, data=data, surrogates=surrogates, backend=backend)
        budget = None
        if equal_time:
            reference = simulate({"rs": benchmarks["rs"]}, range(seeds), evaluations, OBJECTIVES, workers=workers)
            budget = float(reference.groupby("seed")["time"].max().median())
        cap = evaluations * (EQUAL_TIME_CAP if equal_time else 1)
        runs = simulate(benchmarks, range(seeds), cap, OBJECTIVES, workers=workers, max_time=budget)
        if budget is not None and (capped := capped_runs(runs, cap, budget)):
            raise ValueError(f"{task}: {len(capped)} run(s) made all {cap} evaluations before the time budget "
                             f"({', '.join(capped[:3])}); raise EQUAL_TIME_CAP")
        scored[task], budgets[task] = add_regret(runs, OBJECTIVES), budget
    return scored, budgets


def _section_keys(tag: str, model: str) -> list[dict[str, str]]:
    """Manifest keys of the tables a findings section of kind ``tag`` (the tag of its plots: a key of
    ``SPACE_STUDIES``, ``strategy``, ``ws``, ``standalone`` or ``standalone-table``) reads for ``model``: a
    weight-sharing benchmark reads every weight-sharing table of its task (the super-network's training time comes
    from any of them), and a benchmark answering from surrogates depends on the latency table they learned from."""
    if tag in SPACE_STUDIES:
        return [{"model": model, "study": study} for study in SPACE_STUDIES[tag][1].values()]
    if tag == "strategy":
        return [{"model": model, "study": ABLATION_STUDY}]
    if tag in SURROGATE_SECTIONS:
        return [{"model": model, "scheme": SURROGATE_SECTIONS[tag][0]},
                {"model": model, "study": SURROGATE_STUDIES["latency"]}]
    if tag == "standalone-table":
        return [{"model": model, "scheme": "standalone"}]
    raise ValueError(f"unknown findings section kind {tag!r}; known: {', '.join(SPACE_STUDIES)}, strategy, ws, "
                     "standalone, standalone-table")


def _feeds(manifest: Manifest, tag: str, model: str, task: str) -> bool:
    """Whether ``task`` has the tables a findings section of kind ``tag`` needs to include it."""
    if tag in SPACE_STUDIES:
        return sum(bool(manifest.find(model=model, study=s, task=task)) for s in SPACE_STUDIES[tag][1].values()) >= 2
    if tag == "strategy":
        return bool(manifest.find(model=model, study=ABLATION_STUDY, task=task))
    if tag == "ws":
        return bool(manifest.find(model=model, task=task, scheme="weight_sharing", search_space="small", strategy="full"))
    return _standalone_configs(manifest, model, task) >= MIN_STANDALONE_CONFIGS


def inputs_digest(manifest: Manifest, tag: str, model: str, tasks: Sequence[str],
                  surrogates: Path | None = None) -> str:
    """The first 16 hex digits of a SHA-256 over what a findings section of kind ``tag`` reads for ``model`` and
    ``tasks``: the manifest's checksums of its tables (:func:`_section_keys`) and, where surrogates answer
    (``SURROGATE_SECTIONS``), the checksum files of the tasks' surrogates in ``surrogates`` (default the
    package's)."""
    keys = _section_keys(tag, model)
    wanted = {*tasks, None}  # the latency table belongs to no task
    paths = sorted({p for k in keys for p in manifest.find(**k) if manifest.tables[p].get("task") in wanted})
    lines = [f"{p} {manifest.tables[p]['sha256']}" for p in paths]
    if tag in SURROGATE_SECTIONS:
        root = Path(surrogates) if surrogates is not None else default_surrogates_dir()
        sums = [surrogate_folder(root, model, *SURROGATE_SECTIONS[tag], task) / CHECKSUMS for task in sorted(tasks)]
        lines += [f"{f.relative_to(root).as_posix()} {sha256_file(f)}" for f in sums if f.is_file()]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def _stamp(manifest: Manifest, tag: str, model: str, tasks: Sequence[str], surrogates: Path | None) -> str:
    digest = inputs_digest(manifest, tag, model, tasks, surrogates)
    return f"<!-- inputs: {tag} model={model} tasks={','.join(tasks)} sha256={digest} -->"


def check_block(block: str, manifest: Manifest, surrogates: Path | None = None) -> list[tuple[str, str]]:
    """Each section of a findings block as (its heading, its state): ``current`` when its stamps match the inputs
    as they are now; ``changed`` when a table or surrogate it read changed since; ``more tasks: ...`` when tasks
    it does not include now have what it needs to include them; ``unstamped`` when it has no stamp (computed
    before stamps were written); ``unknown stamp: ...`` for a stamp of a kind this version does not know."""
    states = []
    for section in _sections(block)[1]:
        stamps = list(STAMP.finditer(section))
        changed, unknown, more = False, [], set()
        for stamp in stamps:
            tag, model, tasks = stamp["tag"], stamp["model"], [t for t in stamp["tasks"].split(",") if t]
            try:
                changed |= inputs_digest(manifest, tag, model, tasks, surrogates) != stamp["digest"]
            except ValueError:
                unknown.append(tag)
                continue
            held = {manifest.tables[p]["task"] for p in manifest.find(model=model) if "task" in manifest.tables[p]}
            more |= {task for task in held - set(tasks) if _feeds(manifest, tag, model, task)}
        state = ("unstamped" if not stamps else f"unknown stamp: {', '.join(unknown)}" if unknown
                 else "changed" if changed else f"more tasks: {', '.join(sorted(more))}" if more else "current")
        states.append((section.splitlines()[0], state))
    return states


def _markdown(frame: pd.DataFrame) -> str:
    cells = frame.map(lambda v: f"{v:.3f}" if isinstance(v, float) else str(v))
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    return "\n".join([*lines, *("| " + " | ".join(row) + " |" for row in cells.to_numpy())])


def _sections(block: str) -> tuple[str, list[str]]:
    """Split a findings block into its header and its ``#### (x) ...`` sections (each with its heading)."""
    parts = re.split(r"^(?=#### )", block, flags=re.M)
    return parts[0].strip(), [part.strip() for part in parts[1:]]


def _comparison(section: str) -> str:
    """The letter of the comparison a ``#### (x) ...`` section belongs to."""
    found = re.match(r"#### \((\w)\)", section)
    if found is None or found.group(1) not in COMPARISONS:
        raise ValueError(f"the findings block has a section that is none of the comparisons "
                         f"{', '.join(COMPARISONS)}: {section.splitlines()[0]!r}; recompute all of them")
    return found.group(1)


def splice_sections(old: str, new: str, only: Sequence[str]) -> str:
    """The findings block ``old`` with the sections of the comparisons ``only`` replaced by those of ``new`` (the
    output of ``findings(..., only=only)``); sections stay in the order (a)-(d), and the header is ``new``'s."""
    header, fresh = _sections(new)
    kept = [section for section in _sections(old)[1] if _comparison(section) not in only]
    return "\n\n".join([header, *sorted(kept + fresh, key=lambda section: COMPARISONS.index(_comparison(section)))])


def _standalone_configs(manifest: Manifest, model: str, task: str) -> int:
    """How many configurations the standalone ``small`` table of (``model``, ``task``) answers with learning curves
    (the rows it serves, of one dtype: :func:`plm_nasbench.tables.served_rows`), the unpruned network included."""
    rows = served_rows(manifest, model, task, "small", "standalone", "none", None)
    return 0 if rows is None else int(rows["config_id"].nunique())


def findings(manifest: Manifest, tasks: Sequence[str], plots: Path, seeds: int = 10, evaluations: int = 100,
             workers: int = 1, surrogates: Path | None = None, only: Sequence[str] = COMPARISONS) -> str:
    """Compute the comparisons ``only`` (of (a)-(d)) on ``tasks``, write their plots into ``plots`` and return the
    markdown block: a header line, then a ``#### (x) ...`` section per comparison and variant."""
    unknown = sorted(set(only) - set(COMPARISONS))
    if unknown or not only:
        raise ValueError(f"only must name some of the comparisons {', '.join(COMPARISONS)}; got {list(only)}")
    data = manifest.root
    model = manifest.tables[next(iter(manifest.tables))]["model"] if manifest.tables else DEFAULT_MODEL
    blocks = [f"Generated by `python -m plm_nasbench.findings` from the shipped tables (model `{model}`)."]
    comparisons = [(f"(a) Search spaces, {variant}: {SPACE_SAMPLE} random sub-networks each "
                    f"(hypervolume over {SPACE_DRAWS} draws)", functools.partial(compare_spaces, studies=studies),
                    tag, variant) for tag, (variant, studies) in SPACE_STUDIES.items()]
    comparisons.append(("(b) Super-network training strategies: the same 100 `small` sub-networks",
                        compare_strategies, "strategy", "per strategy"))
    for title, compare, tag, what in comparisons:
        if title[1] not in only:
            continue
        usable = [t for t in tasks if _feeds(manifest, tag, model, t)]
        blocks += [f"#### {title}", _stamp(manifest, tag, model, usable, surrogates)]
        done: dict[str, pd.DataFrame] = {}
        for task in usable:
            summary, points = compare(manifest, task, model=model)
            done[task] = points
            path = plot_fronts(points, OBJECTIVES, plots / f"findings-{tag}-{task}.png",
                               f"{task}: Pareto fronts, {what} (weight sharing)", scatter=True)
            blocks += [f"{task} ([plot]({path.as_posix()})):", "", _markdown(summary), ""]
            if tag == "spaces-shared" and (note := _several_supernetworks(task, summary)):
                blocks += [note, ""]
        if not done:
            blocks.append("No task has the tables for this comparison yet.")
        if tag == "strategy" and (ranked := rank_strategies(done)) is not None:
            complete, ranks = ranked
            path = plot_ranks(ranks, plots / "findings-ranks-strategy.png", f"average ranks, strategies: {', '.join(complete)}")
            table = pd.DataFrame([{"strategy": s, "average_rank": r[0], "rank_std": r[1]}
                                  for s, r in sorted(ranks.items(), key=lambda item: item[1][0])])
            blocks += [f"Average rank by valid-error hypervolume over the tasks with all six strategies "
                       f"({', '.join(complete)}), mean and standard deviation over 1,000 bootstrap resamples of the "
                       f"configurations ([plot]({path.as_posix()})):", "", _markdown(table), ""]
    for title, methods, scheme, tag, backend in (
            ("(c) RS, LS, MO-REA, EHVI in weight sharing", WS_METHODS, "weight_sharing", "ws", "auto"),
            ("(d) MO-ASHA against RS in standalone fine-tuning (the standalone surrogate answers configurations "
             "off the table)", STANDALONE_METHODS, "standalone", "standalone", "auto"),
            ("(d) MO-ASHA against RS in standalone fine-tuning, real learning curves only (each proposal is answered "
             "by the table's nearest configuration)", STANDALONE_METHODS, "standalone", "standalone-table", "table")):
        if title[1] not in only:
            continue
        usable = [t for t in tasks if _feeds(manifest, tag, model, t)]  # standalone: a handful of curves won't do
        blocks += [f"#### {title}", _stamp(manifest, tag, model, usable, surrogates)]
        if not usable:
            blocks.append("No task has the tables for this comparison yet.")
            continue
        equal_time = scheme == "standalone"  # MO-ASHA's trials cost less than RS's: compare at equal time
        scored, budgets = compare_optimizers(usable, methods, scheme, seeds, evaluations, data, surrogates, workers,
                                             backend, equal_time)
        final = {task: final_regret(runs) for task, runs in scored.items()}
        ranks = average_ranks(final)
        paths = [plot_ranks(ranks, plots / f"findings-ranks-{tag}.png", f"average ranks, {scheme}: {', '.join(usable)}")]
        paths += [plot_regret(runs, plots / f"findings-regret-{tag}-{task}.png", f"{task}, {scheme}")
                  for task, runs in scored.items()]
        spent = {t: final_results(runs).groupby("method") for t, runs in scored.items()}
        table = pd.DataFrame([{"method": m, "average_rank": r[0], "rank_std": r[1],
                               **{f"final_regret_{t}": float(np.median(final[t][m])) for t in usable},
                               **{f"hours_{t}": float(spent[t]["time"].median()[m]) / 3600 for t in usable},
                               **{f"evaluations_{t}": f"{spent[t]['trial'].median()[m] + 1:g}" for t in usable}}
                              for m, r in sorted(ranks.items(), key=lambda item: item[1][0])])
        if equal_time:
            budget = (f"every run has the simulated time random search takes for {evaluations} evaluations (median "
                      "over seeds: " + ", ".join(f"{t} {b / 3600:.2f} h" for t, b in budgets.items())
                      + f"; at most {EQUAL_TIME_CAP * evaluations} evaluations)")
        else:
            budget = f"{evaluations} evaluations per run"
        blocks += [f"{seeds} seeds on {', '.join(usable)}, {budget}; final regret, simulated hours and evaluations "
                   f"(the last trial seen) are medians over seeds. Plots: "
                   + ", ".join(f"[{p.stem}]({p.as_posix()})" for p in paths), "", _markdown(table), ""]
    header, sections = _sections("\n".join(blocks))
    return "\n\n".join([header, *sections])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(allow_abbrev=False, prog="python -m plm_nasbench.findings", description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(default_data_dir()), help="tables folder (default: %(default)s)")
    parser.add_argument("--surrogates", default=None, help="surrogates folder (default: the package's)")
    parser.add_argument("--tasks", default=None, help="comma-separated (default: every task with a table)")
    parser.add_argument("--seeds", type=int, default=10, help="optimizer runs per method and task (default 10)")
    parser.add_argument("--evaluations", type=int, default=100,
                        help="evaluations per random-search run (default 100)")
    parser.add_argument("--workers", type=int, default=1, help="processes running the simulations (default 1)")
    parser.add_argument("--readme", default="README.md", help="README whose findings block is rewritten "
                                                              "(default README.md)")
    parser.add_argument("--plots", default="docs/plots", help="folder of the findings' plots (default docs/plots)")
    parser.add_argument("--only", default=",".join(COMPARISONS),
                        help="comma-separated comparisons to recompute; the README block keeps the others' sections "
                             "(default: %(default)s, all)")
    parser.add_argument("--check", action="store_true",
                        help="recompute nothing: say which sections of the README's block were computed from other "
                             "tables or surrogates than those of --data and --surrogates now (exit status 1 if any)")
    args = parser.parse_args(argv)
    only = [c.strip() for c in args.only.split(",") if c.strip()]
    if not only or set(only) - set(COMPARISONS):
        parser.error(f"--only takes a comma-separated subset of {','.join(COMPARISONS)}, got {args.only!r}")
    partial = set(only) != set(COMPARISONS)
    try:  # the README's block is checked before the long run
        sections = _sections(read_block(Path(args.readme), START, END))[1]
        for section in sections if partial else ():
            _comparison(section)  # raises for a section that is none of (a)-(d): it could not be spliced
    except (OSError, ValueError) as err:
        parser.error(f"--readme {args.readme}: {err}")
    manifest = Manifest.load(args.data)
    surrogates = Path(args.surrogates) if args.surrogates else None
    if args.check:
        states = check_block(read_block(Path(args.readme), START, END), manifest, surrogates)
        for heading, state in states:
            print(f"{state:10} {heading}")
        if any(state != "current" for _, state in states):
            parser.exit(1, f"{args.readme}: recompute the sections not marked current (--only with their letters)\n")
        return
    tasks = ([t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks
             else sorted({e["task"] for e in manifest.tables.values() if "task" in e}))
    block = findings(manifest, tasks, Path(args.plots), args.seeds, args.evaluations, args.workers, surrogates, only)
    if partial:  # the block as it is now: another run may have rewritten other sections meanwhile
        block = splice_sections(read_block(Path(args.readme), START, END), block, only)
    replace_block(Path(args.readme), START, END, block)
    print(block)


if __name__ == "__main__":
    main()
