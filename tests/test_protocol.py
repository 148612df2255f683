"""The evaluation protocol: hypervolumes checked against hand-computed 2-D cases, normalisation and ranks."""

from __future__ import annotations

import numpy as np
import pytest

from plm_nasbench.protocol import (BEST_HYPERVOLUME, QuantileNormaliser, average_ranks, hypervolume_2d,
                                   hypervolume_trajectory, non_dominated)


def test_hypervolume_by_hand():
    assert hypervolume_2d(np.array([[0.0, 0.0]])) == pytest.approx(BEST_HYPERVOLUME)
    assert hypervolume_2d(np.array([[1.0, 1.0]])) == pytest.approx(1.0)
    # staircase: (0.5, 1.5) and (1.5, 0.5) -> 1.5*0.5 + 0.5*1.5 - overlap 0.5*0.5 = 1.25
    assert hypervolume_2d(np.array([[0.5, 1.5], [1.5, 0.5]])) == pytest.approx(1.25)
    # a dominated point and a point beyond the reference add nothing
    assert hypervolume_2d(np.array([[0.5, 1.5], [1.5, 0.5], [1.6, 1.6], [2.5, 0.0]])) == pytest.approx(1.25)
    assert hypervolume_2d(np.zeros((0, 2))) == 0.0
    assert hypervolume_trajectory(np.array([[1.0, 1.0], [0.5, 1.5], [0.0, 0.0]])).tolist() == pytest.approx(
        [1.0, 1.25, 4.0])


def test_non_dominated():
    points = np.array([[1, 3], [2, 2], [3, 1], [2, 3], [1, 3]])
    assert non_dominated(points).tolist() == [[1, 3], [2, 2], [3, 1]]


def test_quantile_normalisation():
    normaliser = QuantileNormaliser().fit(np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [4.0, 40.0]]))
    out = normaliser.transform(np.array([[1.0, 40.0], [0.0, 100.0], [2.5, 25.0], [3.0, 20.0]]))
    np.testing.assert_allclose(out, [[0, 1], [0, 1], [0.5, 0.5], [2 / 3, 1 / 3]])  # best 0, worst 1: (0, 0) scores 4
    ties = QuantileNormaliser().fit(np.array([[1.0], [1.0], [2.0], [2.0], [5.0]])).transform(np.array([[1.0], [2.0]]))
    np.testing.assert_allclose(ties, [[0.0], [0.625]])  # a tied best is 0; positions 2 and 3 of 0..4: 2.5 / 4
    sklearn = pytest.importorskip("sklearn.preprocessing")
    rng = np.random.default_rng(0)
    for data in (rng.normal(size=(300, 2)), rng.integers(0, 6, size=(300, 2)).astype(float)):  # ties, as on plateaus
        expected = sklearn.QuantileTransformer(n_quantiles=300).fit(data).transform(data)
        np.testing.assert_allclose(QuantileNormaliser().fit(data).transform(data), expected, atol=1e-9)
    with pytest.raises(ValueError, match="NaN"):
        QuantileNormaliser().fit(np.array([[np.nan, 1.0]]))


def test_average_ranks():
    regret = {"rte": {"a": [0.1, 0.1], "b": [0.5, 0.6], "c": [0.3, 0.2]},
              "mrpc": {"a": [0.2], "b": [0.9], "c": [0.1]}}
    ranks = average_ranks(regret, draws=200)
    assert ranks["a"][0] == pytest.approx(1.5) and ranks["b"][0] == pytest.approx(3.0)
    assert ranks["c"][0] == pytest.approx(1.5)
    with pytest.raises(ValueError, match="no runs"):
        average_ranks({"rte": {"a": [0.1]}, "mrpc": {"b": [0.2]}})


def test_two_objective_sweep_matches_pairwise_dominance():
    """The sorted sweep for two objectives agrees with the pairwise definition, ties and duplicates included."""
    from plm_nasbench.protocol import _dominated

    rng = np.random.default_rng(1)
    for _ in range(500):
        values = rng.integers(0, 4, size=(rng.integers(1, 25), 2)).astype(float)
        pairwise = [np.any(np.all(values <= v, axis=1) & np.any(values < v, axis=1)) for v in values]
        assert _dominated(values).tolist() == pairwise
        assert _dominated(np.column_stack([values, values[:, :1]])).tolist() == pairwise  # n-D path


def test_dominance_and_hypervolume_refuse_nan_and_bad_shapes():
    """NaN has no place in a dominance order: a NaN row used to stop the sweep and keep dominated points."""
    from plm_nasbench.protocol import pareto_mask

    with_nan = np.array([[0.1, 0.9], [np.nan, 0.5], [0.5, 0.5], [0.6, 0.6]])
    for fn in (pareto_mask, non_dominated, hypervolume_2d):
        with pytest.raises(ValueError, match=f"{fn.__name__}: row 1 is not finite"):
            fn(with_nan)
    with pytest.raises(ValueError, match="hypervolume_2d takes a n x 2 array of objective values, got shape \\(2, 3\\)"):
        hypervolume_2d(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="got shape \\(4,\\)"):
        pareto_mask(np.zeros(4))
    assert pareto_mask(with_nan[[0, 2, 3]]).tolist() == [True, True, False]
    assert hypervolume_2d([]) == 0.0 and hypervolume_trajectory([]).tolist() == [] and pareto_mask([]).tolist() == []
