"""The Syne Tune integration on the synthetic tables: blackbox answers, export format, a simulated run."""

from __future__ import annotations

import numpy as np
import pytest

from plm_nasbench import Benchmark
from plm_nasbench.integrations.syne_tune import (ELAPSED_TIME, serialize_blackbox, simulated_backend,
                                                 tabular_blackbox, to_blackbox)


def test_blackbox_answers_like_the_benchmark(tables):
    root, surrogates, _, grid, _ = tables
    bench = Benchmark("rte", data=root, surrogates=surrogates)
    blackbox = to_blackbox(bench, objectives=("valid_error", "params_fraction"))
    result = blackbox.objective_function(grid[7], fidelity={"epoch": 5})
    expected = bench.query(grid[7])
    assert result["valid_error"] == pytest.approx(expected["valid_error"])
    assert result[ELAPSED_TIME] == pytest.approx(expected["runtime"])
    all_fidelities = blackbox.objective_function(grid[7])
    assert all_fidelities.shape == (1, 3)
    between = blackbox.objective_function({"num_layers": 2, "num_heads": 5, "num_units": 99}, fidelity={"epoch": 5})
    assert np.isfinite(between["valid_error"])  # answered by the surrogate


def test_export_round_trip(tables, tmp_path):
    from syne_tune.blackbox_repository.blackbox_tabular import deserialize

    bench = Benchmark("rte", backend="table", data=tables[0])
    serialize_blackbox(bench, tmp_path / "bb", objectives=("valid_error", "num_params"))
    loaded = deserialize(str(tmp_path / "bb"))["rte"]
    original = tabular_blackbox(bench, objectives=("valid_error", "num_params"))
    assert loaded.objectives_names == ["valid_error", "num_params", ELAPSED_TIME]
    np.testing.assert_allclose(loaded.objectives_evaluations, original.objectives_evaluations)
    config = bench.configs()[11]
    got = loaded.objective_function(config, fidelity={"epoch": 5}, seed=1)
    assert got["valid_error"] == pytest.approx(bench.query(config, seed=1)["valid_error"], abs=1e-6)


def test_simulated_random_search_runs(tables, tmp_path, monkeypatch):
    from syne_tune import StoppingCriterion, Tuner
    from syne_tune.backend.simulator_backend.simulator_callback import SimulatorCallback
    from syne_tune.optimizer.schedulers.single_fidelity_scheduler import SingleFidelityScheduler

    monkeypatch.setenv("SYNETUNE_FOLDER", str(tmp_path))
    root, surrogates, *_ = tables
    bench = Benchmark("rte", data=root, surrogates=surrogates)
    backend = simulated_backend(bench, objectives=("valid_error", "params_fraction"))
    scheduler = SingleFidelityScheduler(bench.space.syne_tune_space(), metrics=["valid_error", "params_fraction"],
                                        do_minimize=True, searcher="random_search", random_seed=0)
    tuner = Tuner(trial_backend=backend, scheduler=scheduler, stop_criterion=StoppingCriterion(max_num_evaluations=20),
                  n_workers=1, sleep_time=0, callbacks=[SimulatorCallback()], tuner_name="plm-nasbench-test",
                  save_tuner=False, suffix_tuner_name=False)
    tuner.run()
    results = tuner.tuning_status.df if hasattr(tuner.tuning_status, "df") else None
    assert tuner.tuning_status.num_trials_finished >= 20
    assert results is None or results["valid_error"].notna().all()
