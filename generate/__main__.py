"""``python -m generate plan|run|status|merge|verify|remeasure-memory PLAN.toml`` and ``python -m generate cache``
(the commands are listed in the package docstring, which ``--help`` prints)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from plm_nasbench.console import discard_stdout, one_line_warnings
from plm_nasbench.paths import PACKAGE_DATA, cache_dir
from plm_nasbench.paths import data_dir as default_data_dir
from plm_nasbench.provenance import git_commit

from . import __doc__ as PACKAGE_DOC
from .cache import cache_report
from .executors import execute_unit, run_local, run_ray
from .merge import merge, merged_units
from .plan import Plan, WorkUnit, load_plan
from .remeasure import remeasure_memory
from .store import ShardStore
from .units import DeviceError, MachineMismatchError, check_device, latency_machine, latency_reference
from .verify import record_supernetwork_id, reproduced, unrecorded, verify

WORK_ENV = "PLM_NASBENCH_WORK"


def _minutes(text: str) -> float:
    """``--machine-wait``: a finite number of minutes >= 0."""
    try:
        minutes = float(text)
    except ValueError:
        minutes = float("nan")
    if not 0 <= minutes < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number of minutes >= 0, got {text!r}")
    return minutes


def _positive_hours(text: str) -> float:
    """``--stop-after``: a positive number of hours."""
    try:
        hours = float(text)
    except ValueError:
        hours = float("nan")
    if not hours > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of hours, got {text!r}")
    return hours


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(allow_abbrev=False, prog="python -m generate", description=PACKAGE_DOC,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("plan", "list the plan's work units"), ("run", "run the pending units (resumes)"),
                       ("status", "count done, pending and corrupt units per study"),
                       ("merge", "merge finished shards into data/ tables and the manifest"),
                       ("verify", "compute committed rows again and compare (reproducibility check)"),
                       ("remeasure-memory", "measure the memory columns of the latency tables in data/ again with "
                                            "today's method (their latency is kept), then re-join them")):
        cmd = sub.add_parser(name, help=text, description=text, allow_abbrev=False)
        cmd.add_argument("plan", help="plan file (TOML)")
        if name not in ("plan", "verify"):
            cmd.add_argument("--work-dir", default=os.environ.get(WORK_ENV, "work"),
                             help=f"folder of shards, locks and the saved progress of units in flight (default "
                                  f"${WORK_ENV} or ./work)")
        cmd.add_argument("--study", action="append", help="only this study (repeatable)")
        if name != "remeasure-memory":  # latency tables have no task
            cmd.add_argument("--task", action="append", help="only this task (repeatable)")
            cmd.add_argument("--strategy", action="append",
                             help="only the weight-sharing units of this super-network strategy (repeatable), e.g. "
                                  "to split a strategy ablation over processes")
        if name in ("run", "verify"):
            cmd.add_argument("--data-dir", help="task data in the GLUE layout (default $PLM_NASBENCH_DATASETS, "
                                                "else the Hugging Face Hub)")
        if name in ("run", "verify", "remeasure-memory"):
            cmd.add_argument("--device", default="cpu", help="torch device (cpu, cuda)" + (
                "; with --executor ray each unit's follows --gpus-per-unit" if name == "run" else ""))
        if name == "run":
            cmd.add_argument("--executor", choices=["local", "ray"], default="local")
            cmd.add_argument("--unit-index", type=int,
                             help="run only the unit with this index among all the plan's units, as `plan` numbers "
                                  "them, in this process (a SLURM array task); not with --study, --task or Ray")
            cmd.add_argument("--ray-address", help="--executor ray: address of a running Ray cluster (default: "
                                                   "start one here)")
            cmd.add_argument("--stop-after", type=_positive_hours, metavar="HOURS",
                             help="local executor: start no unit after this many hours (the one in flight "
                                  "finishes), to end cleanly before a session or job time limit")
            cmd.add_argument("--machine-wait", type=_minutes, default=0.0, metavar="MINUTES",
                             help="local executor: where a latency unit's machine check fails (this machine times "
                                  "the unpruned network off the tables' measurement), try that unit again every "
                                  "minute until this many minutes have passed since its first failure, then stop "
                                  "(default 0: stop at once)")
            cmd.add_argument("--cpus-per-unit", type=float, default=None,
                             help="--executor ray: CPUs each unit's Ray task asks for (default 1)")
            cmd.add_argument("--gpus-per-unit", type=float, default=None,
                             help="--executor ray: GPUs each unit's Ray task asks for (default 0: it runs on the CPU)")
        if name == "verify":
            cmd.add_argument("--configs", type=int, default=5, help="configurations to compute again (default 5)")
            cmd.add_argument("--seed", type=int, default=0, help="seed of the draw of configurations")
            cmd.add_argument("--tolerance", type=float, default=0.0,
                             help="largest absolute difference accepted (default 0: bit for bit)")
            cmd.add_argument("--record-id", action="store_true",
                             help="for the selected weight-sharing units whose committed rows record no super-network "
                                  "id: compute --configs configurations of each again and, when every one is "
                                  "reproduced bit for bit on one super-network, write its id into those rows (with the "
                                  "evidence in the manifest)")
        if name != "plan":
            role = {"run": "units whose rows its tables hold count as done",
                    "status": "units whose rows its tables hold count as merged",
                    "merge": "where the tables are written", "verify": "the rows computed again",
                    "remeasure-memory": "whose latency tables are measured again"}[name]
            cmd.add_argument("--data", default=None, help="tables folder (default: $PLM_NASBENCH_DATA, else the "
                                                          f"package's data/): {role}")
        if name == "merge":
            cmd.add_argument("--partial", action="store_true", help="also write tables whose units are not all done")
    text = "list the super-networks cached on this machine and the table rows each made"
    cache = sub.add_parser("cache", help=text, description=text, allow_abbrev=False)
    cache.add_argument("--data", default=None, help="tables folder (default: $PLM_NASBENCH_DATA, else the package's "
                                                    "data/)")
    cache.add_argument("--cache-dir", default=None, help="cache folder (default $PLM_NASBENCH_CACHE or the user cache)")
    return parser


#: The package's own plans, the only ones whose tables ``merge`` writes into the package's ``data/``.
PLANS = Path(__file__).resolve().parent / "plans"


def _foreign_plan(plan: Plan, data_root: str | Path, command: str) -> str | None:
    """Why ``command``, which writes tables, must not write ``data_root`` for ``plan`` (None when it may): the
    package's ``data/`` takes the tables of the package's own plans only."""
    if Path(data_root).resolve() == PACKAGE_DATA.resolve() and Path(plan.source).resolve().parent != PLANS:
        return (f"{command} writes the package's data/ only for its own plans ({PLANS}); give the tables of "
                f"{plan.source} a folder of their own with --data DIR (or $PLM_NASBENCH_DATA)")
    return None


def _run(args: argparse.Namespace, plan: Plan, store: ShardStore, units: list[WorkUnit],
         data_root: str | Path) -> int:
    """``run``: one unit by index, or the selected units on the chosen executor. Latency units among them get the
    committed latency of the unpruned network to check this machine against."""
    if args.unit_index is not None:
        if args.study or args.task:
            print("error: --unit-index addresses the plan's units directly (see `plan`); leave --study/--task out",
                  file=sys.stderr)
            return 2
        if not 0 <= args.unit_index < len(plan.units):
            print(f"error: --unit-index must be in 0..{len(plan.units) - 1}", file=sys.stderr)
            return 2
        if args.executor == "ray":
            print("error: --unit-index runs one unit in this process (a SLURM array task); leave --executor ray out "
                  "and give --device", file=sys.stderr)
            return 2
        units = [plan.units[args.unit_index]]
    pending = [u for u in units if store.state(u) not in ("done", "merged")]
    problem = _unready(plan, pending, args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    for flag, given in (("--stop-after", args.stop_after is not None), ("--machine-wait", bool(args.machine_wait))):
        if given and (args.executor == "ray" or args.unit_index is not None):
            print(f"error: {flag} is for the local executor running several units", file=sys.stderr)
            return 2
    ray_only = [flag for flag, value in (("--ray-address", args.ray_address), ("--cpus-per-unit", args.cpus_per_unit),
                                         ("--gpus-per-unit", args.gpus_per_unit)) if value is not None]
    if ray_only and (args.executor != "ray" or args.unit_index is not None):
        print(f"error: {', '.join(ray_only)} {'is' if len(ray_only) == 1 else 'are'} read by --executor ray only; "
              "this run would ignore it (a unit run here uses --device)", file=sys.stderr)
        return 2
    args.cpus_per_unit = 1.0 if args.cpus_per_unit is None else args.cpus_per_unit
    args.gpus_per_unit = 0.0 if args.gpus_per_unit is None else args.gpus_per_unit
    if not (args.cpus_per_unit > 0 and args.gpus_per_unit >= 0):
        print(f"error: --cpus-per-unit must be above 0 and --gpus-per-unit at least 0, got {args.cpus_per_unit} "
              f"and {args.gpus_per_unit}", file=sys.stderr)
        return 2
    if args.executor == "ray" and args.device != "cpu":
        print("error: with --executor ray each unit's device follows --gpus-per-unit (0: cpu, more: cuda); "
              "leave --device out", file=sys.stderr)
        return 2
    timed = any(u.scheme == "latency" for u in pending)
    if args.executor == "ray" and 0 < args.gpus_per_unit < 1 and timed:
        print("error: latency units time a whole GPU: give them --gpus-per-unit 1 (or run them apart with "
              "--study), not a shared fraction", file=sys.stderr)
        return 2
    if args.executor == "local":
        check_device(args.device, {u.dtype for u in pending})
    reference = latency_reference(plan, data_root) if timed else None
    if args.unit_index is not None:
        print(execute_unit(plan, store, units[0], args.data_dir, args.device, reference))
    elif args.executor == "ray":
        counts = run_ray(plan, store, units, args.data_dir, address=args.ray_address, num_cpus=args.cpus_per_unit,
                         num_gpus=args.gpus_per_unit, latency_reference=reference)
        print(counts)
        return 1 if counts["failed"] else 0
    else:
        stop_after = None if args.stop_after is None else args.stop_after * 3600
        print(run_local(plan, store, units, args.data_dir, args.device, reference, stop_after,
                        machine_wait=args.machine_wait * 60))
    return 0


def _record_id(args: argparse.Namespace, plan: Plan, units: list[WorkUnit], data_root: str | Path) -> int:
    """``verify --record-id``: reproduce each selected unit whose rows record no super-network id, then record it."""
    if args.tolerance != 0:
        print("error: --record-id needs the rows reproduced bit for bit: leave --tolerance out", file=sys.stderr)
        return 2
    try:
        lacking = unrecorded(plan, units, data_root)
        if not lacking:
            print("every committed weight-sharing row of the selected units records its super-network id: "
                  "nothing to do")
            return 0
        check_device(args.device, {u.dtype for u in lacking})
        report = verify(plan, lacking, data_root, args.data_dir, args.configs, args.device, args.seed, per_unit=True)
    except ValueError as err:  # a damaged table (ChecksumError) too
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2))
    try:
        written = record_supernetwork_id(plan, lacking, data_root, report)
    except ValueError as err:  # NotRecorded, or a table damaged since it was verified (ChecksumError)
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(json.dumps({"rows given their super-network id": written}, indent=2))
    return 0


def _unready(plan: Plan, units: list[WorkUnit], args: argparse.Namespace) -> str | None:
    """Why ``units`` (those still to run) cannot start here, found before any work (None: they can): task data
    that is not there, or latency units on another machine than the plan's ``latency_hardware`` (the local
    executor; Ray's workers may run elsewhere)."""
    from plm_nasbench.tasks.loading import DATASETS_ENV, local_files
    from plm_nasbench.tasks.specs import TASKS

    folder = args.data_dir or os.environ.get(DATASETS_ENV)
    tasks = sorted({u.task for u in units if u.task is not None and u.scheme != "latency"})
    if folder is not None and tasks:
        if not Path(folder).is_dir():
            return f"the task data folder {folder} does not exist (--data-dir, else ${DATASETS_ENV})"
        lacking = [files for t in tasks for files in local_files(TASKS[t], Path(folder)).lacking]
        if lacking:
            return (f"the task data folder {folder} lacks {'; '.join(' or '.join(files) for files in lacking)} "
                    "(the GLUE layout is <task>/train.tsv, <task>/dev.tsv; a unit loads both splits, or a test "
                    "split alone where only part of it exists, e.g. swag/val_first91.csv)")
    elif tasks:
        print(f"note: no --data-dir (nor ${DATASETS_ENV}): the data of {', '.join(tasks)} is looked up on the "
              "Hugging Face Hub", file=sys.stderr)
    timed = sorted({u.study for u in units if u.scheme == "latency"})
    if timed and not plan.latency_hardware:
        print(f"note: the plan names no latency_hardware, so its latency studies ({', '.join(timed)}) run on any "
              "machine", file=sys.stderr)
    if timed and len(timed) < len({u.study for u in units}) and getattr(args, "executor", "local") == "ray":
        print("note: latency units run beside other units on the Ray nodes, which slows their timings; run the "
              f"latency studies ({', '.join(timed)}) apart with --study", file=sys.stderr)
    if timed and plan.latency_hardware and getattr(args, "executor", "local") == "local":
        try:
            latency_machine(plan, args.device, f"the latency studies {', '.join(timed)}")
        except MachineMismatchError as err:
            return str(err)
    return None


def merge_selection(units: list[WorkUnit], studies: list[str] | None,
                    tasks: list[str] | None) -> set[tuple[str, str | None]] | None:
    """The (study, task) tables ``merge`` writes for the units ``--study``/``--task`` selected (None: every one).
    A latency study counts only when ``--study`` names it: ``--task`` keeps latency units so that ``run`` times
    them, but a merge of one task must not re-join every table (what naming a latency study does)."""
    if not studies and not tasks:
        return None
    return {(u.study, u.task) for u in units if u.scheme != "latency" or u.study in (studies or ())}


def _merge_failed(report: dict) -> bool:
    """Whether a merge's report names something left undone that needs a person: corrupt shards, damaged, stale,
    held or mixed tables (the command then exits with status 1)."""
    return any(report[k] for k in ("corrupt", "damaged", "stale", "held", "mixed"))


#: What a Ctrl-C leaves behind, per command.
_INTERRUPTED = {
    "run": "finished units are kept; a unit in flight resumes from its last saved step (a standalone curve's or a "
           "super-network's training: an epoch's end, or about 30 minutes of training before) or, evaluating "
           "or timing sub-networks, from its start; `run` again resumes",
    "merge": "the tables written so far are in the manifest; the one in flight is completed, or left as it was, by "
             "the next `merge` (or `run`, `status`)",
    "verify": "nothing was written",
    "remeasure-memory": "the tables measured again so far are written; the next `remeasure-memory` measures the "
                        "one in flight again and re-joins the plan's tables",
}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    one_line_warnings()
    git_commit()  # pinned now, so that results name the code this process loaded even if the checkout moves on
    if args.command == "cache":
        frame = cache_report(args.data or default_data_dir(), args.cache_dir)
        print(frame.drop(columns="folder").to_string(index=False, na_rep="-") if len(frame)
              else f"no super-network is cached in {args.cache_dir or cache_dir()} (--cache-dir, $PLM_NASBENCH_CACHE)")
        return 0
    try:
        plan = load_plan(args.plan)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    args.task = getattr(args, "task", None)  # remeasure-memory takes none
    args.strategy = getattr(args, "strategy", None)
    for name in ("work_dir", "data_dir"):  # absolute: Ray's workers resolve a relative path in their own folder
        if getattr(args, name, None):
            setattr(args, name, os.path.abspath(getattr(args, name)))
    for flag, given, known in (("--study", args.study, {u.study for u in plan.units}),
                               ("--task", args.task, {u.task for u in plan.units if u.task}),
                               ("--strategy", args.strategy,
                                {u.strategy for u in plan.units if u.scheme == "weight_sharing"})):
        what = {"--study": "studies", "--task": "tasks", "--strategy": "weight-sharing strategies"}[flag]
        unknown = sorted(set(given or ()) - known)
        if unknown:
            print(f"error: {flag} {', '.join(unknown)}: not in plan {plan.name!r}, whose {what} are "
                  f"{', '.join(sorted(known)) or '(none)'}", file=sys.stderr)
            return 2
    units = [u for u in plan.units if (not args.study or u.study in args.study)
             and (not args.task or u.task in args.task or u.task is None)
             and (not args.strategy or (u.scheme == "weight_sharing" and u.strategy in args.strategy))]
    if not units:
        strategy = f" and strategy {', '.join(args.strategy)}" if args.strategy else ""
        print(f"error: the plan has no unit of study {', '.join(args.study or ['(any)'])} for task "
              f"{', '.join(args.task or ['(any)'])}{strategy}; "
              "`python -m generate plan PLAN` lists the units", file=sys.stderr)
        return 2
    data_root = getattr(args, "data", None) or default_data_dir()
    try:
        merged = merged_units(plan, data_root) if args.command != "plan" else {}
    except (ValueError, FileNotFoundError) as err:  # ChecksumError is a ValueError
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.command == "plan":
        for index, unit in enumerate(plan.units):
            if unit in units:
                print(f"{index:6d} {unit.describe()}")
        print(f"{len(units)} of {len(plan.units)} units")
        return 0
    store = ShardStore(plan, args.work_dir, merged) if args.command != "verify" else None
    if args.command == "status":
        print(store.status(units))
    elif args.command == "run":
        try:
            return _run(args, plan, store, units, data_root)
        except (DeviceError, MachineMismatchError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    elif args.command == "verify":
        problem = ((args.record_id and _foreign_plan(plan, data_root, "verify --record-id"))
                   or _unready(plan, units, args))
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return 2
        if args.record_id:
            return _record_id(args, plan, units, data_root)
        try:
            check_device(args.device, {u.dtype for u in units})
            report = verify(plan, units, data_root, args.data_dir, args.configs, args.device, args.seed)
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        print(json.dumps(report, indent=2))
        ok = reproduced(report, args.tolerance)
        print("reproduced" if ok else f"NOT reproduced (tolerance {args.tolerance})")
        return 0 if ok else 1
    else:
        if problem := _foreign_plan(plan, data_root, args.command):
            print(f"error: {problem}", file=sys.stderr)
            return 2
        if args.command == "remeasure-memory":
            timed = {u.study for u in plan.units if u.scheme == "latency"}
            others = sorted(set(args.study or ()) - timed)
            if others:
                print(f"error: remeasure-memory measures latency tables; --study takes the plan's latency studies "
                      f"({', '.join(sorted(timed)) or 'none'}), not {', '.join(others)}", file=sys.stderr)
                return 2
            try:
                report = remeasure_memory(plan, store, data_root, set(args.study or ()), args.device)
            except (DeviceError, MachineMismatchError) as err:
                print(f"error: {err}", file=sys.stderr)
                return 2
            print(json.dumps(report, indent=2))
            left = any(report[k] for k in ("changed", "damaged", "stale")) or _merge_failed(report["merge"])
            return 1 if left else 0
        report = merge(plan, store, data_root, args.partial, merge_selection(units, args.study, args.task))
        print(json.dumps(report, indent=2))
        return 1 if _merge_failed(report) else 0
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        command = next((a for a in sys.argv[1:] if a in _INTERRUPTED), None)
        print(f"\ninterrupted{': ' + _INTERRUPTED[command] if command else ''}", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:
        discard_stdout()
        sys.exit(1)
