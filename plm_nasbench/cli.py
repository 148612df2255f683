"""The ``plm-nasbench`` command line."""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from collections.abc import Sequence
from typing import Any

from . import __version__
from .console import discard_stdout, one_line_warnings
from .architecture import MODELS, TASK_HEADS, get_architecture
from .paths import DATA_ENV, data_dir
from .spaces import SEARCH_SPACES, get_search_space


def _magnitude(n: int) -> str:
    """``n`` with thousands separators, or as ~m.m x 10^k from 10^9 on (exact integers of any size)."""
    if n < 10**9:
        return f"{n:,}"
    exponent = int((n.bit_length() - 1) * math.log10(2))  # no str(n): Python refuses ints of over 4,300 digits
    while 10 ** (exponent + 1) <= n:
        exponent += 1
    while 10 ** exponent > n:
        exponent -= 1
    unit = 10 ** (exponent - 1)
    digits = (n + unit // 2) // unit  # two significant digits, rounded half up, in integer arithmetic
    if digits == 100:
        digits, exponent = 10, exponent + 1
    return f"~{digits // 10}.{digits % 10} x 10^{exponent}"


def _info(args: argparse.Namespace) -> int:
    folder = args.data if args.data is not None else data_dir()
    if not os.path.isdir(folder):  # before anything is printed
        source = "--data" if args.data is not None else f"${DATA_ENV}" if os.environ.get(DATA_ENV) else "the package"
        raise FileNotFoundError(f"data folder {str(folder)!r} does not exist (it came from {source})")
    print(f"plm_nasbench {__version__}\n")
    print("Models (parameters with a 2-label classification head):")
    for name, spec in MODELS.items():
        try:
            a = get_architecture(name)
            dims = (f"L={a.num_layers} H={a.num_heads} head_size={a.head_size} I={a.intermediate_size}, "
                    f"{a.total_parameters():,} parameters")
        except FileNotFoundError as err:
            dims = f"unavailable: {err}"
        default = " (default)" if name == "minilm-l6-h384" else ""
        print(f"  {name}{default}: {dims}; source: {spec.source} ({spec.location})")
    print(f"\nSearch spaces (on {args.model}):")
    for name in SEARCH_SPACES:
        space = get_search_space(name, args.model)
        print(f"  {name}: {_magnitude(space.num_configs)} configs, encoding length {space.encoding_size}; "
              f"{type(space).__doc__.strip().splitlines()[0].replace('``', '')}")
    print("\nTasks:")
    for task, head in TASK_HEADS.items():
        kind = "regression" if head.is_regression else f"{head.kind} ({head.num_outputs} outputs)"
        print(f"  {task}: {kind}")
    from .tables import Manifest

    manifest = Manifest.load(folder)
    print(f"\nTables in {manifest.root} (model, task, space, scheme, strategy: rows; latency tables have no task):")
    if not manifest.tables:
        print("  none yet (no MANIFEST.json)")
    for name, entry in sorted(manifest.tables.items()):
        keys = ", ".join(str(entry[k]) for k in ("model", "task", "search_space", "scheme", "strategy") if k in entry)
        print(f"  {name}: {keys}: {entry['rows']:,} rows")
    if manifest.tables:
        from . import Benchmark

        print("\nBenchmarks they answer (Benchmark(task, model, space, scheme, strategy, supernetwork_space=...)):")
        available = Benchmark.available(manifest.root)
        long = ["studies", "hardware"]  # long texts: listed per benchmark below the table, which stays narrow
        print(_format(available.drop(columns=long).rename_axis("#").reset_index()))
        for number, row in available.iterrows():
            print(f"  #{number}: studies {row['studies']}; hardware {row['hardware']}")
    return 0


def _names(value: str, flag: str) -> list[str]:
    """A comma-separated option as names (spaces around them dropped); an empty name or a repeat is an error."""
    names = [name.strip() for name in value.split(",")]
    if not any(names):
        raise ValueError(f"{flag} names nothing; give comma-separated names")
    if "" in names:
        raise ValueError(f"{flag} {value!r} has an empty name (a comma at an end, or two in a row)")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"{flag} names {', '.join(repeated)} more than once")
    return names


def _bench(args: argparse.Namespace) -> Any:
    from . import Benchmark

    return Benchmark(args.task, model=args.model, space=args.space, scheme=args.scheme, **_super_network(args),
                     backend=args.backend, data=args.data, surrogates=getattr(args, "surrogates", None),
                     data_dir=getattr(args, "data_dir", None), device=getattr(args, "device", None) or "cpu")


def _super_network(args: argparse.Namespace) -> dict[str, str]:
    """``strategy`` and ``supernetwork_space`` as given (a standalone benchmark refuses them when not defaults)."""
    return {"strategy": args.strategy, "supernetwork_space": args.supernetwork_space}


def _format(frame: Any) -> str:
    import pandas as pd

    with pd.option_context("display.max_rows", 200, "display.width", 160, "display.float_format", "{:.4g}".format):
        return frame.to_string(index=False)


def _query(args: argparse.Namespace) -> int:
    import pandas as pd

    try:
        config = json.loads(args.config)
    except json.JSONDecodeError as err:
        print(f"error: the configuration must be JSON, e.g. '{{\"num_layers\": 4, \"num_heads\": 6, "
              f"\"num_units\": 768}}': {err}", file=sys.stderr)
        return 2
    from .objectives import OBJECTIVES

    result = _bench(args).query(config, epoch=args.epoch, seed=args.seed)
    # one row per objective, in a fixed order, with its unit and the surrogate's uncertainty where it predicted it
    def shown(value: Any) -> str:
        return "" if value is None else str(value) if isinstance(value, int) else f"{value:.4g}"

    frame = pd.DataFrame({"objective": list(OBJECTIVES), "value": [shown(result[name]) for name in OBJECTIVES],
                          "std": [shown(result.get(f"{name}_std")) for name in OBJECTIVES],
                          "unit": [o.unit for o in OBJECTIVES.values()],
                          "from": [_answered_by(result, name) for name in OBJECTIVES]})
    print(_format(frame))
    about = {k: result[k] for k in ("epoch", "seed", "n_seeds", "source", "out_of_data") if k in result}
    print("  ".join(f"{k}: {v}" for k, v in about.items()))
    return 0


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _answered_by(result: dict[str, Any], name: str) -> str:
    """Where a query's value of objective ``name`` came from: the surrogate where it predicted it (it gives a
    ``<name>_std``), the formulas for what a surrogate answer computes exactly (sizes and FLOPs), else the
    answer's source (the table, or the live evaluator)."""
    if f"{name}_std" in result:
        return "surrogate"
    return {"surrogate": "formula", "table+surrogate": "table"}.get(result["source"], result["source"])


#: The longest configuration ``pareto`` prints whole (``large`` ones are thousands of characters).
CONFIG_WIDTH = 60


def _pareto(args: argparse.Namespace) -> int:
    bench = _bench(args)
    objectives = _names(args.objectives, "--objectives")
    front = bench.pareto_front(tuple(objectives), epoch=args.epoch)
    print(f"{bench!r}: {len(front)} non-dominated configurations of {', '.join(objectives)}")
    long = front["config"].str.len() > CONFIG_WIDTH
    if long.any() and not args.full:
        front["config"] = front["config"].where(~long, front["config"].str[:CONFIG_WIDTH - 3] + "...")
        print(f"(configurations longer than {CONFIG_WIDTH} characters are cut; --full prints them whole)")
    shown = list(dict.fromkeys([*objectives, "test_error"]))
    # auto: values the table lacks came from the surrogate; the source is that of the values shown
    stds = [f"{name}_std" for name in shown if f"{name}_std" in front and front[f"{name}_std"].notna().any()]
    if stds:
        front["source"] = front[stds].notna().any(axis=1).map({True: "table+surrogate", False: "table"})
    print(_format(front[["config", *shown, *stds, *(["source"] if stds else [])]]))
    return 0


def _simulate(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from .plots import plot_fronts, plot_ranks, plot_regret
    from .protocol import average_ranks
    from .simulation import (add_regret, benchmarks_for, capped_runs, check_objectives, final_regret, final_results,
                             simulate)

    methods = _names(args.methods, "--methods")
    objectives = tuple(_names(args.objectives, "--objectives"))
    check_objectives(objectives)
    for flag, value in (("--seeds", args.seeds), ("--evaluations", args.evaluations), ("--workers", args.workers)):
        if value < 1:
            raise ValueError(f"{flag} must be at least 1, got {value}")
    if args.hours is not None and not args.hours > 0:
        raise ValueError(f"--hours must be a positive number of simulated hours, got {args.hours}")
    start = time.perf_counter()
    benchmarks = benchmarks_for(args.task, methods, args.scheme, model=args.model, space=args.space,
                                backend=args.backend, data=args.data, surrogates=args.surrogates, **_super_network(args))
    try:  # before the runs, not after them
        Path(args.out).mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"--out {args.out!r} cannot be a folder of results: {err.strerror or err}") from err
    built = {b.scheme: b for b in benchmarks.values()}
    max_time = None if args.hours is None else args.hours * 3600
    results = simulate(benchmarks, range(args.seeds), args.evaluations, objectives, workers=args.workers,
                       max_time=max_time)
    scored = add_regret(results, objectives)
    final = final_results(scored)
    ranks = average_ranks({args.task: final_regret(scored)})
    table = final.groupby("method").agg(final_regret_median=("regret", "median"), final_regret_mean=("regret", "mean"),
                                        hypervolume_mean=("hypervolume", "mean"), simulated_hours=("time", "median"))
    table["simulated_hours"] /= 3600
    table["evaluations"] = results.groupby(["method", "seed"])["trial"].nunique().groupby("method").median()
    table["average_rank"] = [ranks[m][0] for m in table.index]
    table.insert(0, "scheme", [benchmarks[m].scheme for m in table.index])
    table = table.sort_values("average_rank").reset_index()
    budget = (f"{args.hours:g} simulated hours (at most {args.evaluations} evaluations) per run" if args.hours
              else f"{args.evaluations} evaluations per run")
    print(f"{'; '.join(repr(b) for b in built.values())}: {_count(len(methods), 'method')} x {_count(args.seeds, 'seed')}, {budget}, "
          f"objectives {', '.join(objectives)}")
    print(_format(table))
    if args.hours is None and table["simulated_hours"].max() > 1.5 * table["simulated_hours"].min():
        print(f"note: the methods spent different simulated time on their {args.evaluations} evaluations "
              "(simulated_hours, median over seeds); --hours gives every run the same time budget")
    capped = capped_runs(results, args.evaluations, max_time) if max_time is not None else []
    if capped:
        print(f"note: {len(capped)} run(s) made all {args.evaluations} evaluations well before {args.hours:g} "
              f"simulated hours ({', '.join(capped[:3])}{', ...' if len(capped) > 3 else ''}), so the budget is "
              "not the same for every run: raise --evaluations")
    out = Path(args.out)
    title = f"{args.task}, {args.space}, " + " + ".join(
        f"{scheme} ({args.strategy})" if scheme == "weight_sharing" else scheme for scheme in built)
    paths = [plot_regret(scored, out / f"regret-{args.task}.png", title),
             plot_fronts(results, objectives, out / f"fronts-{args.task}.png", title),
             plot_ranks(ranks, out / f"ranks-{args.task}.png", title)]
    scored.drop(columns="config").assign(config=results["config"].map(json.dumps)).to_csv(out / f"runs-{args.task}.csv", index=False)
    print(f"wrote {', '.join(str(p) for p in paths)} and {out / f'runs-{args.task}.csv'} in {time.perf_counter() - start:.1f} s")
    return 0


def _add_folders(command: argparse.ArgumentParser, surrogates: bool = True) -> None:
    """``--data`` (and ``--surrogates``): the folders a command reads, as ``Benchmark(data=, surrogates=)``."""
    command.add_argument("--data", default=None,
                         help="tables folder (default: $PLM_NASBENCH_DATA, else the package's data/)")
    if surrogates:
        command.add_argument("--surrogates", default=None, help="surrogates folder (default: "
                                                                "$PLM_NASBENCH_SURROGATES, else the package's surrogates/)")


def _add_super_network(command: argparse.ArgumentParser) -> None:
    """``--strategy`` and ``--supernetwork-space``: which weight-sharing super-network answers."""
    command.add_argument("--strategy", default="full", help="weight sharing: the super-network's training strategy "
                                                            "(default: %(default)s)")
    command.add_argument("--supernetwork-space", default="small", choices=list(SEARCH_SPACES),
                         help="weight sharing: the space whose sampler trained the super-network (default: %(default)s)")


def _add_model_and_space(command: argparse.ArgumentParser) -> None:
    """``--model`` and ``--space``: which benchmark answers."""
    command.add_argument("--model", default="minilm-l6-h384", choices=sorted(MODELS), help="(default: %(default)s)")
    command.add_argument("--space", default="small", choices=list(SEARCH_SPACES), help="(default: %(default)s)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``plm-nasbench``."""
    parser = argparse.ArgumentParser(
        allow_abbrev=False,
        prog="plm-nasbench",
        description="Benchmark for multi-objective NAS as structural pruning of fine-tuned language models.",
    )
    parser.add_argument("--version", action="version", version=f"plm_nasbench {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    info = commands.add_parser("info", allow_abbrev=False, help="list models, search spaces, tasks and the tables present")
    info.add_argument("--model", default="minilm-l6-h384", choices=sorted(MODELS),
                      help="model whose search spaces are described (default: %(default)s)")
    _add_folders(info, surrogates=False)
    info.set_defaults(handler=_info)
    for name, text in (("query", "objectives of one configuration"),
                       ("pareto", "the table's Pareto front (non-dominated configurations)")):
        cmd = commands.add_parser(name, help=text, description=text, allow_abbrev=False)
        cmd.add_argument("--task", required=True, choices=sorted(TASK_HEADS))
        _add_model_and_space(cmd)
        cmd.add_argument("--scheme", default="weight_sharing", choices=["weight_sharing", "standalone"],
                         help="(default: %(default)s)")
        _add_super_network(cmd)
        cmd.add_argument("--backend", default="auto",
                         choices=["auto", "table", "surrogate", "live"] if name == "query" else ["auto", "table"],
                         help="(default: %(default)s)" if name == "query" else "auto: the table's configurations, "
                         "with what their rows lack (e.g. latency) predicted by the surrogate, as query answers them; "
                         "table: measured values alone (default: %(default)s)")
        cmd.add_argument("--epoch", type=int, default=None,
                         help="the fidelity (epoch) to answer at (default: the last)")
        _add_folders(cmd)
        if name == "query":
            cmd.add_argument("--seed", type=int, default=None,
                             help="the seed whose row answers (default: the mean over the seeds the table holds)")
            cmd.add_argument("--data-dir", default=None, help="--backend live: the task data in the GLUE layout "
                                                              "(rte/train.tsv ...; default $PLM_NASBENCH_DATASETS)")
            cmd.add_argument("--device", default=None, help="--backend live: where to train and evaluate (cpu, cuda; "
                                                             "default cpu)")
            cmd.add_argument("config", help='the configuration as JSON, e.g. \'{"num_layers": 4, "num_heads": 6, '
                                            '"num_units": 768}\'')
            cmd.set_defaults(handler=_query, command_parser=cmd)
        else:
            cmd.add_argument("--objectives", default="valid_error,params_fraction",
                             help="comma-separated objectives (default: %(default)s)")
            cmd.add_argument("--full", action="store_true", help=f"print configurations longer than {CONFIG_WIDTH} "
                                                                  "characters whole")
            cmd.set_defaults(handler=_pareto, command_parser=cmd)
    sim = commands.add_parser("simulate", allow_abbrev=False, help="compare optimizers in simulated time on the tables",
                              description="compare optimizers in simulated time on the tables")
    sim.add_argument("--task", required=True, choices=sorted(TASK_HEADS))
    sim.add_argument("--methods", default="rs,ls,morea,ehvi,moasha",
                     help="comma-separated: rs, ls, morea, nsga2, ehvi, moasha (default: %(default)s)")
    sim.add_argument("--seeds", type=int, default=10, help="runs per method, seeds 0..N-1 (default: %(default)s)")
    sim.add_argument("--evaluations", type=int, default=100,
                     help="trials per run; with --hours, the most a run may make (default: %(default)s)")
    sim.add_argument("--hours", type=float, default=None,
                     help="simulated time per run, a weight-sharing super-network's training included: every run "
                          "then has the same budget (default: none, runs end after --evaluations)")
    sim.add_argument("--objectives", default="valid_error,params_fraction",
                     help="the two objectives, comma-separated (default: %(default)s)")
    _add_model_and_space(sim)
    sim.add_argument("--scheme", default="auto", choices=["auto", "weight_sharing", "standalone"],
                     help="auto (default): moasha on the standalone tables (it needs epochs), the other methods on "
                          "weight sharing; otherwise every method on the named scheme")
    _add_super_network(sim)
    sim.add_argument("--backend", default="auto", choices=["auto", "table"],
                     help="auto (default): the tables, and the surrogate off them; table: real rows only, a proposed "
                          "configuration answered by the table's nearest one")
    _add_folders(sim)
    sim.add_argument("--out", default="results", help="folder for the plots and the per-run CSV "
                                                       "(default: %(default)s)")
    sim.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                     help="processes running (method, seed) pairs in parallel (default: all cores)")
    sim.set_defaults(handler=_simulate, command_parser=sim)
    return parser


def _backends(args: argparse.Namespace) -> Sequence[str] | None:
    """The ``--backend`` choices of the command ``args`` were parsed for (None: it has no ``--backend``, as
    ``info``)."""
    command = getattr(args, "command_parser", None)
    return None if command is None else next(
        (a.choices for a in command._actions if "--backend" in a.option_strings), None)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``plm-nasbench``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    for flag, read_by in (("--data", ("auto", "table")), ("--surrogates", ("auto", "surrogate")), ("--data-dir", ("live",)),
                          ("--device", ("live",))):
        backend, given = getattr(args, "backend", None), getattr(args, flag[2:].replace("-", "_"), None)
        if backend is not None and given is not None and backend not in read_by:  # an option that would do nothing
            read_by = [b for b in read_by if b in _backends(args)]  # as this command offers them
            args.command_parser.error(f"{flag} is read with --backend {' or '.join(read_by)} only, not with --backend {backend}")
    one_line_warnings()
    try:
        return args.handler(args)
    except BrokenPipeError:
        discard_stdout()
        return 1
    except (ValueError, KeyError, OSError) as err:  # OSError: missing files, an unreachable Hub (ConnectionError)
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"error: {for_the_shell(str(message), _backends(args))}", file=sys.stderr)
        return 2


#: The Python API's advice in errors, as the same advice is given with this command's options.
SHELL_WORDS = (("query with seed=None", "leave out --seed"),
               ("`Benchmark.available()` lists", "`plm-nasbench info` lists"),
               ("`nearest_config(config)` gives the table's nearest configuration",
                "Benchmark.nearest_config(config) in Python gives the table's nearest configuration"))


def for_the_shell(message: str, offered: Sequence[str] | None = None) -> str:
    """``message`` (an error of the Python API) with its advice in terms of ``plm-nasbench``'s options: of the
    command's own ``--backend`` choices ``offered`` (default: all), others named with the command that has them."""
    for python, shell in SHELL_WORDS:
        message = message.replace(python, shell)
    message = re.sub(r"max_time (?=[\d.]+ s\b)", "the --hours budget of ", message)  # "max_time 1080.0 s ..."

    def option(backend: str) -> str:
        return f"--backend {backend}" if offered is None or backend in offered else f"`plm-nasbench query --backend {backend}`"

    def options(match: re.Match) -> str:  # "backend='table' or 'live'": each named as an option
        return " or ".join(option(b) for b in re.findall(r"'(\w+)'", match.group(0)))

    return re.sub(r"backend='\w+'(?: or '\w+')*(?![),])", options, message)  # advice, not a Benchmark(...) repr


if __name__ == "__main__":
    sys.exit(main())
