"""Latency and peak memory of a (sub-)network, measured on this machine."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from .memory import peak_memory
from .predict import autocast


def measure_latency(model: Any, seq_len: int, batch_size: int, repeats: int = 10, warmup: int = 2,
                    dtype: str = "float32", num_choices: int | None = None) -> dict[str, float]:
    """Forward passes on random tokens of ``seq_len``: latency median and interquartile range (seconds), peak memory.

    ``peak_memory_mb`` is the model's weights plus the measured peak of one (warm) forward pass above the memory
    in use before it (see :mod:`plm_nasbench.evaluation.memory`), in MiB.
    """
    import torch

    device = next(model.parameters()).device
    shape = (batch_size, num_choices, seq_len) if num_choices else (batch_size, seq_len)
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(5, int(model.config.vocab_size), shape, generator=gen).to(device)
    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    times = []
    model.eval()
    with torch.inference_mode(), autocast(dtype, device.type):
        for i in range(warmup + repeats):
            if i == warmup:
                with peak_memory(device) as peak:
                    model(**inputs)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            start = time.perf_counter()
            model(**inputs)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if i >= warmup:
                times.append(time.perf_counter() - start)
    q1, median, q3 = np.percentile(times, [25, 50, 75])
    return {"median": float(median), "iqr": float(q3 - q1), "peak_memory_mb": (weights + peak["bytes"]) / 2**20}


def latency_columns(model: Any, seq_len: int, batch_sizes: Sequence[int], repeats: int, dtype: str,
                    num_choices: int | None = None) -> dict[str, float]:
    """``latency_b{b}_median``, ``latency_b{b}_iqr`` and ``memory_b{b}_peak_mb`` for each batch size b."""
    columns = {}
    for b in batch_sizes:
        stats = measure_latency(model, seq_len, b, repeats, dtype=dtype, num_choices=num_choices)
        columns.update({f"latency_b{b}_median": stats["median"], f"latency_b{b}_iqr": stats["iqr"],
                        f"memory_b{b}_peak_mb": stats["peak_memory_mb"]})
    return columns
