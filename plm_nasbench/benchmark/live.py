"""The ``live`` backend: answering a query by evaluating the sub-network for real.

Weight sharing: the super-network is loaded from the checkpoint cache, or fine-tuned first (minutes to
hours, with a progress bar) with the recipe of the shipped tables: data caps, max length, data seed,
dtype and epochs as the table rows record them, the paper's batch size 4 and learning rate 2e-5.
Standalone: the sub-network is fine-tuned on its own and the requested epoch of its learning curve returned.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from ..objectives import OBJECTIVES, query_result
from ..spaces import SearchSpace

#: The recipe of the shipped tables where no table says otherwise (generate/plans/edition1.toml).
DEFAULT_RECIPE = {"max_train": None, "max_valid": 2048, "max_test": 2048, "max_length": 128, "data_seed": 128,
                  "dtype": "bfloat16", "epochs": 5}


def _result(values: Mapping[str, Any], epoch: int, seed: int) -> dict[str, Any]:
    return query_result([values.get(o.column, float("nan")) for o in OBJECTIVES.values()], epoch, seed, 1, "live")


class LiveEvaluator:
    """Evaluates configurations of one (task, model, space, scheme, strategy) for real, caching the task data."""

    def __init__(self, task: str, model: str, space: SearchSpace, scheme: str, strategy: str,
                 data_dir: Any = None, device: str = "cpu", recipe: Mapping[str, Any] | None = None,
                 supernetwork_space: str = "small") -> None:
        self.task, self.model, self.space, self.scheme, self.strategy = task, model, space, scheme, strategy
        self.supernetwork_space = supernetwork_space
        self.data_dir, self.device = data_dir, device
        self.recipe = {**DEFAULT_RECIPE, **(recipe or {})}
        self._data: Any = None
        self._supernetworks: dict[int, Any] = {}

    def _task(self) -> tuple[Any, Any]:
        if self._data is None:
            from ..models import load_tokenizer
            from ..tasks import load_task
            from ..tasks.batching import encode_task

            r = self.recipe
            data = load_task(self.task, self.data_dir, data_seed=r["data_seed"], max_train=r["max_train"],
                             max_valid=r["max_valid"], max_test=r["max_test"], allow_partial=True)
            self._data = (data, encode_task(data, load_tokenizer(self.model), r["max_length"]))
        return self._data

    def _settings(self, seed: int) -> Any:
        from ..training import TrainingSettings

        return TrainingSettings(epochs=self.recipe["epochs"], seed=seed, dtype=self.recipe["dtype"])

    def query(self, config: Mapping[str, Any], epoch: int | None = None, seed: int | None = None) -> dict[str, Any]:
        """Every objective of ``config``, evaluated now (``source`` = 'live')."""
        config = self.space.validate(config)
        seed = 0 if seed is None else seed
        data, encoded = self._task()
        if self.scheme == "standalone":
            return self._standalone(config, epoch, seed, data, encoded)
        if epoch is not None and epoch != self.recipe["epochs"]:
            raise ValueError(f"weight sharing has one fidelity, the super-network's {self.recipe['epochs']} epochs; "
                             f"got epoch={epoch}")
        from ..evaluation.evaluator import evaluate_subnetworks
        from ..training import StrategySettings, train_supernetwork

        if seed not in self._supernetworks:
            self._supernetworks[seed] = train_supernetwork(
                self.model, data, self.supernetwork_space, StrategySettings(self.strategy), self._settings(seed),
                max_length=self.recipe["max_length"], device=self.device, show_progress=True)
        model, provenance = self._supernetworks[seed]
        row = evaluate_subnetworks(model, data.spec, encoded, self.space, [config], dtype=self.recipe["dtype"],
                                   latency_batch_sizes=(1, 32), latency_repeats=5).iloc[0]
        row = row.rename({"eval_time": "cumulative_time"})
        return _result(row, self.recipe["epochs"], seed)

    def _standalone(self, config: dict, epoch: int | None, seed: int, data: Any, encoded: Any) -> dict[str, Any]:
        from ..evaluation.flops import mean_flops, sequence_lengths
        from ..training import finetune_standalone

        epochs = self.recipe["epochs"]
        epoch = epochs if epoch is None else epoch
        if not 1 <= epoch <= epochs:
            raise ValueError(f"epoch must be in [1, {epochs}], got {epoch}")
        start = time.perf_counter()
        curve = finetune_standalone(self.model, data.spec, encoded, self.space, config, self._settings(seed),
                                    device=self.device, show_progress=True)
        record = dict(curve[epoch - 1])
        heads, units = self.space.layer_sizes(config)
        lengths = sequence_lengths(encoded.test)
        record.update(num_params=self.space.num_parameters(config), params_fraction=self.space.params_fraction(config),
                      flops=mean_flops(self.space.architecture, heads, units, lengths, len(encoded.test)),
                      wall_seconds=time.perf_counter() - start)
        return _result(record, epoch, seed)
