"""The tables and surrogates committed to the repository are consistent with each other (the package's folders,
whatever $PLM_NASBENCH_DATA and $PLM_NASBENCH_SURROGATES say)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from plm_nasbench import ConfigNotInTableError
from plm_nasbench.paths import PACKAGE_DATA, PACKAGE_SURROGATES
from plm_nasbench.surrogates.build import fitted_elsewhere
from plm_nasbench.tables import Manifest


def test_every_shipped_table_matches_its_checksum_and_row_count():
    manifest = Manifest.load(PACKAGE_DATA)
    for relpath, entry in manifest.tables.items():
        assert len(manifest.read(relpath)) == entry["rows"], relpath


def test_every_shipped_surrogate_learned_from_the_shipped_tables():
    """A table regenerated without rebuilding the surrogates would leave them out of backend='auto'."""
    manifest = Manifest.load(PACKAGE_DATA)
    folders = [p.parent for p in PACKAGE_SURROGATES.glob("*/*/*/*/surrogate.json")]
    assert folders
    for folder in folders:
        assert fitted_elsewhere(folder, manifest) is None, folder
        record = json.loads((folder / "surrogate.json").read_text())  # the tables' versions, not only the rows
        assert record["train_tables"] == {p: manifest.tables[p]["sha256"] for p in record["train_tables"]}, folder


def test_every_space_takes_back_its_table_rows_and_fronts():
    """``table()`` and ``pareto_front()`` output (and whole-number float columns, extra columns) go back into
    ``query``/``query_many`` on every space, also those whose configurations are not typed columns."""

    import pandas as pd

    from plm_nasbench import Benchmark

    for space in ("small", "layer", "medium", "large"):
        bench = Benchmark("rte", space=space, backend="table", data=PACKAGE_DATA)
        rows, front = bench.table().head(3), bench.pareto_front()
        expected = [bench.query(json.loads(config))["valid_error"] for config in rows["config"]]
        assert [bench.query(row)["valid_error"] for _, row in rows.iterrows()] == expected, space
        assert bench.query_many(rows)["valid_error"].tolist() == expected, space
        assert bench.query_many(front)["valid_error"].tolist() == front["valid_error"].tolist(), space
        if space != "large":
            configs = pd.DataFrame(bench.configs()[:3])
            assert (bench.query_many(configs.astype(float).assign(note="x"))["valid_error"].tolist()
                    == bench.query_many(configs)["valid_error"].tolist()), space
        if space in ("medium", "large"):  # keyed by config_id: a missing configuration is counted and placed too
            configs = bench.configs()
            outside = bench.space.sample(np.random.default_rng(0))
            with pytest.raises(ConfigNotInTableError, match=r"1 of 3 configurations are not in the table \(first: #1"
                                                            r".*nearest_config\(config\)"):
                bench.query_many([configs[0], outside, configs[1]])


def test_the_latency_front_on_auto_has_the_configurations_whose_latency_is_predicted(capsys):
    """RTE's table lacks latency for the grid's offset columns: ``auto``'s front answers them as ``query`` does, and
    ``plm-nasbench pareto`` says which of the values it prints were predicted."""
    from plm_nasbench import Benchmark
    from plm_nasbench.cli import main

    objectives = ("valid_error", "latency")
    with pytest.warns(UserWarning, match=r"configurations lack valid_error or latency in the table and are left out"):
        measured = Benchmark("rte", backend="table", data=PACKAGE_DATA).pareto_front(objectives)
    auto = Benchmark("rte", data=PACKAGE_DATA)
    front = auto.pareto_front(objectives)
    assert (measured["source"] == "table").all() and (front["source"] == "table+surrogate").any()
    for _, row in front.iterrows():
        answer = auto.query(json.loads(row["config"]))
        assert (answer["latency"], answer["source"]) == (row["latency"], row["source"])
    values = front[list(objectives)].to_numpy()
    for row in measured[list(objectives)].to_numpy():  # no measured configuration dominates the front
        assert not np.any(np.all(row <= values, axis=1) & np.any(row < values, axis=1))
    front = auto.pareto_front()  # params_fraction is never predicted, but a row's latency may be: it says so
    assert front["latency"].notna().all() and (front["source"] == "table+surrogate").any()
    for _, row in front.iterrows():
        answer = auto.query(json.loads(row["config"]))
        assert (answer["source"], answer.get("latency_std")) == (row["source"], row["latency_std"]) or (
            answer["source"] == row["source"] == "table" and np.isnan(row["latency_std"]))
    for objectives, header in (("valid_error,params_fraction", ["config", "valid_error", "params_fraction", "test_error"]),
                               ("valid_error,latency", ["config", "valid_error", "latency", "test_error",
                                                        "latency_std", "source"])):
        assert main(["pareto", "--task", "rte", "--data", str(PACKAGE_DATA), "--objectives", objectives]) == 0
        assert capsys.readouterr().out.splitlines()[1].split() == header


def test_a_shipped_supernetwork_costs_the_same_in_every_space_and_backend():
    """RTE's network was trained three times (its cache lost); its tables record different times, and every
    benchmark on it charges the least. Every shipped weight-sharing surrogate charges what its tables do (a
    table merged later with a lower time for the network needs the surrogates rebuilt)."""
    from plm_nasbench import Benchmark

    folders = {"data": PACKAGE_DATA, "surrogates": PACKAGE_SURROGATES}
    costs = {Benchmark("rte", space=space, backend="table", data=PACKAGE_DATA).supernetwork_cost
             for space in ("small", "layer", "medium", "large")}
    assert len(costs) == 1 and 0 < costs.pop() < 2088  # the first training's time, which its grid records
    for folder in PACKAGE_SURROGATES.glob("*/weight_sharing/full/*/surrogate.json"):
        task = folder.parent.name
        assert (Benchmark(task, backend="surrogate", **folders).supernetwork_cost
                == Benchmark(task, backend="table", data=PACKAGE_DATA).supernetwork_cost), task
