"""Shared fixtures: tiny random BERT and RoBERTa models and a tiny GLUE-layout data folder (no network)."""

from __future__ import annotations

import csv
import gzip

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


def write_tsv(path, header, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = (["\t".join(header)] if header else []) + ["\t".join(map(str, r)) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def glue(tmp_path):
    """A tiny folder in the GLUE layout with every task type; sentences carry unbalanced quotes."""
    texts, labels = toy_sentences(40)
    nli = ["entailment", "not_entailment"]
    write_tsv(tmp_path / "rte/train.tsv", ["index", "sentence1", "sentence2", "label"],
              [(i, f'"{t}', t, nli[l]) for i, (t, l) in enumerate(zip(texts, labels))])
    write_tsv(tmp_path / "rte/dev.tsv", ["index", "sentence1", "sentence2", "label"],
              [(i, t, t, nli[l]) for i, (t, l) in enumerate(zip(texts[:10], labels))])
    write_tsv(tmp_path / "cola/train.tsv", None, [("src", l, "", t) for t, l in zip(texts, labels)])
    write_tsv(tmp_path / "cola/dev.tsv", None, [("src", l, "", t) for t, l in zip(texts[:8], labels)])
    write_tsv(tmp_path / "stsb/train.tsv", ["index", "sentence1", "sentence2", "score"],
              [(i, t, t, 2.5 + l) for i, (t, l) in enumerate(zip(texts, labels))])
    write_tsv(tmp_path / "stsb/dev.tsv", ["index", "sentence1", "sentence2", "score"], [(0, "a", "b", 1.0)])
    (tmp_path / "imdb").mkdir()
    for split in ("train", "test"):
        with gzip.open(tmp_path / f"imdb/{split}.csv.gz", "wt", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["id", "review_id", "rating", "label", "text"])
            writer.writerows([(i, i, 1, l, f'{t}, "quoted"\nline') for i, (t, l) in enumerate(zip(texts, labels))])
    (tmp_path / "swag").mkdir()
    with open(tmp_path / "swag/val_first91.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["", "video-id", "fold-ind", "startphrase", "sent1", "sent2", "gold-source",
                         "ending0", "ending1", "ending2", "ending3", "label"])
        writer.writerows([(i, "v", 0, "x", "the film", "it", "gold", "is good", "is bad", "was fine", "was poor",
                           i % 4) for i in range(20)])
    return tmp_path
