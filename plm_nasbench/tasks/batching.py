"""Tokenising a split once and serving it in dynamically padded, length-bucketed batches."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .examples import Examples

BUCKET_BATCHES = 50  # training batches drawn from one length-sorted pool


@dataclass
class Encoded:
    """Token ids of one split: ``sequences[i]`` holds example i's sequence(s) (several for multiple choice)."""

    sequences: list[list[list[int]]]
    token_types: list[list[list[int]]] | None
    labels: np.ndarray
    pad_id: int

    def __len__(self) -> int:
        return len(self.sequences)

    @property
    def lengths(self) -> np.ndarray:
        """Longest sequence of each example (the padded width it needs)."""
        return np.array([max(len(s) for s in seqs) for seqs in self.sequences])


def encode(examples: Examples, tokenizer: Any, max_length: int = 128) -> Encoded:
    """Tokenise ``examples`` (truncated to ``max_length`` tokens); multiple choice pairs the context with each ending."""
    if examples.endings is not None:
        first = [a for a, ends in zip(examples.text_a, examples.endings) for _ in ends]
        second = [f"{b} {e}" for b, ends in zip(examples.text_b, examples.endings) for e in ends]
        width = len(examples.endings[0])
    else:
        first, second, width = examples.text_a, examples.text_b, 1
    out = tokenizer(first, second, truncation=True, max_length=max_length)
    group = lambda rows: [rows[i:i + width] for i in range(0, len(rows), width)]
    types = group(out["token_type_ids"]) if "token_type_ids" in out else None
    return Encoded(group(out["input_ids"]), types, examples.labels, tokenizer.pad_token_id)


def collate(encoded: Encoded, index: np.ndarray, multiple_choice: bool) -> dict[str, Any]:
    """Pad examples ``index`` to their longest sequence and stack them into tensors."""
    import torch

    width = max(len(s) for i in index for s in encoded.sequences[i])
    n_seq = len(encoded.sequences[index[0]])
    ids = np.full((len(index), n_seq, width), encoded.pad_id, dtype=np.int64)
    mask = np.zeros_like(ids)
    types = np.zeros_like(ids) if encoded.token_types is not None else None
    for row, i in enumerate(index):
        for col, seq in enumerate(encoded.sequences[i]):
            ids[row, col, : len(seq)] = seq
            mask[row, col, : len(seq)] = 1
            if types is not None:
                types[row, col, : len(seq)] = encoded.token_types[i][col]
    squeeze = (lambda a: a) if multiple_choice else (lambda a: a[:, 0])
    batch = {"input_ids": torch.from_numpy(squeeze(ids)), "attention_mask": torch.from_numpy(squeeze(mask))}
    if types is not None:
        batch["token_type_ids"] = torch.from_numpy(squeeze(types))
    label_dtype = torch.float32 if encoded.labels.dtype.kind == "f" else torch.int64
    batch["labels"] = torch.as_tensor(encoded.labels[index], dtype=label_dtype)
    return batch


def training_batches(encoded: Encoded, batch_size: int, rng: np.random.Generator,
                     multiple_choice: bool = False, start: int = 0) -> Iterator[dict[str, Any]]:
    """One epoch of shuffled batches; each pool of 50 batches is sorted by length so padding stays small. The
    order is drawn from ``rng`` when this is called; ``start`` skips the epoch's first batches (a run resumed
    inside an epoch draws the same order from the same state and continues after the batches it trained)."""
    order = rng.permutation(len(encoded))
    lengths = encoded.lengths
    batches = []
    pool = batch_size * BUCKET_BATCHES
    for first in range(0, len(order), pool):
        chunk = order[first:first + pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size))
    shuffled = rng.permutation(len(batches))[start:]
    return (collate(encoded, batches[b], multiple_choice) for b in shuffled)


def evaluation_batches(encoded: Encoded, batch_size: int,
                       multiple_choice: bool = False) -> Iterator[tuple[np.ndarray, dict[str, Any]]]:
    """Batches sorted by length, each with the example positions it holds (to restore the order)."""
    order = np.argsort(encoded.lengths, kind="stable")
    for start in range(0, len(order), batch_size):
        index = order[start:start + batch_size]
        yield index, collate(encoded, index, multiple_choice)


@dataclass
class EncodedTask:
    """The three splits of a task, tokenised once."""

    train: Encoded
    valid: Encoded
    test: Encoded
    multiple_choice: bool
    max_length: int


def encode_task(data: Any, tokenizer: Any, max_length: int = 128) -> EncodedTask:
    """Tokenise the train/valid/test splits of a :class:`~plm_nasbench.tasks.TaskData`."""
    if not isinstance(max_length, int) or max_length < 8:
        raise ValueError(f"max_length must be an integer >= 8, got {max_length!r}")
    return EncodedTask(encode(data.train, tokenizer, max_length), encode(data.valid, tokenizer, max_length),
                       encode(data.test, tokenizer, max_length), data.spec.kind == "choice", max_length)
