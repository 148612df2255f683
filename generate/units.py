"""Running one work unit: its rows, in the table schema (latency units: the latency table schema)."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from plm_nasbench.atomic import write_atomic
from plm_nasbench.provenance import cpu_model, cpu_signature

from .plan import Plan, WorkUnit

_SMALL_FIELDS = ("num_layers", "num_heads", "num_units")
#: The file of a standalone unit's resume folder that records which hardware and data its progress is for.
RESUME_STAMP = "stamp.json"
#: The key of a latency unit's rows' ``attrs`` (and of its marker) that holds its machine check
#: (:func:`check_latency_machine`; None: no reference to check against, this unit's timings set it).
MACHINE_CHECK = "machine_check"
_CACHE: dict[tuple, Any] = {}  # the last task's data and super-network, reused by the next unit on the same ones


class MachineMismatchError(ValueError):
    """A latency unit asked to run on a machine whose timings would not compare with the plan's latency tables."""


class MachineSpeedError(MachineMismatchError):
    """The machine times the unpruned network off the tables' measurement of it now (a shared host's speed varies:
    a later try may pass); ``found`` says by how much, in a few words."""

    def __init__(self, message: str, found: str) -> None:
        super().__init__(message)
        self.found = found


class DeviceError(ValueError):
    """A device that torch cannot run the units on."""


def device_type(device: str) -> str:
    """``cpu`` or ``cuda`` (``cuda:1`` times like ``cuda``): what latency references are kept apart by."""
    return str(device).split(":")[0]


def hardware(device: str) -> str:
    """CPU model, plus the GPU model when running on CUDA."""
    if device.startswith("cuda"):
        import torch

        return f"{cpu_model()} + {torch.cuda.get_device_name(torch.device(device))}"
    return cpu_model()


def latency_machine(plan: Plan, device: str, what: str, remedy: str | None = None) -> str:
    """This machine's :func:`hardware` name, once checked against the plan's ``latency_hardware`` (none: any
    machine). Raises :class:`MachineMismatchError` saying that ``what`` (the latency units or tables about to be
    measured) must run there, and ``remedy`` (default: leave the latency studies out, or time latency in a plan
    of one's own): latency and memory follow the processor, so one edition's tables share one."""
    machine = hardware(device)
    if plan.latency_hardware and machine != plan.latency_hardware:
        remedy = remedy or ("leave them out with --study, or time latency in a plan of your own with "
                            f"latency_hardware = {machine!r}")
        raise MachineMismatchError(
            f"{what} must run on {plan.latency_hardware!r} (the plan's latency_hardware), so that the numbers "
            f"compare with the plan's other latency tables; this machine is {machine!r}: {remedy}")
    return machine


def check_device(device: str, dtypes: set[str]) -> None:
    """Raise a :class:`DeviceError` naming ``device`` unless torch can run units of ``dtypes`` on it: ``cpu``, or
    ``cuda``/``cuda:N`` where torch sees that GPU; for ``bfloat16``, the CPU or GPU must support it natively."""
    import torch

    from plm_nasbench.evaluation.predict import NO_BF16, native_bf16

    try:
        parsed = torch.device(device)
    except RuntimeError:
        parsed = None
    if parsed is None or parsed.type not in ("cpu", "cuda"):
        raise DeviceError(f"--device {device!r}: units run on 'cpu' or 'cuda' (optionally 'cuda:N')")
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"--device {device!r}: this torch ({torch.__version__}) sees no CUDA GPU; install a "
                              "CUDA build of torch on a GPU machine, or run on 'cpu'")
        if (parsed.index or 0) >= torch.cuda.device_count():
            raise DeviceError(f"--device {device!r}: torch sees {torch.cuda.device_count()} GPU(s), cuda:0 .. "
                              f"cuda:{torch.cuda.device_count() - 1}")
    if "bfloat16" in dtypes and not native_bf16(device):
        name = torch.cuda.get_device_name(parsed) if parsed.type == "cuda" else f"{cpu_model()}, {cpu_signature()}"
        raise DeviceError(f"--device {device!r} ({name}) {NO_BF16}; the plan is in bfloat16: run it on a device "
                          "with bf16 support, or use a plan in float32")


def _cached(key: tuple, build: Any) -> Any:
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = build()
    return _CACHE[key]


def _task_data(plan: Plan, task: str, data_dir: str | None) -> tuple[Any, Any]:
    from plm_nasbench.models import load_tokenizer
    from plm_nasbench.tasks import load_task
    from plm_nasbench.tasks.batching import encode_task

    data = load_task(task, data_dir, data_seed=plan.data_seed, allow_partial=True, **plan.caps_for(task))
    return data, encode_task(data, load_tokenizer(plan.model), plan.max_length)


def _settings(plan: Plan, unit: WorkUnit) -> Any:
    from plm_nasbench.training import TrainingSettings

    training = {k: v for k, v in plan.training.items() if k != "epochs"}  # the unit's epochs win
    return TrainingSettings(epochs=unit.epochs, seed=unit.seed, dtype=unit.dtype, eval_batch_size=plan.eval_batch_size,
                            **training)


def _common(plan: Plan, unit: WorkUnit, data: Any, device: str) -> dict[str, Any]:
    prov = data.provenance
    return {
        "model": plan.model, "task": unit.task, "search_space": unit.space, "scheme": unit.scheme,
        "strategy": unit.strategy or "none", "seed": unit.seed, "metric": data.spec.metric,
        "max_length": plan.max_length, **prov["caps"], **{f"rows_{k}": v for k, v in prov["rows"].items()},
        "data_seed": prov["data_seed"], "partial_data": prov["partial"], "dtype": unit.dtype, "device": device,
        "hardware": hardware(device), "unit_id": unit.unit_id,
    }


def _with_config(frame: pd.DataFrame, space: Any, configs: list[dict[str, Any]]) -> pd.DataFrame:
    frame["config"] = [json.dumps(c, separators=(",", ":")) for c in configs]
    for name in _SMALL_FIELDS:
        frame[name] = [c.get(name) for c in configs] if space.name == "small" else None
    return frame


def _supernetwork(plan: Plan, unit: WorkUnit, data_dir: str | None, device: str) -> tuple[Any, Any, Any, dict]:
    from plm_nasbench.training import StrategySettings, train_supernetwork

    data, encoded = _task_data(plan, unit.task, data_dir)
    strategy = StrategySettings(unit.strategy, **{k: v for k, v in plan.strategy.items() if k != "space"})
    model, provenance = train_supernetwork(plan.model, data, unit.supernetwork_space, strategy,
                                           _settings(plan, unit), max_length=plan.max_length, device=device,
                                           show_progress=True)
    return data, encoded, model, provenance


def run_weight_sharing(plan: Plan, unit: WorkUnit, data_dir: str | None, device: str) -> pd.DataFrame:
    """Evaluate the unit's configurations on the (cached or newly trained) super-network."""
    from plm_nasbench.evaluation.evaluator import evaluate_subnetworks
    from plm_nasbench.models import architecture_of
    from plm_nasbench.spaces import get_search_space

    key = ("supernetwork", unit.task, data_dir, unit.strategy, unit.supernetwork_space, unit.seed, unit.dtype,
           unit.epochs, device)
    data, encoded, model, provenance = _cached(key, lambda: _supernetwork(plan, unit, data_dir, device))
    strategy_space = provenance["description"]["search_space"]
    space = get_search_space(unit.space, architecture_of(model))
    configs = unit.config_dicts()
    result = evaluate_subnetworks(model, data.spec, encoded, space, configs, batch_size=plan.eval_batch_size,
                                  dtype=unit.dtype, show_progress=True)
    frame = result[["config_id", "valid_metric", "valid_error", "test_metric", "test_error", "num_params",
                    "params_fraction", "flops", "eval_time"]].copy()
    frame = _with_config(frame, space, configs)
    frame["epoch"], frame["train_time"], frame["cumulative_time"] = unit.epochs, 0.0, frame["eval_time"]
    frame["supernetwork_train_time"] = provenance["training_seconds"]
    frame["supernetwork_space"] = strategy_space
    frame["supernetwork_id"] = provenance["weights_sha256"][:16]
    for name, value in _common(plan, unit, data, device).items():
        frame[name] = value
    return frame


def run_standalone(plan: Plan, unit: WorkUnit, data_dir: str | None, device: str,
                   resume_dir: Path | None = None) -> pd.DataFrame:
    """Fine-tune each of the unit's configurations on its own; one row per epoch. With ``resume_dir``, each
    configuration's training state is kept there (saved after every epoch and every ``SAVE_EVERY`` seconds), and
    its curve once it is finished, so that a unit killed part-way continues from there when run again (on the
    same hardware and data: see :func:`_resume_here`)."""
    from plm_nasbench.evaluation.flops import mean_flops, sequence_lengths
    from plm_nasbench.spaces import get_search_space
    from plm_nasbench.training import finetune_standalone
    from plm_nasbench.training.finetune import SAVE_EVERY

    data, encoded = _cached(("data", unit.task, data_dir), lambda: _task_data(plan, unit.task, data_dir))
    space = get_search_space(unit.space, plan.model, task=unit.task)
    lengths = sequence_lengths(encoded.test)
    stamp = _common(plan, unit, data, device)
    if resume_dir is not None:
        _resume_here(resume_dir, stamp)
    parts = []
    for config in unit.config_dicts():
        config_id = space.config_id(config)
        finished = None if resume_dir is None else resume_dir / f"{config_id}.curve.json"
        if finished is not None and finished.is_file():
            curve = json.loads(finished.read_text())
        else:
            state = None if resume_dir is None else resume_dir / f"{config_id}.state.pt"
            curve = finetune_standalone(plan.model, data.spec, encoded, space, config, _settings(plan, unit),
                                        device=device, show_progress=True, resume_file=state, save_every=SAVE_EVERY)
            if finished is not None:
                write_atomic(finished, lambda p: p.write_text(json.dumps(curve)))
                state.unlink(missing_ok=True)
        heads, units = space.layer_sizes(config)
        part = pd.DataFrame(curve).drop(columns=["train_loss", "resumes"], errors="ignore")
        part = _with_config(part, space, [config] * len(part))
        part["config_id"] = config_id
        part["num_params"], part["params_fraction"] = space.num_parameters(config), space.params_fraction(config)
        part["flops"] = mean_flops(space.architecture, heads, units, lengths, len(encoded.test))
        part["supernetwork_train_time"], part["supernetwork_space"] = None, None
        parts.append(part)
    frame = pd.concat(parts, ignore_index=True)
    for name, value in stamp.items():
        frame[name] = value
    return frame


def _resume_here(resume_dir: Path, stamp: dict[str, Any]) -> None:
    """Prepare ``resume_dir`` for a run whose rows get the columns ``stamp``: what it holds from a run on another
    device or processor (cpu family, model and stepping), or on other data, is removed with a warning (its curves
    would carry this run's labels, and a training state saved on another kind of device cannot continue here)."""
    key = json.dumps({**stamp, "cpu_signature": cpu_signature()}, sort_keys=True, default=str)
    recorded = resume_dir / RESUME_STAMP
    if recorded.is_file() and recorded.read_text() != key:
        warnings.warn(f"{resume_dir} holds the progress of a run on other hardware or data ({recorded.read_text()}, "
                      f"this run: {key}); the unit starts over", stacklevel=3)
        shutil.rmtree(resume_dir)
    resume_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(recorded, lambda p: p.write_text(key))


def reference_config(plan: Plan) -> dict[str, Any]:
    """The network every latency unit measures first, to check that this machine times like the one that made the
    plan's latency tables: the unpruned model (the ``small`` space's largest configuration)."""
    from plm_nasbench.spaces import get_search_space

    return get_search_space("small", plan.model, task="rte").largest()


def latency_reference(plan: Plan, data_root: str | Path) -> dict[tuple[str, str], dict[str, float]]:
    """Per (device type, latency dtype), the committed latency medians (``latency_b{b}_median`` per batch size of
    the plan) of the reference network in the plan's latency tables under ``data_root`` (checksums verified):
    those its provenance says this plan (by name) made, so another plan's tables in the same folder (edition 1's,
    in the package's ``data/``) neither check nor refuse this one's machine. A pair without one is absent, so the
    first latency study of an edition on that device in that dtype sets the reference."""
    from plm_nasbench.spaces import get_search_space
    from plm_nasbench.tables import ChecksumError, Manifest

    manifest = Manifest.load(data_root)
    config_id = get_search_space("small", plan.model, task="rte").config_id(reference_config(plan))
    columns = [f"latency_b{b}_median" for b in plan.latency_batch_sizes]
    found: dict[tuple[str, str], dict[str, float]] = {}
    for relpath in manifest.find(model=plan.model, scheme="latency"):
        if manifest.tables[relpath].get("provenance", {}).get("plan") != plan.name:
            continue
        try:
            table = manifest.read(relpath)
        except (ChecksumError, FileNotFoundError) as err:  # restore it (git) to check this machine against it
            warnings.warn(f"{err}; it is no latency reference for this run", stacklevel=2)
            continue
        rows = table[(table["search_space"] == "small") & (table["config_id"] == config_id)].dropna(subset=columns)
        for _, row in rows.dropna(subset=["latency_device", "latency_dtype"]).iterrows():
            found.setdefault((device_type(row["latency_device"]), str(row["latency_dtype"])),
                             {c: float(row[c]) for c in columns})
    return found


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def latency_model(plan: Plan, device: str) -> Any:
    """The network whose sub-networks latency units time and measure (the plan's model with a 2-label head), on
    ``device``; loaded once per process and device."""
    from plm_nasbench.models import load_model

    return _cached(("latency-model", device), lambda: load_model(plan.model, "rte").to(device))


def check_latency_machine(plan: Plan, measured: dict[str, float], reference: dict[str, float],
                          unit: WorkUnit, when: str = "before") -> dict[str, Any]:
    """Raise unless each reference median ``measured`` here is within the plan's ``latency_tolerance`` of the
    committed ``reference`` (a CPU model name alone does not pin speed: virtual machines of one name differ):
    between 1 / (1 + tolerance) and 1 + tolerance times it. ``when``: "before" or "after" the unit's
    configurations were timed, for the message. Returns what the check found, for the unit's provenance: per
    median column the seconds here and in the tables and their ratio, the tolerance and the torch threads."""
    ratios = {c: measured[c] / reference[c] for c in reference}
    off = {c: r for c, r in ratios.items() if not 1 / (1 + plan.latency_tolerance) <= r <= 1 + plan.latency_tolerance}
    if off:
        details = ", ".join(f"{c} {measured[c] * 1e3:.1f} ms here against {reference[c] * 1e3:.1f} ms in the tables "
                            f"({ratios[c]:.2f}x)" for c in off)
        lost = "" if when == "before" else " (checked after its configurations were timed: their timings are dropped)"
        raise MachineSpeedError(
            f"latency unit {unit.unit_id} ({unit.study}){lost}: this machine does not time like the one that measured "
            f"the plan's latency tables: the unpruned network took {details}, beyond the plan's latency_tolerance of "
            f"{plan.latency_tolerance:.0%}. Its numbers would not compare with the committed ones; run latency units "
            f"on the tables' machine (a shared host's speed varies: `run --machine-wait MINUTES` tries again), or start "
            f"a new edition. This process runs {_threads()} torch threads, and the tables' rows record theirs "
            "(latency_threads): a different count alone changes timings (OMP_NUM_THREADS)",
            details)
    return {"tolerance": plan.latency_tolerance, "threads": _threads(),
            **{c: {"here_s": measured[c], "tables_s": reference[c], "ratio": ratios[c]} for c in reference}}


def run_latency(plan: Plan, unit: WorkUnit, device: str,
                reference: dict[tuple[str, str], dict[str, float]] | None = None) -> pd.DataFrame:
    """Latency and peak memory of each configuration at the plan's batch sizes (2-label classification head), after
    checking this machine against the reference medians of :func:`latency_reference` for this device type and the
    unit's dtype (none there: no check). Refused where the edition's latency tables were measured on another kind
    of device: CPU and GPU timings never share an edition's tables. What the check found is in the rows'
    ``attrs[MACHINE_CHECK]``, which the executor records in the unit's provenance: the check runs before the
    configurations and again after them (under ``after``), so that a machine that slowed down or sped up while
    they were timed (a shared host) leaves no row."""
    import torch

    from plm_nasbench.evaluation.latency import latency_columns
    from plm_nasbench.models import architecture_of, extract_subnetwork
    from plm_nasbench.spaces import get_search_space

    machine = latency_machine(plan, device, f"latency unit {unit.unit_id} ({unit.study})")
    model = latency_model(plan, device)
    measure = lambda sub: latency_columns(sub, plan.max_length, plan.latency_batch_sizes,  # noqa: E731
                                          plan.latency_repeats, unit.dtype)
    key = (device_type(device), unit.dtype)
    others = sorted({d for d, _ in (reference or {}) if d != key[0]})
    if others:
        raise MachineMismatchError(
            f"latency unit {unit.unit_id} ({unit.study}) runs on {key[0]}, but this edition's latency tables were "
            f"measured on {', '.join(others)}: timings of different devices do not compare (merge keeps one latency "
            f"per configuration); measure latency on {key[0]} in a plan (edition) of its own")
    checked, unpruned = None, None
    if not reference or key not in reference:
        warnings.warn(f"no latency of the unpruned network on {key[0]} in {key[1]} is in the plan's latency tables "
                      "yet, so this machine's speed is not checked: this study's timings become the reference",
                      stacklevel=2)
    else:
        unpruned = extract_subnetwork(model, get_search_space("small", architecture_of(model)),
                                      reference_config(plan), share_weights=True)
        checked = check_latency_machine(plan, measure(unpruned), reference[key], unit)
    space = get_search_space(unit.space, architecture_of(model))
    rows = []
    for config in unit.config_dicts():
        sub = extract_subnetwork(model, space, config, share_weights=True)
        row = {"search_space": unit.space, "config_id": space.config_id(config),
               "config": json.dumps(config, separators=(",", ":")), "latency_device": device,
               "latency_dtype": unit.dtype, "latency_threads": torch.get_num_threads(), "hardware": machine,
               "unit_id": unit.unit_id}
        row.update(measure(sub))
        rows.append(row)
    frame = pd.DataFrame(rows)
    if unpruned is not None:
        after = check_latency_machine(plan, measure(unpruned), reference[key], unit, when="after")
        checked["after"] = {c: v for c, v in after.items() if c not in ("tolerance", "threads")}
    frame.attrs[MACHINE_CHECK] = checked
    return frame


def run_unit(plan: Plan, unit: WorkUnit, data_dir: str | None = None, device: str = "cpu",
             latency_reference: dict[tuple[str, str], dict[str, float]] | None = None,
             resume_dir: Path | None = None) -> pd.DataFrame:
    """The rows of work unit ``unit``. Every unit first checks that ``device`` can run its dtype (a Ray worker's
    node can differ from the driver's), a latency unit also this machine against ``latency_reference``. A
    standalone unit keeps what it has done in ``resume_dir`` (see :func:`run_standalone`); a weight-sharing one
    resumes its super-network's training from the checkpoint cache."""
    check_device(device, {unit.dtype})
    if unit.scheme == "weight_sharing":
        return run_weight_sharing(plan, unit, data_dir, device)
    if unit.scheme == "standalone":
        return run_standalone(plan, unit, data_dir, device, resume_dir)
    return run_latency(plan, unit, device, latency_reference)
