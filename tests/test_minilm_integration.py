"""Acceptance on the packaged MiniLM (minilm-l6-h384): masked and extracted sub-networks agree."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from plm_nasbench.architecture import get_architecture
from plm_nasbench.models import architecture_of, extract_subnetwork, load_model, load_tokenizer, masked
from plm_nasbench.spaces import SEARCH_SPACES, get_search_space

pytestmark = pytest.mark.integration

SENTENCES = [("A man is playing a guitar.", "Someone plays an instrument."),
             ("The cat sat on the mat.", "Stocks fell sharply on Monday after the announcement."),
             ("No weapons of mass destruction found in Iraq yet.", "Weapons of mass destruction found in Iraq."),
             ("Short.", "A somewhat longer second sentence that makes padding matter here.")]


@pytest.fixture(scope="module")
def minilm():
    torch.manual_seed(0)
    return load_model("minilm-l6-h384", task="rte")


@pytest.fixture(scope="module")
def batch():
    tokenizer = load_tokenizer("minilm-l6-h384")
    first, second = zip(*SENTENCES)
    return dict(tokenizer(list(first), list(second), padding=True, return_tensors="pt"))


@pytest.mark.parametrize("task", [None, "rte", "stsb", "swag"])
def test_load_model_heads_and_counts(task):
    model = load_model("minilm-l6-h384", task=task)
    arch = architecture_of(model)
    assert arch == get_architecture("minilm-l6-h384", task=task) if task else arch.head.kind == "encoder"
    assert sum(p.numel() for p in model.parameters()) == arch.total_parameters()
    assert (arch.num_layers, arch.num_heads, arch.head_size, arch.intermediate_size) == (6, 12, 32, 1536)


@pytest.mark.parametrize("space_name", list(SEARCH_SPACES))
def test_fifty_configs_agree(minilm, batch, space_name):
    space = get_search_space(space_name, "minilm-l6-h384", task="rte")
    rng = np.random.default_rng(2024)
    worst = 0.0
    for _ in range(50):
        config = space.sample(rng)
        with torch.no_grad():
            with masked(minilm, space, config):
                expected = minilm(**batch).logits
            sub = extract_subnetwork(minilm, space, config)
            got = sub(**batch).logits
        assert sum(p.numel() for p in sub.parameters()) == space.num_parameters(config)
        worst = max(worst, (got - expected).abs().max().item())
    assert worst <= 1e-4, f"max abs logit difference {worst} over 50 {space_name} configs"
