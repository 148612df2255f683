"""The real evaluator agrees with the naive way (full network with masks) and reports efficiency figures."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import tiny_model
from plm_nasbench.architecture import Architecture
from plm_nasbench.evaluation.evaluator import evaluate_subnetworks
from plm_nasbench.evaluation.flops import flops_per_sequence
from plm_nasbench.evaluation.predict import predict, score
from plm_nasbench.evaluation.shared_passes import companions, small_space_logits
from plm_nasbench.models import architecture_of, masked
from plm_nasbench.spaces import get_search_space
from plm_nasbench.tasks import get_task_spec
from test_training import toy_task


@pytest.mark.parametrize("family, task, space_name", [("bert", "sst2", "small"), ("roberta", "sst2", "small"),
                                                      ("bert", "swag", "small"), ("roberta", "stsb", "medium")])
def test_evaluator_matches_masked_full_network(family, task, space_name):
    head = "multiple_choice" if task == "swag" else "sequence_classification"
    model = tiny_model(family, head, num_labels=1 if task == "stsb" else 2)
    spec, data = get_task_spec(task), toy_task(task, n=40)
    space = get_search_space(space_name, architecture_of(model))
    rng = np.random.default_rng(0)
    configs = [space.sample(rng) for _ in range(8)] + [space.smallest(), space.largest()]
    if space_name == "small":
        configs += [{**configs[0], "num_layers": depth} for depth in range(4)]
    frame = evaluate_subnetworks(model, spec, data, space, configs, shared_passes=False, latency_batch_sizes=(1, 2),
                                 latency_repeats=2)
    shared = evaluate_subnetworks(model, spec, data, space, configs)
    # shared passes sum in another order: an example whose logits tie to 1e-9 (random toy models have some) may flip
    np.testing.assert_allclose(shared["valid_error"], frame["valid_error"], atol=1.01 / len(data.valid))
    assert shared["eval_time"].sum() > 0 and (shared["eval_time"] >= 0).all()
    assert len(frame) == len(configs)
    for row, config in zip(frame.itertuples(), configs):
        with masked(model, space, config):
            for split in ("valid", "test"):
                encoded = getattr(data, split)
                metric, error = score(spec, predict(model, encoded, data.multiple_choice), encoded.labels)
                assert getattr(row, f"{split}_error") == pytest.approx(error, abs=1e-9)
        assert row.num_params == space.num_parameters(config)
        assert row.config_id == space.config_id(config)
        assert row.latency_b1_median > 0 and row.latency_b2_median > 0
    assert frame["flops"].iloc[9] == frame["flops"].max()  # the largest network costs most
    assert frame["flops"].iloc[8] == frame["flops"].min()
    assert set(frame["dtype"]) == {"float32"} and set(frame["device"]) == {"cpu"}


@pytest.mark.parametrize("family, task", [("bert", "sst2"), ("roberta", "stsb"), ("bert", "swag"), ("roberta", "swag")])
def test_shared_passes_equal_masked_logits(family, task):
    head = "multiple_choice" if task == "swag" else "sequence_classification"
    model = tiny_model(family, head, num_labels=1 if task == "stsb" else 2)
    data = toy_task(task, n=30)
    space = get_search_space("small", architecture_of(model))
    rng = np.random.default_rng(1)
    edge = [{"num_layers": 0, "num_heads": 2, "num_units": 5}, {"num_layers": 2, "num_heads": 0, "num_units": 0},
            {"num_layers": 3, "num_heads": 0, "num_units": 7}, {"num_layers": 2, "num_heads": 3, "num_units": 0},
            {"num_layers": 1, "num_heads": 4, "num_units": 37}, {"num_layers": 3, "num_heads": 4, "num_units": 37}]
    configs = [space.sample(rng) for _ in range(12)] + edge + edge[:2]
    configs += [{**configs[0], "num_units": u} for u in (1, 20, 36)]  # one head count, several unit counts
    shared = small_space_logits(model, data.valid, data.multiple_choice, configs, batch_size=7)
    for config, logits in zip(configs, shared):
        with masked(model, space, config):
            expected = predict(model, data.valid, data.multiple_choice, batch_size=5)
        np.testing.assert_allclose(logits, expected, atol=2e-5, rtol=1e-5, err_msg=str(config))


def test_companions_give_a_subset_the_logits_it_had_among_all():
    """A configuration's logits depend, in their last bits, on the others evaluated with it (the first layer's FFN
    block cuts); evaluated beside its companions, a subset gets bit for bit what it got among all of them."""
    model = tiny_model("bert", "sequence_classification", num_labels=2)
    data = toy_task("sst2", n=30)
    c = lambda layers, heads, units: {"num_layers": layers, "num_heads": heads, "num_units": units}  # noqa: E731
    unit = [c(2, 3, u) for u in (3, 11, 17, 29, 36)] + [c(1, 2, 9), c(3, 4, 30), c(0, 4, 5), c(2, 0, 21), c(1, 0, 8)]
    subset = [unit[3], unit[8]]  # (2, 3, 29) and (2, 0, 21)
    assert companions(unit, subset) == [c(1, 0, 8), c(1, 3, 3), c(1, 3, 11), c(1, 3, 17), c(1, 4, 0)]
    assert companions(unit, unit) == [] and companions(unit, [unit[7]]) == []  # all of them; the embeddings alone
    everything = small_space_logits(model, data.valid, data.multiple_choice, unit, batch_size=7)
    again = small_space_logits(model, data.valid, data.multiple_choice, subset + companions(unit, subset), batch_size=7)
    for logits, expected in zip(again, (everything[3], everything[8])):
        np.testing.assert_array_equal(logits, expected)


def test_flops_formula_by_hand():
    arch = Architecture(family="bert", num_layers=2, num_heads=2, head_size=4, hidden_size=8, intermediate_size=16,
                        vocab_size=10, max_position_embeddings=16, type_vocab_size=2)
    # one layer: 1 head (A=4), 3 units; T = 5
    linear = 2 * 8 * 3 * 4 + 2 * 4 * 8 + 4 * 8 * 3
    expected = 5 * linear + 25 * 4 * 4 + (2 * 8 * 8 + 2 * 8 * 2)
    assert flops_per_sequence(arch, np.array([1, 0]), np.array([3, 0]), 5) == expected
