"""Declarative plans (TOML) and the deterministic work units they expand to.

A plan names the model, the dtype, data caps, training settings and a list of studies; a study is
a scheme (weight_sharing, standalone or latency) over tasks x strategies x seeds and a configuration
selection, cut into units of ``chunk`` configurations. Every name is checked before any work starts.
Unit ids are hashes of what a unit computes, so the same plan always yields the same units.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plm_nasbench.architecture import MODELS, get_architecture
from plm_nasbench.spaces import SEARCH_SPACES, get_search_space
from plm_nasbench.tasks.specs import TASKS

from .checks import check_number, fail
from .configs import check_selection, select_configs

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

STUDY_SCHEMES = ("weight_sharing", "standalone", "latency")
STRATEGY_NAMES = ("standard", "random", "random-linear", "sandwich", "kd", "full")
DTYPES = ("float32", "bfloat16")
_PLAN_KEYS = {"name", "model", "dtype", "max_length", "data_seed", "latency_batch_sizes", "latency_repeats",
              "latency_hardware", "latency_tolerance", "caps", "training", "strategy", "study", "eval_batch_size"}
_STUDY_KEYS = {"name", "scheme", "tasks", "space", "strategies", "seeds", "configs", "chunk", "dtype", "epochs",
               "supernetwork_space"}
_CAP_KEYS = {"max_train", "max_valid", "max_test"}
_TRAINING_KEYS = {"epochs", "batch_size", "learning_rate", "weight_decay", "max_steps_per_epoch"}
_STRATEGY_KEYS = {"num_random", "temperature", "space"}
#: The defaults of [training] and [strategy] (those of plm_nasbench.training's TrainingSettings and
#: StrategySettings; a test checks that they agree). A unit id hashes the paper's settings (Table A) always and
#: the others only where they differ from these, so that writing a default out or leaving it out gives one id
#: (edition 1 named the Table A settings and every [strategy] one, so its ids are what this gives).
TRAINING_DEFAULTS = {"epochs": 5, "batch_size": 4, "learning_rate": 2e-5, "weight_decay": 0.0,
                     "max_steps_per_epoch": None}
STRATEGY_DEFAULTS = {"num_random": 2, "temperature": 10.0, "space": "small"}
EVAL_BATCH_SIZE = 16
DATA_SEED = 128  # the default data_seed: it shuffles and subsamples the task data
_ALWAYS_HASHED = ("epochs", "batch_size", "learning_rate", "num_random", "temperature", "space")


def _trained(plan: Plan, scheme: str, epochs: int) -> dict[str, Any]:
    """What a unit id hashes of the training: the unit's epochs (they win over [training]'s, as the units run
    them), the hashed [training] and the data seed. A latency unit trains nothing, so it hashes the defaults
    whatever the plan's: a plan that trains otherwise keeps its latency tables (edition 1's latency ids hashed
    its [training] and data seed, which are the defaults, so they are what this gives)."""
    if scheme == "latency":
        return {"epochs": TRAINING_DEFAULTS["epochs"], "data_seed": DATA_SEED,
                "training": _hashed({}, TRAINING_DEFAULTS)}
    return {"epochs": epochs, "data_seed": plan.data_seed,
            "training": _hashed({**plan.training, "epochs": epochs}, TRAINING_DEFAULTS)}


def _hashed(settings: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """What a unit id hashes of ``settings``: see :data:`TRAINING_DEFAULTS`."""
    merged = {**defaults, **settings}
    return {k: v for k, v in merged.items() if k in _ALWAYS_HASHED or v != defaults.get(k)}
#: Numeric settings: (integer only, smallest allowed value, whether that value itself is allowed).
_NUMBERS = {"max_length": (True, 1, True), "data_seed": (True, 0, True), "latency_repeats": (True, 1, True),
            "eval_batch_size": (True, 1, True), "epochs": (True, 1, True), "batch_size": (True, 1, True),
            "max_steps_per_epoch": (True, 1, True), "num_random": (True, 0, True),
            "learning_rate": (False, 0, False), "weight_decay": (False, 0, True), "temperature": (False, 0, False)}


@dataclass(frozen=True)
class WorkUnit:
    """One deterministic piece of work: a scheme on one task (or none, for latency) for a list of configs."""

    unit_id: str
    study: str
    scheme: str
    task: str | None
    space: str
    strategy: str | None
    seed: int
    configs: tuple[str, ...]  # configurations as compact JSON, in order
    dtype: str
    epochs: int
    supernetwork_space: str | None = None  # weight sharing: the space whose sampler trains the super-network

    def config_dicts(self) -> list[dict[str, Any]]:
        """The unit's configurations as dicts."""
        return [json.loads(c) for c in self.configs]

    def describe(self) -> str:
        """A one-line human description."""
        what = f"{self.scheme} {self.task or '-'} {self.space}"
        if self.strategy:
            what += f" {self.strategy}"
        if self.supernetwork_space and self.supernetwork_space != self.space:
            what += f" (super-network trained on {self.supernetwork_space})"
        trained = f", {self.epochs} epochs" if self.scheme != "latency" else ""
        return f"{self.unit_id} [{self.study}] {what} seed {self.seed}{trained}: {len(self.configs)} config(s)"


@dataclass
class Plan:
    """A parsed, validated plan."""

    name: str
    model: str
    dtype: str
    max_length: int
    data_seed: int
    latency_batch_sizes: tuple[int, ...]
    latency_repeats: int
    eval_batch_size: int
    caps: dict[str, dict[str, int]]
    training: dict[str, Any]
    strategy: dict[str, Any]
    studies: list[dict[str, Any]]
    source: str = ""
    latency_hardware: str | None = None  # latency units run only on this CPU/GPU model (see units.hardware)
    latency_tolerance: float = 0.25  # and only where the reference network's latency is this close to the tables'
    units: list[WorkUnit] = field(default_factory=list)

    def caps_for(self, task: str) -> dict[str, int | None]:
        """The data caps of ``task``: its own entry over the ``default`` entry; missing caps are None."""
        merged = {**self.caps.get("default", {}), **self.caps.get(task, {})}
        return {k: merged.get(k) for k in sorted(_CAP_KEYS)}


def _check_keys(table: dict, allowed: set[str], where: str) -> None:
    extra = set(table) - allowed
    if extra:
        fail(where, f"unknown key(s) {sorted(extra)}; allowed: {', '.join(sorted(allowed))}")


def _check_numbers(table: dict, where: str) -> None:
    """Every numeric setting of ``table`` (see ``_NUMBERS``) has the right type and range."""
    for key in sorted(_NUMBERS.keys() & table.keys()):
        integer, smallest, inclusive = _NUMBERS[key]
        check_number(table[key], key, where, integer, smallest, inclusive)


def _as_floats(table: dict) -> dict:
    """``table`` with its float-only settings as floats, so that ``weight_decay = 0`` and ``0.0`` give one unit id."""
    return {k: float(v) if k in _NUMBERS and not _NUMBERS[k][0] else v for k, v in table.items()}


def _table(value: Any, where: str, example: str) -> dict:
    """``value`` if it is a TOML table, else a ValueError naming ``where``."""
    if not isinstance(value, dict):
        fail(where, f"must be a table such as {example}, got {value!r}")
    return value


def _names(value: Any, known: tuple[str, ...] | list[str], what: str, where: str) -> list[str]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not values:
        fail(where, f"{what} must be a name or a non-empty list of names")
    one = what[:-3] + "y" if what.endswith("ies") else what[:-1] if what.endswith("s") else what
    for v in values:
        if v not in known:
            fail(where, f"unknown {one} {v!r}; known: {', '.join(known)}")
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        fail(where, f"{what} names {', '.join(map(repr, repeated))} more than once")
    return list(values)


def _name(value: Any, known: tuple[str, ...] | list[str], what: str, where: str) -> str:
    """``value`` if it is one of the ``known`` names (a setting that takes one name, not a list)."""
    if not isinstance(value, str):
        fail(where, f"{what} must be one name (a string), one of {', '.join(known)}; got {value!r}")
    return _names(value, known, what, where)[0]


#: What a plan's or study's name may hold: it becomes a folder of the work and data folders.
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _folder_name(value: Any, what: str, where: str) -> str:
    """``value`` if it can name a folder: letters, digits, '.', '_' and '-', not starting with '.', '_' or '-'."""
    if not isinstance(value, str) or not SAFE_NAME.fullmatch(value):
        fail(where, f"{what} must be a name of letters, digits, '.', '_' and '-' that starts with a letter or digit "
                    f"(it names a folder), got {value!r}")
    return value


def unit_id(payload: dict[str, Any]) -> str:
    """A short stable id of what a unit computes."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def load_plan(path: str | Path) -> Plan:
    """Parse and validate the plan at ``path`` and expand it into work units (no work is done)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"plan file {path} does not exist")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path} is not valid TOML: {err}") from err
    return parse_plan(raw, str(path))


def parse_plan(raw: dict[str, Any], source: str = "<plan>") -> Plan:
    """Validate a plan given as a dict (the parsed TOML) and expand it into work units."""
    _check_keys(raw, _PLAN_KEYS, source)
    _folder_name(raw.get("name"), "the plan's 'name'", source)
    _name(raw.get("model"), list(MODELS), "model", source)
    dtype = _name(raw.get("dtype", "float32"), DTYPES, "dtype", source)
    caps = _table(raw.get("caps", {}), f"{source} [caps]", "[caps.default] max_train = 1000")
    for task, entry in caps.items():
        if task in _CAP_KEYS:  # written flat, as ``[caps] max_train = 1000``
            fail(f"{source} [caps]", f"{task} = {entry!r} names no task: caps are per task; write it under "
                                     f"[caps.default] (every task) or [caps.<task>] (one task, over the default)")
        if task != "default":
            _name(task, ["default", *TASKS], "caps task", f"{source} [caps]")
        _table(entry, f"{source} [caps.{task}]", "{max_train = 1000}")
        _check_keys(entry, _CAP_KEYS, f"{source} [caps.{task}]")
        for key, value in entry.items():
            check_number(value, key, f"{source} [caps.{task}]", smallest=1)
    _check_numbers(raw, source)
    longest = get_architecture(raw["model"]).max_sequence_length
    if raw.get("max_length", 128) > longest:
        fail(source, f"max_length must be at most {longest} (the positions {raw['model']} has), "
                      f"got {raw['max_length']}")
    training = _table(raw.get("training", {}), f"{source} [training]", "[training] epochs = 5")
    _check_keys(training, _TRAINING_KEYS, f"{source} [training]")
    _check_numbers(training, f"{source} [training]")
    strategy = _table(raw.get("strategy", {}), f"{source} [strategy]", "[strategy] num_random = 2")
    _check_keys(strategy, _STRATEGY_KEYS, f"{source} [strategy]")
    _check_numbers(strategy, f"{source} [strategy]")
    training, strategy = _as_floats(training), _as_floats(strategy)
    _name(strategy.get("space", "small"), list(SEARCH_SPACES), "strategy space", f"{source} [strategy]")
    batch_sizes = raw.get("latency_batch_sizes", [1, 32])
    if (not isinstance(batch_sizes, list) or not batch_sizes or len(set(map(repr, batch_sizes))) < len(batch_sizes)
            or not all(type(b) is int and b in (1, 32) for b in batch_sizes)):
        fail(source, "latency_batch_sizes must be a non-empty list of distinct batch sizes drawn from [1, 32] (the "
                      f"schema's columns), got {batch_sizes!r}")
    plan = Plan(raw["name"], raw["model"], dtype, int(raw.get("max_length", 128)), int(raw.get("data_seed", DATA_SEED)),
                tuple(batch_sizes), int(raw.get("latency_repeats", 10)), int(raw.get("eval_batch_size", EVAL_BATCH_SIZE)),
                caps, training, strategy, raw.get("study", []), source, raw.get("latency_hardware"),
                raw.get("latency_tolerance", 0.25))
    if plan.latency_hardware is not None and not isinstance(plan.latency_hardware, str):
        fail(source, f"latency_hardware must be a CPU (and GPU) model name, got {plan.latency_hardware!r}")
    tolerance = plan.latency_tolerance
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not 0 < tolerance <= 1:
        fail(source, f"latency_tolerance must be a number in (0, 1] (the allowed relative deviation of the "
                      f"reference network's latency), got {tolerance!r}")
    if not plan.studies:
        fail(source, "the plan has no [[study]] entries")
    seen = set()
    if not isinstance(plan.studies, list):
        fail(source, f"study must be a list of [[study]] tables, got {plan.studies!r}")
    for index, study in enumerate(plan.studies):
        _table(study, f"{source} study #{index + 1}", "[[study]] name = \"grid\" ...")
        where = f"{source} study #{index + 1} ({study.get('name', 'unnamed')})"
        _check_keys(study, _STUDY_KEYS, where)
        if _folder_name(study.get("name"), "the study's 'name'", where) in seen:
            fail(where, "every study needs a unique 'name'")
        seen.add(study["name"])
        plan.units.extend(_expand(plan, study, where))
    first: dict[str, WorkUnit] = {}
    for unit in plan.units:
        twin = first.setdefault(unit.unit_id, unit)
        if twin is not unit:  # the study's name is no part of what a unit computes, so its id cannot tell them apart
            fail(source, f"studies {twin.study} and {unit.study} compute the same unit ({unit.describe()}); a plan "
                         "evaluates each thing once: drop one of them, or change what it computes")
    return plan


def _expand(plan: Plan, study: dict[str, Any], where: str) -> list[WorkUnit]:
    scheme = _name(study.get("scheme"), STUDY_SCHEMES, "scheme", where)
    space_name = _name(study.get("space"), list(SEARCH_SPACES), "space", where)
    selection = study.get("configs")
    if not isinstance(selection, dict):
        fail(where, "'configs' must be a table such as {kind = \"sample\", n = 100, seed = 0}")
    check_selection(selection, where)
    chunk = study.get("chunk", 1 if scheme == "standalone" else 100)
    check_number(chunk, "chunk", where, smallest=1)
    dtype = _name(study.get("dtype", plan.dtype), DTYPES, "dtype", where)
    _check_numbers(study, where)
    epochs = study.get("epochs", plan.training.get("epochs", TRAINING_DEFAULTS["epochs"]))
    if scheme == "latency":
        for key in ("tasks", "strategies", "seeds", "supernetwork_space", "epochs"):
            if key in study:
                fail(where, f"latency studies time each configuration once, untrained and for no task: no '{key}'")
        tasks: list[str | None] = [None]
        strategies: list[str | None] = [None]
        seeds = [0]
    else:
        tasks = _names(study.get("tasks"), list(TASKS), "tasks", where)
        seeds = study.get("seeds", [0])
        if not isinstance(seeds, list) or not seeds:
            fail(where, f"seeds must be a non-empty list of non-negative integers, got {seeds!r}")
        for seed in seeds:
            check_number(seed, "every seed", where)
        if len(set(seeds)) < len(seeds):
            fail(where, f"seeds names {sorted({s for s in seeds if seeds.count(s) > 1})} more than once")
        if scheme == "weight_sharing":
            strategies = _names(study.get("strategies", ["full"]), STRATEGY_NAMES, "strategies", where)
        else:
            for key in ("strategies", "supernetwork_space"):
                if key in study:
                    fail(where, f"standalone studies have no super-network, so no '{key}'")
            strategies = [None]
    settings = None
    if scheme == "weight_sharing":  # the plan's [strategy], with the study's own super-network space if it names one
        settings = dict(plan.strategy)
        if "supernetwork_space" in study:
            settings["space"] = _name(study["supernetwork_space"], list(SEARCH_SPACES), "supernetwork_space", where)
    trained_on = settings.get("space", "small") if settings is not None else None
    arch_task = next((t for t in tasks if t is not None), "rte")
    space = get_search_space(space_name, get_architecture(plan.model, arch_task))
    try:
        selected = select_configs(space, selection)
    except ValueError as err:
        fail(where, str(err))
    configs = [json.dumps(c, separators=(",", ":")) for c in selected]
    units = []
    for task in tasks:
        for strategy in strategies:
            for seed in seeds:
                for start in range(0, len(configs), chunk):
                    part = tuple(configs[start:start + chunk])
                    payload = {"model": plan.model, "scheme": scheme, "task": task, "space": space_name,
                               "strategy": strategy, "seed": seed, "configs": part, "dtype": dtype,
                               "max_length": plan.max_length, "caps": plan.caps_for(task) if task else None,
                               **_trained(plan, scheme, epochs),
                               "strategy_settings": (None if settings is None
                                                     else _hashed(settings, STRATEGY_DEFAULTS)),
                               "latency": [list(plan.latency_batch_sizes), plan.latency_repeats]
                               if scheme == "latency" else None}
                    if scheme != "latency" and plan.eval_batch_size != EVAL_BATCH_SIZE:  # evaluation batches change
                        payload["eval_batch_size"] = plan.eval_batch_size              # the last bits of logits
                    units.append(WorkUnit(unit_id(payload), study["name"], scheme, task, space_name, strategy, seed,
                                          part, dtype, epochs, trained_on))
    return units
