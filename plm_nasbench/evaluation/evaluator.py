"""The real evaluator: valid and test error of sub-networks on the shared (fine-tuned) weights.

Every sub-network is evaluated as an extracted, physically smaller model, so the cost shrinks with
the sub-network. In the ``small`` space, configurations with the same heads and units differ only in
depth: one forward pass through the deepest of them yields every depth's hidden states, and the
pooler and head are applied to each.
"""

from __future__ import annotations

import platform
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..models.checkpoints import load_checkpoint
from ..models.extraction import extract_subnetwork
from ..spaces import SearchSpace, SmallSpace
from ..tasks.batching import EncodedTask, evaluation_batches
from ..tasks.specs import TaskSpec
from .flops import mean_flops
from .latency import measure_latency
from .predict import autocast, model_inputs, predict, score


def head_logits(model: Any, hidden: Any, num_choices: int | None) -> Any:
    """Apply ``model``'s pooler and head to the last hidden states ``hidden`` (batch x tokens x D)."""
    cls = type(model).__name__
    if cls == "RobertaForSequenceClassification":
        logits = model.classifier(hidden)
    else:
        logits = model.classifier(model.base_model.pooler(hidden))
    return logits.view(-1, num_choices) if num_choices else logits


def _depth_logits(model: Any, encoded: Any, multiple_choice: bool, depths: Sequence[int], batch_size: int,
                  dtype: str) -> dict[int, np.ndarray]:
    """Logits at each depth in ``depths`` from forward passes through ``model`` (which has max(depths) layers)."""
    import torch

    device = next(model.parameters()).device
    out: dict[int, np.ndarray] = {}
    with torch.inference_mode(), autocast(dtype, device.type):
        for index, batch in evaluation_batches(encoded, batch_size, multiple_choice):
            inputs = model_inputs(batch, device)
            num_choices = inputs["input_ids"].shape[1] if multiple_choice else None
            if num_choices:
                inputs = {k: v.view(-1, v.shape[-1]) for k, v in inputs.items()}
            output = model.base_model(**inputs, output_hidden_states=True)
            hidden = output.hidden_states or (output.last_hidden_state,)  # no layers: only the embeddings
            for depth in depths:
                logits = head_logits(model, hidden[depth], num_choices).float().cpu().numpy()
                if depth not in out:
                    out[depth] = np.empty((len(encoded),) + logits.shape[1:], dtype=np.float32)
                out[depth][index] = logits
    return out


def _groups(space: SearchSpace, configs: list[dict], share_depth: bool) -> list[tuple[dict, dict[int, list[int]]]]:
    """(config to extract, {depth: positions of configs it answers}) pairs."""
    if not (share_depth and isinstance(space, SmallSpace)):
        return [(c, {-1: [i]}) for i, c in enumerate(configs)]
    groups: dict[tuple[int, int], dict[int, list[int]]] = defaultdict(lambda: defaultdict(list))
    for i, c in enumerate(configs):
        width = (c["num_heads"], c["num_units"])
        depth = c["num_layers"] if width != (0, 0) else 0  # no heads and no units: every depth is the embeddings
        groups[width][depth].append(i)
    return [({"num_layers": max(depths), "num_heads": h, "num_units": u}, dict(depths))
            for (h, u), depths in groups.items()]


def evaluate_subnetworks(model: Any, spec: TaskSpec, data: EncodedTask, space: SearchSpace,
                         configs: Sequence[Mapping[str, Any]], *, batch_size: int = 16, dtype: str = "float32",
                         share_depth: bool = True, latency_batch_sizes: Sequence[int] = (),
                         latency_repeats: int = 10, show_progress: bool = False) -> pd.DataFrame:
    """Valid and test error, parameters, FLOPs and (optionally) latency of each sub-network.

    ``model`` is the fine-tuned super-network (unpruned), or the folder of a checkpoint saved by
    :func:`plm_nasbench.models.save_checkpoint`, which is loaded (checksum verified). Returns one row per configuration, in order,
    with ``config_id``, the config fields (``small``, ``layer``, ``medium``) or the packed config (``large``),
    ``valid_metric``/``valid_error``/``test_metric``/``test_error``, ``num_params``, ``params_fraction``,
    ``flops`` (mean per test example), ``eval_time`` (seconds, shared passes split evenly), and for each
    batch size b in ``latency_batch_sizes`` ``latency_b{b}_median``/``latency_b{b}_iqr`` at the task's
    maximum sequence length and ``memory_b{b}_peak_mb`` (weights plus measured activation peak, MiB), plus
    ``dtype``, ``device`` and ``cpu``.
    """
    from tqdm.auto import tqdm

    if isinstance(model, (str, Path)):
        model, _ = load_checkpoint(model)
    configs = [space.validate(c) for c in configs]
    arch = space.architecture
    rows: list[dict[str, Any]] = [dict() for _ in configs]
    device = str(next(model.parameters()).device)
    seq_lengths = np.array([len(s) for seqs in data.test.sequences for s in seqs])
    for config, depths in tqdm(_groups(space, configs, share_depth), disable=not show_progress, desc="sub-networks"):
        start = time.perf_counter()
        sub = extract_subnetwork(model, space, config, share_weights=True)
        results = {}
        for split in ("valid", "test"):
            encoded = getattr(data, split)
            if -1 in depths:
                logits = {-1: predict(sub, encoded, data.multiple_choice, batch_size, dtype)}
            else:
                logits = _depth_logits(sub, encoded, data.multiple_choice, sorted(depths), batch_size, dtype)
            for depth, values in logits.items():
                results.setdefault(depth, {})
                results[depth][f"{split}_metric"], results[depth][f"{split}_error"] = score(spec, values,
                                                                                            encoded.labels)
        elapsed = (time.perf_counter() - start) / sum(len(p) for p in depths.values())
        for depth, positions in depths.items():
            for i in positions:
                heads, units = space.layer_sizes(configs[i])
                rows[i].update(results[depth], eval_time=elapsed, num_params=space.num_parameters(configs[i]),
                               params_fraction=space.params_fraction(configs[i]),
                               flops=mean_flops(arch, heads, units, seq_lengths, len(data.test)))
                if latency_batch_sizes:
                    member = extract_subnetwork(model, space, configs[i], share_weights=True) if depth != -1 else sub
                    for b in latency_batch_sizes:
                        stats = measure_latency(member, data.max_length, b, latency_repeats, dtype=dtype,
                                                num_choices=4 if data.multiple_choice else None)
                        rows[i].update({f"latency_b{b}_median": stats["median"], f"latency_b{b}_iqr": stats["iqr"],
                                        f"memory_b{b}_peak_mb": stats["peak_memory_mb"]})
    frame = pd.DataFrame(rows)
    frame.insert(0, "config_id", [space.config_id(c) for c in configs])
    for offset, key in enumerate(configs[0] if configs else []):
        frame.insert(1 + offset, key, [c[key] for c in configs])
    frame["dtype"], frame["device"], frame["cpu"] = dtype, device, platform.processor() or platform.machine()
    return frame
