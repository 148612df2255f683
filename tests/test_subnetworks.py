"""Masked and extracted sub-networks agree, count their parameters exactly and save/load again."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from conftest import tiny_model
from plm_nasbench.architecture import Head
from plm_nasbench.models import architecture_of, extract_subnetwork, load_subnetwork, masked
from plm_nasbench.spaces import SEARCH_SPACES, get_search_space

HEADS = [("sequence_classification", 2), ("sequence_classification", 1), ("multiple_choice", 1), ("encoder", 1)]


def inputs(head: str, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    shape = (2, 3, 11) if head == "multiple_choice" else (3, 11)
    ids = torch.randint(5, 100, shape, generator=gen)
    mask = torch.ones_like(ids)
    mask[..., 8:] = 0
    mask[0, ..., 5:] = 0
    return {"input_ids": ids, "attention_mask": mask}


def output(model, batch) -> torch.Tensor:
    with torch.no_grad():
        out = model(**batch)
    return out.pooler_output if hasattr(out, "pooler_output") else out.logits


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("head, num_labels", HEADS)
@pytest.mark.parametrize("space_name", list(SEARCH_SPACES))
def test_masked_and_extracted_agree(family, head, num_labels, space_name):
    model = tiny_model(family, head, num_labels)
    arch = architecture_of(model)
    assert arch.head == Head(head, num_labels if head == "sequence_classification" else 1) or head == "encoder"
    assert arch.total_parameters() == n_params(model)
    space = get_search_space(space_name, arch)
    batch = inputs(head)
    rng = np.random.default_rng(0)
    for config in [space.smallest(), space.largest()] + [space.sample(rng) for _ in range(12)]:
        with masked(model, space, config):
            expected = output(model, batch)
        sub = extract_subnetwork(model, space, config)
        assert n_params(sub) == space.num_parameters(config)
        torch.testing.assert_close(output(sub, batch), expected, atol=1e-5, rtol=0)


def test_masks_match_zeroed_weights(family):
    # Independent check of partial masks: zeroing the value rows of masked heads and the FFN rows of
    # masked units gives the same function when every layer keeps at least one head and one unit.
    model = tiny_model(family)
    space = get_search_space("large", architecture_of(model))
    rng = np.random.default_rng(1)
    batch = inputs("sequence_classification")
    for _ in range(5):
        head_mask = rng.random((3, 4)) < 0.5
        ffn_mask = rng.random((3, 37)) < 0.5
        head_mask[:, 0] = ffn_mask[:, 0] = True
        config = space.from_masks(head_mask, ffn_mask)
        zeroed = copy.deepcopy(model)
        with torch.no_grad():
            for layer, heads, units in zip(zeroed.base_model.encoder.layer, head_mask, ffn_mask):
                drop = torch.as_tensor(np.repeat(~heads, 8))
                layer.attention.self.value.weight[drop] = 0
                layer.attention.self.value.bias[drop] = 0
                layer.intermediate.dense.weight[torch.as_tensor(~units)] = 0
                layer.intermediate.dense.bias[torch.as_tensor(~units)] = 0
        with masked(model, space, config):
            got = output(model, batch)
        torch.testing.assert_close(got, output(zeroed, batch), atol=1e-5, rtol=0)


def test_zero_layers_leave_embeddings_pooler_and_head(family):
    model = tiny_model(family, "multiple_choice" if family == "bert" else "sequence_classification")
    space = get_search_space("small", architecture_of(model))
    config = {"num_layers": 0, "num_heads": 3, "num_units": 5}
    sub = extract_subnetwork(model, space, config)
    assert len(sub.base_model.encoder.layer) == 0
    assert space.num_parameters(config) == space.architecture.fixed_parameters() == n_params(sub)
    # All-zero heads and units in every layer is the same network as no layers.
    same = extract_subnetwork(model, space, {"num_layers": 3, "num_heads": 0, "num_units": 0})
    batch = inputs("multiple_choice" if family == "bert" else "sequence_classification")
    torch.testing.assert_close(output(sub, batch), output(same, batch))


def test_zero_heads_skip_attention():
    model = tiny_model("bert", "encoder")
    space = get_search_space("medium", architecture_of(model))
    config = {"heads_0": 0, "units_0": 0, "heads_1": 0, "units_1": 0, "heads_2": 0, "units_2": 37}
    batch = inputs("encoder")
    with masked(model, space, config), torch.no_grad():
        hidden = model(**batch).last_hidden_state
        layer = model.encoder.layer[2]
        embedded = model.embeddings(input_ids=batch["input_ids"])
        by_hand = layer.output(layer.intermediate(embedded), embedded)  # FFN only, on the embeddings
    torch.testing.assert_close(hidden, by_hand)


def test_masks_leave_no_trace_and_largest_is_the_model():
    model = tiny_model("bert")
    space = get_search_space("small", architecture_of(model))
    batch = inputs("sequence_classification")
    before = output(model, batch)
    with masked(model, space, space.largest()):
        torch.testing.assert_close(output(model, batch), before, atol=0, rtol=0)
    with masked(model, space, {"num_layers": 2, "num_heads": 1, "num_units": 3}):
        assert not torch.allclose(output(model, batch), before)
    torch.testing.assert_close(output(model, batch), before, atol=0, rtol=0)
    with pytest.raises(RuntimeError, match="do not nest"):
        with masked(model, space, space.largest()), masked(model, space, space.largest()):
            pass
    with masked(model, space, space.smallest()):  # the failed nesting left the model usable
        pass


def test_gradients_reach_only_kept_weights():
    model = tiny_model("bert").train()
    space = get_search_space("small", architecture_of(model))
    with masked(model, space, {"num_layers": 2, "num_heads": 1, "num_units": 3}):
        model(**inputs("sequence_classification"), labels=torch.tensor([0, 1, 1])).loss.backward()
    layers = model.bert.encoder.layer
    assert layers[0].attention.self.value.weight.grad[:8].abs().sum() > 0
    assert layers[0].attention.self.value.weight.grad[8:].abs().sum() == 0
    assert layers[1].intermediate.dense.weight.grad[:3].abs().sum() > 0
    assert layers[1].intermediate.dense.weight.grad[3:].abs().sum() == 0
    assert layers[2].intermediate.dense.weight.grad is None or layers[2].intermediate.dense.weight.grad.abs().sum() == 0


def test_extraction_keeps_the_source_and_records_provenance():
    model = tiny_model("roberta")
    state = {k: v.clone() for k, v in model.state_dict().items()}
    space = get_search_space("medium", architecture_of(model))
    config = space.sample(np.random.default_rng(3))
    sub = extract_subnetwork(model, space, config)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert sub.config.plm_nasbench_subnetwork["config"] == config
    assert sub.config.plm_nasbench_subnetwork["search_space"] == "medium"
    assert len(model.roberta.encoder.layer) == 3


@pytest.mark.parametrize("head", ["sequence_classification", "multiple_choice"])
def test_save_and_load(tmp_path, family, head):
    model = tiny_model(family, head)
    space = get_search_space("large", architecture_of(model))
    config = space.sample(np.random.default_rng(5))
    sub = extract_subnetwork(model, space, config)
    sub.save_pretrained(tmp_path)
    loaded = load_subnetwork(tmp_path)
    assert type(loaded) is type(sub)
    assert n_params(loaded) == space.num_parameters(config)
    batch = inputs(head)
    torch.testing.assert_close(output(loaded, batch), output(sub, batch), atol=0, rtol=0)
    assert loaded.config.plm_nasbench_layers == sub.config.plm_nasbench_layers


def test_errors_say_what_is_wrong(tmp_path):
    model = tiny_model("bert")
    other = get_search_space("small", "minilm-l6-h384")
    with pytest.raises(ValueError, match=r"model has \(layers, heads, units\) = \(3, 4, 37\) but the small space"):
        with masked(model, other, other.largest()):
            pass
    space = get_search_space("small", architecture_of(model))
    sub = extract_subnetwork(model, space, {"num_layers": 2, "num_heads": 4, "num_units": 37})
    with pytest.raises(ValueError, match="unpruned model"):
        extract_subnetwork(sub, space, space.largest())
    with pytest.raises(ValueError, match="num_heads must be an integer in"):
        extract_subnetwork(model, space, {"num_layers": 2, "num_heads": 9, "num_units": 3})
    with pytest.raises(FileNotFoundError, match="no model.safetensors"):
        load_subnetwork(tmp_path)
    model.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="not an extracted sub-network"):
        load_subnetwork(tmp_path)
    with pytest.raises(TypeError, match="no base_model.encoder.layer"):
        with masked(torch.nn.Linear(2, 2), space, space.largest()):
            pass
