"""Shared fixtures: tiny random BERT and RoBERTa models (no network, no downloads)."""

from __future__ import annotations

import pytest


def tiny_config(family: str, **overrides):
    """A tiny random BERT or RoBERTa config: 3 layers, 4 heads of size 8, 37 FFN units."""
    from transformers import BertConfig, RobertaConfig

    cls = BertConfig if family == "bert" else RobertaConfig
    kwargs = dict(vocab_size=101, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                  intermediate_size=37, max_position_embeddings=64, hidden_dropout_prob=0.0,
                  attention_probs_dropout_prob=0.0)
    if family == "roberta":
        kwargs.update(type_vocab_size=1, pad_token_id=1, bos_token_id=0, eos_token_id=2)
    kwargs.update(overrides)
    return cls(**kwargs)


def tiny_model(family: str, head: str = "sequence_classification", num_labels: int = 2, seed: int = 0):
    """A randomly initialised tiny model with the given head, in eval mode."""
    import torch
    import transformers

    torch.manual_seed(seed)
    prefix = "Bert" if family == "bert" else "Roberta"
    config = tiny_config(family, num_labels=num_labels)
    suffix = {"sequence_classification": "ForSequenceClassification", "multiple_choice": "ForMultipleChoice",
              "encoder": "Model"}[head]
    return getattr(transformers, prefix + suffix)(config).eval()


@pytest.fixture(params=["bert", "roberta"])
def family(request) -> str:
    return request.param
