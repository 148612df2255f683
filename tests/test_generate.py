"""The generation pipeline: plan validation, deterministic units, resumable local runs, merging, Ray."""

from __future__ import annotations

import copy
import json
import os
import platform
import shutil
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch

from generate.__main__ import main as generate_main
from generate.__main__ import merge_selection
from generate.cache import cache_report
from generate.configs import check_selection, select_configs
from generate.executors import execute_unit, run_local
from generate.merge import ID_EVIDENCE, merge, merged_units, mixed_supernetworks
from generate.plan import load_plan, parse_plan
from generate.report import constant_error
from generate.store import ShardStore
from generate.units import DeviceError, check_device, latency_reference, run_unit
from generate.verify import NotRecorded, compare, draw, record_supernetwork_id, reproduced, unrecorded, verify
from plm_nasbench.paths import PACKAGE_DATA
from plm_nasbench.spaces import get_search_space
from plm_nasbench.tasks import load_task
from plm_nasbench.tasks.metrics import constant_prediction_error
from plm_nasbench.tables import ChecksumError, Manifest

TIMING = ["eval_time", "train_time", "cumulative_time", "supernetwork_train_time", "unit_id", "latency_b1_median",
          "latency_b1_iqr", "memory_b1_peak_mb", "latency_threads"]


def smoke_plan() -> dict:
    """Two weight-sharing units, a standalone unit and a latency unit on tiny data, a few steps each."""
    return {
        "name": "smoke", "model": "minilm-l6-h384", "dtype": "float32", "max_length": 32,
        "latency_batch_sizes": [1], "latency_repeats": 1,
        "training": {"epochs": 2, "batch_size": 8, "max_steps_per_epoch": 1},
        "study": [
            {"name": "ws", "scheme": "weight_sharing", "tasks": ["rte"], "space": "small", "strategies": ["full"],
             "configs": {"kind": "sample", "n": 4, "seed": 0}, "chunk": 2},
            {"name": "sa", "scheme": "standalone", "tasks": ["rte"], "space": "small",
             "configs": {"kind": "sample", "n": 1, "seed": 1}, "epochs": 2},
            {"name": "lat", "scheme": "latency", "space": "small", "configs": {"kind": "sample", "n": 4, "seed": 0},
             "chunk": 4},
        ],
    }


def test_status_borrows_an_estimate_for_a_study_that_has_not_started(tmp_path):
    """A study none of whose units ran is costed per configuration like the finished units of its scheme and space
    (marked ~), and left unknown (?) where there are none."""
    spec = smoke_plan()
    ws = spec["study"][0]
    spec["study"] += [{"name": "lat2", "scheme": "latency", "space": "small",
                       "configs": {"kind": "sample", "n": 8, "seed": 5}, "chunk": 4},
                      dict(ws, name="ws-mrpc", tasks=["mrpc"]),  # 4 configurations, 2 a unit
                      dict(ws, name="ws2", configs={"kind": "sample", "n": 20, "seed": 9}, chunk=10)]
    plan = parse_plan(spec)
    took = {"lat": 360.0, "ws": 180.0, "ws-mrpc": 7200.0}  # seconds a unit: 90 s a configuration; rte's ws 90 s
    timed = {u.unit_id: took[u.study] for u in plan.units if u.study in took}
    lines = {line.split()[0]: line for line in ShardStore(plan, tmp_path, timed).status(plan.units).splitlines()}
    assert lines["lat"].split()[-2:] == ["0.10", "0.0"]
    assert lines["lat2"].split()[-1] == "0.2~"  # 8 configurations at 90 s
    assert lines["ws2"].split()[-1] == "0.5~"  # 20 at rte's 90 s, not at the median with mrpc's 3,600 s
    assert lines["sa"].split()[-1] == "?"
    assert lines["total"].endswith("+ the studies marked ? (~: estimated from other units like them)")


def test_unit_ids_hash_settings_not_how_they_are_written():
    """A default written out or left out is one setting; the defaults are the training code's own; a setting that
    changes results (the evaluation batch size) changes the ids."""
    import dataclasses

    from generate.plan import STRATEGY_DEFAULTS, TRAINING_DEFAULTS
    from plm_nasbench.training import StrategySettings, TrainingSettings

    fields = {f.name: f.default for f in dataclasses.fields(TrainingSettings)}
    assert TRAINING_DEFAULTS == {k: fields[k] for k in TRAINING_DEFAULTS}
    strategy = {f.name: f.default for f in dataclasses.fields(StrategySettings)}
    assert {k: v for k, v in STRATEGY_DEFAULTS.items() if k != "space"} == {k: strategy[k] for k in ("num_random",
                                                                                                     "temperature")}
    bare = dict(smoke_plan(), training={"max_steps_per_epoch": 1})
    spelled = copy.deepcopy(bare)
    spelled["training"] |= {"batch_size": 4, "learning_rate": 2e-5, "weight_decay": 0}
    spelled["strategy"] = {"num_random": 2, "temperature": 10, "space": "small"}
    ids = [u.unit_id for u in parse_plan(bare).units]
    assert [u.unit_id for u in parse_plan(spelled).units] == ids
    batches = [u.unit_id for u in parse_plan(dict(bare, eval_batch_size=64)).units]
    assert all(a != b for a, b in zip(batches[:-1], ids[:-1]))
    assert batches[-1] == ids[-1]  # not the latency unit's: it times its own batches
    overridden = copy.deepcopy(bare)  # [training] epochs that every study overrides: the same work, the same ids
    overridden["training"]["epochs"] = 9
    for study in overridden["study"]:
        if study["scheme"] != "latency":
            study.setdefault("epochs", TRAINING_DEFAULTS["epochs"])  # the epochs it had
    assert [u.unit_id for u in parse_plan(overridden).units][:-1] == ids[:-1]
    retrained = dict(bare, data_seed=7, training={"epochs": 2, "learning_rate": 1e-4})  # latency trains nothing
    retrained_ids = [u.unit_id for u in parse_plan(retrained).units]
    assert retrained_ids[-1] == ids[-1] and all(a != b for a, b in zip(retrained_ids[:-1], ids[:-1]))
    edition = load_plan(Path(__file__).resolve().parents[1] / "generate" / "plans" / "edition1.toml")
    timed = {u.unit_id for u in edition.units if u.scheme == "latency"}
    manifest = Manifest.load(PACKAGE_DATA)
    committed = {u for relpath in manifest.find(scheme="latency") for u in manifest.read(relpath)["unit_id"]}
    assert committed and committed <= timed  # edition 1's latency tables keep their units


def test_grid_and_selections():
    space = get_search_space("small", "minilm-l6-h384", task="rte")
    grid = select_configs(space, {"kind": "grid", "steps": {"num_units": 64}})
    assert len(grid) == 7 * 13 * 25 == 2275
    assert len({space.config_id(c) for c in grid}) == 2275
    assert [c["num_layers"] for c in grid[:7]] == list(range(7))  # depths of one width are adjacent
    between = select_configs(space, {"kind": "grid", "steps": {"num_units": 64}, "offsets": {"num_units": 32}})
    assert len(between) == 7 * 13 * 24 and {c["num_units"] for c in between} == set(range(32, 1537, 64))
    assert sorted(map(space.config_id, grid + between)) == sorted(
        map(space.config_id, select_configs(space, {"kind": "grid", "steps": {"num_units": 32}})))
    with pytest.raises(ValueError, match="configs.offsets.num_units must be an integer from 0 to 63 .* got 64"):
        select_configs(space, {"kind": "grid", "steps": {"num_units": 64}, "offsets": {"num_units": 64}})
    with pytest.raises(ValueError, match=r"configs.offsets names unknown field\(s\) \['units'\]"):
        select_configs(space, {"kind": "grid", "offsets": {"units": 1}})
    layer = get_search_space("layer", "minilm-l6-h384", task="rte")
    assert len(select_configs(layer, {"kind": "all"})) == 64
    sample = select_configs(space, {"kind": "sample", "n": 50, "seed": 3})
    assert sample == select_configs(space, {"kind": "sample", "n": 50, "seed": 3}) and len(sample) == 50
    assert sample == select_configs(space, {"kind": "sample", "n": 50, "seed": 3, "distinct": "configs"})
    empty = [c for c in sample if space.network_id(c) == space.network_id(space.smallest())]
    assert len(empty) > 1  # the sampler draws the network without layers again and again
    networks = select_configs(space, {"kind": "sample", "n": 50, "seed": 3, "distinct": "networks"})
    assert len({space.network_id(c) for c in networks}) == 50
    assert networks[:sample.index(empty[1])] == sample[:sample.index(empty[1])]  # the same draws until a repeat
    assert len({space.network_id({"num_layers": n, "num_heads": h, "num_units": u})
                for n, h, u in ((0, 5, 7), (3, 0, 0), (0, 0, 0))}) == 1
    assert space.network_id({"num_layers": 1, "num_heads": 0, "num_units": 5}) != space.network_id(
        {"num_layers": 2, "num_heads": 0, "num_units": 5})
    with pytest.raises(ValueError, match="configs.distinct is 'nets'; allowed: configs, networks"):
        check_selection({"kind": "sample", "n": 5, "seed": 0, "distinct": "nets"}, "plan.toml [[study]] #1")


def test_plan_units_are_deterministic_and_bad_plans_fail_early():
    first, second = parse_plan(smoke_plan()), parse_plan(smoke_plan())
    assert [u.unit_id for u in first.units] == [u.unit_id for u in second.units]
    assert [u.scheme for u in first.units] == ["weight_sharing", "weight_sharing", "standalone", "latency"]
    assert [u.supernetwork_space for u in first.units] == ["small", "small", None, None]
    own = copy.deepcopy(smoke_plan())
    own["study"][0]["supernetwork_space"] = "layer"  # another super-network: other units
    units = parse_plan(own).units
    assert units[0].supernetwork_space == "layer" and units[0].unit_id != first.units[0].unit_id
    assert units[2].unit_id == first.units[2].unit_id
    decays = []
    for decay in (0, 0.0):  # one setting, one unit id, however TOML typed it
        raw = copy.deepcopy(smoke_plan())
        raw["training"]["weight_decay"] = decay
        decays.append([u.unit_id for u in parse_plan(raw).units])
    assert decays[0] == decays[1]
    for path, value, message in [(("study", 0, "tasks"), ["rte", "nosuch"], "unknown task 'nosuch'"),
                                 (("study", 0, "space"), "huge", "unknown space 'huge'"),
                                 (("study", 0, "strategies"), ["best"], "unknown strategy 'best'; known: standard"),
                                 (("study", 0, "epochs"), "1", r"study #1 .*epochs must be an integer >= 1, got '1'"),
                                 (("study", 2, "epochs"), 2, r"latency studies .* no 'epochs'"),
                                 (("training",), {"batch_size": 0}, r"\[training\]: batch_size must be an integer >= 1"),
                                 (("training",), {"learning_rate": "2e-5"}, "learning_rate must be a finite number > 0, got '2e-5'"),
                                 (("training",), {"learning_rate": float("inf")}, "learning_rate must be a finite number > 0, got inf"),
                                 (("training",), 3, r"\[training\]: must be a table such as \[training\] epochs = 5, got 3"),
                                 (("study",), [3], "study #1: must be a table"),
                                 (("study",), {"name": "x"}, "study must be a list of \\[\\[study\\]\\] tables"),
                                 (("study", 0, "chunk"), True, "chunk must be an integer >= 1, got True"),
                                 (("study", 0, "seeds"), [0, True], "every seed must be an integer >= 0, got True"),
                                 (("caps",), {"default": {"max_train": True}}, "max_train must be an integer >= 1, got True"),
                                 (("caps",), {"rte": 3}, r"\[caps.rte\]: must be a table"),
                                 (("caps",), {"max_train": 50}, r"max_train = 50 names no task: .*\[caps.default\]"),
                                 (("study", 0, "configs"), {"kind": "sample", "n": True, "seed": 0},
                                  "configs.n must be an integer >= 1, got True"),
                                 (("latency_batch_sizes",), [True], "latency_batch_sizes must be a non-empty list of distinct"),
                                 (("latency_batch_sizes",), [1.0], "latency_batch_sizes must be"),
                                 (("latency_batch_sizes",), [], "latency_batch_sizes must be"),
                                 (("latency_batch_sizes",), [1, 1], "latency_batch_sizes must be"),
                                 (("training",), {"weight_decay": -0.1}, "weight_decay must be a finite number >= 0"),
                                 (("strategy",), {"temperature": 0}, r"\[strategy\]: temperature must be a finite number > 0"),
                                 (("max_length",), -3, "max_length must be an integer >= 1, got -3"),
                                 (("max_length",), 600, "max_length must be at most 512 .*minilm-l6-h384.*got 600"),
                                 (("eval_batch_size",), True, "eval_batch_size must be an integer >= 1, got True"),
                                 (("latency_repeats",), 0, "latency_repeats must be an integer >= 1, got 0"),
                                 (("study", 1, "configs"), {"kind": "sample", "n": 10 ** 6, "seed": 0},
                                  r"study #2 .*configs.n = 1000000 is more than the 'small' space's 139,867"),
                                 (("study", 0, "configs"), {"kind": "all", "n": 3}, "unknown key"),
                                 (("caps",), {"rte": {"max_rows": 3}}, "unknown key"),
                                 (("study", 0, "supernetwork_space"), "huge", "unknown supernetwork_space 'huge'"),
                                 (("study", 0, "tasks"), ["rte", "rte"], "tasks names 'rte' more than once"),
                                 (("study", 1), dict(smoke_plan()["study"][0], name="twin"),
                                  "studies ws and twin compute the same unit"),
                                 (("study", 1, "supernetwork_space"), "small", "standalone studies have no super"),
                                 (("model",), "gpt", "unknown model 'gpt'"),
                                 # a setting of one name takes no list (one such ran a standalone study as latency)
                                 (("study", 1, "scheme"), ["standalone"], r"scheme must be one name \(a string\)"),
                                 (("study", 0, "space"), ["small", "layer"], "space must be one name"),
                                 (("dtype",), ["bfloat16"], "dtype must be one name"),
                                 (("study", 0, "supernetwork_space"), ["small"], "supernetwork_space must be one name"),
                                 # names become folders of the work and data folders
                                 (("name",), "../escaped", "the plan's 'name' must be a name of letters"),
                                 (("study", 0, "name"), "a/b", "the study's 'name' must be a name of letters"),
                                 (("study", 0, "name"), "", "the study's 'name' must be"),
                                 (("study", 0, "configs"), {"kind": "grid", "steps": 64},
                                  r"configs.steps must be a table of fields, e.g. \{num_units = 64\}, got 64"),
                                 (("study", 0, "configs"), {"kind": "grid", "steps": {"num_units": True}},
                                  "configs.steps.num_units must be a positive integer, got True")]:
        raw = copy.deepcopy(smoke_plan())
        target = raw
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        with pytest.raises(ValueError, match=message):
            parse_plan(raw)


@pytest.mark.integration
def test_a_killed_standalone_unit_resumes_to_the_same_rows(glue, tmp_path, monkeypatch):
    """A unit of two curves killed in the second one's second epoch keeps the first curve and the second one's
    state after its first epoch; run again, it trains only what is left and gives the rows of an unkilled run."""
    import importlib

    finetune_module = importlib.import_module("plm_nasbench.training.finetune")  # the module, not the function

    monkeypatch.setenv("PLM_NASBENCH_CACHE", str(tmp_path / "cache"))
    raw = smoke_plan()
    raw["study"] = [dict(raw["study"][1], configs={"kind": "sample", "n": 2, "seed": 1}, chunk=2)]
    plan = parse_plan(raw)
    (unit,) = plan.units
    straight = ShardStore(plan, tmp_path / "straight")
    execute_unit(plan, straight, unit, str(glue), "cpu")
    expected = straight.read(unit)[0]

    calls, step = {"n": 0}, finetune_module.strategy_step

    def counted_step(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == kill_at:
            raise RuntimeError("killed")
        return step(*args, **kwargs)

    monkeypatch.setattr(finetune_module, "strategy_step", counted_step)
    for name, elsewhere in (("work", False), ("moved", True)):
        store, kill_at = ShardStore(plan, tmp_path / name), 4  # one step an epoch, two epochs a curve
        calls["n"] = 0
        with pytest.raises(RuntimeError, match="killed"):
            execute_unit(plan, store, unit, str(glue), "cpu")
        kept = sorted(p.name for p in store.resume_dir(unit).iterdir())
        assert [n.split(".", 1)[1] for n in kept] == ["curve.json", "state.pt", "json"] and store.saved_progress(unit)
        calls["n"], kill_at = 0, None
        if elsewhere:  # the progress of a run on another processor: not continued, the unit starts over
            stamp = store.resume_dir(unit) / "stamp.json"
            stamp.write_text(stamp.read_text().replace('"cpu_signature": "', '"cpu_signature": "another '))
            with pytest.warns(UserWarning, match="progress of a run on other hardware or data"):
                assert execute_unit(plan, store, unit, str(glue), "cpu") == "ran"
        else:
            assert execute_unit(plan, store, unit, str(glue), "cpu") == "ran"
        assert calls["n"] == (4 if elsewhere else 1)  # else the second curve's last epoch alone
        assert not store.resume_dir(unit).exists() and store.read(unit)[1]["found_saved_progress"]
        pd.testing.assert_frame_equal(store.read(unit)[0].drop(columns=TIMING, errors="ignore"),
                                      expected.drop(columns=TIMING, errors="ignore"))


@pytest.mark.integration
def test_local_run_resumes_merges_and_redoes_corrupt_shards(glue, tmp_path, monkeypatch):
    monkeypatch.setenv("PLM_NASBENCH_CACHE", str(tmp_path / "cache"))
    plan = parse_plan(smoke_plan())
    store = ShardStore(plan, tmp_path / "work")
    first = plan.units[0]
    assert execute_unit(plan, store, first, str(glue), "cpu") == "ran"
    assert execute_unit(plan, store, first, str(glue), "cpu") == "done"  # finished units are never redone
    with store.lock(first) as held:  # another run holds the unit: it is skipped, not run twice
        assert held and execute_unit(plan, store, first, str(glue), "cpu") == "busy"
    counts = run_local(plan, store, plan.units, str(glue))
    assert counts == {"done": 1, "merged": 0, "ran": 3, "busy": 0, "left": 0}
    status = store.status(plan.units).splitlines()
    assert status[0].split() == ["study", "task", "done", "merged", "pending", "corrupt", "hours", "eta", "h"]
    assert status[-1].split()[:5] == ["total", "4", "0", "0", "0"]
    only = merge(plan, store, tmp_path / "data", only={("sa", "rte")})  # --study sa: its table, and the latency
    assert set(only["written"]) == {"minilm-l6-h384/sa/rte.parquet", "minilm-l6-h384/lat/latency.parquet"}
    report = merge(plan, store, tmp_path / "data")
    assert set(report["written"]) == {"minilm-l6-h384/ws/rte.parquet"}  # the other two are merged already
    assert set(report["unchanged"]) == {"minilm-l6-h384/sa/rte.parquet", "minilm-l6-h384/lat/latency.parquet"}
    merged_store = ShardStore(plan, tmp_path / "work", merged_units(plan, tmp_path / "data"))
    assert merged_store.status(plan.units).splitlines()[-1].split()[:5] == ["total", "0", "4", "0", "0"]  # done and merged
    marker = store.marker_path(first)  # a damaged marker of a merged unit: its rows are in a table, no cause to redo it
    intact = marker.read_text()
    for damaged in ('{"sha256": "x"}', "[1]", "{"):
        marker.write_text(damaged)
        assert merged_store.state(first) == "merged" and store.state(first) == "corrupt"
    marker.write_text(intact)
    manifest = Manifest.load(tmp_path / "data")
    ws = manifest.read("minilm-l6-h384/ws/rte.parquet")
    assert len(ws) == 4 and ws["latency_b1_median"].notna().all() and (ws["epoch"] == 2).all()
    assert ws["strategy"].unique().tolist() == ["full"] and ws["rows_test"].iloc[0] == 10
    assert ws["supernetwork_id"].nunique() == 1 and len(ws["supernetwork_id"].iloc[0]) == 16  # its weights' hash
    sa = manifest.read("minilm-l6-h384/sa/rte.parquet")
    assert sa["epoch"].tolist() == [1, 2] and sa["cumulative_time"].is_monotonic_increasing
    labels = load_task("rte", glue, data_seed=int(sa["data_seed"].iloc[0])).test.labels  # the sanity check's chance level
    assert constant_error(sa, glue) == constant_prediction_error("accuracy", labels, regression=False)
    entry = manifest.tables["minilm-l6-h384/ws/rte.parquet"]
    assert entry["rows"] == 4 and entry["task"] == "rte" and entry["provenance"]["complete"]
    assert entry["provenance"]["git_commits"] and entry["provenance"]["torch_threads"] == [torch.get_num_threads()]
    latency = entry["provenance"]["latency"]  # the latency study's own provenance travels with the joined columns
    assert latency["rows_measured"] == 4 and latency["studies"] == ["lat"] and latency["hardware"]
    assert latency["memory_peaks"] == ["torch CPU allocator events"]  # how its memory columns were measured
    assert latency["torch_threads"] == [torch.get_num_threads()] and latency["wall_seconds"] > 0
    measured = manifest.read("minilm-l6-h384/lat/latency.parquet")  # the latency study is a table of its own
    lat_entry = manifest.tables["minilm-l6-h384/lat/latency.parquet"]
    assert len(measured) == 4 and lat_entry["scheme"] == "latency" and lat_entry["model"] == "minilm-l6-h384"
    assert set(measured["config_id"]) == set(ws["config_id"]) and measured["latency_b1_median"].gt(0).all()

    rerun = verify(plan, [plan.units[2]], tmp_path / "data", str(glue), n=1)  # a standalone curve computed again
    assert reproduced(rerun) and rerun["columns"]["valid_error"]["rows"] == 2 and rerun["supernetwork_ids"] == {}

    shard = store.shard_path(plan.units[1])  # a truncated shard is detected, never merged, and redone
    shard.write_bytes(shard.read_bytes()[:100])
    assert store.state(plan.units[1]) == "corrupt"
    report = merge(plan, store, tmp_path / "data", only={("sa", "rte")})  # another study's shard is not its business
    assert report["corrupt"] == [] and store.state(plan.units[1]) == "corrupt"
    assert "minilm-l6-h384/ws/rte.parquet" not in report["written"]
    # a latency study's merge rewrites the plan's tables in data/ from their committed rows (so they copy its
    # columns): the ws table keeps the unit's rows it had, and its shards, the corrupt one too, wait for its merge
    report = merge(plan, store, tmp_path / "data", only={("lat", None)})
    assert set(report["unchanged"]) == {"minilm-l6-h384/lat/latency.parquet", "minilm-l6-h384/sa/rte.parquet",
                                        "minilm-l6-h384/ws/rte.parquet"}  # nothing new: no file was touched
    assert not report["corrupt"] and store.state(plan.units[1]) == "corrupt"
    assert report["unchanged"]["minilm-l6-h384/ws/rte.parquet"] == 4 and not report["written"]
    manifest = Manifest.load(tmp_path / "data")
    pd.testing.assert_frame_equal(manifest.read("minilm-l6-h384/ws/rte.parquet"), ws)
    wall = manifest.tables["minilm-l6-h384/ws/rte.parquet"]["provenance"]["wall_seconds"]
    assert wall == pytest.approx(entry["provenance"]["wall_seconds"])  # each unit's time counted once
    assert run_local(plan, store, plan.units, str(glue))["ran"] == 1
    assert merge(plan, store, tmp_path / "data")["written"]["minilm-l6-h384/ws/rte.parquet"] == 4

    table = tmp_path / "data" / "minilm-l6-h384/sa/rte.parquet"  # a tampered table fails its checksum
    table.write_bytes(table.read_bytes() + b"x")
    with pytest.raises(ChecksumError, match="sa/rte.parquet"):
        Manifest.load(tmp_path / "data").read("minilm-l6-h384/sa/rte.parquet")
    with pytest.warns(UserWarning, match="sa/rte.parquet.* 1 unit.s. count as merged"):  # not redone; the others go on
        merged = merged_units(plan, tmp_path / "data")
    assert set(merged) == {u.unit_id for u in plan.units}
    latency_table = tmp_path / "data" / "minilm-l6-h384/lat/latency.parquet"  # a damaged latency table: no
    latency_table.write_bytes(latency_table.read_bytes() + b"x")               # reference, and no table loses
    with pytest.warns(UserWarning, match="lat/latency.parquet.*no latency reference"):  # its latency columns
        assert latency_reference(plan, tmp_path / "data") == {}
    report = merge(plan, store, tmp_path / "data")
    assert "fail their checksum" in report["held"]["minilm-l6-h384/ws/rte.parquet"] and not report["written"]
    assert set(report["damaged"]) == {"minilm-l6-h384/sa/rte.parquet", "minilm-l6-h384/lat/latency.parquet"}


def test_a_table_and_its_manifest_entry_are_written_as_one_step(tmp_path, monkeypatch):
    frame, relpath = pd.DataFrame({"unit_id": ["a", "b"], "x": [1.0, 2.0]}), "m/s/rte.parquet"
    manifest = Manifest.load(tmp_path)
    manifest.write_table(relpath, frame, {"study": "s"})
    pd.testing.assert_frame_equal(Manifest.load(tmp_path).read(relpath), frame)
    (tmp_path / relpath).chmod(0o664)
    manifest.write_table(relpath, frame, {"study": "s"})  # rewritten: its permissions stay
    assert (tmp_path / relpath).stat().st_mode & 0o777 == 0o664
    newer = frame.assign(x=[3.0, 4.0])

    save = Manifest.save

    def save_then_die(self):  # killed after the manifest was saved, before the table moved into place
        save(self)
        raise KeyboardInterrupt
    monkeypatch.setattr(Manifest, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        manifest.write_table(relpath, newer, {"study": "s"})
    monkeypatch.undo()
    with pytest.raises(ChecksumError, match="interrupted left .*rte.parquet.pending"):
        Manifest.load(tmp_path).read(relpath)
    reloaded = Manifest.load(tmp_path)
    assert reloaded.finish_interrupted() == [relpath]
    pd.testing.assert_frame_equal(reloaded.read(relpath), newer)
    stray = tmp_path / (relpath + ".pending")  # killed before its entry was saved: the table stays as it was
    stray.write_bytes(b"half a table")
    assert reloaded.finish_interrupted() == [] and not stray.exists()
    pd.testing.assert_frame_equal(reloaded.read(relpath), newer)


def test_rows_without_a_supernetwork_id_do_not_mix_with_rows_that_have_one():
    rows = pd.DataFrame({"strategy": "full", "seed": 0, "supernetwork_space": "small",
                         "supernetwork_id": pd.array([None, None, "ab" * 8], dtype="string")})
    assert "2 different super-networks (abababababababab, none recorded)" in mixed_supernetworks(rows)
    assert mixed_supernetworks(rows.iloc[:2]) is None and mixed_supernetworks(rows.iloc[2:]) is None
    assert mixed_supernetworks(rows.assign(seed=[0, 0, 1])) is None  # another seed may have its own


def test_a_fresh_work_folder_skips_and_keeps_what_the_tables_hold(glue, tmp_path, monkeypatch):
    """A clone has the committed tables but not the shards: its runs skip the merged units, its merges keep them."""
    monkeypatch.setenv("PLM_NASBENCH_CACHE", str(tmp_path / "cache"))
    studies = smoke_plan()["study"]
    plan = parse_plan(dict(smoke_plan(), study=[studies[0], studies[2]]))
    ws0, ws1, lat = plan.units
    data, relpath = tmp_path / "data", "minilm-l6-h384/ws/rte.parquet"
    first = ShardStore(plan, tmp_path / "work1")
    for unit in (ws0, lat):
        assert execute_unit(plan, first, unit, str(glue), "cpu") == "ran"
    assert merge(plan, first, data)["incomplete"] == {"ws/rte": "1/2 units done"}
    assert merge(plan, first, data, partial=True)["written"][relpath] == 2
    before = Manifest.load(data).read(relpath)

    merged = merged_units(plan, data)
    assert set(merged) == {ws0.unit_id, lat.unit_id} and min(merged.values()) > 0
    second = ShardStore(plan, tmp_path / "work2", merged)
    assert [second.state(u) for u in plan.units] == ["merged", "pending", "merged"]
    assert run_local(plan, second, plan.units, str(glue), stop_after=1e-9) == {
        "done": 0, "merged": 2, "ran": 0, "busy": 0, "left": 1}  # past its time: the pending unit is left for later
    assert run_local(plan, second, plan.units, str(glue)) == {"done": 0, "merged": 2, "ran": 1, "busy": 0, "left": 0}
    report = merge(plan, second, data)
    assert report["written"][relpath] == 4 and not report["incomplete"] and not report["corrupt"]
    manifest = Manifest.load(data)
    table = manifest.read(relpath)
    assert table.groupby("unit_id").size().to_dict() == {ws0.unit_id: 2, ws1.unit_id: 2}
    pd.testing.assert_frame_equal(table[table["unit_id"] == ws0.unit_id].reset_index(drop=True), before)
    assert table["latency_b1_median"].notna().all()  # from the latency table merged by the first folder
    prov = manifest.tables[relpath]["provenance"]
    assert prov["complete"] and [list(b["unit_seconds"]) for b in prov["batches"]] == [[ws0.unit_id], [ws1.unit_id]]
    assert prov["wall_seconds"] == pytest.approx(first.seconds(ws0) + second.seconds(ws1))
    assert second.status(plan.units).splitlines()[-1].split()[:5] == ["total", "1", "2", "0", "0"]

    cached = cache_report(data, tmp_path / "cache")  # the super-network that made the table's 4 rows
    assert cached[["strategy", "state", "table_rows"]].values.tolist() == [["full", "trained", 4]]
    assert generate_main(["cache", "--data", str(data), "--cache-dir", str(tmp_path / "cache")]) == 0
    report = verify(plan, plan.units, data, str(glue), n=3)  # computed again, the rows come out the same
    assert reproduced(report) and report["configs"] == 3 and report["columns"]["valid_error"]["equal"] == 3
    assert report["companions"] >= 0  # one-layer configurations that restore the units' summation order
    assert len(report["supernetwork_ids"]["committed"]) == 1
    assert report["supernetwork_ids"]["committed"] == report["supernetwork_ids"]["recomputed"]
    cut, committed = draw(plan, plan.units, data, 3)
    recomputed = pd.concat([run_unit(plan, u, str(glue)) for u in cut], ignore_index=True)
    off = compare(committed.assign(valid_error=committed["valid_error"] + 1e-6), recomputed)
    assert not reproduced(off) and reproduced(off, tolerance=1e-5)
    assert off["columns"]["valid_error"]["max_abs_difference"] == pytest.approx(1e-6)
    with pytest.raises(ValueError, match="latency is not verified"):
        draw(plan, [lat], data, 3)
    with pytest.raises(ValueError, match="--configs must be a positive"):
        draw(plan, plan.units, data, 0)

    _ids_recorded_afterwards(plan, second, data, relpath, glue, tmp_path)

    written = (data / relpath).read_bytes()
    assert merge(plan, second, data)["unchanged"][relpath] == 4  # merging again changes nothing
    assert (data / relpath).read_bytes() == written
    third = ShardStore(plan, tmp_path / "work5")  # a rerun of ws1 on a super-network that came out different
    assert execute_unit(plan, third, ws1, str(glue), "cpu") == "ran"
    shard, marker = third.read(ws1)
    third.write(ws1, shard.assign(supernetwork_id="0" * 16), marker)
    report = merge(plan, third, data)
    assert "2 different super-networks" in report["mixed"][relpath] and (data / relpath).read_bytes() == written
    fourth = ShardStore(plan, tmp_path / "work6")  # a later run of ws1 in yet another work folder replaces its rows;
    time.sleep(1.1)  # (run times are recorded to the second)
    assert execute_unit(plan, fourth, ws1, str(glue), "cpu") == "ran"  # the earlier folder's shard, merged again,
    assert relpath in merge(plan, fourth, data)["replaced"]             # does not bring its older rows back
    latest = (data / relpath).read_bytes()
    report = merge(plan, second, data)
    assert "later run" in report["older"][relpath] and report["unchanged"][relpath] == 4
    assert (data / relpath).read_bytes() == latest and not report["replaced"]

    without_latency = parse_plan(dict(smoke_plan(), study=[studies[0]]))  # its rows would lose their latency
    report = merge(without_latency, ShardStore(without_latency, tmp_path / "work3"), data)
    assert "lose their latency" in report["held"][relpath] and (data / relpath).read_bytes() == latest

    changed = parse_plan(dict(smoke_plan(), study=[dict(studies[0], chunk=4), studies[2]]))  # other unit ids
    report = merge(changed, ShardStore(changed, tmp_path / "work4"), data)
    assert "plan does not have" in report["stale"][relpath] and (data / relpath).read_bytes() == latest
    with pytest.warns(UserWarning, match="is stale: .* not in plan .* `merge` will leave the table as it is"):
        assert set(merged_units(changed, data)) == {lat.unit_id}  # a stale table's units are not taken as done,
                                                                  # and that is said before any unit runs


def _without_ids(source: Path, folder: Path, relpath: str, keep: Any = None) -> Path:
    """A copy of data folder ``source`` whose table ``relpath`` records no super-network id, as made before ids
    were recorded (except the rows where ``keep(table)`` is true, which record ``"0" * 16``)."""
    shutil.copytree(source, folder)
    manifest = Manifest.load(folder)
    table = manifest.read(relpath)
    table.loc[:, "supernetwork_id"] = pd.NA
    if keep is not None:
        table.loc[keep(table), "supernetwork_id"] = "0" * 16
    manifest.write_table(relpath, table, manifest.provenance(relpath))
    return folder


def _ids_recorded_afterwards(plan, store, data, relpath, glue, tmp_path):
    """``verify --record-id``: rows without a super-network id get the one that reproduces one configuration of
    their unit bit for bit, with the check in the unit's manifest batch, which later merges keep; anything short
    of proof writes nothing."""
    ws0, ws1 = plan.units[:2]
    old = _without_ids(data, tmp_path / "old", relpath)
    assert unrecorded(plan, plan.units, data) == [] and unrecorded(plan, plan.units, old) == [ws0, ws1]
    report = verify(plan, [ws0, ws1], old, str(glue), n=1, per_unit=True)  # one configuration of each unit
    network = Manifest.load(data).read(relpath)["supernetwork_id"].iloc[0]
    assert report["units"] == {u.unit_id: {"configs": 1, "supernetwork_ids": [network]} for u in (ws0, ws1)}
    off = {**report["columns"]["valid_error"], "equal": 1, "max_abs_difference": 1e-6}
    for refused, why in ((dict(report, units={ws0.unit_id: report["units"][ws0.unit_id]}), "1 unit.s. were not computed"),
                         (dict(report, columns={**report["columns"], "valid_error": off}), "not reproduced bit for bit"),
                         (dict(report, units={**report["units"], ws1.unit_id: {"configs": 1, "supernetwork_ids": []}}),
                          "on 0 super-networks"),
                         (dict(report, tables={relpath: "0" * 64}, unit_rows={relpath: {}}),
                          "rows of the verified units in .* changed since they were verified")):
        with pytest.raises(NotRecorded, match=why):
            record_supernetwork_id(plan, [ws0, ws1], old, refused)
    assert Manifest.load(old).read(relpath)["supernetwork_id"].isna().all()  # refused: nothing written
    other = dict(report, tables={relpath: "0" * 64})  # the table changed, these units' rows did not: recorded
    assert record_supernetwork_id(plan, [ws0, ws1], old, other) == {relpath: 4}
    recorded = Manifest.load(old)
    pd.testing.assert_frame_equal(recorded.read(relpath), Manifest.load(data).read(relpath))
    evidence = {u: e for b in recorded.tables[relpath]["provenance"]["batches"] for u, e in b[ID_EVIDENCE].items()}
    assert sorted(evidence) == sorted([ws0.unit_id, ws1.unit_id])
    assert {(e["supernetwork_id"], e["configs_reproduced"], e["rows_given_the_id"]) for e in evidence.values()} == {
        (network, 1, 2)}
    assert unrecorded(plan, plan.units, old) == []
    assert merge(plan, store, old)["unchanged"][relpath] == 4  # a merge keeps the evidence
    assert Manifest.load(old).tables[relpath] == recorded.tables[relpath]

    plateau = _without_ids(data, tmp_path / "plateau", relpath)  # every row but one scores the commonest errors:
    manifest = Manifest.load(plateau)                               # a unit's evidence is drawn off them
    table = manifest.read(relpath)
    table[["valid_error", "test_error"]] = [0.5, 0.5]
    table.loc[3, ["valid_error", "test_error"]] = [0.25, 0.5]
    manifest.write_table(relpath, table, manifest.provenance(relpath))
    for seed in range(4):
        informative = draw(plan, [ws0, ws1], plateau, 1, seed, per_unit=True)[1]
        assert table.loc[3, "config_id"] in set(informative["config_id"]) and len(informative) == 2

    drawn = draw(plan, [ws0], old, 1, per_unit=True)[1]["config_id"].iloc[0]  # another row of ws0 records another id
    clash = _without_ids(data, tmp_path / "clash", relpath,
                         lambda t: (t["unit_id"] == ws0.unit_id) & (t["config_id"] != drawn))
    with pytest.raises(NotRecorded, match=f"rows of unit {ws0.unit_id} .* record super-network 0000"):
        record_supernetwork_id(plan, [ws0], clash, verify(plan, [ws0], clash, str(glue), n=1, per_unit=True))
    mixed = _without_ids(data, tmp_path / "mixed", relpath, lambda t: t["unit_id"] == ws1.unit_id)  # ws1: another
    with pytest.raises(NotRecorded, match="would come from several super-networks"):
        record_supernetwork_id(plan, [ws0], mixed, verify(plan, [ws0], mixed, str(glue), n=1, per_unit=True))
    for folder, without in ((clash, 3), (mixed, 2)):
        assert Manifest.load(folder).read(relpath)["supernetwork_id"].isna().sum() == without  # nothing written


def test_memory_columns_are_measured_again_and_rejoined_keeping_latency(glue, tmp_path, monkeypatch, capsys):
    """A latency table measured with the old method gets memory columns measured here (the allocator's peak, as a
    latency unit measures it) and keeps its latency; the plan's tables, a partial one too, re-join them."""
    from generate.merge import OLD_MEMORY_PEAK
    from generate.remeasure import remeasure_memory

    monkeypatch.setenv("PLM_NASBENCH_CACHE", str(tmp_path / "cache"))
    studies = smoke_plan()["study"]
    plan = parse_plan(dict(smoke_plan(), study=[studies[0], studies[2]]))
    ws0, ws1, lat = plan.units
    data, store = tmp_path / "data", ShardStore(plan, tmp_path / "work")
    for unit in (ws0, lat):
        assert execute_unit(plan, store, unit, str(glue), "cpu") == "ran"
    merge(plan, store, data, partial=True)
    lat_path, ws_path = "minilm-l6-h384/lat/latency.parquet", "minilm-l6-h384/ws/rte.parquet"
    manifest = Manifest.load(data)
    measured, entry = manifest.read(lat_path), manifest.tables[lat_path]
    old = [dict(b, memory_peaks=[OLD_MEMORY_PEAK]) for b in entry["provenance"]["batches"]]  # as edition 1 measured
    manifest.write_table(lat_path, measured.assign(memory_b1_peak_mb=measured["memory_b1_peak_mb"] + 100),
                         dict(entry["provenance"], model=entry["model"], scheme=entry["scheme"], batches=old))
    merge(plan, store, data, only={("lat", None)})  # the ws table copies the old columns
    assert Manifest.load(data).read(ws_path)["memory_b1_peak_mb"].gt(100).all()

    plan_text = ('name = "smoke"\nmodel = "minilm-l6-h384"\ndtype = "float32"\nmax_length = 32\n'
                 'latency_batch_sizes = [1]\nlatency_repeats = 1\n[training]\nepochs = 2\nbatch_size = 8\n'
                 'max_steps_per_epoch = 1\n[[study]]\nname = "lat"\n'
                 'scheme = "latency"\nspace = "small"\nconfigs = {kind = "sample", n = 4, seed = 0}\nchunk = 4\n')
    other_file = tmp_path / "other.toml"  # the latency study with other settings: other units, a stale table
    other_file.write_text(plan_text.replace("latency_repeats = 1", "latency_repeats = 2"))
    stale_run = ["remeasure-memory", str(other_file), "--data", str(data), "--work-dir", str(tmp_path / "fresh")]
    assert generate_main(stale_run) == 1  # a table left as it is: a person must act
    report = json.loads(capsys.readouterr().out)
    assert list(report["stale"]) == [lat_path] and not report["remeasured"]
    assert execute_unit(plan, store, ws1, str(glue), "cpu") == "ran"  # a new shard, not the re-join's business
    report = remeasure_memory(plan, store, data, progress=False)
    assert report["remeasured"][lat_path]["rows"] == 4 and report["remeasured"][lat_path]["largest_change_mb"] >= 99
    assert report["merge"]["written"] == {ws_path: 2}  # partial, re-joined from its committed rows alone
    manifest = Manifest.load(data)
    again = manifest.read(lat_path)
    pd.testing.assert_series_equal(again["latency_b1_median"], measured["latency_b1_median"])  # latency kept
    assert again["memory_b1_peak_mb"].to_numpy() == pytest.approx(measured["memory_b1_peak_mb"].to_numpy(), abs=0.5)
    batch = manifest.tables[lat_path]["provenance"]["batches"][0]
    assert batch["memory_peaks"] == ["torch CPU allocator events"] and batch["memory_remeasured"]["rows"] == 4
    assert manifest.tables[ws_path]["provenance"]["latency"]["memory_peaks"] == ["torch CPU allocator events"]
    ws = manifest.read(ws_path).merge(again, on="config_id", suffixes=("", "_lat"))
    assert len(ws) == 2 and (ws["memory_b1_peak_mb"] == ws["memory_b1_peak_mb_lat"]).all()

    written = (data / lat_path).read_bytes()
    plan_file = tmp_path / "lat.toml"  # the latency study alone, as a plan file for the command line
    plan_file.write_text(plan_text)
    command = ["remeasure-memory", str(plan_file), "--data", str(data), "--work-dir", str(tmp_path / "fresh")]
    assert generate_main(command) == 0  # measured with today's method: nothing to do
    assert json.loads(capsys.readouterr().out)["current"] == [lat_path] and (data / lat_path).read_bytes() == written
    assert generate_main([*command, "--device", "tpu"]) == 2
    assert "--device 'tpu'" in capsys.readouterr().err
    edition = str(Path(__file__).resolve().parents[1] / "generate" / "plans" / "edition1.toml")
    assert generate_main(["remeasure-memory", edition, "--study", "ws-layer", "--data", str(tmp_path / "none")]) == 2
    assert "--study takes the plan's latency studies" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:  # latency tables have no task: the option is not offered
        generate_main(["remeasure-memory", edition, "--task", "rte", "--data", str(tmp_path / "none")])
    assert exit_info.value.code == 2 and "unrecognized arguments: --task" in capsys.readouterr().err
    elsewhere = parse_plan(dict(smoke_plan(), study=[studies[2]], latency_hardware="another CPU"))
    with pytest.raises(ValueError, match="memory measurements of plan 'smoke' must run on 'another CPU'"):
        remeasure_memory(elsewhere, ShardStore(elsewhere, tmp_path / "fresh"), data, progress=False)


@pytest.mark.integration
def test_ray_executor_gives_the_same_rows(glue, tmp_path, monkeypatch, capsys):
    ray = pytest.importorskip("ray")
    from generate.executors import run_ray

    monkeypatch.setenv("PLM_NASBENCH_CACHE", str(tmp_path / "cache"))
    raw = smoke_plan()
    raw["study"] = [raw["study"][0], raw["study"][2]]
    plan = parse_plan(raw)
    ws_units, latency = plan.units[:2], plan.units[2]
    local = ShardStore(plan, tmp_path / "local")
    run_local(plan, local, ws_units, str(glue))
    remote = ShardStore(plan, tmp_path / "ray")
    too_fast = {("cpu", "float32"): {"latency_b1_median": 1e-9}}  # the latency unit refuses this machine; the others go on
    try:
        counts = run_ray(plan, remote, plan.units, str(glue), num_cpus=1, latency_reference=too_fast,
                         init_kwargs={"num_cpus": 2, "include_dashboard": False,
                                      "runtime_env": {"env_vars": {"PLM_NASBENCH_CACHE": str(tmp_path / "cache")}}})
    finally:
        ray.shutdown()
    assert counts["ran"] == 2 and counts["failed"] == 1 and remote.state(latency) == "pending"
    assert f"unit {latency.unit_id}" in capsys.readouterr().err
    # nothing pending: no Ray instance is started or reached (this address does not exist)
    again = run_ray(plan, remote, ws_units, str(glue), address="ray://192.0.2.1:1")
    assert again == {"done": 2, "merged": 0, "ran": 0, "busy": 0, "failed": 0} and not ray.is_initialized()
    for unit in ws_units:
        a, b = local.read(unit)[0], remote.read(unit)[0]
        pd.testing.assert_frame_equal(a.drop(columns=[c for c in TIMING if c in a]),
                                      b.drop(columns=[c for c in TIMING if c in b]))


def test_ray_runs_one_unit_per_super_network_until_one_has_trained_it(tmp_path, monkeypatch):
    """The Ray executor's scheduling alone, on a stand-in for Ray that records what is in flight: of the units on
    one super-network, one runs; after a failure the next one alone; after a success all the rest."""
    import sys
    import types

    from generate.executors import run_ray

    ws, _, lat = smoke_plan()["study"]
    plan = parse_plan(dict(smoke_plan(), study=[dict(ws, configs={"kind": "sample", "n": 8, "seed": 0}), lat]))
    units = plan.units
    assert [u.scheme for u in units] == ["weight_sharing"] * 4 + ["latency"]
    in_flight, seen = [], []

    class Ref:
        def __init__(self, unit):
            self.unit = unit
            in_flight.append(unit)
            seen.append(sum(u.scheme == "weight_sharing" for u in in_flight))

    class RayError(Exception):
        pass

    def get(ref):
        in_flight.remove(ref.unit)
        if ref.unit is units[0]:
            raise RayError("the first training failed")
        return "ran"

    fake = types.SimpleNamespace(
        is_initialized=lambda: True, get=get, exceptions=types.SimpleNamespace(RayError=RayError),
        wait=lambda refs, num_returns: (refs[:1], refs[1:]),
        remote=lambda **_: lambda fn: types.SimpleNamespace(remote=lambda plan, store, unit, *rest: Ref(unit)))
    monkeypatch.setitem(sys.modules, "ray", fake)
    counts = run_ray(plan, ShardStore(plan, tmp_path), units, None)
    assert counts == {"done": 0, "merged": 0, "ran": 4, "busy": 0, "failed": 1}
    assert seen == [1, 1, 1, 1, 2]  # ws0 (and lat); ws1 alone after ws0 failed; ws2 and ws3 together after ws1 ran


def test_cli_plan_and_errors(tmp_path, capsys):
    plan = tmp_path / "plan.toml"
    plan.write_text('name = "x"\nmodel = "minilm-l6-h384"\n[[study]]\nname = "a"\nscheme = "latency"\n'
                    'space = "layer"\nconfigs = {kind = "all"}\nchunk = 16\n')
    from plm_nasbench.provenance import git_commit

    git_commit.cache_clear()
    assert generate_main(["plan", str(plan)]) == 0
    assert "4 of 4 units" in capsys.readouterr().out
    assert git_commit.cache_info().currsize == 1  # pinned at start: rows name the code the process loaded
    plan.write_text(plan.read_text().replace('"layer"', '"tiny"'))
    assert generate_main(["plan", str(plan)]) == 2
    assert "unknown space 'tiny'" in capsys.readouterr().err
    assert generate_main(["status", str(tmp_path / "missing.toml")]) == 2
    plan.write_text(plan.read_text().replace('"tiny"', '"layer"'))
    run = ["run", str(plan), "--work-dir", str(tmp_path / "work"), "--data", str(tmp_path / "data")]
    assert generate_main([*run, "--device", "tpu"]) == 2  # refused before any unit runs
    assert "--device 'tpu': units run on 'cpu' or 'cuda'" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert generate_main([*run, "--device", "cuda"]) == 2
        assert "sees no CUDA GPU" in capsys.readouterr().err
    assert generate_main([*run, "--executor", "ray", "--device", "cuda"]) == 2
    assert "device follows --gpus-per-unit" in capsys.readouterr().err
    assert generate_main([*run, "--executor", "ray", "--gpus-per-unit", "0.5"]) == 2
    assert "latency units time a whole GPU" in capsys.readouterr().err
    for command in ("run", "status", "merge", "verify"):  # a name the plan does not have selects nothing: refused
        work = ["--work-dir", str(tmp_path / "work")] if command != "verify" else []  # verify keeps no shards
        assert generate_main([command, str(plan), "--study", "b", *work]) == 2
        assert "--study b: not in plan 'x', whose studies are a" in capsys.readouterr().err
    assert generate_main(["run", str(plan), "--task", "rte", "--work-dir", str(tmp_path / "work")]) == 2
    assert "--task rte: not in plan 'x', whose tasks are (none)" in capsys.readouterr().err
    assert generate_main(["status", str(plan), "--strategy", "full", "--work-dir", str(tmp_path / "work")]) == 2
    assert "--strategy full: not in plan 'x', whose weight-sharing strategies are (none)" in capsys.readouterr().err
    ablation = tmp_path / "ablation.toml"
    ablation.write_text('name = "y"\nmodel = "minilm-l6-h384"\n[[study]]\nname = "ab"\nscheme = "weight_sharing"\n'
                        'tasks = ["rte", "mrpc"]\nspace = "small"\nstrategies = ["full", "kd", "standard"]\n'
                        'configs = {kind = "sample", n = 2, seed = 0}\n')
    assert generate_main(["plan", str(ablation), "--strategy", "kd", "--strategy", "standard", "--task", "rte"]) == 0
    listed = capsys.readouterr().out
    assert "2 of 6 units" in listed and " rte small kd " in listed and " full " not in listed
    assert not (tmp_path / "work").exists() or not any((tmp_path / "work").rglob("*.parquet"))
    assert generate_main([*run, "--unit-index", "0", "--study", "a"]) == 2  # the index is the plan's, not the selection's
    assert "--unit-index addresses the plan's units directly" in capsys.readouterr().err
    assert generate_main([*run, "--unit-index", "0", "--executor", "ray"]) == 2
    assert "--unit-index runs one unit in this process" in capsys.readouterr().err
    assert generate_main([*run, "--unit-index", "0", "--gpus-per-unit", "1"]) == 2  # a GPU it would not get
    assert "--gpus-per-unit is read by --executor ray only" in capsys.readouterr().err
    assert generate_main([*run, "--executor", "ray", "--cpus-per-unit", "-3"]) == 2
    assert "--cpus-per-unit must be above 0" in capsys.readouterr().err
    for minutes in ("-1", "inf"):
        with pytest.raises(SystemExit):
            generate_main([*run, "--machine-wait", minutes])
        assert "--machine-wait: must be a number of minutes >= 0" in capsys.readouterr().err
    assert generate_main([*run, "--machine-wait", "5", "--executor", "ray"]) == 2
    assert "--machine-wait is for the local executor" in capsys.readouterr().err
    other = tmp_path / "other.toml"  # before any unit: the latency machine, the task data
    other.write_text(plan.read_text().replace('name = "x"\n', 'name = "x"\nlatency_hardware = "a CPU this is not"\n')
                     + '[[study]]\nname = "s"\nscheme = "standalone"\ntasks = ["rte"]\nspace = "small"\n'
                       'configs = {kind = "largest"}\n')
    base = ["run", str(other), "--work-dir", str(tmp_path / "work"), "--data", str(tmp_path / "data")]
    assert generate_main([*base, "--data-dir", str(tmp_path)]) == 2
    assert "lacks rte/train.tsv; rte/dev.tsv (the GLUE layout" in capsys.readouterr().err
    (tmp_path / "rte").mkdir()
    (tmp_path / "rte/dev.tsv").write_text("")
    assert generate_main([*base, "--data-dir", str(tmp_path)]) == 2  # the training split is found missing up front too
    assert "lacks rte/train.tsv (the GLUE layout" in capsys.readouterr().err
    assert generate_main([*base, "--data-dir", str(tmp_path / "none")]) == 2
    assert "none does not exist (--data-dir" in capsys.readouterr().err
    assert generate_main([*base, "--study", "a"]) == 2
    assert ("the latency studies a must run on 'a CPU this is not'" in (err := capsys.readouterr().err)
            and "leave them out with --study, or time latency in a plan of your own" in err)
    assert not (tmp_path / "work").exists() or not any((tmp_path / "work").rglob("*.parquet"))
    assert generate_main(["merge", str(other), "--work-dir", str(tmp_path / "work")]) == 2  # not into data/
    assert "merge writes the package's data/ only for its own plans" in capsys.readouterr().err
    assert generate_main(["verify", str(other), "--study", "a", "--record-id"]) == 2  # it writes ids into the tables
    assert "verify --record-id writes the package's data/ only for its own plans" in capsys.readouterr().err
    units = parse_plan(smoke_plan()).units  # ws/rte, sa/rte, lat
    assert merge_selection(units, None, ["rte"]) == {("ws", "rte"), ("sa", "rte")}  # not the latency re-join
    assert merge_selection([u for u in units if u.study == "lat"], ["lat"], None) == {("lat", None)}
    assert merge_selection(units, None, None) is None
    two = tmp_path / "two.toml"  # names that exist but select nothing together
    two.write_text('name = "y"\nmodel = "minilm-l6-h384"\n' + "".join(
        f'[[study]]\nname = "{name}"\nscheme = "standalone"\ntasks = ["{task}"]\nspace = "small"\n'
        'configs = {kind = "largest"}\n' for name, task in (("b", "rte"), ("c", "mrpc"))))
    assert generate_main(["plan", str(two), "--study", "b", "--task", "mrpc"]) == 2
    assert "the plan has no unit of study b for task mrpc" in capsys.readouterr().err
    assert generate_main(["merge", str(two), "--study", "b", "--work-dir", str(tmp_path / "work2"),
                          "--data", str(tmp_path / "data2")]) == 0  # nothing done yet: b is incomplete
    out = capsys.readouterr().out
    assert "b/rte" in out and "c/mrpc" not in out
    record = ["verify", str(two), "--record-id", "--data", str(tmp_path / "data2")]
    assert generate_main([*record, "--tolerance", "0.1"]) == 2
    assert "--record-id needs the rows reproduced bit for bit" in capsys.readouterr().err
    assert generate_main(record) == 0  # standalone rows have no super-network: nothing to record
    assert "nothing to do" in capsys.readouterr().out


def test_bf16_plans_need_hardware_bf16(tmp_path, capsys, monkeypatch):
    """Emulated bf16 autocast is several times slower than float32: a bf16 plan is refused on a CPU without it."""
    from plm_nasbench.evaluation import predict

    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    bf16_flags = {"avx512bw", "avx_ne_convert", "amx_bf16"}
    if platform.machine() == "x86_64" and flags and not bf16_flags & set(flags.split()):
        assert not predict.native_bf16("cpu")  # an AVX2-only x86 CPU, like the AMD EPYC of cpu family 23
    plan = tmp_path / "plan.toml"
    plan.write_text('name = "x"\nmodel = "minilm-l6-h384"\ndtype = "bfloat16"\n[[study]]\nname = "a"\n'
                    'scheme = "latency"\nspace = "layer"\nconfigs = {kind = "all"}\nchunk = 16\n')
    monkeypatch.setattr(predict, "native_bf16", lambda device="cpu": False)
    run = ["run", str(plan), "--work-dir", str(tmp_path / "work"), "--data", str(tmp_path / "data")]
    assert generate_main(run) == 2
    assert "--device 'cpu' (" in (err := capsys.readouterr().err) and "has no bfloat16 support" in err
    assert generate_main(["verify", str(plan), "--data", str(tmp_path / "data")]) == 2
    assert "has no bfloat16 support" in capsys.readouterr().err
    assert not (tmp_path / "work").exists()
    bf16_plan = parse_plan(dict(smoke_plan(), dtype="bfloat16"))
    with pytest.raises(DeviceError, match="has no bfloat16 support"):  # the check every executor's units make
        run_unit(bf16_plan, bf16_plan.units[0])
    check_device("cpu", {"float32"})  # float32 runs anywhere


def test_latency_units_run_only_on_the_plans_latency_hardware(tmp_path):
    plan = parse_plan(dict(smoke_plan(), latency_hardware="a CPU this is not"))
    latency = plan.units[-1]
    with pytest.raises(ValueError, match="must run on 'a CPU this is not'"):
        execute_unit(plan, ShardStore(plan, tmp_path / "work"), latency, None, "cpu")
    with pytest.raises(ValueError, match="latency_hardware must be"):
        parse_plan(dict(smoke_plan(), latency_hardware=3))
    with pytest.raises(ValueError, match="latency_tolerance must be a number in"):
        parse_plan(dict(smoke_plan(), latency_tolerance=2))


def test_latency_units_check_this_machine_against_the_committed_reference(tmp_path, monkeypatch):
    """A CPU name does not pin speed: a latency unit first times the unpruned network and refuses to run where that
    differs from the committed latency tables by more than the plan's tolerance."""
    from plm_nasbench.evaluation import latency

    raw = dict(smoke_plan(), study=[{"name": "lat", "scheme": "latency", "space": "small",
                                     "configs": {"kind": "largest"}}])
    plan, data = parse_plan(raw), tmp_path / "data"
    assert latency_reference(plan, data) == {}  # no latency table yet: the edition's first one sets the reference
    store = ShardStore(plan, tmp_path / "work")
    assert run_local(plan, store, plan.units, None)["ran"] == 1
    merge(plan, store, data)
    measured = Manifest.load(data).read("minilm-l6-h384/lat/latency.parquet")
    reference = latency_reference(plan, data)
    assert reference == {("cpu", "float32"): {"latency_b1_median": measured["latency_b1_median"].iloc[0]}}
    assert latency_reference(parse_plan(dict(raw, name="other")), data) == {}  # another plan's tables check nothing
    batch = Manifest.load(data).tables["minilm-l6-h384/lat/latency.parquet"]["provenance"]["batches"][0]
    assert batch["machine_checks"] == {plan.units[0].unit_id: None}  # the first: nothing to check against
    measure = latency.latency_columns  # timed twice here: 5% slower than the reference, whatever the machine's noise
    monkeypatch.setattr(latency, "latency_columns", lambda *args: dict(
        measure(*args), latency_b1_median=1.05 * reference["cpu", "float32"]["latency_b1_median"]))
    store = ShardStore(plan, tmp_path / "work1")
    assert execute_unit(plan, store, plan.units[0], None, "cpu", reference) == "ran"
    frame, meta = store.read(plan.units[0])
    found = {"latency_b1_median": {"here_s": frame["latency_b1_median"].iloc[0], "ratio": pytest.approx(1.05),
                                   "tables_s": reference["cpu", "float32"]["latency_b1_median"]}}
    assert meta["machine_check"] == {"tolerance": 0.25, "threads": frame["latency_threads"].iloc[0], **found,
                                     "after": found}  # checked again once the configurations were timed
    merge(plan, store, data)  # run again: the table's batches name the unit once, with its new check
    batches = Manifest.load(data).tables["minilm-l6-h384/lat/latency.parquet"]["provenance"]["batches"]
    assert [b.get("machine_checks") for b in batches] == [{plan.units[0].unit_id: meta["machine_check"]}]
    too_fast = {("cpu", "float32"): {"latency_b1_median": reference["cpu", "float32"]["latency_b1_median"] / 100}}  # 100x faster
    with pytest.raises(ValueError, match=r"does not time like .* latency_tolerance of 25%"):
        execute_unit(plan, ShardStore(plan, tmp_path / "work2"), plan.units[0], None, "cpu", too_fast)
    slow_at_the_end = iter([1.0, 1.0, 2.0])  # the check, the configuration, the check again: the machine slowed
    monkeypatch.setattr(latency, "latency_columns", lambda *args: dict(
        measure(*args), latency_b1_median=next(slow_at_the_end) * reference["cpu", "float32"]["latency_b1_median"]))
    late = ShardStore(plan, tmp_path / "work4")
    with pytest.raises(ValueError, match=r"checked after its configurations were timed.*\(2.00x\)"):
        execute_unit(plan, late, plan.units[0], None, "cpu", reference)
    assert late.state(plan.units[0]) == "pending"  # no shard: the unit is timed again
    import generate.executors as executors
    clock = [0.0]  # the executor's clock: advanced by its pauses alone
    pauses = []
    monkeypatch.setattr(executors, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(executors, "sleep", lambda s: (pauses.append(s), clock.__setitem__(0, clock[0] + s)))
    sequence = iter([2.0, 1.0, 1.0, 1.0])  # the first check fails, the second try passes both
    monkeypatch.setattr(latency, "latency_columns", lambda *args: dict(
        measure(*args), latency_b1_median=next(sequence) * reference["cpu", "float32"]["latency_b1_median"]))
    assert run_local(plan, late, plan.units, None, latency_reference=reference, machine_wait=90)["ran"] == 1
    assert pauses == [60.0]
    pauses.clear()
    monkeypatch.setattr(latency, "latency_columns", measure)
    with pytest.raises(ValueError, match="does not time like"):  # 90 s after the first failure: 60 s, 30 s, then it fails
        run_local(plan, ShardStore(plan, tmp_path / "work5"), plan.units, None, latency_reference=too_fast,
                  machine_wait=90)
    assert pauses == [60.0, 30.0]
    pauses.clear()  # --stop-after comes first: the run ends cleanly, the waiting unit left for the next
    counts = run_local(plan, ShardStore(plan, tmp_path / "work6"), plan.units, None, latency_reference=too_fast,
                       stop_after=100, machine_wait=3600)
    assert counts["left"] == 1 and pauses == [60.0, 40.0]
    with pytest.raises(ValueError, match="runs on cpu, but this edition's latency tables were measured on cuda"):
        run_local(plan, ShardStore(plan, tmp_path / "work7"), plan.units, None,  # no wait: waiting cannot mend that
                  latency_reference={("cuda", "bfloat16"): reference["cpu", "float32"]}, machine_wait=3600)
    assert pauses == [60.0, 40.0]
    on_gpu = {("cuda", "bfloat16"): reference["cpu", "float32"]}  # latency timed on a GPU, even in another dtype
    with pytest.raises(ValueError, match="runs on cpu, but this edition's latency tables were measured on cuda"):
        execute_unit(plan, ShardStore(plan, tmp_path / "work3"), plan.units[0], None, "cpu", on_gpu)


def test_report_coverage_unpruned_and_plots(tables, tmp_path):
    from generate.report import END, START, coverage_markdown, plot_grids, sizes_markdown, unpruned_markdown
    from plm_nasbench.atomic import replace_block

    manifest = Manifest.load(tables[0])
    table = coverage_markdown(manifest)
    assert "`minilm-l6-h384/ws-small-grid/rte.parquet` | rte | small | weight_sharing | full | 2,366 | 1,183 | 2" in table
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{START}\nstale text\n{END}\noutro\n")
    replace_block(readme, START, END, table)
    assert readme.read_text().startswith("intro\n") and "stale text" not in readme.read_text() and "outro" in readme.read_text()
    assert "no unpruned runs yet" in unpruned_markdown(manifest, None)
    sizes = sizes_markdown(manifest, None).splitlines()  # the best-valid sub-network's test error per size threshold
    assert sizes[0] == "| params fraction <= | rte (ours) | rte (paper) |"
    rows = pd.concat([manifest.read(f"minilm-l6-h384/{study}/rte.parquet") for study in ("ws-small-grid", "ws-small-holdout")])
    means = rows.groupby("config_id")[["valid_error", "test_error", "params_fraction"]].mean()
    best = means.sort_values(["valid_error", "params_fraction"]).iloc[0]
    assert sizes[-1] == f"| 1.00 | {best['test_error']:.3f} | n/a |"
    paths = plot_grids(manifest, tmp_path / "plots")
    assert [p.name for p in paths] == ["small-grid-rte.png"] and paths[0].read_bytes()[:4] == b"\x89PNG"


def test_report_cost_sums_the_rows_of_each_study(tables, tmp_path):
    """The cost block counts runs by task, strategy, configuration and seed, sums the rows' training and evaluation
    times per study, and charges each super-network once, at the least time its rows record."""
    from generate.report import cost_markdown
    from plm_nasbench.tables import write_parquet

    root = tmp_path / "data"
    shutil.copytree(tables[0], root)
    manifest = Manifest.load(root)
    for study, times in (("ws-small-grid", {0: ("a" * 16, 300.0), 1: ("b" * 16, 900.0)}),
                         ("ws-small-holdout", {0: ("a" * 16, 360.0)})):  # network a trained again: 300 s counts
        relpath = f"minilm-l6-h384/{study}/rte.parquet"
        table = manifest.read(relpath)
        table = table.assign(supernetwork_id=table["seed"].map(lambda seed: times[seed][0]),
                             supernetwork_train_time=table["seed"].map(lambda seed: times[seed][1]),
                             eval_time=table["eval_time"] if study == "ws-small-grid" else 0.0)
        manifest.record(relpath, table, write_parquet(table, root / relpath), {"study": study})
    manifest.save()
    lines = cost_markdown(manifest).splitlines()
    assert "| minilm-l6-h384 | rte | 2 | 0.33 |" in lines
    grid = manifest.read("minilm-l6-h384/ws-small-grid/rte.parquet")
    seconds = grid["train_time"].sum() + grid["eval_time"].sum()
    runs = len(grid.drop_duplicates(["task", "strategy", "config_id", "seed"]))
    assert (f"| minilm-l6-h384 | ws-small-grid | weight_sharing | 1 | {runs:,} | {grid['train_time'].sum() / 3600:.2f} "
            f"| {grid['eval_time'].sum() / 3600:.2f} | {runs / seconds:.3g} |") in "\n".join(lines)
    curves = manifest.read("minilm-l6-h384/standalone-small/rte.parquet")
    assert any(line.startswith(f"| minilm-l6-h384 | standalone-small | standalone | 1 | {curves['config_id'].nunique():,} | "
                               f"{curves['train_time'].sum() / 3600:.2f} |") for line in lines)
    assert any(line.startswith("| minilm-l6-h384 | ws-small-holdout |") and "| 0.00 | n/a |" in line for line in lines)
    assert lines[-1].startswith("In all ") and "the super-networks 0.3 hours of training" in lines[-1]
    assert cost_markdown(Manifest.load(tmp_path / "nothing-here")) == "(no tables yet)"


def test_atomic_writes_give_the_permissions_a_plain_write_would(tmp_path):
    """Temporary files are private (0600); a table renamed into place must still be readable by a cluster's other
    users under the usual umask, and a rewritten file keeps the mode it had."""
    from plm_nasbench.atomic import atomic_directory, write_atomic

    previous = os.umask(0o022)
    try:
        write_atomic(tmp_path / "new.parquet", lambda p: p.write_bytes(b"x"))
        assert (tmp_path / "new.parquet").stat().st_mode & 0o777 == 0o644
        (tmp_path / "new.parquet").chmod(0o640)
        write_atomic(tmp_path / "new.parquet", lambda p: p.write_bytes(b"y"))
        assert (tmp_path / "new.parquet").stat().st_mode & 0o777 == 0o640
        with atomic_directory(tmp_path / "surrogate") as folder:
            (folder / "model.json").write_text("{}")
        assert (tmp_path / "surrogate").stat().st_mode & 0o777 == 0o755
    finally:
        os.umask(previous)


def test_a_plan_without_latency_tables_merges(tmp_path):
    """No latency table written (the plan has none, or it is not done): the tables are merged without latency."""
    from conftest import synthetic_rows
    from generate.executors import _meta

    plan = parse_plan(dict(smoke_plan(), study=[smoke_plan()["study"][0]]))
    store = ShardStore(plan, tmp_path / "work")
    space = get_search_space("small", "minilm-l6-h384", task="rte")
    for unit in plan.units:
        rows = synthetic_rows(space, unit.config_dicts(), "ws").assign(unit_id=unit.unit_id, supernetwork_id="ab" * 8)
        store.write(unit, rows.drop(columns=["latency_b1_median"]), _meta("2026-12-03T00:00:00+00:00", 1.0, "cpu"))
    report = merge(plan, store, tmp_path / "data")
    assert report["written"] == {"minilm-l6-h384/ws/rte.parquet": 4}
    entry = Manifest.load(tmp_path / "data").tables["minilm-l6-h384/ws/rte.parquet"]
    assert entry["provenance"]["latency"] == {"rows_measured": 0}


def test_the_report_refuses_a_readme_without_its_blocks_before_writing_any(tmp_path, capsys):
    from generate.report import main as report_main

    readme = tmp_path / "README.md"
    readme.write_text("# mine\n<!-- coverage:start -->\nold\n<!-- coverage:end -->\n")
    with pytest.raises(SystemExit) as exit_info:
        report_main(["--readme", str(readme), "--plots", str(tmp_path / "plots"), "--allow-missing"])
    assert exit_info.value.code == 2 and "lacks the block(s) <!-- unpruned:start -->" in capsys.readouterr().err
    assert "old" in readme.read_text() and not (tmp_path / "plots").exists()  # nothing written
    with pytest.raises(SystemExit) as exit_info:  # a missing reference would turn committed columns into n/a
        report_main(["--readme", str(readme), "--plots", str(tmp_path / "plots"), "--reference", str(tmp_path / "no.csv")])
    assert exit_info.value.code == 2 and f"--reference {tmp_path / 'no.csv'} does not exist" in capsys.readouterr().err
    assert "old" in readme.read_text() and not (tmp_path / "plots").exists()


def test_the_dtype_comparison_pairs_runs_of_one_configuration_seed_and_epoch(tmp_path):
    """Rows of both dtypes pair up by (task, config, seed, epoch) across studies; the rest are left out."""
    from conftest import synthetic_rows
    from generate.report import dtypes_markdown
    from plm_nasbench.tables import write_parquet

    space = get_search_space("small", "minilm-l6-h384", task="rte")
    configs = select_configs(space, {"kind": "sample", "n": 4, "seed": 0})
    fp32 = synthetic_rows(space, configs, "fp32").assign(scheme="standalone")
    bf16 = synthetic_rows(space, configs[:3], "bf16").assign(scheme="standalone", dtype="bfloat16")
    bf16.loc[0, "valid_error"] += 0.01  # one run of the three comes out 0.01 apart
    bf16.loc[2, "device"] = "cuda"  # a GPU's run is counted apart
    manifest = Manifest(tmp_path)
    for study, frame in (("fp32", fp32), ("bf16", bf16)):
        relpath = f"minilm-l6-h384/{study}/rte.parquet"
        manifest.record(relpath, frame, write_parquet(frame, tmp_path / relpath), {"study": study})
    lines = dtypes_markdown(manifest).splitlines()
    assert len(lines) == 4 and lines[2].startswith("| rte | cpu / cpu | 2 | 1 | 1 of 2 / 0.0050 / 0.0100 | 2 of 2 / ")
    assert lines[3].startswith("| rte | cuda / cpu | 1 | 1 | 1 of 1 / 0.0000 / 0.0000 |")
    assert "(no standalone runs in both dtypes yet)" in dtypes_markdown(Manifest(tmp_path / "empty"))
