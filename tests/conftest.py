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


WORDS = ["good", "great", "fine", "bad", "awful", "poor", "the", "a", "movie", "film", "is", "was", "very",
         "not", "plot", "acting", "and", "but", "it", "this"]


def toy_tokenizer():
    """A word-level tokenizer over WORDS with BERT's special tokens (ids below 101, the tiny vocab)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {tok: i for i, tok in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + WORDS)}
    core = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    core.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="[PAD]", unk_token="[UNK]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]")


def toy_sentences(n: int, seed: int = 0):
    """Sentences whose label is 1 when they hold a positive word (a learnable toy task)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    filler = WORDS[6:]
    texts, labels = [], []
    for _ in range(n):
        label = int(rng.integers(0, 2))
        words = list(rng.choice(filler, size=int(rng.integers(3, 9))))
        words.insert(int(rng.integers(0, len(words))), str(rng.choice(WORDS[:3] if label else WORDS[3:6])))
        texts.append(" ".join(words))
        labels.append(label)
    return texts, labels
