"""Expected hypervolume improvement (EHVI) as a Syne Tune searcher, on BoTorch (the ``ehvi`` extra).

After ``num_initial`` random configurations, each suggestion builds one Gaussian process per objective
(standardised, on the space's ``encode()`` vectors, in double precision) and returns the best of
``num_candidates`` random configurations under the analytic EHVI. Hyperparameters are fitted by
maximum marginal likelihood every ``refit_every`` new observations and reused in between. The reference point sits 10% of each
objective's observed range beyond its worst observed value. (Syne Tune 0.16's own EHVI fails with
BoTorch 0.18 on a float/double mismatch and does not normalise outcomes.)
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from .searchers import _MultiObjectiveSearcher


class EHVI(_MultiObjectiveSearcher):
    """EHVI over random candidates; ``encode(config)`` maps a configuration to a vector in [0, 1]^d."""

    def __init__(self, config_space: dict[str, Any], encode: Callable[[dict[str, Any]], np.ndarray],
                 points_to_evaluate: list[dict] | None = None, random_seed: int | None = None,
                 num_initial: int = 10, num_candidates: int = 500, refit_every: int = 10) -> None:
        super().__init__(config_space, points_to_evaluate, random_seed, num_initial)
        self.encode, self.num_candidates = encode, num_candidates
        self.refit_every = refit_every
        self._hyperparameters: list[dict] | None = None
        self._fitted_at = 0

    def _propose(self) -> dict[str, Any]:
        import torch
        from botorch.acquisition.multi_objective import ExpectedHypervolumeImprovement
        from botorch.exceptions import InputDataWarning
        from botorch.fit import fit_gpytorch_mll
        from botorch.models import ModelListGP, SingleTaskGP
        from botorch.utils.multi_objective.box_decompositions import FastNondominatedPartitioning
        from gpytorch.mlls import SumMarginalLogLikelihood

        x = torch.tensor(np.stack([self.encode(c) for c, _ in self.observed]), dtype=torch.float64)
        y = np.stack([m for _, m in self.observed])
        spread = y.std(axis=0, ddof=1)
        y = -(y - y.mean(axis=0)) / np.where(spread > 0, spread, 1.0)  # maximise, standardised as BoTorch checks
        y = torch.tensor(y, dtype=torch.float64)
        with warnings.catch_warnings():  # an objective constant so far (e.g. on a plateau) cannot be standardised
            warnings.simplefilter("ignore", InputDataWarning)
            models = [SingleTaskGP(x, y[:, [j]], outcome_transform=None) for j in range(y.shape[1])]
        model = ModelListGP(*models)
        if self._hyperparameters is None or len(self.observed) - self._fitted_at >= self.refit_every:
            torch.manual_seed(self.rng.randint(2**31 - 1))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", InputDataWarning)
                fit_gpytorch_mll(SumMarginalLogLikelihood(model.likelihood, model))
            self._hyperparameters = [m.state_dict() for m in models]
            self._fitted_at = len(self.observed)
        else:  # between refits, the last fitted hyperparameters with the new data
            for m, state in zip(models, self._hyperparameters):
                m.load_state_dict(state, strict=False)
        model.eval()
        span = y.max(dim=0).values - y.min(dim=0).values
        reference = y.min(dim=0).values - 0.1 * torch.where(span > 0, span, torch.ones_like(span))
        partitioning = FastNondominatedPartitioning(ref_point=reference, Y=y)
        acquisition = ExpectedHypervolumeImprovement(model, ref_point=reference.tolist(), partitioning=partitioning)
        candidates = self._random_many(self.num_candidates)
        features = torch.tensor(np.stack([self.encode(c) for c in candidates]), dtype=torch.float64)
        with torch.no_grad():
            values = acquisition(features.unsqueeze(1))
        return candidates[int(torch.argmax(values))]
