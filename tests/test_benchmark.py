"""The query API and the surrogates on small synthetic tables made here (the shipped tables are not needed)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

from plm_nasbench import Benchmark
from plm_nasbench.benchmark import ConfigNotInTableError
from plm_nasbench.objectives import OBJECTIVES
from plm_nasbench.protocol import pareto_mask
from plm_nasbench.simulation import simulate
from plm_nasbench.spaces import SmallSpace, get_search_space
from plm_nasbench.surrogates import SmallSpaceSurrogate
from plm_nasbench.surrogates.build import grid_interpolation, plateau_sides, quality
from plm_nasbench.surrogates.small import write_checksums
from plm_nasbench.tables import ChecksumError, Manifest, write_parquet

def test_table_lookups_seeds_and_errors(tables):
    root, _, _, grid, _ = tables
    bench = Benchmark("rte", backend="table", data=root)
    config = grid[100]
    both = bench.table().query("config_id == @bench.space.config_id(@config)")
    result = bench.query(config)
    assert result["source"] == "table" and result["n_seeds"] == 2 and result["seed"] is None
    assert result["valid_error"] == pytest.approx(both["valid_error"].mean())
    assert bench.query(config, seed=1)["valid_error"] == pytest.approx(both.query("seed == 1")["valid_error"].item())
    assert bench.seeds == [0, 1] and bench.fidelities == [5]
    with pytest.raises(ConfigNotInTableError, match="surrogate"):
        bench.query({"num_layers": 3, "num_heads": 4, "num_units": 100})
    with pytest.raises(ConfigNotInTableError, match=r"seeds: \[0, 1\]; query with seed=None for the mean over the seeds the "
                                                    r"table holds$"):  # no advice the surrogate could not follow
        bench.query(config, seed=7)
    with pytest.raises(ConfigNotInTableError, match="fidelities"):
        bench.query(config, epoch=2)
    with pytest.raises(ValueError, match=r"num_heads must be an integer in \[0, 12\]"):
        bench.query({"num_layers": 3, "num_heads": 40, "num_units": 128})
    many = bench.query_many(grid[:50])
    assert many["valid_error"].tolist() == pytest.approx([bench.query(c)["valid_error"] for c in grid[:50]])
    for seed in (0, 1):  # single lookups of one seed answer what the vectorised path answers
        seeded = bench.query_many(grid[:50], seed=seed)
        singles = [bench.query(c, seed=seed, epoch=5) for c in grid[:50]]
        assert seeded["valid_error"].tolist() == [r["valid_error"] for r in singles]
        assert {(r["seed"], r["n_seeds"], r["epoch"]) for r in singles} == {(seed, 1, 5)}
    assert type(bench.query(config, seed=np.int64(1))["seed"]) is int  # the answer holds Python scalars
    assert type(bench.query(config, seed=1)["seed"]) is int
    frame = pd.DataFrame(grid[:50])
    assert bench.query_many(frame)["valid_error"].tolist() == many["valid_error"].tolist()
    with pytest.raises(ValueError, match="num_units must be an integer in"):
        bench.query_many(frame.assign(num_units=5000))
    assert all(bench.query(c)["source"] == "table" for c in bench.sample(5, seed=0))


@pytest.mark.parametrize("space_name", ["medium", "layer"])
def test_table_keys_stay_exact_where_mixed_radix_codes_would_overflow(space_name):
    """medium's field ranges multiply past 2**63: its keys must not wrap around (two configurations, one key)."""
    from plm_nasbench.benchmark.table import TableIndex

    space = get_search_space(space_name, "minilm-l6-h384")
    rng = np.random.default_rng(0)
    configs = list({space.config_id(c): c for c in (space.sample(rng) for _ in range(60))}.values())
    frame = pd.DataFrame({"config": [json.dumps(c) for c in configs], "config_id": [space.config_id(c) for c in configs],
                          "epoch": 5, "seed": 0,
                          **{o.column: rng.random(len(configs)) for o in OBJECTIVES.values()}})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's overflow warnings included
        index = TableIndex(frame.iloc[:50], space)
        assert [index.lookup(c)["valid_error"] for c in configs[:50]] == frame["valid_error"][:50].tolist()
        values, counts = index.lookup_many(index.codes(configs[:50]))
    assert (counts == 1).all() and values[:, 0].tolist() == frame[OBJECTIVES["valid_error"].column][:50].tolist()
    for config in configs[50:]:
        with pytest.raises(ConfigNotInTableError, match="is not in the table"):
            index.lookup(config)


def test_rows_of_another_super_network_do_not_answer(tables, tmp_path):
    """A strategy trained again (another machine, another session) makes another super-network: per seed, the rows
    of the super-network with the most rows answer, never a mix."""
    root, _, _, grid, _ = tables
    manifest = Manifest.load(root)
    main = manifest.read("minilm-l6-h384/ws-small-grid/rte.parquet").assign(supernetwork_id="a" * 16)
    again = main[main["seed"] == 0].head(30).assign(supernetwork_id="b" * 16, valid_error=0.99)
    data = tmp_path / "data"
    mixed = Manifest.load(data)
    for study, frame in (("ws-small-grid", main), ("ws-strategy-ablation", again)):
        relpath = f"minilm-l6-h384/{study}/rte.parquet"
        mixed.record(relpath, frame, write_parquet(frame, data / relpath), {"study": study})
    mixed.save()
    with pytest.warns(UserWarning, match=f"30 rows come from other super-networks.*seed 0, id {'b' * 16} \\(30 rows of ws-strategy-ablation\\)"):
        bench = Benchmark("rte", backend="table", data=data)
    assert len(bench.table()) == len(main) and set(bench.table()["supernetwork_id"]) == {"a" * 16}
    first = again[(again["num_layers"] > 0) & (again["num_units"] > 0)].iloc[0]  # not the empty network (median)
    truth = main[(main["seed"] == 0) & (main["config_id"] == first["config_id"])]["valid_error"].iloc[0]
    assert bench.query(json.loads(first["config"]), seed=0)["valid_error"] == truth


def test_tables_of_two_dtypes_answer_from_the_one_with_more_rows(tables, tmp_path):
    """Runs of two dtypes for one task (a float32 comparison beside bf16 runs) never mix: the dtype with the most
    rows answers, and a tie goes to the first by name (bfloat16), whichever table comes first."""
    root = tables[0]
    main = Manifest.load(root).read("minilm-l6-h384/ws-small-grid/rte.parquet")
    data = tmp_path / "data"
    both = Manifest.load(data)
    for study, frame in (("a-fp32", main.assign(dtype="float32", valid_error=0.5)), ("b-bf16", main.assign(dtype="bfloat16"))):
        relpath = f"minilm-l6-h384/{study}/rte.parquet"
        both.record(relpath, frame, write_parquet(frame, data / relpath), {"study": study})
    both.save()
    assert set(Benchmark("rte", backend="table", data=data).table()["dtype"]) == {"bfloat16"}
    fewer = main.iloc[1:].assign(dtype="bfloat16")
    both.record("minilm-l6-h384/b-bf16/rte.parquet", fewer, write_parquet(fewer, data / "minilm-l6-h384/b-bf16/rte.parquet"),
                {"study": "b-bf16"})
    both.save()
    answered = Benchmark("rte", backend="table", data=data).table()
    assert set(answered["dtype"]) == {"float32"} and (answered["valid_error"] == 0.5).all()


def test_available_lists_what_the_tables_answer(tables, tmp_path):
    root, surrogates, _, _, _ = tables
    listing = Benchmark.available(root, surrogates).set_index(["task", "scheme", "strategy"])
    ws = listing.loc[("rte", "weight_sharing", "full")]
    assert ws["studies"] == "ws-small-grid, ws-small-holdout" and ws["surrogate"] and ws["space"] == "small"
    manifest = Manifest.load(root)  # the rows it answers from: a configuration both tables hold counts once
    held = sum(manifest.tables[f"minilm-l6-h384/{s}/rte.parquet"]["rows"] for s in ("ws-small-grid", "ws-small-holdout"))
    served = Benchmark("rte", backend="table", data=root).table()
    assert ws["table_rows"] == len(served) < held
    assert ws["dtype"] == served["dtype"].iloc[0] and ws["hardware"] == "; ".join(sorted(set(served["hardware"])))
    standalone = listing.loc[("rte", "standalone", "none")]
    assert standalone["supernetwork_space"] is None and standalone["surrogate"]
    (empty := tmp_path / "no-surrogates").mkdir()
    assert not Benchmark.available(root, empty)["surrogate"].any()
    for folders, named in (((root, surrogates / "none"), "surrogates folder"), ((root / "none", None), "data folder")):
        with pytest.raises(FileNotFoundError, match=f"{named} .*none' does not exist"):  # a typo is no empty list
            Benchmark.available(*folders)


def test_a_partial_copy_of_the_data_folder_lists_what_its_files_answer(tables, tmp_path):
    """A data folder holding some of the tables its manifest lists: available() lists the benchmarks of the files it
    has and names the missing ones; loading a benchmark of a missing file says what happened."""
    root, surrogates, _, _, _ = tables
    data = tmp_path / "data"
    shutil.copytree(root, data)
    (data / "minilm-l6-h384/ws-small-holdout/rte.parquet").unlink()
    with pytest.warns(UserWarning, match="1 table.* not in that folder .*ws-small-holdout/rte.parquet"):
        listing = Benchmark.available(data, surrogates)
    assert set(listing["scheme"]) == {"standalone"}
    with pytest.raises(FileNotFoundError, match="ws-small-holdout/rte.parquet does not exist, though .* lists it"):
        Benchmark("rte", backend="table", data=data)


def test_auto_leaves_out_a_surrogate_fitted_on_other_tables(tables, tmp_path):
    """Own tables beside the package's surrogates: auto answers from the tables alone, never from a surrogate
    that learned from other tables (or from an earlier version of these)."""
    root, surrogates, _, grid, _ = tables
    source = Manifest.load(root)
    off_table = {"num_layers": 3, "num_heads": 4, "num_units": 100}
    grid_path = "minilm-l6-h384/ws-small-grid/rte.parquet"
    for case in ("changed", "missing"):
        data = tmp_path / case
        own = Manifest.load(data)
        for relpath in source.tables:
            frame = source.read(relpath)
            if relpath == grid_path:
                if case == "missing":
                    continue
                frame = frame.iloc[1:]  # another version of the grid table
            own.record(relpath, frame, write_parquet(frame, data / relpath), {"study": relpath.split("/")[1]})
        own.save()
        why = "another version of" if case == "changed" else ".*, which .* does not hold"
        with pytest.warns(UserWarning, match=f"surrogate in .*weight_sharing.* is left out: it learned from {why}"):
            bench = Benchmark("rte", data=data, surrogates=surrogates)
        with pytest.raises(ConfigNotInTableError, match="the surrogate in .* was left out .* rebuild the surrogates"):
            bench.query(off_table)
        listing = Benchmark.available(data, surrogates).set_index(["task", "scheme"])
        assert not listing.loc[("rte", "weight_sharing"), "surrogate"] and listing.loc[("rte", "standalone"), "surrogate"]
        assert Benchmark("rte", backend="surrogate", surrogates=surrogates).query(off_table)["source"] == "surrogate"
    with warnings.catch_warnings():  # the tables it learned from: no warning
        warnings.simplefilter("error")
        assert Benchmark("rte", data=root, surrogates=surrogates).query(off_table)["source"] == "surrogate"
    data = tmp_path / "standalone-only"  # no weight-sharing table at all, and the surrogate left out
    own = Manifest.load(data)
    curves_path = "minilm-l6-h384/standalone-small/rte.parquet"
    own.record(curves_path, source.read(curves_path), write_parquet(source.read(curves_path), data / curves_path),
               {"study": "standalone-small"})
    own.save()
    with pytest.warns(UserWarning, match="--model minilm-l6-h384 --out DIR"):
        with pytest.raises(FileNotFoundError, match="no table for task='rte'.*; the surrogate in .* was left out "
                                                    "\\(it learned from other tables\\)"):
            Benchmark("rte", data=data, surrogates=surrogates)


def test_a_surrogate_is_fitted_elsewhere_when_any_table_it_learned_from_differs(tables, tmp_path):
    from plm_nasbench.surrogates.build import fitted_elsewhere

    root, _, _, _, _ = tables
    manifest = Manifest.load(root)
    grid_path, curves_path = "minilm-l6-h384/ws-small-grid/rte.parquet", "minilm-l6-h384/standalone-small/rte.parquet"
    key = {"model": "minilm-l6-h384", "task": "rte", "search_space": "small", "scheme": "standalone", "strategy": "none"}
    record = {"train_tables": {curves_path: manifest.tables[curves_path]["sha256"]}, "train_key": key,
              "latency_table": grid_path, "latency_sha256": manifest.tables[grid_path]["sha256"]}
    record |= {"units_knots": [0, 1536], "latency_units_knots": None, "epochs": [1, 2, 3, 4, 5], "supernetwork_train_time": None, "floors": {},
               "calibration": {"folds": 0, "level": 0.95, "objectives": {}}, "anchors": {}}
    added = Manifest(root, dict(manifest.tables))  # a second standalone table of rte: its rows could serve now
    added.tables["minilm-l6-h384/curves-fp32/rte.parquet"] = manifest.tables[curves_path]
    cases = [(record, manifest, None),
             ({**record, "latency_sha256": "0" * 64}, manifest, f"another version of {grid_path}"),
             ({**record, "train_tables": {curves_path: "0" * 64}}, manifest, f"another version of {curves_path}"),
             ({k: v for k, v in record.items() if k != "epochs"}, manifest,
              "an older plm_nasbench built it (it lacks epochs)"),
             ({**record, "latency_table": "minilm-l6-h384/gone/latency.parquet"}, manifest, "gone/latency.parquet, which"),
             ({k: v for k, v in record.items() if not k.startswith("train")}, manifest,
              "an older plm_nasbench built it (it lacks train_tables)"),
             (record, added, "curves-fp32/rte.parquet came after it")]
    for i, (fields, held, reason) in enumerate(cases):
        folder = tmp_path / str(i)
        folder.mkdir()
        (folder / "surrogate.json").write_text(json.dumps(fields))
        write_checksums(folder)
        found = fitted_elsewhere(folder, held)
        assert found is None if reason is None else reason in found
    (folder / "checksums.json").unlink()  # a surrogate saved before checksums were: left out, as an older one
    assert "an older plm_nasbench built it (it has no checksums.json)" in fitted_elsewhere(folder, manifest)


def test_a_standalone_surrogate_learns_the_curves_the_table_serves(tables, tmp_path):
    """Curves of two dtypes: the surrogate learns from the dtype the table answers with (the one with more rows),
    and its out-of-data radius is measured between configurations, not between epochs of one."""
    from plm_nasbench.surrogates.build import build

    root, _, _, _, _ = tables
    curves = Manifest.load(root).read("minilm-l6-h384/standalone-small/rte.parquet")
    data = tmp_path / "data"
    own = Manifest.load(data)
    ids = curves["config_id"].unique()
    for study, frame in (("standalone-small", curves[curves["config_id"].isin(ids[:15])].assign(dtype="bfloat16")),
                         ("standalone-small-fp32", curves)):
        relpath = f"minilm-l6-h384/{study}/rte.parquet"
        own.record(relpath, frame, write_parquet(frame, data / relpath), {"study": study})
    own.save()
    report = build(data, tmp_path / "out", n_members=1)
    entry = report["surrogates"][0]
    assert entry["train_dtype"] == "float32" and entry["train_configs"] == len(ids) == 60
    assert set(entry["train_tables"]) == {"minilm-l6-h384/standalone-small/rte.parquet",
                                          "minilm-l6-h384/standalone-small-fp32/rte.parquet"}
    bench = Benchmark("rte", scheme="standalone", data=data, surrogates=tmp_path / "out")
    assert bench.query(json.loads(curves["config"].iloc[0]))["source"] == "table"
    space = get_search_space("small", "minilm-l6-h384", task="rte")
    surrogate = SmallSpaceSurrogate.load(tmp_path / "out/minilm-l6-h384/standalone/none/rte", space)
    encoded = surrogate.train_x
    gaps = np.linalg.norm(encoded[:, None] - encoded[None], axis=-1) + np.eye(len(encoded)) * 9
    assert surrogate.metadata["configs"] == 60 and surrogate.metadata["ood_radius"] == pytest.approx(gaps.min(1).max())

    def rewrite(study: str, frame: pd.DataFrame) -> Manifest:
        relpath = f"minilm-l6-h384/{study}/rte.parquet"
        own.record(relpath, frame, write_parquet(frame, data / relpath), {"study": study})
        own.save()
        return Manifest.load(data)

    from plm_nasbench.surrogates.build import fitted_elsewhere

    folder = tmp_path / "out/minilm-l6-h384/standalone/none/rte"
    fewer = curves[curves["config_id"].isin(ids[:10])].assign(dtype="bfloat16")
    assert fitted_elsewhere(folder, rewrite("standalone-small", fewer)) is None  # not the served dtype's table
    assert fitted_elsewhere(folder, rewrite("standalone-more", fewer)) is None  # added, and changes nothing served
    assert "rows it learned from are not those" in fitted_elsewhere(  # now the bf16 curves outnumber the float32 ones
        folder, rewrite("standalone-small", pd.concat([curves.assign(dtype="bfloat16")] * 2, ignore_index=True)))
    rewrite("standalone-small", fewer)
    assert "another version of minilm-l6-h384/standalone-small-fp32" in fitted_elsewhere(
        folder, rewrite("standalone-small-fp32", curves[curves["config_id"].isin(ids[1:])]))


def test_errors_say_what_answers_instead(tables, tmp_path):
    root, surrogates, _, grid, _ = tables
    off_table = {"num_layers": 3, "num_heads": 4, "num_units": 100}
    with pytest.raises(ConfigNotInTableError, match="backend='surrogate' or 'auto' predicts it"):
        Benchmark("rte", backend="table", data=root).query(off_table)
    without = Benchmark("rte", data=root, surrogates=tmp_path)  # auto, but no surrogate to fall back on
    with pytest.raises(ConfigNotInTableError, match="no surrogate covers this benchmark"):
        without.query(off_table)
    with pytest.raises(FileNotFoundError, match="no table for task='mrpc'.*no surrogate either"):
        Benchmark("mrpc", data=root, surrogates=surrogates)
    bare = tmp_path / "bare"  # tables copied without their manifest
    shutil.copytree(root / "minilm-l6-h384", bare / "minilm-l6-h384")
    with pytest.raises(FileNotFoundError, match=r"in .*bare \(it has no MANIFEST.json, which lists a data folder's"):
        Benchmark("rte", backend="table", data=bare)


def test_bad_names_list_what_exists(tables):
    root = tables[0]
    for kwargs, message in [({"task": "mnli"}, "known: rte"), ({"task": "rte", "model": "gpt2"}, "known: minilm"),
                            ({"task": "rte", "space": "tiny"}, "known: small"),
                            ({"task": "rte", "strategy": "best"}, "known: standard"),
                            ({"task": "rte", "backend": "magic"}, "known: auto")]:
        with pytest.raises(ValueError, match=message):
            Benchmark(data=root, **kwargs)
    with pytest.raises(FileNotFoundError, match="no table"):
        Benchmark("mrpc", backend="table", data=root)


def test_tampered_table_fails_its_checksum(tables, tmp_path):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(tables[0], root)
    table = root / "minilm-l6-h384/ws-small-grid/rte.parquet"
    table.write_bytes(table.read_bytes()[:-20])
    with pytest.raises(ChecksumError, match="ws-small-grid/rte.parquet"):
        Benchmark("rte", backend="table", data=root)


def test_surrogate_quality_uncertainty_and_exact_analytic_objectives(tables):
    root, surrogates, report, _, holdout = tables
    entries = {(e["scheme"], e["task"]): e for e in report["surrogates"]}
    assert set(entries) == {("weight_sharing", "rte"), ("standalone", "rte")}
    scored = entries["weight_sharing", "rte"]["objectives"]["valid_error"]
    assert scored["kendall_tau"] > 0.8 and scored["n"] == 120
    low, high = scored["kendall_tau_interval"]
    assert low < scored["kendall_tau"] < high <= 1.0  # how precisely 120 rows fix it
    assert "kendall_tau_interval" not in scored["unseen"]  # the headline only
    assert scored["reference"]["kendall_tau"] > 0.8 and scored["reference"]["n"] == 120  # smooth synthetic errors
    assert entries["weight_sharing", "rte"]["flops_max_relative_error"] < 1e-9
    standalone = entries["standalone", "rte"]
    assert standalone["train_configs"] == 60 and standalone["objectives"]["valid_error"]["n"] == 12  # a fifth, last epoch
    assert (surrogates / "REPORT.md").read_text().count("| rte |") >= 6
    bench = Benchmark("rte", backend="surrogate", data=root, surrogates=surrogates)
    space = bench.space
    result = bench.query(holdout[0])
    assert result["source"] == "surrogate" and result["valid_error_std"] >= 0 and result["out_of_data"] in (True, False)
    frame = bench.query_many(holdout)
    assert (frame["num_params"] == [space.num_parameters(c) for c in holdout]).all()
    assert not frame["out_of_data"].any()  # every hold-out configuration lies inside the grid
    fitted = SmallSpaceSurrogate.load(surrogates / "minilm-l6-h384/weight_sharing/full/rte", space)
    far = fitted.out_of_data(np.array([[2.0, 2.0, 2.0]]))
    assert far.all()
    with pytest.raises(ValueError, match="num_layers must be an integer"):
        bench.query_many(pd.DataFrame([{"num_layers": 9, "num_heads": 1, "num_units": 1}]))


def test_a_tau_gets_a_bootstrap_interval_and_a_plateau_the_answers_on_its_wrong_side():
    truth = np.array([0.5] * 8 + [0.3, 0.4, 0.6, 0.7])
    exact = quality(truth, truth, interval=True)
    assert exact["kendall_tau"] == 1.0 and exact["kendall_tau_interval"] == pytest.approx([1.0, 1.0])
    answer = truth.copy()
    answer[0], answer[9] = 0.49, 0.55  # a plateau row answered below it; a row below it answered above
    sides = plateau_sides(truth, answer, 0.5)
    assert sides["side_errors"] == 2
    assert sides["kendall_tau_sides_right"] == pytest.approx(1.0)  # the rest of the order is right
    off = quality(truth, answer, interval=True)
    assert off["kendall_tau"] < 0.8 and off["kendall_tau_interval"][0] < off["kendall_tau"]
    assert plateau_sides(truth, truth, 0.5) == {"side_errors": 0, "kendall_tau_sides_right": 1.0}


def test_the_uncertainty_is_calibrated_by_cross_validation_over_the_training_configurations(tables):
    """The reported standard deviation is scale * (ensemble sd + offset), with the scale a quantile of held-out
    scores, so that about 95% of new truths lie within 1.96 of them; the raw ensemble spread is far narrower."""
    from plm_nasbench.surrogates.small import CALIBRATION_LEVEL

    root, _, report, _, _ = tables
    space = get_search_space("small", "minilm-l6-h384", task="rte")
    table = Manifest.load(root).read("minilm-l6-h384/ws-small-grid/rte.parquet")
    raw = SmallSpaceSurrogate.fit(space, table, objectives=("valid_error",), n_members=2, calibration_folds=0)
    calibrated = SmallSpaceSurrogate.fit(space, table, objectives=("valid_error",), n_members=2)
    record = calibrated.metadata["calibration"]
    assert record["folds"] == 5 and record["level"] == CALIBRATION_LEVEL
    scales = record["objectives"]["valid_error"]
    # every row answered once, but the empty network's, which every fold keeps
    empty = SmallSpace.empty_networks(*(table[f].to_numpy(dtype=np.int64) for f in space.bounds))
    assert scales["answers"] == (~empty).sum() and scales["scale"] > 0 and scales["offset"] > 0
    truth = Manifest.load(root).read("minilm-l6-h384/ws-small-holdout/rte.parquet")
    fields = truth[["num_layers", "num_heads", "num_units"]].to_numpy()
    before, after = raw.predict(fields), calibrated.predict(fields)
    np.testing.assert_array_equal(before["valid_error"], after["valid_error"])  # the answers stay the same
    np.testing.assert_allclose(after["valid_error_std"],
                               scales["scale"] * (before["valid_error_std"] + scales["offset"]), rtol=1e-12)
    error = np.abs(after["valid_error"] - truth["valid_error"].to_numpy())
    assert np.mean(error <= 1.96 * after["valid_error_std"]) >= 0.85
    assert np.mean(error <= 1.96 * before["valid_error_std"]) < 0.5  # what the raw spread claimed
    shipped = report["surrogates"][0]["objectives"]["valid_error"]["calibration"]
    assert shipped["within_2sd"] >= 0.85 and shipped["off_plateau_answers"] == len(truth)  # no plateau here
    with pytest.raises(ValueError, match="calibration_folds must be 0 .none. or at least 2, got 1"):
        SmallSpaceSurrogate.fit(space, table, objectives=("valid_error",), n_members=1, calibration_folds=1)
    few = table[table["config_id"].isin(table["config_id"].unique()[:30])]
    skipped = SmallSpaceSurrogate.fit(space, few, objectives=("valid_error",), n_members=1).metadata["calibration"]
    assert skipped["objectives"] == {} and "configurations: too few for 5 folds of 10" in skipped["skipped"]["valid_error"]


def test_calibration_leaves_an_objective_with_too_few_answers_uncalibrated_and_keeps_the_tables_epochs(tables):
    """Curves of unequal length and a latency table timed on 16 configurations: the folds keep the table's
    epochs, and latency, with too few configurations for the folds, keeps its raw spread, saying why."""
    root, _, _, _, _ = tables
    manifest = Manifest.load(root)
    space = get_search_space("small", "minilm-l6-h384", task="rte")
    curves = manifest.read("minilm-l6-h384/standalone-small/rte.parquet")
    longest = curves["config_id"].iloc[0]
    curves = curves[(curves["epoch"] < 5) | (curves["config_id"] == longest)]  # one curve reaches epoch 5
    grid = manifest.read("minilm-l6-h384/ws-small-grid/rte.parquet")
    grid = grid[(grid["seed"] == 0) & (grid["num_layers"] > 0) & (grid["num_heads"] > 0)]  # not the empty network
    timed = grid[grid["config_id"].isin(grid["config_id"].unique()[:16])]
    fitted = SmallSpaceSurrogate.fit(space, curves, objectives=("valid_error", "latency"), n_members=1, latency=timed)
    record = fitted.metadata["calibration"]
    assert fitted.fidelities == [1, 2, 3, 4, 5] and set(record["objectives"]) == {"valid_error"}
    # the latency table's configurations are drawn into folds apart from the curves', and are too few for them
    assert record["skipped"] == {"latency": "16 configurations: too few for 5 folds of 10"}
    raw = SmallSpaceSurrogate.fit(space, curves, objectives=("valid_error", "latency"), n_members=1, latency=timed,
                                  calibration_folds=0)
    config = np.array([[3, 4, 500]])
    np.testing.assert_array_equal(fitted.predict(config, epoch=5)["latency_std"], raw.predict(config, epoch=5)["latency_std"])


def test_grid_interpolation_is_exact_on_linear_values_and_missing_off_the_grid():
    grid = pd.DataFrame([{"num_layers": 1, "num_heads": h, "num_units": u, "valid_error": 0.5 + 0.1 * h - u / 1000}
                         for h in (1, 2) for u in (0, 64, 128)])
    fields = np.array([[1, 1, 10], [1, 2, 100], [1, 2, 128], [2, 1, 10]])
    values = grid_interpolation(grid, fields, "valid_error")
    assert values[:3] == pytest.approx([0.59, 0.6, 0.572]) and np.isnan(values[3])


def _every_config(surrogate: SmallSpaceSurrogate) -> np.ndarray:
    return np.stack(np.unravel_index(np.arange(surrogate.space.num_configs), surrogate._shape()), axis=1)


def _assert_interpolates_between_knots(fitted: SmallSpaceSurrogate) -> None:
    """At the training configurations' num_units the answers are the ensembles' own (an anchored objective's:
    its table's values, with standard deviation 0); between two of them, on the straight line between those two
    answers. The configurations keeping no layer, one network, get one answer: the median of the answers over
    them."""
    every = _every_config(fitted)
    answers = fitted.predict(every)  # the first question predicts the space once
    assert list(fitted._materialised) == [0] and len(fitted._materialised[0]["valid_error"]) == len(every)
    knots = fitted.units_knots
    at_knots = np.isin(every[:, 2], knots)
    direct = fitted._learned(every[at_knots], None)  # through the ensembles themselves
    empty = SmallSpace.empty_networks(*every[at_knots].T)
    flat = np.ravel_multi_index(tuple(every[at_knots].T), fitted._shape())
    for name, (index, values) in fitted.metadata["anchors"].items():  # the grid holds every knot of every row
        assert np.isin(flat, index).all()
        direct[name] = pd.Series(values, index=index)[flat].to_numpy()
        direct[f"{name}_std"] = np.zeros(len(flat))
    for name, values in direct.items():
        objective = name.removesuffix("_std")
        if name.endswith("_std") and objective not in fitted.metadata["anchors"]:  # the ensembles' own spread,
            values = fitted._calibrated_std(objective, direct[objective], values)  # calibrated where the answer is
        np.testing.assert_array_equal(answers[name][at_knots][~empty], values[~empty], err_msg=name)
        (one,) = np.unique(answers[name][SmallSpace.empty_networks(*every.T)])
        if name.endswith("_std") and objective in fitted.metadata["anchors"]:  # 0 only if they measured one value
            measured = direct[objective][empty]
            assert (one == 0) == (measured.min() == measured.max()), name
            continue
        assert values[empty].min() <= one <= values[empty].max() or np.isnan(values).all() and np.isnan(one), name
    lower, upper = knots[3], knots[4]
    middle = (lower + upper) // 2
    weight = (middle - lower) / (upper - lower)
    for layers, heads in ((2, 3), (6, 12)):
        below, above, between = (fitted.predict(np.array([[layers, heads, u]]))["valid_error"][0]
                                 for u in (lower, upper, middle))
        assert below != above and between == pytest.approx(below + weight * (above - below), abs=1e-12)


def test_surrogate_answers_the_ensembles_at_knots_and_interpolates_between_them(tables):
    root, surrogates, _, _, _ = tables
    space = Benchmark("rte", backend="surrogate", data=root, surrogates=surrogates).space
    fitted = SmallSpaceSurrogate.load(surrogates / "minilm-l6-h384/weight_sharing/full/rte", space)
    assert fitted.units_knots.tolist() == list(range(0, 1537, 128))  # the test grid steps by 128 units
    _assert_interpolates_between_knots(fitted)
    values = fitted.predict(np.array([[4, 6, u] for u in range(0, 1537)]))["valid_error"]
    assert len(np.unique(values)) > 13  # answers change between knots, not only at them
    with pytest.raises(ValueError, match=r"num_units must be in \[0, 1536\], got 1537"):
        fitted.predict(np.array([[2, 3, 1537]]))


def _grid_rows(space, noise: float, seed: int = 0) -> pd.DataFrame:
    """A weight-sharing grid (every 128 units) whose valid_error is linear in num_units within each (layers, heads)
    pair, with a slope and intercept of its own drawn at random, plus independent noise of sd ``noise``; the
    configurations keeping no layer, one network, share one value."""
    from conftest import synthetic_rows

    grid = [{"num_layers": l, "num_heads": h, "num_units": u} for l in range(7) for h in range(13)
            for u in range(0, 1537, 128)]
    frame = synthetic_rows(space, grid, "ws-small-grid")
    rng = np.random.default_rng(seed)
    intercept, slope = rng.uniform(0.2, 0.5, (7, 13)), rng.uniform(-2e-4, 0, (7, 13))
    layers, heads, units = (frame[f].to_numpy() for f in ("num_layers", "num_heads", "num_units"))
    frame["valid_error"] = intercept[layers, heads] + slope[layers, heads] * units + noise * rng.standard_normal(len(frame))
    frame.loc[SmallSpace.empty_networks(layers, heads, units), "valid_error"] = 0.5
    return frame


def test_a_grid_surrogate_answers_its_table_where_the_cross_validation_between_columns_says_so(tmp_path):
    """Anchored: at the grid's configurations the surrogate answers the table's values (sd 0), linear between
    them; chosen per objective by Kendall tau on the grid's every other column, fitted on the rest. A function
    that is linear in num_units within each pair is interpolated exactly; under heavy noise the ensembles'
    average is the better guess."""
    space = get_search_space("small", "minilm-l6-h384", task="rte")
    exact = _grid_rows(space, noise=0.0)
    fitted = SmallSpaceSurrogate.fit(space, exact, objectives=("valid_error",), n_members=2)  # calibrated
    trial = fitted.metadata["anchoring"]["valid_error"]
    assert trial["rows"] == 7 * 13 * 6 and trial["kendall_tau_anchored"] > trial["kendall_tau_ensemble"]
    assert list(fitted.metadata["anchors"]) == ["valid_error"]
    assert "valid_error" in fitted.metadata["calibration"]["objectives"]  # its folds answered anchored too
    fields = exact[["num_layers", "num_heads", "num_units"]].to_numpy()
    answers = fitted.predict(fields)
    np.testing.assert_array_equal(answers["valid_error"], exact["valid_error"].to_numpy())
    assert (answers["valid_error_std"] == 0).all()
    fitted.metadata["train_tables"] = {}  # what the builder records before saving
    fitted.save(tmp_path / "anchored")  # anchors round-trip exactly through surrogate.json
    loaded = SmallSpaceSurrogate.load(tmp_path / "anchored", space)
    every = _every_config(fitted)
    for name in ("valid_error", "valid_error_std"):
        np.testing.assert_array_equal(loaded.predict(every)[name], fitted.predict(every)[name])
    between = fitted.predict(np.array([[3, 5, 200], [6, 12, 1500]]))  # the line between the two grid neighbours
    table = exact.set_index(["num_layers", "num_heads", "num_units"])["valid_error"]
    for (layers, heads, units), answer in zip([(3, 5, 200), (6, 12, 1500)], between["valid_error"]):
        lower = units // 128 * 128
        weight = (units - lower) / 128
        expected = table[layers, heads, lower] + weight * (table[layers, heads, lower + 128] - table[layers, heads, lower])
        assert answer == pytest.approx(expected, abs=1e-12)
    assert (between["valid_error_std"] > 0).all()  # off the grid, the ensembles' spread, as before

    noisy = _grid_rows(space, noise=0.2)
    smoothed = SmallSpaceSurrogate.fit(space, noisy, objectives=("valid_error",), n_members=2, calibration_folds=0)
    trial = smoothed.metadata["anchoring"]["valid_error"]
    assert trial["kendall_tau_anchored"] < trial["kendall_tau_ensemble"] and smoothed.metadata["anchors"] == {}
    plain = SmallSpaceSurrogate.fit(space, exact, objectives=("valid_error",), n_members=2, calibration_folds=0,
                                    anchored=())
    assert plain.metadata["anchors"] == {} and plain.metadata["anchoring"] == {}
    # anchors held only at some units of a pair: the line between them there, the ensembles' answers beyond
    partial = exact[(exact["num_units"] >= 256) & (exact["num_units"] <= 1024)]
    part = SmallSpaceSurrogate.fit(space, partial, objectives=("valid_error",), n_members=2, calibration_folds=0,
                                   anchored=("valid_error",))
    ensembles = SmallSpaceSurrogate.fit(space, partial, objectives=("valid_error",), n_members=2, calibration_folds=0,
                                        anchored=())
    row = np.array([[3, 5, u] for u in range(1537)])
    inside = (row[:, 2] >= 256) & (row[:, 2] <= 1024)
    anchored_row, plain_row = part.predict(row)["valid_error"], ensembles.predict(row)["valid_error"]
    np.testing.assert_array_equal(anchored_row[~inside], plain_row[~inside])
    assert anchored_row[512] == table[3, 5, 512] and anchored_row[512] != plain_row[512]
    curves = pd.concat([exact.assign(epoch=e) for e in (1, 2)], ignore_index=True)
    with pytest.raises(ValueError, match=r"anchored objectives need a table of one epoch; this one has epochs \[1, 2\]"):
        SmallSpaceSurrogate.fit(space, curves, objectives=("valid_error",), n_members=2, calibration_folds=0,
                                anchored=("valid_error",))
    assert SmallSpaceSurrogate.fit(space, curves, objectives=("valid_error",), n_members=2,
                                   calibration_folds=0).metadata["anchors"] == {}  # no trial for learning curves


def test_a_surrogate_with_scikit_learn_members_predicts_every_configuration(tables):
    from sklearn.tree import DecisionTreeRegressor

    root, _, _, _, _ = tables
    space = get_search_space("small", "minilm-l6-h384", task="rte")
    frame = Manifest.load(root).read("minilm-l6-h384/ws-small-grid/rte.parquet")
    fitted = SmallSpaceSurrogate.fit(space, frame, objectives=("valid_error", "runtime"), n_members=2,
                                     member_factory=lambda seed: DecisionTreeRegressor(random_state=seed))
    _assert_interpolates_between_knots(fitted)
    bench = Benchmark("rte", backend="surrogate", surrogates=fitted)  # served as the shipped ones are
    config = {"num_layers": 3, "num_heads": 5, "num_units": 700}
    answer = bench.query(config)
    assert answer["source"] == "surrogate" and answer["valid_error"] == fitted.predict([3, 5, 700])["valid_error"][0]
    assert bench.query_many([config])["valid_error"].tolist() == [answer["valid_error"]]
    runs = simulate({"rs": bench}, seeds=[0, 1], max_evaluations=4)
    assert len(runs) == 8 and runs["valid_error"].notna().all()
    with pytest.raises(ValueError, match="method 'rs': its benchmark cannot be sent to worker processes .*lambda"):
        simulate({"rs": bench}, seeds=[0, 1], max_evaluations=4, workers=2)  # its member_factory is a lambda
    with pytest.raises(ValueError, match="asked by backend 'surrogate' or 'auto' only, not 'table'"):
        Benchmark("rte", backend="table", data=root, surrogates=fitted)
    with pytest.raises(TypeError, match="a folder .str or Path. or a fitted SmallSpaceSurrogate, got dict"):
        Benchmark("rte", backend="surrogate", surrogates={"valid_error": 0.3})
    with pytest.raises(ValueError, match="was fitted for .*, not this benchmark's"):
        Benchmark("stsb", backend="surrogate", surrogates=fitted)  # a regression head: other parameter counts
    with pytest.raises(ValueError, match="cannot answer this benchmark: surrogates exist for the small space only, "
                                         "not space='medium'"):
        Benchmark("rte", space="medium", backend="surrogate", data=root, surrogates=fitted)
    with pytest.raises(ValueError, match="small space only, not space='medium'; use backend='table' or 'live'"):
        Benchmark("rte", space="medium", backend="surrogate", data=root)


def test_surrogate_fit_and_predict_refuse_bad_input_and_save_keeps_what_is_not_theirs(tables, tmp_path):
    root, surrogates, _, _, _ = tables
    space = get_search_space("small", "minilm-l6-h384", task="rte")
    grid = Manifest.load(root).read("minilm-l6-h384/ws-small-grid/rte.parquet")
    for kwargs, message in [({"objectives": "valid_error"}, "a sequence of objective names"),
                            ({"objectives": ("num_params",)}, "'num_params' are computed exactly, never learned"),
                            ({"anchored": ("valid_err",)}, "unknown objective"),
                            ({"objectives": ("valid_error",), "anchored": ("latency",)}, "not among the objectives"),
                            ({"n_members": 0}, "n_members must be an integer >= 1, got 0"),
                            ({"calibration_folds": 1}, "calibration_folds must be 0 .none. or at least 2, got 1"),
                            ({"calibration_folds": 2.5}, "calibration_folds must be an integer >= 0, got 2.5")]:
        with pytest.raises((TypeError, ValueError), match=message):
            SmallSpaceSurrogate.fit(space, grid, **kwargs)
    wide = grid.assign(num_units=grid["num_units"].where(grid.index != 3, 2000))
    with pytest.raises(ValueError, match=r"table: small config: field num_units must be an integer in \[0, 1536\], "
                                         r"got 2000 \(configuration #3\)"):
        SmallSpaceSurrogate.fit(space, wide, objectives=("valid_error",))
    with pytest.raises(ValueError, match="table has no rows"):
        SmallSpaceSurrogate.fit(space, grid.iloc[:0], objectives=("valid_error",))

    surrogate = Benchmark("rte", backend="surrogate", data=root, surrogates=surrogates)._surrogate
    with pytest.warns(UserWarning, match=r"surrogate in .* did not learn from the tables in .*: .* Its answers are"):
        Benchmark("rte", backend="surrogate", data=root)  # the package's surrogates asked about other tables
    with pytest.raises(FileNotFoundError, match="no-such-folder"):
        Benchmark("rte", backend="surrogate", data=tmp_path / "no-such-folder")
    for fields, message in [([[4.9, 6, 768]], "num_layers must be an integer in .0, 6., got 4.9"),
                            ([[np.nan, 6, 768]], "got nan"), ([[1e20, 6, 768]], "got 1e.20"),
                            (np.ones((3, 4), dtype=np.int64), r"shape \(n, 3\).*got shape \(3, 4\)")]:
        with pytest.raises(ValueError, match=message):
            surrogate.predict(fields)
    for epoch in (99, 2.5, True):
        with pytest.raises(ValueError, match=r"epoch must be one of the fidelities this surrogate answers"):
            surrogate.predict([[4, 6, 768]], epoch)
    whole = surrogate.predict(np.array([[4.0, 6.0, 768.0]]))  # whole floats are integers
    assert whole["valid_error"] == surrogate.predict([4, 6, 768])["valid_error"]
    empty = surrogate.predict([[0, 0, 0], [0, 12, 1536], [4, 0, 0], [6, 0, 0], [3, 0, 0]])
    assert len(set(empty["valid_error"])) == 1 and len(set(empty["out_of_data"])) == 1  # one network, one flag

    out = tmp_path / "mine"
    (out / "my_experiments").mkdir(parents=True)
    (out / "my_experiments" / "results.csv").write_text("x\n1\n")
    surrogate.save(out)
    surrogate.save(out)  # saved again over itself
    assert (out / "my_experiments" / "results.csv").is_file()
    again = SmallSpaceSurrogate.load(out, space)
    assert again.predict([2, 3, 400])["valid_error"] == surrogate.predict([2, 3, 400])["valid_error"]


def test_an_incomplete_surrogate_fails_at_load_naming_the_missing_file(tables, tmp_path):
    import shutil

    root, surrogates, _, _, _ = tables
    copy = tmp_path / "surrogates"
    shutil.copytree(surrogates, copy)
    member = copy / "minilm-l6-h384/weight_sharing/full/rte/valid_error/member0.ubj.gz"
    damaged = bytearray(member.read_bytes())
    damaged[len(damaged) // 2] ^= 1  # one flipped bit: caught before XGBoost reads the file
    member.write_bytes(bytes(damaged))
    with pytest.raises(ValueError, match=r"valid_error/member0.ubj.gz: SHA-256 is .* damaged or was changed"):
        Benchmark("rte", backend="surrogate", data=root, surrogates=copy)
    shutil.copy(surrogates / "minilm-l6-h384/weight_sharing/full/rte/valid_error/member0.ubj.gz", member)
    (copy / "minilm-l6-h384/weight_sharing/full/rte/test_error/member1.ubj.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r"test_error lacks member1.ubj.gz"):
        Benchmark("rte", backend="surrogate", data=root, surrogates=copy)
    shutil.copy(surrogates / "minilm-l6-h384/weight_sharing/full/rte/test_error/member1.ubj.gz",
                copy / "minilm-l6-h384/weight_sharing/full/rte/test_error/member1.ubj.gz")
    folder = copy / "minilm-l6-h384/weight_sharing/full/rte"
    meta = folder / "surrogate.json"
    record = json.loads(meta.read_text())
    record["flops_moments"][0] *= 2  # one recorded number changed: every FLOPs answer would silently change
    meta.write_text(json.dumps(record))
    with pytest.raises(ValueError, match=r"rte/surrogate.json: SHA-256 is .* checksums.json records .* changed"):
        Benchmark("rte", backend="surrogate", data=root, surrogates=copy)
    with pytest.raises(ValueError, match=r"rte/surrogate.json: SHA-256 is"):  # auto refuses it too, naming the file
        Benchmark("rte", data=root, surrogates=copy)
    shutil.copy(surrogates / "minilm-l6-h384/weight_sharing/full/rte/surrogate.json", meta)
    ensemble = folder / "valid_error/ensemble.json"
    shortened = json.loads(ensemble.read_text())
    shortened["sha256"].pop("member1.ubj.gz")  # a member left out of its ensemble would narrow the spread
    ensemble.write_text(json.dumps(shortened))
    with pytest.raises(ValueError, match=r"valid_error/ensemble.json: SHA-256 is"):
        Benchmark("rte", backend="surrogate", data=root, surrogates=copy)
    write_checksums(folder)  # even with the sums recorded again, the member count gives it away
    with pytest.raises(ValueError, match=r"valid_error/ensemble.json records 1 member checksums for 2 members"):
        Benchmark("rte", backend="surrogate", data=root, surrogates=copy)
    shutil.copy(surrogates / "minilm-l6-h384/weight_sharing/full/rte/valid_error/ensemble.json", ensemble)
    meta.write_text(json.dumps({k: v for k, v in json.loads(meta.read_text()).items() if k != "units_knots"}))
    write_checksums(folder)
    with pytest.raises(ValueError, match=r"built by an older plm_nasbench .* rebuild it with python -m plm_nasbench.surrogates"):
        Benchmark("rte", backend="surrogate", data=root, surrogates=copy)
    with pytest.warns(UserWarning, match=r"is left out: an older plm_nasbench built it \(it lacks units_knots\)"):
        auto = Benchmark("rte", data=root, surrogates=copy)  # auto answers from the tables alone
    assert auto.query(auto.configs()[0])["source"] == "table" and not auto.covers_space
    listing = Benchmark.available(root, copy).set_index(["task", "scheme"])
    assert not listing.loc[("rte", "weight_sharing"), "surrogate"]


def test_a_table_too_small_to_learn_from_or_incomplete_gets_no_surrogate(tables, tmp_path):
    from plm_nasbench.surrogates.build import build

    root, _, _, _, _ = tables
    manifest = Manifest.load(root)
    curves = manifest.read("minilm-l6-h384/standalone-small/rte.parquet")
    few = curves[curves["config_id"].isin(curves["config_id"].unique()[:4])]  # four learning curves so far
    data = tmp_path / "data"
    small = Manifest.load(data)
    relpath = "minilm-l6-h384/standalone-small/mrpc.parquet"
    few = few.assign(task="mrpc")
    small.record(relpath, few, write_parquet(few, data / relpath), {"study": "standalone-small"})
    grid = manifest.read(GRID_TABLE)  # the first layers' part of a grid, merged with --partial
    part, grid_path = grid[grid["num_layers"] <= 1].assign(task="mrpc"), GRID_TABLE.replace("rte", "mrpc")
    small.record(grid_path, part, write_parquet(part, data / grid_path),
                 {"study": "ws-small-grid", "units": 13, "units_done": 2, "complete": False})
    small.save()
    (tmp_path / "surrogates/minilm-l6-h384/weight_sharing/full/mrpc").mkdir(parents=True)  # an earlier build's
    report = build(data, tmp_path / "surrogates", n_members=1)
    skipped = {entry["scheme"]: entry["skipped_table"] for entry in report["surrogates"]}
    assert "too few to fit" in skipped["standalone"]
    assert skipped["weight_sharing"] == f"a grid is incomplete: {grid_path} (2 of 13 units)"  # else extrapolated
    for scheme in ("standalone/none", "weight_sharing/full"):
        assert not (tmp_path / "surrogates/minilm-l6-h384" / scheme / "mrpc").exists()
    assert "no surrogate yet: 4 configurations" in (tmp_path / "surrogates/REPORT.md").read_text()
    with pytest.raises(ValueError, match="nothing to learn"):
        SmallSpaceSurrogate.fit(get_search_space("small", "minilm-l6-h384", task="mrpc"), few)


def test_a_grid_and_the_grid_between_its_columns_are_learned_from_together(tables, tmp_path):
    """The weight-sharing surrogate learns from a task's tables of every grid study (here a grid by 256 units and
    the one between its columns, by 128 too); one built before the second table came says it is stale."""
    from plm_nasbench.surrogates.build import build, fitted_elsewhere

    root, _, _, _, _ = tables
    grid = Manifest.load(root).read(GRID_TABLE)
    between = grid["num_units"] % 256 == 128
    data = tmp_path / "data"
    own = Manifest.load(data)

    def record(study: str, frame: pd.DataFrame) -> None:
        relpath = f"minilm-l6-h384/{study}/rte.parquet"
        own.record(relpath, frame, write_parquet(frame, data / relpath), {"study": study})
        own.save()

    record("ws-small-grid", grid[~between])
    first = build(data, tmp_path / "first", n_members=1, calibration_folds=0)["surrogates"][0]
    folder = tmp_path / "first/minilm-l6-h384/weight_sharing/full/rte"
    assert first["train_configs"] == 7 * 13 * 7 and fitted_elsewhere(folder, Manifest.load(data)) is None
    record("ws-small-grid-offset", grid[between])
    assert "ws-small-grid-offset/rte.parquet came after it" in fitted_elsewhere(folder, Manifest.load(data))
    entry = build(data, tmp_path / "both", n_members=1, calibration_folds=0)["surrogates"][0]
    assert set(entry["train_tables"]) == {GRID_TABLE, "minilm-l6-h384/ws-small-grid-offset/rte.parquet"}
    assert entry["train_configs"] == 7 * 13 * 13 and entry["train_rows"] == len(grid)
    surrogate = SmallSpaceSurrogate.load(tmp_path / "both/minilm-l6-h384/weight_sharing/full/rte",
                                         get_search_space("small", "minilm-l6-h384", task="rte"))
    assert surrogate.metadata["units_knots"] == list(range(0, 1537, 128))
    assert fitted_elsewhere(tmp_path / "both/minilm-l6-h384/weight_sharing/full/rte", Manifest.load(data)) is None


def test_the_surrogates_are_scored_on_every_hold_out_study_together(tables, tmp_path):
    """A second hold-out sample adds its rows to the score; a configuration in both counts once."""
    from plm_nasbench.surrogates.build import build

    root, _, report, _, _ = tables
    source = Manifest.load(root)
    holdout = source.read("minilm-l6-h384/ws-small-holdout/rte.parquet")
    data = tmp_path / "data"
    own = Manifest.load(data)
    grid = source.read(GRID_TABLE).assign(supernetwork_id="a")
    holdout = holdout.assign(supernetwork_id="a")
    first, more = holdout.iloc[:70], holdout.iloc[60:]  # ten rows in both
    elsewhere = more.iloc[:5].assign(supernetwork_id="b", config_id=lambda f: f["config_id"] + "-elsewhere")
    for study, frame in (("ws-small-grid", grid), ("ws-small-holdout", first),
                         ("ws-small-holdout-more", pd.concat([more, elsewhere]))):
        relpath = f"minilm-l6-h384/{study}/rte.parquet"
        own.record(relpath, frame, write_parquet(frame, data / relpath), {"study": study})
    own.save()
    entry = build(data, tmp_path / "out", n_members=1, calibration_folds=0)["surrogates"][0]
    assert entry["holdout_rows"] == len(holdout) == 120
    assert entry["holdout"].startswith("minilm-l6-h384/ws-small-holdout/rte.parquet, "
                                       "minilm-l6-h384/ws-small-holdout-more/rte.parquet")
    assert entry["objectives"]["valid_error"]["n"] == 120
    assert entry["holdout_other_networks"] == 5  # rows of another super-network score that network, not the fit
    assert "rte: 5 hold-out rows measured on another super-network" in (tmp_path / "out/REPORT.md").read_text()


def test_the_builder_learns_from_the_studies_it_is_told_and_never_replaces_the_package_surrogates(tables, tmp_path,
                                                                                                 capsys):
    from plm_nasbench.surrogates.build import main

    root, _, _, _, _ = tables
    source = Manifest.load(root)
    data = tmp_path / "data"
    own = Manifest.load(data)  # another plan's names for the standalone curves
    curves = source.read("minilm-l6-h384/standalone-small/rte.parquet")
    own.record("minilm-l6-h384/curves/rte.parquet", curves,
               write_parquet(curves, data / "minilm-l6-h384/curves/rte.parquet"), {"study": "curves"})
    own.save()
    for argv, env in ((["--data", str(data)], {}), ([], {"PLM_NASBENCH_DATA": str(data)})):
        with pytest.MonkeyPatch.context() as patch:
            patch.delenv("PLM_NASBENCH_SURROGATES", raising=False)
            for name, value in env.items():
                patch.setenv(name, value)
            with pytest.raises(SystemExit) as exit_info:
                main(argv)
        assert exit_info.value.code == 2 and "are not the package's: name where" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:  # a study named on purpose must exist
        main(["--data", str(data), "--out", str(tmp_path / "out"), "--standalone-study", "curvez"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "no table of the standalone study 'curvez'" in err and "curves" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["--data", str(data), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "holds no table of study 'ws-small-grid'" in err and "studies of that model: curves" in err
    main(["--data", str(data), "--out", str(tmp_path / "out"), "--standalone-study", "curves", "--members", "1"])
    report = json.loads((tmp_path / "out/report.json").read_text())
    assert [(e["task"], e["scheme"]) for e in report["surrogates"]] == [("rte", "standalone")]
    assert "(studies `curves`, one dtype per task)" in (tmp_path / "out/REPORT.md").read_text()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # fitted on these very tables: auto takes it
        bench = Benchmark("rte", scheme="standalone", data=data, surrogates=tmp_path / "out")
    assert bench.query({"num_layers": 3, "num_heads": 4, "num_units": 100})["source"] == "surrogate"


def test_xgboost_is_imported_only_when_the_surrogate_is_asked(tables):
    root, surrogates, _, grid, _ = tables
    code = ("import sys; from plm_nasbench import Benchmark; "
            f"bench = Benchmark('rte', data={str(root)!r}, surrogates={str(surrogates)!r}); "
            f"bench.query({grid[3]!r}); before = 'xgboost' in sys.modules; "
            "source = bench.query({'num_layers': 3, 'num_heads': 4, 'num_units': 100})['source']; "
            "print(before, source, 'xgboost' in sys.modules, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "surrogate", "True", "False"]


def test_auto_backend_falls_back_to_the_surrogate(tables):
    root, surrogates, _, grid, _ = tables
    bench = Benchmark("rte", data=root, surrogates=surrogates)
    assert bench.query(grid[3])["source"] == "table"
    assert bench.query({"num_layers": 3, "num_heads": 4, "num_units": 100})["source"] == "surrogate"
    mixed = bench.query_many([grid[3], {"num_layers": 3, "num_heads": 4, "num_units": 100}])
    assert mixed["source"].tolist() == ["table", "surrogate"]
    single = bench.query({"num_layers": 3, "num_heads": 4, "num_units": 100})  # the surrogate's uncertainty too
    assert np.isnan(mixed["valid_error_std"][0]) and mixed["valid_error_std"][1] == pytest.approx(single["valid_error_std"])
    assert mixed["out_of_data"].tolist() == [False, single["out_of_data"]]


def test_epochs_seeds_and_arguments_are_checked_on_every_path(tables):
    """An epoch the benchmark does not hold is refused, not answered by the surrogate at a fidelity it never saw."""
    root, surrogates, _, grid, _ = tables
    bench = Benchmark("rte", data=root, surrogates=surrogates)
    off_table = {"num_layers": 3, "num_heads": 4, "num_units": 100}
    for epoch in (3, -1, 99):
        with pytest.raises(ConfigNotInTableError, match=r"epoch .* is not a fidelity .*fidelities: \[5\]"):
            bench.query(off_table, epoch=epoch)
        with pytest.raises(ConfigNotInTableError, match="fidelities: \\[5\\]"):
            bench.query_many([grid[0], off_table], epoch=epoch)
    for bad in ("5", 2.5, True):
        with pytest.raises(ValueError, match=f"epoch must be an integer or None, got {bad!r}"):
            bench.query(grid[0], epoch=bad)
    with pytest.raises(ValueError, match="seed must be an integer or None, got '0' \\(str\\)"):
        bench.query(grid[0], seed="0")
    assert bench.query(grid[0], epoch=np.int64(5), seed=np.int64(0))["source"] == "table"
    standalone = Benchmark("rte", scheme="standalone", data=root, surrogates=surrogates)
    assert standalone.query(off_table, epoch=3)["epoch"] == 3  # every epoch of a learning curve is a fidelity
    with pytest.raises(TypeError, match="use query\\(\\) for one"):
        bench.query_many(grid[0])
    with pytest.raises(TypeError, match="sequence of objective names"):
        bench.pareto_front("valid_error")
    with pytest.raises(ValueError, match="n must be a non-negative integer, got -1"):
        bench.sample(-1)
    with pytest.raises(ValueError, match="seed must be a non-negative integer or None, got -1"):
        bench.sample(2, seed=-1)
    for bad in (True, 5.0):  # pareto_front checks its epoch as query does
        with pytest.raises(ValueError, match=f"epoch must be an integer or None, got {bad!r}"):
            bench.pareto_front(epoch=bad)
    assert len(bench.pareto_front(o for o in ("valid_error", "params_fraction"))) == len(bench.pareto_front())
    assert bench.query_many(pd.DataFrame(columns=list(grid[0]))).empty  # no rows, no error
    rows = bench.table().head(3)  # DataFrame rows and the fronts' JSON configurations go back into queries
    assert bench.query(rows.iloc[0]) == bench.query(json.loads(rows["config"].iloc[0]))
    assert (bench.query_many([r for _, r in rows.iterrows()])["valid_error"].tolist()
            == bench.query_many(rows)["valid_error"].tolist())
    front = bench.pareto_front()
    assert bench.query_many(front[["config"]])["valid_error"].tolist() == front["valid_error"].tolist()
    with pytest.raises(ValueError, match="num_layers must be an integer in \\[0, 6\\], got '4' \\(str\\) "
                                         "\\(configuration #0\\)"):
        bench.query_many([{**grid[0], "num_layers": "4"}])
    for bad in (4.5, 4.0, True):  # query_many refuses what query refuses
        with pytest.raises(ValueError, match=f"num_layers must be an integer in \\[0, 6\\], got {bad}.*#1\\)"):
            bench.query_many([grid[0], {**grid[0], "num_layers": bad}])
        with pytest.raises(ValueError, match=f"num_layers must be an integer in \\[0, 6\\], got {bad}"):
            bench.query({**grid[0], "num_layers": bad})
    with pytest.raises(ValueError, match="num_layers must be an integer in \\[0, 6\\], got 4.5 \\(configuration #1\\)"):
        bench.query_many(pd.DataFrame([grid[0], {**grid[0], "num_layers": 4.5}]))
    with pytest.raises(FileNotFoundError, match="data_dir '/nonexistent' is not a folder"):
        Benchmark("rte", backend="live", data_dir="/nonexistent")
    live = Benchmark("rte", backend="live", data_dir=str(root))  # a folder without task data: nothing loads here
    assert live.fidelities == [5] and Benchmark("rte", scheme="standalone", backend="live").fidelities == [1, 2, 3, 4, 5]
    with pytest.raises(ConfigNotInTableError, match="epoch 3 is not a fidelity"):
        live.query(grid[0], epoch=3)
    table = Benchmark("rte", backend="table", data=root)
    with pytest.raises(ConfigNotInTableError, match="first: #1, {'num_layers': 3, 'num_heads': 4, 'num_units': 100}"):
        table.query_many([grid[0], off_table])


def test_standalone_latency_comes_from_the_grid_latency_table(tables, tmp_path):
    """Standalone configurations without timings: the surrogate learns latency from the grid's latency table, and
    ``auto`` fills the table's gaps with it (``table+surrogate``); ``table`` leaves them empty."""
    import shutil

    from plm_nasbench.surrogates.build import build
    from plm_nasbench.tables import LATENCY_COLUMNS, conform

    root, _, _, grid, holdout = tables
    data = tmp_path / "data"
    shutil.copytree(root, data)
    manifest = Manifest.load(data)
    space = get_search_space("small", "minilm-l6-h384", task="rte")
    measured = manifest.read("minilm-l6-h384/ws-small-grid/rte.parquet").drop_duplicates("config_id")
    measured = measured.assign(latency_device="cpu", latency_dtype="float32", latency_threads=1)
    latency = conform(measured[[c for c in measured.columns if c in LATENCY_COLUMNS]], "latency", LATENCY_COLUMNS)
    relpath = "minilm-l6-h384/latency-small-grid/latency.parquet"
    manifest.record(relpath, latency, write_parquet(latency, data / relpath),
                    {"study": "latency-small-grid", "model": "minilm-l6-h384", "scheme": "latency"})
    standalone = "minilm-l6-h384/standalone-small/rte.parquet"
    curves = manifest.read(standalone).assign(latency_b1_median=np.nan)  # never timed
    manifest.record(standalone, curves, write_parquet(curves, data / standalone), {"study": "standalone-small"})
    manifest.save()
    report = build(data, tmp_path / "surrogates", n_members=1)
    entry = next(e for e in report["surrogates"] if e["scheme"] == "standalone")
    assert entry["latency_from"] == "latency-small-grid"
    auto = Benchmark("rte", scheme="standalone", data=data, surrogates=tmp_path / "surrogates")
    answer = auto.query(holdout[0])
    assert answer["source"] == "table+surrogate" and answer["latency"] > 0
    assert answer["latency_std"] > 0 and answer["out_of_data"] in (True, False)  # what it says of its prediction
    assert "valid_error_std" not in answer  # the table measured that
    assert answer["valid_error"] == Benchmark("rte", scheme="standalone", backend="table", data=data).query(
        holdout[0])["valid_error"]
    expected = 0.001 + 0.01 * space.params_fraction(holdout[0])  # the synthetic latency of the grid
    assert answer["latency"] == pytest.approx(expected, abs=0.002)
    frame = auto.query_many([holdout[0], holdout[1], {"num_layers": 3, "num_heads": 4, "num_units": 100}])
    assert frame["source"].tolist() == ["table+surrogate", "table+surrogate", "surrogate"]
    assert frame["latency"].notna().all() and frame.loc[0, "latency"] == pytest.approx(answer["latency"])
    assert frame["latency_std"].gt(0).all() and frame.loc[0, "latency_std"] == pytest.approx(answer["latency_std"])
    assert frame["valid_error_std"].isna().tolist() == [True, True, False]  # the table's values have none
    assert np.isnan(Benchmark("rte", scheme="standalone", backend="table", data=data).query(holdout[0])["latency"])
    fitted = SmallSpaceSurrogate.load(tmp_path / "surrogates/minilm-l6-h384/standalone/none/rte", space)
    assert fitted.metadata["latency_units_knots"] == sorted({0, 1536} | set(measured["num_units"]))  # timed there
    assert set(measured["num_units"]) <= set(fitted.units_knots)  # asked where the latency table was measured
    curves = manifest.read(standalone)  # learned beside fewer curves (another task's table): the same latency
    fewer = curves[curves["config_id"].isin(curves["config_id"].unique()[::2])]
    pair = [SmallSpaceSurrogate.fit(space, rows, objectives=("valid_error", "latency"), n_members=1, latency=measured,
                                    calibration_folds=0).predict_space(5)["latency"] for rows in (curves, fewer)]
    np.testing.assert_array_equal(pair[0], pair[1])
    largest = np.array([[6, 12, 1536]])  # beyond the curves' num_units, within the latency table's
    assert fitted.predict(largest)["latency"][0] == fitted._learned(largest, fitted.max_epoch)["latency"][0]


def test_pareto_front_is_non_dominated(tables):
    bench = Benchmark("rte", backend="table", data=tables[0])
    front = bench.pareto_front(("valid_error", "params_fraction"))
    values = front[["valid_error", "params_fraction"]].to_numpy()
    assert len(front) > 1 and pareto_mask(values).all()
    everything = bench.query_many(bench.sample(300, seed=1))[["valid_error", "params_fraction"]].to_numpy()
    for row in everything:  # nothing in the table dominates a front member
        assert not np.any(np.all(row <= values, axis=1) & np.any(row < values, axis=1))


def test_edge_cases_of_the_front_the_listing_and_the_surrogate(tables, tmp_path):
    import pickle
    import shutil

    from plm_nasbench.cli import for_the_shell

    root, surrogates, _, _, _ = tables
    data = tmp_path / "data"
    shutil.copytree(root, data)
    manifest = Manifest.load(data)
    relpath = "minilm-l6-h384/standalone-small/rte.parquet"
    curves = manifest.read(relpath)
    reach = curves["config_id"].unique()[:5]
    cut = curves[(curves["epoch"] < 5) | curves["config_id"].isin(reach)]  # most curves stop at epoch 4
    manifest.record(relpath, cut, write_parquet(cut, data / relpath), {"study": "standalone-small"})
    manifest.save()
    table = Benchmark("rte", scheme="standalone", backend="table", data=data)
    front = table.pareto_front(epoch=5)  # the configurations with rows at epoch 5, not an error for the others
    assert 1 <= len(front) <= 5 and set(front["source"]) == {"table"}

    copy = tmp_path / "surrogates"
    shutil.copytree(surrogates, copy)
    meta = copy / "minilm-l6-h384/weight_sharing/full/rte/surrogate.json"
    meta.write_text(meta.read_text() + " ")  # damaged: the listing goes on, without that surrogate
    listing = Benchmark.available(root, copy).set_index(["task", "space", "scheme"])
    assert not listing.loc[("rte", "small", "weight_sharing"), "surrogate"]

    bench = Benchmark("rte", backend="surrogate", data=root, surrogates=surrogates)
    assert bench._surrogate.predict([])["valid_error"].shape == (0,)
    assert len(bench.query_many([])) == 0
    bench.query({"num_layers": 2, "num_heads": 3, "num_units": 100})  # the whole space's answers now computed
    assert len(pickle.dumps(bench._surrogate)) < 2_000_000  # sent to workers without them

    assert for_the_shell("max_time 1080.0 s leaves nothing") == "the --hours budget of 1080.0 s leaves nothing"
    assert for_the_shell("max_time must be positive") == "max_time must be positive"
    assert for_the_shell("Benchmark(task='rte', backend='auto'); backend='live' evaluates") == (
        "Benchmark(task='rte', backend='auto'); --backend live evaluates")
    assert for_the_shell("no rows; use backend='table' or 'live'", ["auto", "table"]) == (  # simulate: no live
        "no rows; use --backend table or `plm-nasbench query --backend live`")
    assert for_the_shell("backend='surrogate' or 'auto' predicts it") == "--backend surrogate or --backend auto predicts it"


def test_benchmark_import_is_light():
    code = ("import sys; from plm_nasbench import Benchmark; "
            "print(any(m in sys.modules for m in ('torch', 'transformers', 'xgboost')))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_cli_query_and_pareto(tables, monkeypatch, capsys):
    from plm_nasbench.cli import main

    root, surrogates, _, grid, _ = tables
    monkeypatch.setenv("PLM_NASBENCH_DATA", str(root))
    monkeypatch.setenv("PLM_NASBENCH_SURROGATES", str(surrogates))
    assert main(["query", "--task", "rte", json.dumps(grid[10])]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["objective", "value", "std", "unit", "from"] and "source: table" in out[-1]
    rows = {line.split()[0]: line for line in out[1:-1]}
    assert list(rows) == list(OBJECTIVES) and rows["latency"].split()[-2:] == ["seconds", "table"]
    assert rows["num_params"].split()[1] == str(Benchmark("rte", data=root).query(grid[10])["num_params"])  # whole
    assert main(["query", "--task", "rte", '{"num_layers": 4, "num_heads": 6, "num_units": 700}']) == 0
    out = capsys.readouterr().out.splitlines()
    assert "source: surrogate" in out[-1] and len(out[1].split()) == 7  # valid_error, its std, "1 - metric"
    rows = {line.split()[0]: line.split()[-1] for line in out[1:-1]}
    assert rows["valid_error"] == "surrogate" and rows["num_params"] == rows["flops"] == "formula"
    assert main(["pareto", "--task", "rte"]) == 0
    assert "non-dominated" in capsys.readouterr().out
    assert main(["query", "--task", "rte", "--seed", "1", '{"num_layers": 4, "num_heads": 6, "num_units": 700}']) == 2
    assert capsys.readouterr().err.endswith("; leave out --seed for the mean over the seeds the table holds (off the "
                                            "table the surrogate predicts that mean)\n")
    assert main(["query", "--task", "rte", '{"num_layers": 40, "num_heads": 6, "num_units": 700}']) == 2
    assert "num_layers must be an integer in [0, 6]" in capsys.readouterr().err
    monkeypatch.delenv("PLM_NASBENCH_DATA")
    monkeypatch.delenv("PLM_NASBENCH_SURROGATES")
    folders = ["--data", str(root), "--surrogates", str(surrogates)]  # the same folders as options
    assert main(["query", "--task", "rte", *folders, '{"num_layers": 4, "num_heads": 6, "num_units": 700}']) == 0
    assert "surrogate" in capsys.readouterr().out
    assert main(["query", "--task", "rte", "--data", str(root / "nothere"), json.dumps(grid[10])]) == 2
    assert "data folder" in (err := capsys.readouterr().err) and "nothere' does not exist (it came from data= or --data)" in err
    assert main(["info", "--data", str(root)]) == 0
    assert f"Tables in {root}" in capsys.readouterr().out
    assert main(["info", "--data", str(root / "nothere")]) == 2
    captured = capsys.readouterr()
    assert "nothere' does not exist (it came from --data)" in captured.err and not captured.out  # nothing before it
    assert main(["pareto", "--task", "rte", *folders[:2], "--objectives", ","]) == 2
    assert "--objectives names nothing" in capsys.readouterr().err
    assert main(["pareto", "--task", "rte", *folders[:2], "--objectives", "valid_error,"]) == 2
    assert "--objectives 'valid_error,' has an empty name" in capsys.readouterr().err
    assert main(["pareto", "--task", "rte", *folders[:2], "--objectives", "valid_error, test_error"]) == 0
    header = [line for line in capsys.readouterr().out.splitlines() if line.lstrip().startswith("config")][0]
    assert header.split() == ["config", "valid_error", "test_error"]  # spaces dropped, test_error once
    assert main(["pareto", "--task", "rte", *folders[:2], "--objectives", "valid_error,valid_error"]) == 2
    assert "--objectives names valid_error more than once" in capsys.readouterr().err
    assert main(["query", "--task", "rte", *folders, "--scheme", "standalone", "--strategy", "kd",
                 json.dumps(grid[10])]) == 2
    assert "no super-network: leave strategy ('kd')" in capsys.readouterr().err
    assert main(["query", "--task", "rte", *folders, "--supernetwork-space", "layer", json.dumps(grid[10])]) == 2
    assert "supernetwork_space='layer'" in capsys.readouterr().err  # no such table here
    assert main(["query", "--task", "rte", "--backend", "live", "--data-dir", str(root / "nothere"),
                 json.dumps(grid[10])]) == 2
    assert "nothere' is not a folder" in capsys.readouterr().err  # --data-dir reaches the live evaluator


@pytest.mark.integration
def test_live_backend_evaluates_for_real(glue, tmp_path, monkeypatch):
    monkeypatch.setenv("PLM_NASBENCH_CACHE", str(tmp_path / "cache"))
    config = {"num_layers": 2, "num_heads": 4, "num_units": 300}
    bench = Benchmark("rte", backend="live", data_dir=glue, data=tmp_path / "no-tables")
    result = bench.query(config)
    assert result["source"] == "live" and 0 <= result["valid_error"] <= 1 and result["latency"] > 0
    assert result["num_params"] == bench.space.num_parameters(config)
    assert list((tmp_path / "cache" / "supernetworks" / "minilm-l6-h384" / "rte").glob("full-seed0-*/model.safetensors"))
    standalone = Benchmark("rte", scheme="standalone", backend="live", data_dir=glue, data=tmp_path / "no-tables")
    curve_point = standalone.query(config, epoch=2)
    assert curve_point["epoch"] == 2 and curve_point["runtime"] > 0 and curve_point["source"] == "live"


def test_surrogate_answers_the_plateau_value_exactly(tables):
    """Sub-networks that predict one class share one error exactly; the surrogate reproduces those ties."""
    from plm_nasbench.spaces import get_search_space
    from plm_nasbench.surrogates.small import PLATEAU_SUFFIX

    root, _, _, _, holdout = tables
    space = get_search_space("small", "minilm-l6-h384", task="rte")
    table = Manifest.load(root).read("minilm-l6-h384/ws-small-grid/rte.parquet")
    collapsed = table["num_layers"] <= 2
    table.loc[collapsed, "valid_error"] = 0.5073627844712182
    surrogate = SmallSpaceSurrogate.fit(space, table, objectives=("valid_error", "test_error"), n_members=2)
    assert surrogate.metadata["plateaus"] == {"valid_error": 0.5073627844712182}
    assert "test_error" + PLATEAU_SUFFIX not in surrogate.ensembles  # no value repeats there
    fields = np.array([[c["num_layers"], c["num_heads"], c["num_units"]] for c in holdout])
    predicted = surrogate.predict(fields)["valid_error"]
    on = fields[:, 0] <= 2
    assert (predicted[on] == 0.5073627844712182).mean() > 0.95
    assert (predicted[~on] != 0.5073627844712182).mean() > 0.95


def test_query_many_takes_any_iterable_and_answers_with_the_columns_of_query(tables, tmp_path):
    root, surrogates, _, grid, _ = tables
    for backend in ("table", "auto"):
        bench = Benchmark("rte", backend=backend, data=root, surrogates=surrogates)
        expected = bench.query_many(grid[:5])
        assert expected["valid_error"].notna().all()
        for configs in (iter(grid[:5]), (c for c in grid[:5]), np.array(grid[:5], dtype=object), pd.Series(grid[:5]),
                        tuple(grid[:5])):
            pd.testing.assert_frame_equal(bench.query_many(configs), expected)
        single = bench.query(grid[3])
        row = expected.iloc[3]
        assert set(single) <= set(expected.columns)
        assert {k: row[k] for k in ("epoch", "seed", "n_seeds", "source")} == {
            k: single[k] for k in ("epoch", "seed", "n_seeds", "source")}
        assert bench.query_many(grid[:2], seed=1)["seed"].tolist() == [1, 1]
        frame = pd.DataFrame(grid[:5], index=[50, 40, 30, 20, 10])  # answers join back onto a DataFrame's index
        pd.testing.assert_frame_equal(bench.query_many(frame), expected.set_axis(frame.index))
    mixed = Benchmark("rte", data=root, surrogates=surrogates).query_many(
        [grid[0], {"num_layers": 3, "num_heads": 4, "num_units": 100}])
    assert mixed["source"].tolist() == ["table", "surrogate"] and mixed["n_seeds"].tolist() == [2, 0]
    assert mixed["epoch"].tolist() == [5, 5]
    with pytest.raises(TypeError, match="got the string 'abc'"):
        bench.query_many("abc")


def test_pareto_front_leaves_out_configurations_without_the_objective(tables, tmp_path):
    """A NaN objective used to stop the dominance sweep, so dominated configurations were kept."""
    from conftest import synthetic_rows
    from plm_nasbench.spaces import get_search_space

    root, _, _, grid, _ = tables
    space = get_search_space("small", "minilm-l6-h384", task="rte")
    frame = synthetic_rows(space, grid, "ws-small-grid")
    untimed = (frame["num_layers"] == 1) & (frame["num_heads"] > 0)  # (1, 0, 0) is the empty network, timed
    frame.loc[untimed, "latency_b1_median"] = np.nan
    data = _grid_folder(tmp_path, frame)
    bench = Benchmark("rte", backend="table", data=data)
    with pytest.warns(UserWarning, match=f"{untimed.sum()} of {len(frame)} configurations lack "
                                         "valid_error or latency"):
        front = bench.pareto_front(("valid_error", "latency"))
    values = front[["valid_error", "latency"]].to_numpy()
    assert np.isfinite(values).all() and pareto_mask(values).all()
    measured = bench.query_many(grid)
    measured = measured[measured["latency"].notna()][["valid_error", "latency"]].to_numpy()
    assert len(front) == pareto_mask(measured).sum()
    for objectives in (("valid_error", "valid_error"), ()):
        with pytest.raises(ValueError, match="objectives must name at least one objective, each once"):
            bench.pareto_front(objectives)


GRID_TABLE = "minilm-l6-h384/ws-small-grid/rte.parquet"


def _grid_folder(tmp_path, frame: pd.DataFrame):
    """A data folder under ``tmp_path`` whose only table is ``frame``, as RTE's weight-sharing grid."""
    data = tmp_path / "data"
    manifest = Manifest.load(data)
    manifest.record(GRID_TABLE, frame, write_parquet(frame, data / GRID_TABLE), {"study": "ws-small-grid"})
    manifest.save()
    return data


def test_configurations_of_the_empty_network_answer_alike(tables, tmp_path):
    """Every configuration keeping no layer (0 layers, or layers without heads and units) is one network: its
    timings answer as their median, whichever is asked, so a search cannot draw such configurations until one comes
    with a fast timing; the table file keeps them all. A spelling of that network the table lacks gets the table's
    answer (also with backend auto, which would otherwise ask the surrogate). The surrogate gives them one answer
    too."""
    from conftest import synthetic_rows
    from plm_nasbench.tables import served_rows

    _, surrogates, _, grid, _ = tables
    space = get_search_space("small", "minilm-l6-h384", task="rte")
    frame = synthetic_rows(space, grid, "ws-small-grid", seeds=(0, 1))
    empty = SmallSpace.empty_networks(*(frame[f].to_numpy(dtype=np.int64) for f in space.bounds))
    assert (empty & (frame["num_layers"] > 0).to_numpy()).sum() == 2 * 6  # layers kept without heads or units
    timings = np.random.default_rng(0).uniform(0.3e-3, 0.7e-3, int(empty.sum()))
    frame.loc[empty, "latency_b1_median"] = timings
    frame.loc[empty & (frame["seed"] == 1).to_numpy(), "cumulative_time"] = 9.0  # another seed: its own median
    data = _grid_folder(tmp_path, frame)
    bench = Benchmark("rte", backend="table", data=data)
    alike = [c for c in grid if SmallSpace.empty_networks(*c.values())]
    answers = bench.query_many(alike, seed=0)
    assert answers["latency"].nunique() == 1 and answers["runtime"].nunique() == 1
    assert answers["latency"].iloc[0] == pytest.approx(np.median(timings[frame.loc[empty, "seed"] == 0]))
    assert bench.query(alike[3], seed=1)["runtime"] == 9.0
    others = bench.query_many([c for c in grid if not SmallSpace.empty_networks(*c.values())][:20], seed=0)
    assert others["latency"].nunique() > 1  # other configurations keep their own measurements
    served = served_rows(Manifest.load(data), "minilm-l6-h384", "rte", "small", "weight_sharing", "full", "small")
    assert served.loc[empty, "latency_b1_median"].nunique() == 2  # one per seed
    assert Manifest.load(data).read(GRID_TABLE)["latency_b1_median"].nunique() > len(timings) / 2  # the file keeps all
    unseen = [{"num_layers": 0, "num_heads": 7, "num_units": 300}, {"num_layers": 0, "num_heads": 12, "num_units": 999}]
    assert not any(c in grid for c in unseen)  # spellings of the empty network the table lacks: the table answers them
    assert bench.query(unseen[0], seed=0) == bench.query(alike[0], seed=0)
    for backend in ("table", "auto"):  # auto: from the table too, never the surrogate's answer beside the table's
        answers = Benchmark("rte", backend=backend, data=data, surrogates=surrogates).query_many(unseen + alike)
        assert answers.nunique(dropna=False).max() == 1 and (answers["source"] == "table").all(), backend
    with pytest.raises(ConfigNotInTableError, match="not in the table"):  # a configuration with layers stays exact
        bench.query({"num_layers": 4, "num_heads": 7, "num_units": 300})
    held = (frame[list(space.bounds)] == pd.Series(alike[3])).all(axis=1).to_numpy()
    sparse = frame[~(empty & (frame["seed"] == 1).to_numpy()) | held]  # seed 1 of the empty network: one spelling
    (tmp_path / "sparse").mkdir()
    sparse_bench = Benchmark("rte", backend="table", data=_grid_folder(tmp_path / "sparse", sparse))
    for config in (alike[0], alike[3], unseen[0]):  # every spelling answers every seed any of them holds
        assert sparse_bench.query(config, seed=1)["runtime"] == 9.0
        assert sparse_bench.query(config)["n_seeds"] == 2
    predicted = Benchmark("rte", backend="surrogate", surrogates=surrogates).query_many(
        unseen + [{"num_layers": 4, "num_heads": 0, "num_units": 0}])
    assert predicted.drop(columns="out_of_data").nunique(dropna=False).max() == 1


def test_a_supernetwork_costs_the_same_in_every_benchmark_on_it(tables, tmp_path):
    """A network trained again records each training's time in the tables made on it: every benchmark on it (any
    table, backend or row order) charges the least of them, not whichever row comes first."""
    import shutil

    from plm_nasbench.surrogates.build import build
    from plm_nasbench.tables import supernetwork_costs, supernetwork_seconds

    root, _, _, grid, holdout = tables
    data = tmp_path / "data"
    shutil.copytree(root, data)
    manifest = Manifest.load(data)
    times = {"ws-small-grid": {0: 300.0, 1: 310.0}, "ws-small-holdout": {0: 200.0}}  # seed 0's trained again, faster
    for study, by_seed in times.items():
        relpath = f"minilm-l6-h384/{study}/rte.parquet"
        frame = manifest.read(relpath)
        frame = frame.assign(supernetwork_id=frame["seed"].map({0: "net0", 1: "net1"}),
                             supernetwork_train_time=frame["seed"].map(by_seed))
        manifest.record(relpath, frame, write_parquet(frame, data / relpath), {"study": study})
    manifest.save()
    assert supernetwork_costs(manifest, "minilm-l6-h384", "rte") == {"net0": 200.0, "net1": 310.0}
    grid_rows = manifest.read("minilm-l6-h384/ws-small-grid/rte.parquet")
    assert supernetwork_seconds(grid_rows) == 305.0  # (300 + 310) / 2: its own rows
    retrained = grid_rows.assign(supernetwork_train_time=np.where(  # half of seed 0's rows: a second training
        (grid_rows["seed"] == 0) & (grid_rows.groupby("seed").cumcount() % 2 == 1), 280.0,
        grid_rows["supernetwork_train_time"]))
    assert supernetwork_seconds(retrained) == supernetwork_seconds(retrained[::-1]) == 295.0  # whichever comes first
    report = build(data, tmp_path / "surrogates", n_members=1, calibration_folds=0)  # learns from the grid alone
    assert report["surrogates"]
    table = Benchmark("rte", backend="table", data=data)
    alone = Benchmark("rte", backend="surrogate", surrogates=tmp_path / "surrogates")
    assert table.supernetwork_cost == alone.supernetwork_cost == 255.0  # (200 + 310) / 2
    holdout = data / "minilm-l6-h384/ws-small-holdout/rte.parquet"  # a damaged table another benchmark does not
    holdout.write_bytes(holdout.read_bytes()[:-8])                     # read: left out of the costs, with a warning
    with pytest.warns(UserWarning, match="ws-small-holdout/rte.parquet.*left out of their costs"):
        assert supernetwork_costs(Manifest.load(data), "minilm-l6-h384", "rte") == {"net0": 300.0, "net1": 310.0}


def test_surrogates_answer_the_fidelities_and_costs_of_their_tables(tables):
    """A weight-sharing surrogate answers the super-network's epoch only and knows its training time; no learned
    objective is negative; a standalone surrogate's cumulative runtime never falls from one epoch to the next."""
    root, surrogates, _, grid, _ = tables
    table = Benchmark("rte", backend="table", data=root)
    alone = Benchmark("rte", backend="surrogate", surrogates=surrogates)
    assert alone.fidelities == table.fidelities == [5]
    assert alone.supernetwork_cost == table.supernetwork_cost == pytest.approx(100.5)  # seeds 0 and 1
    with pytest.raises(ConfigNotInTableError, match="epoch 1 is not a fidelity"):
        alone.query(grid[0], epoch=1)
    standalone = Benchmark("rte", scheme="standalone", backend="surrogate", surrogates=surrogates)
    assert standalone.fidelities == [1, 2, 3, 4, 5] and standalone.supernetwork_cost == 0.0
    space = standalone.space
    every = pd.DataFrame(np.stack(np.unravel_index(np.arange(space.num_configs),
                                                   [high + 1 for _, high in space.bounds.values()]), axis=1),
                         columns=list(space.bounds))
    learned = [name for name, o in OBJECTIVES.items() if o.kind == "learned"]
    for bench in (alone, standalone):
        answers = bench.query_many(every)
        assert (answers[learned].fillna(0) >= 0).all().all()
    runtimes = np.stack([standalone.query_many(every, epoch=e)["runtime"].to_numpy() for e in range(1, 6)])
    assert (np.diff(runtimes, axis=0) >= 0).all()


def test_arguments_that_mean_nothing_for_a_benchmark_are_refused(tables):
    root, surrogates, _, grid, _ = tables
    for kwargs in ({"strategy": "sandwich"}, {"supernetwork_space": "layer"}):
        with pytest.raises(ValueError, match=f"scheme=.standalone. .* no super-network: leave {next(iter(kwargs))}"):
            Benchmark("rte", scheme="standalone", data=root, surrogates=surrogates, **kwargs)
    standalone = Benchmark("rte", scheme="standalone", data=root, surrogates=surrogates)
    again = Benchmark("rte", scheme="standalone", data=root, surrogates=surrogates,  # as it reports itself
                      strategy=standalone.strategy, supernetwork_space=standalone.supernetwork_space)
    assert (again.strategy, again.supernetwork_space) == ("none", None)
    assert Benchmark("rte", scheme="standalone", data=root, surrogates=surrogates, strategy=None).strategy == "none"
    listed = Benchmark.available(root, surrogates).query("scheme == 'standalone'").iloc[0]
    Benchmark(**{k: listed[k] for k in ("task", "model", "space", "scheme", "strategy", "supernetwork_space")},
              data=root, surrogates=surrogates)
    alone = Benchmark("rte", backend="surrogate", surrogates=surrogates)
    for method in (alone.table, alone.pareto_front, alone.configs):
        with pytest.raises(ValueError, match="backend='surrogate' loads no table; .*backend='table' or 'auto'"):
            method()
    table = Benchmark("rte", backend="table", data=root)
    held = len(table.configs())
    drawn = table.sample(held, seed=3)  # every configuration once: without replacement
    assert len({json.dumps(c, sort_keys=True) for c in drawn}) == held > len(grid)
    with pytest.raises(ValueError, match=f"n = {held + 1} is more than the {held:,} configurations"):
        table.sample(held + 1)


def test_an_installation_without_the_checkouts_tables_says_how_to_get_them(tmp_path, monkeypatch):
    import plm_nasbench.benchmark.core as core

    monkeypatch.delenv("PLM_NASBENCH_DATA", raising=False)
    monkeypatch.setattr(core, "default_data_dir", lambda: tmp_path / "site-packages" / "data")
    with pytest.raises(FileNotFoundError, match="the package's data folder .* does not exist: .*pip install -e"):
        Benchmark("rte")
