"""The real evaluator: valid and test error of sub-networks on the shared (fine-tuned) weights.

``small`` configurations are evaluated together with :func:`~.shared_passes.small_space_logits`, which
shares the embeddings, the first layer and depth across them; those of the other spaces as extracted,
physically smaller models. Either way the cost shrinks with the sub-network.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..models.checkpoints import load_checkpoint
from ..models.extraction import extract_subnetwork
from ..provenance import cpu_model
from ..spaces import SearchSpace, SmallSpace
from ..tasks.batching import EncodedTask
from ..tasks.specs import TaskSpec
from .flops import mean_flops, sequence_lengths
from .latency import latency_columns
from .predict import predict, score
from .shared_passes import small_space_logits


def _split_logits(model: Any, data: EncodedTask, space: SearchSpace, configs: list[dict], batch_size: int,
                  dtype: str, shared_passes: bool, show_progress: bool) -> dict[str, list[np.ndarray]]:
    from tqdm.auto import tqdm

    if shared_passes and isinstance(space, SmallSpace):
        return {split: small_space_logits(model, getattr(data, split), data.multiple_choice, configs, batch_size, dtype)
                for split in ("valid", "test")}
    out: dict[str, list[np.ndarray]] = {"valid": [], "test": []}
    for config in tqdm(configs, disable=not show_progress, desc="sub-networks"):
        sub = extract_subnetwork(model, space, config, share_weights=True)
        for split in ("valid", "test"):
            out[split].append(predict(sub, getattr(data, split), data.multiple_choice, batch_size, dtype))
    return out


def evaluate_subnetworks(model: Any, spec: TaskSpec, data: EncodedTask, space: SearchSpace,
                         configs: Sequence[Mapping[str, Any]], *, batch_size: int = 16, dtype: str = "float32",
                         shared_passes: bool = True, latency_batch_sizes: Sequence[int] = (),
                         latency_repeats: int = 10, show_progress: bool = False, device: str = "cpu") -> pd.DataFrame:
    """Valid and test error, parameters, FLOPs and (optionally) latency and peak memory of each sub-network.

    ``model`` is the fine-tuned super-network (unpruned), or the folder of a checkpoint saved by
    :func:`plm_nasbench.models.save_checkpoint`, which is loaded (checksum verified) onto ``device`` (a model
    passed in is evaluated where it is). Returns one row per
    configuration, in order, with ``config_id``, the config fields (``small``, ``layer``, ``medium``) or the
    packed config (``large``), ``valid_metric``/``valid_error``/``test_metric``/``test_error``,
    ``num_params``, ``params_fraction``, ``flops`` (mean per test example), ``eval_time`` (seconds; the
    measured total split in proportion to FLOPs, since work is shared), and for each batch size b in
    ``latency_batch_sizes`` ``latency_b{b}_median``/``latency_b{b}_iqr`` at the task's maximum sequence
    length and ``memory_b{b}_peak_mb`` (weights plus measured activation peak, MiB), plus ``dtype``,
    ``device`` and ``cpu``. ``shared_passes=False`` evaluates ``small`` configurations one extracted
    model at a time (the reference the shared passes are tested against).
    """
    if isinstance(model, (str, Path)):
        model, _ = load_checkpoint(model, device)
    configs = [space.validate(c) for c in configs]
    arch = space.architecture
    device = str(next(model.parameters()).device)
    seq_lengths = sequence_lengths(data.test)
    start = time.perf_counter()
    logits = _split_logits(model, data, space, configs, batch_size, dtype, shared_passes, show_progress)
    elapsed = time.perf_counter() - start
    rows: list[dict[str, Any]] = []
    for i, config in enumerate(configs):
        heads, units = space.layer_sizes(config)
        row = {"num_params": space.num_parameters(config), "params_fraction": space.params_fraction(config),
               "flops": mean_flops(arch, heads, units, seq_lengths, len(data.test))}
        for split in ("valid", "test"):
            row[f"{split}_metric"], row[f"{split}_error"] = score(spec, logits[split][i], getattr(data, split).labels)
        if latency_batch_sizes:
            sub = extract_subnetwork(model, space, config, share_weights=True)
            row.update(latency_columns(sub, data.max_length, latency_batch_sizes, latency_repeats, dtype,
                                       num_choices=4 if data.multiple_choice else None))
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame["eval_time"] = elapsed * frame["flops"] / frame["flops"].sum() if configs else []
    frame.insert(0, "config_id", [space.config_id(c) for c in configs])
    for offset, key in enumerate(configs[0] if configs else []):
        frame.insert(1 + offset, key, [c[key] for c in configs])
    frame["dtype"], frame["device"], frame["cpu"] = dtype, device, cpu_model()
    return frame
