"""Shared fixtures: tiny random BERT and RoBERTa models and a tiny GLUE-layout data folder (no network)."""

from __future__ import annotations

import csv
import gzip
import json

import numpy as np
import pandas as pd
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


LENGTHS = np.array([20, 35, 50, 64])


def synthetic_rows(space, configs, study, seeds=(0,), noise=0.0):
    """Rows with every schema column: errors a smooth function of size (plus noise), FLOPs from the formula."""
    from plm_nasbench.evaluation.flops import flops_per_sequence
    from plm_nasbench.tables import conform

    rng = np.random.default_rng(len(configs))
    rows = []
    for config in configs:
        heads, units = space.layer_sizes(config)
        size = space.params_fraction(config)
        for seed in seeds:
            error = 0.5 - 0.3 * size + 0.01 * config["num_heads"] / 12 + noise * rng.standard_normal()
            rows.append({
                "model": "minilm-l6-h384", "task": "rte", "search_space": "small", "scheme": "weight_sharing",
                "strategy": "full", "seed": seed, "config_id": space.config_id(config),
                "config": json.dumps(config, separators=(",", ":")), **config, "epoch": 5, "metric": "accuracy",
                "valid_metric": 1 - error, "valid_error": error, "test_metric": 1 - error - 0.01,
                "test_error": error + 0.01, "num_params": space.num_parameters(config), "params_fraction": size,
                "flops": float(flops_per_sequence(space.architecture, heads, units, LENGTHS).mean()),
                "latency_b1_median": 0.001 + 0.01 * size, "train_time": 0.0, "eval_time": size,
                "supernetwork_space": "small", "supernetwork_train_time": 100.0 + seed,
                "cumulative_time": size, "max_length": 128, "rows_train": 10, "rows_valid": 5, "rows_test": 4,
                "data_seed": 128, "partial_data": False, "dtype": "float32", "device": "cpu", "hardware": "test",
                "unit_id": study})
    return conform(pd.DataFrame(rows), study)


@pytest.fixture(scope="session")
def tables(tmp_path_factory):
    """A data folder with a synthetic small grid (2 seeds) and hold-out table for rte, and surrogates built on them."""
    from plm_nasbench.spaces import get_search_space
    from plm_nasbench.surrogates.build import build
    from plm_nasbench.tables import Manifest, conform, write_parquet

    root = tmp_path_factory.mktemp("data")
    space = get_search_space("small", "minilm-l6-h384", task="rte")
    grid = [{"num_layers": l, "num_heads": h, "num_units": u} for h in range(13) for u in range(0, 1537, 128)
            for l in range(7)]
    rng = np.random.default_rng(5)
    holdout = [space.sample(rng) for _ in range(120)]
    manifest = Manifest.load(root)
    for study, configs, seeds in (("ws-small-grid", grid, (0, 1)), ("ws-small-holdout", holdout, (0,))):
        frame = synthetic_rows(space, configs, study, seeds, noise=0.002)
        relpath = f"minilm-l6-h384/{study}/rte.parquet"
        manifest.record(relpath, frame, write_parquet(frame, root / relpath), {"study": study})
    # a standalone table: 5-epoch learning curves whose errors fall with the epoch
    curves = synthetic_rows(space, holdout[:60], "standalone-small")
    curves = pd.concat([curves.assign(epoch=e, valid_error=curves["valid_error"] + 0.05 * (5 - e),
                                      cumulative_time=curves["cumulative_time"] * e) for e in range(1, 6)])
    curves = conform(curves.assign(scheme="standalone", strategy="none", supernetwork_space=None,
                                       supernetwork_train_time=np.nan), "standalone")
    relpath = "minilm-l6-h384/standalone-small/rte.parquet"
    manifest.record(relpath, curves, write_parquet(curves, root / relpath), {"study": "standalone-small"})
    manifest.save()
    surrogates = tmp_path_factory.mktemp("surrogates")
    report = build(root, surrogates, n_members=2, calibration_folds=2)  # the cheapest calibration
    return root, surrogates, report, grid, holdout
