"""Floating-point operations of a sub-network per example (pure numpy).

One multiply-accumulate counts as 2 FLOPs. For a sequence of T tokens, hidden size D, and a layer
keeping h heads of size d (A = h*d) and u FFN units:

* attention (h > 0): Q, K, V projections ``2*T*D*3A``, scores ``2*T*T*A``, weighted values ``2*T*T*A``,
  output projection ``2*T*A*D``;
* FFN (u > 0): ``2*T*D*u`` up and ``2*T*u*D`` down;
* head: pooler (or RoBERTa's dense) ``2*D*D`` plus output layer ``2*D*n``, once per sequence.

Embedding lookups, softmax, LayerNorm, activations and bias additions are not counted.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..architecture import Architecture


def flops_per_sequence(arch: Architecture, heads: np.ndarray, units: np.ndarray, seq_len: np.ndarray | int) -> np.ndarray:
    """FLOPs of one sequence of ``seq_len`` tokens (array or int) given per-layer kept heads and units."""
    t = np.asarray(seq_len, dtype=np.float64)
    d = arch.hidden_size
    attention = np.asarray(heads, dtype=np.float64) * arch.head_size
    units = np.asarray(units, dtype=np.float64)
    linear = (2 * d * 3 * attention + 2 * attention * d + 4 * d * units).sum()
    quadratic = (4 * attention).sum()
    head = 2 * d * d + 2 * d * arch.head.num_outputs
    return t * linear + t * t * quadratic + head


def mean_flops(arch: Architecture, heads: np.ndarray, units: np.ndarray, sequence_lengths: np.ndarray,
               num_examples: int) -> float:
    """FLOPs per example: the sum over all sequences (several per multiple-choice example) / ``num_examples``."""
    return float(flops_per_sequence(arch, heads, units, np.asarray(sequence_lengths)).sum() / num_examples)


def sequence_lengths(encoded: Any) -> np.ndarray:
    """Token count of every sequence of an encoded split (several per multiple-choice example)."""
    return np.array([len(s) for seqs in encoded.sequences for s in seqs])
