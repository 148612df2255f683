"""The Syne Tune integration on the synthetic tables: blackbox answers, export format, a simulated run."""

from __future__ import annotations

import ast
import json

import numpy as np
import pandas as pd
import pytest

from plm_nasbench import Benchmark
from plm_nasbench.benchmark import ConfigNotInTableError
from plm_nasbench.integrations.syne_tune import ELAPSED_TIME, serialize_blackbox, tabular_blackbox


def test_blackbox_answers_like_the_benchmark(tables):
    root, surrogates, _, grid, _ = tables
    bench = Benchmark("rte", data=root, surrogates=surrogates)
    blackbox = bench.to_blackbox(objectives=("valid_error", "params_fraction"))
    result = blackbox.objective_function(grid[7], fidelity={"epoch": 5})
    expected = bench.query(grid[7])
    assert result["valid_error"] == pytest.approx(expected["valid_error"])
    assert result[ELAPSED_TIME] == pytest.approx(expected["runtime"])
    all_fidelities = blackbox.objective_function(grid[7])
    assert all_fidelities.shape == (1, 3)
    between = blackbox.objective_function({"num_layers": 2, "num_heads": 5, "num_units": 99}, fidelity={"epoch": 5})
    assert np.isfinite(between["valid_error"])  # answered by the surrogate
    one_seed = tables[4][0]  # a hold-out configuration: seed 0 only, while Syne Tune's simulator may draw seed 1
    drawn = blackbox.objective_function(one_seed, fidelity={"epoch": 5}, seed=1)
    assert drawn["valid_error"] == pytest.approx(bench.query(one_seed, seed=0)["valid_error"])
    with pytest.raises(ConfigNotInTableError, match="with seed 1 is not in the table .* query with seed=None"):
        bench.query(one_seed, seed=1)
    # by default the objectives the benchmark has a value for wherever it answers: the synthetic standalone table
    # has no latency at batch size 32 nor memory, so its table-only benchmark leaves them out; named, they are an
    # error, not a NaN for the scheduler
    curves = Benchmark("rte", scheme="standalone", backend="table", data=root)
    assert curves.answered_objectives == ("valid_error", "test_error", "num_params", "params_fraction", "flops",
                                          "latency", "runtime")
    assert set(curves.to_blackbox().objective_function(curves.configs()[0], {"epoch": 2})) == {
        *curves.answered_objectives, ELAPSED_TIME}
    with pytest.raises(ValueError, match="has no value for memory_b32 in every configuration it answers"):
        curves.to_blackbox(("valid_error", "memory_b32"))  # refused where it is made, before a tuner starts
    with pytest.raises(ValueError, match=r"seed 7: this blackbox has 2 seed\(s\), 0 to 1"):
        blackbox.objective_function(one_seed, fidelity={"epoch": 5}, seed=7)
    # a string is one name, not a sequence of letters; names are checked where the blackbox is made
    for make in (bench.to_blackbox, bench.simulated_backend, lambda objectives: tabular_blackbox(bench, objectives)):
        with pytest.raises(TypeError, match="got the string 'valid_error'"):
            make(objectives="valid_error")
        with pytest.raises(ValueError, match="unknown objective.*'accuracy'; known: valid_error"):
            make(objectives=("valid_error", "accuracy"))


def test_export_round_trip(tables, tmp_path):
    from syne_tune.blackbox_repository import add_surrogate
    from syne_tune.blackbox_repository.blackbox_tabular import deserialize

    bench = Benchmark("rte", backend="table", data=tables[0])
    assert bench.seeds == [0, 1]  # the grid has two seeds, the hold-out configurations one
    serialize_blackbox(bench, tmp_path / "bb", objectives=("valid_error", "num_params"))
    loaded = deserialize(str(tmp_path / "bb"))["rte"]
    original = tabular_blackbox(bench, objectives=("valid_error", "num_params"))
    assert loaded.objectives_names == ["valid_error", "num_params", ELAPSED_TIME]
    np.testing.assert_allclose(loaded.objectives_evaluations, original.objectives_evaluations)
    assert loaded.num_seeds == 1 and not np.isnan(loaded.objectives_evaluations).any()  # seed 0: every config has it
    config = bench.configs()[11]
    got = loaded.objective_function(config, fidelity={"epoch": 5}, seed=0)
    assert got["valid_error"] == pytest.approx(bench.query(config, seed=0)["valid_error"], abs=1e-6)
    # a sampler may combine field values into a configuration the table lacks: add_surrogate answers it
    held = {tuple(c.values()) for c in bench.configs()}
    units = sorted({c["num_units"] for c in bench.configs()})
    off_table = next({"num_layers": 2, "num_heads": 3, "num_units": u} for u in units if (2, 3, u) not in held)
    answered = add_surrogate(loaded).objective_function(off_table, fidelity={"epoch": 5}, seed=0)
    assert np.isfinite(np.asarray(answered["valid_error"], dtype=float)).all()
    # the fields are ranges, which add_surrogate encodes as numbers (a choice is one-hot: no order of values)
    assert {k: (d.lower, d.upper) for k, d in loaded.configuration_space.items()} == {
        "num_layers": (min(c["num_layers"] for c in bench.configs()), max(c["num_layers"] for c in bench.configs())),
        "num_heads": (min(c["num_heads"] for c in bench.configs()), max(c["num_heads"] for c in bench.configs())),
        "num_units": (units[0], units[-1])}


def test_export_holds_only_measured_values(tables):
    bench = Benchmark("rte", scheme="standalone", backend="table", data=tables[0])
    exported = tabular_blackbox(bench)  # the synthetic tables time no latency or memory: those are left out
    assert "valid_error" in exported.objectives_names and "memory_b32" not in exported.objectives_names
    assert not np.isnan(exported.objectives_evaluations).any()
    with pytest.raises(ValueError, match=r"no value for memory_b32 in 300 rows of 300"):
        tabular_blackbox(bench, objectives=("valid_error", "memory_b32"))


def test_simulated_random_search_runs(tables, tmp_path, monkeypatch):
    from syne_tune import StoppingCriterion, Tuner
    from syne_tune.backend.simulator_backend.simulator_callback import SimulatorCallback
    from syne_tune.optimizer.schedulers.single_fidelity_scheduler import SingleFidelityScheduler
    from syne_tune.tuner_callback import TunerCallback

    monkeypatch.setenv("SYNETUNE_FOLDER", str(tmp_path))
    root, surrogates, *_ = tables
    bench = Benchmark("rte", data=root, surrogates=surrogates)
    backend = bench.simulated_backend(objectives=("valid_error", "params_fraction"))
    scheduler = SingleFidelityScheduler(bench.space.syne_tune_space(), metrics=["valid_error", "params_fraction"],
                                        do_minimize=True, searcher="random_search", random_seed=0)

    class CountWaits(TunerCallback):
        waits = 0

        def on_tuning_sleep(self, sleep_time: float) -> None:
            CountWaits.waits += 1

    tuner = Tuner(trial_backend=backend, scheduler=scheduler, stop_criterion=StoppingCriterion(max_num_evaluations=20),
                  n_workers=1, sleep_time=0, callbacks=[SimulatorCallback(), CountWaits()],
                  tuner_name="plm-nasbench-test", save_tuner=False, suffix_tuner_name=False)
    tuner.run()
    results = tuner.tuning_status.df if hasattr(tuner.tuning_status, "df") else None
    assert tuner.tuning_status.num_trials_finished >= 20
    assert results is None or results["valid_error"].notna().all()
    # each wait moves the clock to the next event (a start, result or end), not by a fixed step or in real time:
    # a handful of waits per trial, and one worker's clock passes every trial's cost
    trials = [{k: t.config[k] for k in bench.space.bounds} for t in backend._trial_dict.values()]
    assert CountWaits.waits <= 4 * len(trials)
    assert backend.time_keeper.time() >= sum(bench.query(c)["runtime"] for c in trials[:20])


@pytest.mark.parametrize("method", ["ls", "nsga2", "rs", "morea"])
def test_short_simulations_finish_within_budget(method, tables, tmp_path, monkeypatch):
    from syne_tune import StoppingCriterion, Tuner
    from syne_tune.backend.simulator_backend.simulator_callback import SimulatorCallback
    from syne_tune.optimizer.schedulers.single_fidelity_scheduler import SingleFidelityScheduler

    from plm_nasbench.integrations.searchers import NSGA2, LocalSearch
    from plm_nasbench.protocol import front_ranks

    monkeypatch.setenv("SYNETUNE_FOLDER", str(tmp_path))
    root, surrogates, *_ = tables
    bench = Benchmark("rte", data=root, surrogates=surrogates)
    space, metrics = bench.space.syne_tune_space(), ["valid_error", "params_fraction"]
    searcher = {"ls": LocalSearch(space, random_seed=1, num_initial=5), "nsga2": NSGA2(space, random_seed=1, population_size=6),
                "rs": "random_search", "morea": "regularized_evolution"}[method]
    scheduler = SingleFidelityScheduler(space, metrics=metrics, do_minimize=True, searcher=searcher, random_seed=1)
    tuner = Tuner(trial_backend=bench.simulated_backend(objectives=tuple(metrics)), scheduler=scheduler,
                  stop_criterion=StoppingCriterion(max_num_evaluations=30), n_workers=1, sleep_time=0,
                  callbacks=[SimulatorCallback()], tuner_name=f"test-{method}", save_tuner=False,
                  suffix_tuner_name=False)
    tuner.run()
    trials = tuner.trial_backend._trial_dict
    # the budget, plus what the simulator had in flight when it stopped
    assert 30 <= tuner.tuning_status.num_trials_finished <= 32
    configs = [{k: t.config[k] for k in bench.space.bounds} for t in trials.values()]
    values = np.array([[bench.query(c)[m] for m in metrics] for c in configs])
    assert_front_is_the_non_dominated_set(values, front_ranks(values) == 0)
    if method == "ls":  # after the initial random configurations, each proposal is one field away from an earlier one
        for i in range(5, len(configs)):
            assert min(sum(configs[i][k] != p[k] for k in configs[i]) for p in configs[:i]) <= 1


def assert_front_is_the_non_dominated_set(values: np.ndarray, on_front: np.ndarray) -> None:
    """``on_front`` marks exactly the points that no other point dominates (checked pair by pair)."""
    dominated = [bool(np.any(np.all(values <= v, axis=1) & np.any(values < v, axis=1))) for v in values]
    assert on_front.any() and on_front.tolist() == [not d for d in dominated]


@pytest.mark.parametrize("method", ["rs", "ls", "morea", "nsga2", "ehvi", "moasha"])
def test_every_method_finishes_within_its_budget_with_a_non_dominated_front(method, tables):
    """A short simulated run of each baseline: as many trials as the budget (MO-ASHA: on the standalone scheme,
    stopping some trials early), simulated time that only grows, and, on what the method observed, the front the
    package reports (the points the fronts plot and the hypervolume use) is exactly the non-dominated set."""
    from plm_nasbench.protocol import front_ranks, non_dominated
    from plm_nasbench.simulation import run_method

    if method == "ehvi":
        pytest.importorskip("botorch")
    root, surrogates, *_ = tables
    scheme = "standalone" if method == "moasha" else "weight_sharing"
    bench = Benchmark("rte", scheme=scheme, data=root, surrogates=surrogates)
    objectives = ["valid_error", "params_fraction"]
    results = run_method(bench, method, seed=3, max_evaluations=15, objectives=objectives)
    assert results["trial"].nunique() == 15 and results["time"].is_monotonic_increasing
    if method == "moasha":  # some trials are stopped at a rung: fewer results than 15 full curves
        assert len(results) < 15 * len(bench.fidelities)
    final = results.groupby("trial").last()[objectives].to_numpy()
    assert_front_is_the_non_dominated_set(final, front_ranks(final) == 0)
    front = non_dominated(final)
    assert sorted(map(tuple, front)) == sorted({tuple(v) for v, on in zip(final, front_ranks(final) == 0) if on})


def test_front_ranks_and_crowding_by_hand():
    from plm_nasbench.integrations.searchers import crowding_distance
    from plm_nasbench.protocol import front_ranks

    values = np.array([[1, 4], [2, 2], [4, 1], [3, 3], [5, 5]])
    assert front_ranks(values).tolist() == [0, 0, 0, 1, 2]
    distance = crowding_distance(values[:3])
    assert np.isinf(distance[0]) and np.isinf(distance[2]) and distance[1] == pytest.approx(3 / 3 + 3 / 3)


def test_simulation_runs_and_regret(tables):
    from plm_nasbench.simulation import add_regret, simulate

    root, surrogates, *_ = tables
    bench = Benchmark("rte", data=root, surrogates=surrogates)
    results = simulate(dict.fromkeys(["rs", "ls", "morea", "nsga2"], bench), seeds=[0, 1], max_evaluations=25)
    assert results.groupby(["method", "seed"]).size().tolist() == [25] * 8
    assert results.groupby(["method", "seed"])["time"].apply(lambda t: t.is_monotonic_increasing).all()
    scored = add_regret(results)
    assert scored["hypervolume"].between(0, 4).all()
    final = scored.groupby(["method", "seed"])["regret"].last()
    assert (final >= 0).all()
    assert scored.groupby(["method", "seed"])["hypervolume"].apply(lambda h: h.is_monotonic_increasing).all()
    with pytest.raises(ValueError, match="moasha needs several fidelities"):
        simulate({"moasha": bench}, seeds=[0], max_evaluations=3)
    with pytest.raises(ValueError, match="unknown method"):
        simulate({"bo": bench}, seeds=[0])
    with pytest.raises(ValueError, match="has no value for memory_b32 in every configuration it answers; objectives "
                                         "it always answers: valid_error, test_error"):  # the synthetic tables time
        simulate({"rs": bench}, seeds=[0], max_evaluations=3, objectives=("valid_error", "memory_b32"))  # no memory


def test_moasha_stops_trials_early_on_the_standalone_scheme(tables):
    from plm_nasbench.simulation import simulate

    bench = Benchmark("rte", scheme="standalone", backend="table", data=tables[0])
    assert bench.fidelities == [1, 2, 3, 4, 5]
    results = simulate({"moasha": bench, "rs": bench}, seeds=[0], max_evaluations=20)
    epochs_run = results.groupby("method")["epoch"].size()
    assert epochs_run["rs"] == 20 and epochs_run["moasha"] < 5 * 20  # some trials stopped before epoch 5
    assert results.query("method == 'moasha'")["time"].max() < results.query("method == 'rs'")["time"].max() * 5


def test_a_time_budget_gives_every_run_the_same_simulated_time(tables):
    from plm_nasbench.simulation import final_results, simulate

    root, surrogates, *_ = tables
    bench = Benchmark("rte", scheme="standalone", backend="table", data=root)
    results = simulate({"moasha": bench, "rs": bench}, seeds=[0, 1], max_evaluations=500, max_time=40.0)
    last = final_results(results).groupby("method")["time"]
    longest_trial = bench.table()["cumulative_time"].max()  # no result arrives after the budget, none long before
    assert last.max().max() <= 40.0 and last.min().min() > 40.0 - longest_trial
    trials = results.groupby("method")["trial"].nunique()
    assert trials["moasha"] > trials["rs"]  # trials stopped early cost less: more of them fit
    ws = Benchmark("rte", data=root, surrogates=surrogates)
    with pytest.raises(ValueError, match="max_time 50.0 s leaves nothing to search: .* starts at 10[01] s"):
        simulate({"rs": ws}, seeds=[0], max_time=50.0)
    assert not final_results(simulate({"rs": bench}, seeds=[0], max_evaluations=2,
                                      max_time=np.float32(40))).empty  # numpy numbers are numbers
    with pytest.raises(ValueError, match="max_time must be a positive number"):
        simulate({"rs": bench}, seeds=[0], max_time=np.bool_(True))
    # an objective the benchmark lacks somewhere is refused before any run, not at the first configuration without it
    with pytest.raises(ValueError, match="has no value for memory_b32 in every configuration it answers.*"
                                         "backend 'auto' fills"):
        simulate({"rs": bench, "ls": bench}, seeds=[0], objectives=("valid_error", "memory_b32"))
    for kwargs, message in (({"seeds": []}, "at least one method and one seed"),
                            ({"seeds": [0, 0]}, "distinct seeds"),
                            ({"seeds": [0], "max_evaluations": 0}, "max_evaluations must be a positive integer"),
                            ({"seeds": [0], "max_time": -1}, "max_time must be a positive number")):
        with pytest.raises(ValueError, match=message):
            simulate({"rs": bench}, **kwargs)
    with pytest.raises(ValueError, match="at least one method"):
        simulate({}, seeds=[0])
    with pytest.raises(ValueError, match=r"max_time 0.001 s ends before the first result of 2 run\(s\) \(rs seed 0"):
        simulate({"rs": bench}, seeds=[0, 1], max_time=0.001)  # no run drops out of the scores unseen


def test_ehvi_runs(tables):
    pytest.importorskip("botorch")
    from plm_nasbench.simulation import add_regret, run_method

    root, surrogates, *_ = tables
    bench = Benchmark("rte", data=root, surrogates=surrogates)
    results = run_method(bench, "ehvi", seed=0, max_evaluations=14)
    assert len(results) == 14 and results["valid_error"].notna().all()
    assert add_regret(results)["regret"].iloc[-1] < 4


def test_simulate_command(tables, tmp_path, monkeypatch, capsys):
    from plm_nasbench.cli import main

    root, surrogates, *_ = tables
    monkeypatch.setenv("PLM_NASBENCH_DATA", str(root))
    monkeypatch.setenv("PLM_NASBENCH_SURROGATES", str(surrogates))
    assert main(["simulate", "--task", "rte", "--methods", "rs,ls,morea,nsga2", "--seeds", "2", "--evaluations", "15",
                 "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "average_rank" in out and "morea" in out
    assert {p.name for p in tmp_path.iterdir()} == {"regret-rte.png", "fronts-rte.png", "ranks-rte.png", "runs-rte.csv"}
    assert main(["simulate", "--task", "rte", "--methods", "rs,moasha", "--seeds", "1", "--evaluations", "6",
                 "--scheme", "standalone", "--out", str(tmp_path / "sa")]) == 0
    capsys.readouterr()
    # real rows only: every answered configuration is one of the table's
    assert main(["simulate", "--task", "rte", "--methods", "rs,moasha", "--seeds", "1", "--evaluations", "6",
                 "--scheme", "standalone", "--backend", "table", "--out", str(tmp_path / "table")]) == 0
    held = set(Benchmark("rte", scheme="standalone", backend="table", data=root).table()["config"].map(json.loads)
               .map(lambda c: json.dumps(c, sort_keys=True)))
    answered = pd.read_csv(tmp_path / "table" / "runs-rte.csv")["config"].map(
        lambda c: json.dumps(ast.literal_eval(c), sort_keys=True))
    assert set(answered) <= held
    capsys.readouterr()
    # the default scheme runs moasha on the standalone tables beside the weight-sharing methods
    assert main(["simulate", "--task", "rte", "--methods", "rs,ls,moasha", "--seeds", "2", "--evaluations", "8",
                 "--workers", "1", "--out", str(tmp_path / "mixed")]) == 0
    runs = pd.read_csv(tmp_path / "mixed" / "runs-rte.csv")
    assert runs.groupby("method")["scheme"].unique().map(list).to_dict() == {
        "ls": ["weight_sharing"], "moasha": ["standalone"], "rs": ["weight_sharing"]}
    assert "standalone" in capsys.readouterr().out
    assert main(["simulate", "--task", "rte", "--methods", "rs,gp", "--out", str(tmp_path)]) == 2
    assert "unknown method(s) ['gp']" in capsys.readouterr().err
    assert main(["simulate", "--task", "rte", "--methods", "rs,moasha", "--scheme", "standalone", "--seeds", "1",
                 "--evaluations", "300", "--hours", str(30 / 3600), "--out", str(tmp_path / "budget")]) == 0
    out = capsys.readouterr().out
    assert "0.00833333 simulated hours (at most 300 evaluations) per run" in out and "evaluations" in out
    assert main(["simulate", "--task", "rte", "--hours", "0", "--out", str(tmp_path)]) == 2
    assert "--hours must be a positive number" in capsys.readouterr().err
    assert main(["simulate", "--task", "rte", "--methods", " , ", "--out", str(tmp_path)]) == 2
    assert "--methods names nothing" in capsys.readouterr().err


def test_parallel_simulation_gives_the_same_runs(tables):
    from plm_nasbench.simulation import simulate

    root, surrogates, *_ = tables
    bench = Benchmark("rte", data=root, surrogates=surrogates)
    serial = simulate({"rs": bench, "nsga2": bench}, seeds=[0, 1], max_evaluations=12)
    parallel = simulate({"rs": bench, "nsga2": bench}, seeds=[0, 1], max_evaluations=12, workers=2)
    pd.testing.assert_frame_equal(serial.drop(columns="config"), parallel.drop(columns="config"))


def test_morea_evolves_after_its_population_fills(tables):
    from plm_nasbench.simulation import MOREA_POPULATION, run_method

    root, surrogates, *_ = tables
    bench = Benchmark("rte", data=root, surrogates=surrogates)
    rs, morea = (run_method(bench, m, seed=0, max_evaluations=MOREA_POPULATION + 10) for m in ("rs", "morea"))
    configs = morea["config"].tolist()
    # each child is a mutation of an earlier member: one field changed
    assert all(min(sum(configs[i][k] != p[k] for k in p) for p in configs[:i]) <= 1
               for i in range(MOREA_POPULATION, len(configs)))
    assert rs["config"].tolist() != morea["config"].tolist()


def test_an_optimizer_of_your_own_is_scored_beside_the_simulated_ones(tables):
    """The README's recipe: rows of a hand-written loop join simulate()'s and share its normalisation."""
    from plm_nasbench.protocol import average_ranks
    from plm_nasbench.simulation import add_regret, final_regret, simulate

    root, surrogates, *_ = tables
    bench, objectives = Benchmark("rte", data=root, surrogates=surrogates), ("valid_error", "params_fraction")
    rows = []
    for seed in range(2):
        clock = bench.supernetwork_cost
        for trial, config in enumerate(bench.sample(10, seed=seed)):
            result = bench.query(config)
            clock += result["runtime"]
            rows.append({"method": "mine", "seed": seed, "trial": trial, "time": clock,
                         **{o: result[o] for o in objectives}})
    simulated = simulate({"rs": bench}, range(2), 10, objectives)
    assert simulated.groupby("seed")["time"].min().gt(bench.supernetwork_cost).all()  # the clock starts after it
    scored = add_regret(pd.concat([simulated, pd.DataFrame(rows)], ignore_index=True), objectives)
    assert scored["regret"].between(0, 4).all()
    assert scored.groupby(["method", "seed"])["regret"].apply(lambda r: r.is_monotonic_decreasing).all()
    assert set(average_ranks({"rte": final_regret(scored)})) == {"mine", "rs"}
    with pytest.raises(ValueError, match="each once; got \\('valid_error', 'valid_error'\\)"):
        simulate({"rs": bench}, range(1), 5, ("valid_error", "valid_error"))
    with pytest.raises(ValueError, match="two different objectives"):
        simulate({"rs": bench}, range(1), 5, ("valid_error",))
