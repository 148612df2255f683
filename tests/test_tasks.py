"""Task loading (local GLUE layout and the Hub code path), the paper's splits, metrics and batching."""

from __future__ import annotations


import numpy as np
import pytest
from sklearn.metrics import matthews_corrcoef

from conftest import toy_sentences, toy_tokenizer, write_tsv
from plm_nasbench.tasks import load_task
from plm_nasbench.tasks.batching import encode, evaluation_batches, training_batches
from plm_nasbench.tasks.metrics import accuracy, constant_prediction_error, f1, matthews, spearman


def test_metrics_by_hand():
    assert accuracy([1, 0, 1, 1], [1, 1, 1, 0]) == 0.5
    assert f1([1, 1, 0, 0], [1, 0, 1, 0]) == 0.5
    assert f1([1, 1, 0], [0, 0, 0]) == 0.0
    assert matthews([1, 1, 0, 0], [1, 0, 1, 0]) == 0.0
    assert matthews([1, 1, 1, 0, 0], [1, 1, 0, 0, 0]) == pytest.approx(4 / 6)
    assert matthews([1, 1, 0], [1, 1, 1]) == 0.0
    rng = np.random.default_rng(0)
    y, p = rng.integers(0, 2, 200), rng.integers(0, 2, 200)
    assert matthews(y, p) == pytest.approx(matthews_corrcoef(y, p))
    assert spearman([1, 2, 3, 4], [10, 20, 40, 30]) == pytest.approx(0.8)
    assert spearman([1, 2, 3], [5, 5, 5]) == 0.0


def test_constant_prediction_error_is_the_best_single_answer():
    assert constant_prediction_error("accuracy", np.array([0, 0, 1]), regression=False) == pytest.approx(1 / 3)
    # F1 of the positive class: answering 1 everywhere gives precision 2/3 and recall 1, so F1 0.8
    assert constant_prediction_error("f1", np.array([1, 1, 0]), regression=False) == pytest.approx(0.2)
    assert constant_prediction_error("matthews", np.array([1, 0, 1]), regression=False) == 1.0
    assert constant_prediction_error("spearman", np.array([0.5, 3.0, 4.2]), regression=True) == 1.0
    with pytest.raises(ValueError, match="unknown metric 'auc'"):
        constant_prediction_error("auc", np.array([1, 0]), regression=False)




def test_split_protocol_and_provenance(glue):
    data = load_task("rte", glue, data_seed=3)
    assert (len(data.train), len(data.valid), len(data.test)) == (28, 12, 10)
    assert not set(data.train.text_a) & set(data.valid.text_a)
    assert data.train.text_a[0].startswith('"')  # quoting disabled: the stray quote is kept
    assert set(data.train.labels) <= {0, 1}
    again = load_task("rte", glue, data_seed=3)
    assert again.train.text_a == data.train.text_a
    assert load_task("rte", glue, data_seed=4).train.text_a != data.train.text_a
    p = data.provenance
    assert p["source"] == "local" and p["files"]["train"].endswith("rte/train.tsv")
    assert p["rows"] == {"train": 28, "valid": 12, "test": 10} and p["source_rows"] == {"train": 40, "test": 10}
    capped = load_task("rte", glue, data_seed=3, max_train=5, max_valid=4, max_test=3)
    assert capped.provenance["rows"] == {"train": 5, "valid": 4, "test": 3}
    assert capped.provenance["caps"] == {"max_train": 5, "max_valid": 4, "max_test": 3}
    assert set(capped.train.text_a) <= set(data.train.text_a)


def test_every_reader(glue):
    cola = load_task("cola", glue)
    assert cola.train.text_b is None and len(cola.test) == 8
    stsb = load_task("stsb", glue)
    assert stsb.train.labels.dtype == np.float64 and set(stsb.train.labels) <= {2.5, 3.5}
    imdb = load_task("imdb", glue)
    assert imdb.test.text_a[0].endswith('"quoted"\nline')
    with pytest.raises(ValueError, match=r"only partial data .*swag/val_first91.csv.*allow_partial=True"):
        load_task("swag", glue)
    swag = load_task("swag", glue, allow_partial=True)
    assert len(swag.test) == 6 and len(swag.train) + len(swag.valid) == 14
    assert swag.train.endings[0] == ("is good", "is bad", "was fine", "was poor")
    assert swag.provenance["partial"] and "not for tables" in swag.provenance["notes"][0]


def test_errors_name_what_and_where(glue, tmp_path):
    with pytest.raises(ValueError, match="unknown task 'mnli'; known tasks: rte, mrpc"):
        load_task("mnli", glue)
    with pytest.raises(FileNotFoundError, match="data folder .*nowhere does not exist"):
        load_task("rte", tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"no test file for task mrpc in .*looked for mrpc/dev.tsv"):
        load_task("mrpc", glue)
    with open(glue / "rte/train.tsv", "a") as handle:
        handle.write("99\tonly two fields\n")
    with pytest.raises(ValueError, match=r"rte/train.tsv, line 42: 2 fields, expected 4"):
        load_task("rte", glue)
    write_tsv(glue / "sst2/train.tsv", ["sentence", "label"], [("fine", "positive")])
    write_tsv(glue / "sst2/dev.tsv", ["sentence", "label"], [("fine", 1)])
    with pytest.raises(ValueError, match=r"sst2/train.tsv, line 2: label 'positive' is not one of a int"):
        load_task("sst2", glue)
    write_tsv(glue / "mrpc/train.tsv", ["Quality", "#1 String"], [(1, "a")])
    write_tsv(glue / "mrpc/dev.tsv", ["Quality", "#1 String"], [(1, "a")])
    with pytest.raises(ValueError, match=r"missing column\(s\) #2 String"):
        load_task("mrpc", glue)
    with pytest.raises(ValueError, match="max_train must be a positive integer"):
        load_task("cola", glue, max_train=0)


def test_hub_code_path(monkeypatch):
    datasets = pytest.importorskip("datasets")
    texts, labels = toy_sentences(30)
    calls = []

    def fake_load_dataset(path, name, split):
        calls.append((path, name, split))
        return datasets.Dataset.from_dict({"sentence": texts, "label": labels})

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    monkeypatch.delenv("PLM_NASBENCH_DATASETS", raising=False)
    data = load_task("sst2")
    assert calls == [("nyu-mll/glue", "sst2", "train"), ("nyu-mll/glue", "sst2", "validation")]
    assert data.provenance["source"] == "hub" and len(data.train) == 21 and len(data.test) == 30


def test_unreachable_hub_says_how_to_use_local_data(monkeypatch):
    datasets = pytest.importorskip("datasets")

    def offline(path, name, split):
        raise OSError("We couldn't connect to 'https://huggingface.co'")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    monkeypatch.delenv("PLM_NASBENCH_DATASETS", raising=False)
    with pytest.raises(ConnectionError, match=r"task rte: no data folder.*nyu-mll/glue.*couldn't connect.*--data-dir"
                                              r".*PLM_NASBENCH_DATASETS") as caught:
        load_task("rte")
    assert isinstance(caught.value.__cause__, OSError)


def test_batches_pad_dynamically_and_keep_order():
    tokenizer = toy_tokenizer()
    texts, labels = toy_sentences(50)
    from plm_nasbench.tasks import Examples

    encoded = encode(Examples(texts, None, np.array(labels)), tokenizer, max_length=8)
    assert max(encoded.lengths) == 8
    seen = []
    for batch in training_batches(encoded, 8, np.random.default_rng(0)):
        lengths = batch["attention_mask"].sum(1)
        assert batch["input_ids"].shape[1] == lengths.max()
        seen.extend(batch["labels"].tolist())
    assert sorted(seen) == sorted(labels)
    restored = np.empty(50, dtype=int)
    for index, batch in evaluation_batches(encoded, 16):
        restored[index] = batch["labels"].numpy()
    np.testing.assert_array_equal(restored, labels)
