"""Executors: run a plan's pending units locally (one after another) or as Ray tasks.

Both call :func:`generate.units.run_unit` on the same units, so a plan gives the same rows on
either (up to the timing columns). The local executor also runs a single unit by index, which is
what a SLURM array job does (``--unit-index $SLURM_ARRAY_TASK_ID``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from time import perf_counter, sleep
from typing import Any

from plm_nasbench.evaluation.memory import peak_method
from plm_nasbench.provenance import environment, git_commit, now

from .plan import Plan, WorkUnit
from .store import ShardStore
from .units import MACHINE_CHECK, MachineSpeedError, hardware, run_unit

#: Seconds between two tries of a latency unit whose machine check failed (``run_local``'s ``machine_wait``).
MACHINE_RETRY_PAUSE = 60.0


def _meta(started: str, seconds: float, device: str) -> dict[str, Any]:
    return {"started": started, "finished": now(), "seconds": seconds, "hardware": hardware(device),
            "memory_peak": peak_method(device), "environment": environment(device)}


def execute_unit(plan: Plan, store: ShardStore, unit: WorkUnit, data_dir: str | None, device: str,
                 latency_reference: dict[tuple[str, str], dict[str, float]] | None = None) -> str:
    """Run ``unit`` unless it is done (or merged) or another process holds it; returns 'done', 'merged', 'ran' or
    'busy'. ``latency_reference``: see :func:`generate.units.latency_reference`."""
    with store.lock(unit) as held:
        if not held:
            return "busy"
        state = store.state(unit)
        if state in ("done", "merged"):
            store.drop_progress(unit)  # left if a run was killed between the unit's marker and its clean-up
            return state
        if state == "corrupt":
            print(f"redoing {unit.unit_id}: its shard does not match its checksum")
            store.discard(unit)
        started, start, resumed = now(), perf_counter(), store.saved_progress(unit)
        frame = run_unit(plan, unit, data_dir, device, latency_reference, store.resume_dir(unit))
        # seconds: this run's; an earlier, killed run's work that it continued is not counted
        meta = _meta(started, perf_counter() - start, device)
        if MACHINE_CHECK in frame.attrs:  # a latency unit's: provenance, not rows
            meta[MACHINE_CHECK] = frame.attrs.pop(MACHINE_CHECK)
        store.write(unit, frame, dict(meta, found_saved_progress=resumed))
        return "ran"


def _triage(store: ShardStore, units: Sequence[WorkUnit]) -> tuple[dict[str, int], dict[WorkUnit, str]]:
    """The counts to report (done and merged units) and the units still to run with their state (each unit's state
    is read once: it hashes the shard)."""
    states = {u: store.state(u) for u in units}
    counts = {"done": 0, "merged": 0, "ran": 0, "busy": 0}
    for state in states.values():
        if state in ("done", "merged"):
            counts[state] += 1
    return counts, {u: s for u, s in states.items() if s not in ("done", "merged")}


def run_local(plan: Plan, store: ShardStore, units: Sequence[WorkUnit], data_dir: str | None,
              device: str = "cpu", latency_reference: dict[tuple[str, str], dict[str, float]] | None = None,
              stop_after: float | None = None, machine_wait: float = 0.0) -> dict[str, int]:
    """Run ``units`` one after another in this process, with a progress bar (rate and ETA). With ``stop_after``
    (seconds), no unit starts once that much time has passed (the one in flight finishes); the units not
    started are counted under ``left``. A latency unit whose machine check fails (:class:`MachineSpeedError`: a
    shared host timing slower or faster for a while) is tried again every :data:`MACHINE_RETRY_PAUSE` seconds
    until ``machine_wait`` seconds have passed since its first failure; then that error ends the run."""
    from tqdm.auto import tqdm

    if stop_after is not None and not stop_after > 0:
        raise ValueError(f"stop_after must be a positive number of seconds, got {stop_after!r}")
    if not 0 <= machine_wait < float("inf"):
        raise ValueError(f"machine_wait must be a finite number of seconds >= 0, got {machine_wait!r}")
    counts, pending = _triage(store, units)
    counts["left"] = 0
    start = perf_counter()
    bar = tqdm(pending, desc=f"{plan.name} units", unit="unit")
    for i, unit in enumerate(bar):
        failed_at = None  # when this unit's machine check first failed
        while True:
            if stop_after is not None and perf_counter() - start >= stop_after:
                counts["left"] = len(pending) - i
                limit = f"{stop_after / 3600:.2f} h" if stop_after >= 3600 else f"{stop_after / 60:.1f} min"
                waiting = " (the first of them waiting for the machine's check to pass)" if failed_at else ""
                print(f"--stop-after {limit} reached: {counts['left']} unit(s) left for the next run{waiting}")
                return counts
            try:
                counts[execute_unit(plan, store, unit, data_dir, device, latency_reference)] += 1
                break
            except MachineSpeedError as err:
                now_ = perf_counter()
                failed_at = now_ if failed_at is None else failed_at
                waited = now_ - failed_at
                if waited >= machine_wait:
                    bar.write(f"units of this run: {counts}", file=sys.stderr)
                    raise
                pause = min(MACHINE_RETRY_PAUSE, machine_wait - waited)
                if stop_after is not None:  # the loop's first test then ends the run
                    pause = max(0.0, min(pause, stop_after - (now_ - start)))
                bar.write((f"{err}\n" if waited == 0 else f"the check failed again ({err.found}); ")
                          + f"trying again in {pause:.0f} s ({waited / 60:.1f} of {machine_wait / 60:.1f} min of "
                          "--machine-wait spent on this unit)", file=sys.stderr)
                sleep(pause)
    return counts


def supernetwork_key(unit: WorkUnit) -> tuple | None:
    """What identifies the super-network a weight-sharing unit trains or loads within one plan (None: the unit
    needs none)."""
    if unit.scheme != "weight_sharing":
        return None
    return unit.task, unit.strategy, unit.seed, unit.supernetwork_space, unit.dtype, unit.epochs


def _ray_unit(plan: Plan, store: ShardStore, unit: WorkUnit, data_dir: str | None, device: str,
              latency_reference: dict[tuple[str, str], dict[str, float]] | None) -> str:
    git_commit()  # a worker pins the commit of the code it loaded at its first unit, not at its last
    return execute_unit(plan, store, unit, data_dir, device, latency_reference)


def run_ray(plan: Plan, store: ShardStore, units: Sequence[WorkUnit],
            data_dir: str | None, *, address: str | None = None, num_cpus: float = 1, num_gpus: float = 0,
            init_kwargs: dict[str, Any] | None = None,
            latency_reference: dict[tuple[str, str], dict[str, float]] | None = None) -> dict[str, int]:
    """Run ``units`` as Ray tasks (``num_cpus``/``num_gpus`` each). Each task runs :func:`execute_unit` on its
    worker: it holds the unit's lock while it computes (so a Ray run, a local run and SLURM array tasks never
    work on one unit at once) and writes the shard. Of the weight-sharing units on one super-network, the first
    runs alone (it trains the super-network, or loads it from the cache) and the others start when it ends, so
    that no worker holds a GPU while it waits for that training. A unit that fails, or whose worker or node
    dies, is reported on stderr and counted under ``failed``; the others go on.

    Workers need the package, the data folder, the work folder (``--work-dir``) and the checkpoint cache
    (``$PLM_NASBENCH_CACHE``) on paths they can read and write: on a cluster, a shared file system.
    """
    import ray
    from tqdm.auto import tqdm

    counts, pending = _triage(store, units)
    counts["failed"] = 0
    if not pending:  # nothing to run: no Ray instance to start (or to connect to)
        return counts
    if not ray.is_initialized():
        ray.init(address=address, **(init_kwargs or {}))
    device = "cuda" if num_gpus > 0 else "cpu"
    remote = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus, max_retries=2)(_ray_unit)
    held_back: dict[tuple, list[WorkUnit]] = {}  # units waiting for the first unit of their super-network
    futures = {}
    for unit in pending:
        key = supernetwork_key(unit)
        if key is not None and key in held_back:
            held_back[key].append(unit)
            continue
        if key is not None:
            held_back[key] = []
        futures[remote.remote(plan, store, unit, data_dir, device, latency_reference)] = unit
    with tqdm(total=len(pending), desc=f"{plan.name} units (ray)", unit="unit") as bar:
        while futures:
            ready, _ = ray.wait(list(futures), num_returns=1)
            unit = futures.pop(ready[0])
            bar.update()
            try:
                state = ray.get(ready[0])
            except ray.exceptions.RayError as err:  # a failed unit, a crashed worker, a lost node: the others go on
                cause = err.cause if isinstance(getattr(err, "cause", None), BaseException) else err
                print(f"unit {unit.describe()} failed: {type(cause).__name__}: {cause}", file=sys.stderr)
                state = "failed"
            counts[state] += 1
            waiting = held_back.get(supernetwork_key(unit), [])
            # its super-network is trained (and cached): the rest go; else (failed, or another run holds the unit)
            # the next one tries, the others still wait
            for release in (list(waiting) if state in ("ran", "done", "merged") else waiting[:1]):
                waiting.remove(release)
                futures[remote.remote(plan, store, release, data_dir, device, latency_reference)] = release
    return counts
