"""Search spaces: sampling, validation, masks, parameter counts, encodings and Syne Tune domains."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plm_nasbench.architecture import Architecture, Head
from plm_nasbench.spaces import SEARCH_SPACES, LargeSpace, get_search_space

TINY = Architecture(family="bert", num_layers=3, num_heads=4, head_size=8, hidden_size=32,
                    intermediate_size=37, vocab_size=101, max_position_embeddings=64, type_vocab_size=2)
MINILM_SPACES = {name: get_search_space(name, "minilm-l6-h384") for name in SEARCH_SPACES}
TINY_SPACES = {name: get_search_space(name, TINY) for name in SEARCH_SPACES}


def configs(space):
    """Hypothesis strategy drawing any valid configuration of ``space``."""
    if isinstance(space, LargeSpace):
        shapes = space.shapes
        return st.tuples(*(st.lists(st.booleans(), min_size=r * c, max_size=r * c) for r, c in shapes.values())).map(
            lambda bits: space.from_masks(np.reshape(bits[0], shapes["heads"]), np.reshape(bits[1], shapes["units"])))
    return st.fixed_dictionaries({k: st.integers(lo, hi) for k, (lo, hi) in space.bounds.items()})


@pytest.mark.parametrize("name", list(SEARCH_SPACES))
def test_round_trips(name):
    space = TINY_SPACES[name]

    @settings(max_examples=200, deadline=None)
    @given(configs(space))
    def check(config):
        assert space.validate(config) == config
        vector = space.encode(config)
        assert vector.shape == (space.encoding_size,)
        assert np.all((vector >= 0) & (vector <= 1))
        assert space.decode(vector) == config
        assert space.config_id(config) == space.config_id(dict(config))
        heads, units = space.layer_sizes(config)
        head_mask, ffn_mask = space.masks(config)
        assert head_mask.shape == (3, 4) and ffn_mask.shape == (3, 37)
        np.testing.assert_array_equal(heads, head_mask.sum(1))
        np.testing.assert_array_equal(units, ffn_mask.sum(1))
        assert space.num_parameters(space.smallest()) <= space.num_parameters(config) <= space.num_parameters(
            space.largest())

    check()


@pytest.mark.parametrize("name", list(SEARCH_SPACES))
def test_samples_are_valid_and_seeded(name):
    space = MINILM_SPACES[name]
    first = [space.sample(np.random.default_rng(7)) for _ in range(3)]
    assert all(c == first[0] for c in first)
    rng = np.random.default_rng(0)
    samples = [space.sample(rng) for _ in range(50)]
    assert all(space.validate(c) == c for c in samples)
    assert len({space.config_id(c) for c in samples}) > min(40, space.num_configs // 3)
    assert space.sample(3) == space.sample(np.random.default_rng(3))


@pytest.mark.parametrize("name", list(SEARCH_SPACES))
def test_extremes(name):
    space = MINILM_SPACES[name]
    arch = space.architecture
    assert space.num_parameters(space.largest()) == arch.total_parameters()
    assert space.num_parameters(space.smallest()) == arch.fixed_parameters()
    head_mask, ffn_mask = space.masks(space.largest())
    assert head_mask.all() and ffn_mask.all()
    head_mask, ffn_mask = space.masks(space.smallest())
    assert not head_mask.any() and not ffn_mask.any()
    assert space.params_fraction(space.largest()) == 1.0


def test_distinct_configs_have_distinct_ids():
    space = TINY_SPACES["small"]
    ids = {space.config_id({"num_layers": l, "num_heads": h, "num_units": u})
           for l in range(4) for h in range(5) for u in range(38)}
    assert len(ids) == 4 * 5 * 38
    assert TINY_SPACES["small"].config_id(TINY_SPACES["small"].largest()) != \
        TINY_SPACES["medium"].config_id(TINY_SPACES["medium"].largest())


def test_small_masks_keep_the_first_components():
    space = MINILM_SPACES["small"]
    head_mask, ffn_mask = space.masks({"num_layers": 4, "num_heads": 6, "num_units": 768})
    assert head_mask[:4, :6].all() and not head_mask[4:].any() and not head_mask[:, 6:].any()
    assert ffn_mask[:4, :768].all() and not ffn_mask[4:].any() and not ffn_mask[:, 768:].any()


def test_medium_masks_are_per_layer():
    space = TINY_SPACES["medium"]
    config = {"heads_0": 4, "units_0": 0, "heads_1": 0, "units_1": 5, "heads_2": 2, "units_2": 37}
    head_mask, ffn_mask = space.masks(config)
    assert head_mask.sum(1).tolist() == [4, 0, 2] and ffn_mask.sum(1).tolist() == [0, 5, 37]
    assert head_mask[2, :2].all() and ffn_mask[1, :5].all()


def test_parameter_count_by_hand():
    # Tiny BERT, 2 labels: embeddings (101+64+2)*32 + 64; head 32*32+32 + 32*2+2.
    fixed = 167 * 32 + 64 + 1056 + 66
    attention = lambda h: 0 if h == 0 else 3 * (32 * 8 * h + 8 * h) + 8 * h * 32 + 32 + 64
    ffn = lambda u: 0 if u == 0 else 32 * u + u + u * 32 + 32 + 64
    space = TINY_SPACES["medium"]
    config = {"heads_0": 4, "units_0": 0, "heads_1": 0, "units_1": 5, "heads_2": 1, "units_2": 37}
    assert space.num_parameters(config) == fixed + attention(4) + ffn(5) + attention(1) + ffn(37)
    small = TINY_SPACES["small"]
    assert small.num_parameters({"num_layers": 2, "num_heads": 3, "num_units": 0}) == fixed + 2 * attention(3)


def test_published_totals():
    # Totals the paper's reference code reports for BERT-base-cased and RoBERTa-base with 2 labels.
    assert get_search_space("small", "bert-base-cased").architecture.total_parameters() == 108_311_810
    assert get_search_space("small", "roberta-base").architecture.total_parameters() == 124_647_170
    bert = get_search_space("small", "bert-base-cased")
    assert bert.architecture.embedding_parameters() == 22_665_216
    assert 0.20 < bert.params_fraction(bert.smallest()) < 0.22
    roberta = get_search_space("small", "roberta-base")
    assert 0.31 < roberta.params_fraction(roberta.smallest()) < 0.33
    assert get_search_space("large", "bert-base-cased").encoding_size == 37_008


def test_task_heads_change_counts():
    rte = get_search_space("small", "minilm-l6-h384", task="rte")
    stsb = get_search_space("small", "minilm-l6-h384", task="stsb")
    assert rte.architecture.total_parameters() - stsb.architecture.total_parameters() == 384 + 1


def test_layer_sampler_is_uniform_over_depth():
    space = MINILM_SPACES["layer"]
    rng = np.random.default_rng(0)
    counts = np.bincount([sum(space.sample(rng).values()) for _ in range(7000)], minlength=7)
    assert counts.min() > 800 and counts.max() < 1200  # 1000 expected for each of 0..6 kept layers


def test_large_sampler_spreads_sizes():
    space = MINILM_SPACES["large"]
    rng = np.random.default_rng(0)
    kept_units = np.array([space.masks(space.sample(rng))[1].mean() for _ in range(300)])
    # Size-uniform: kept fraction ~ U(0, 1) (std 0.29); independent bits would give std ~0.005.
    assert kept_units.std() > 0.2 and kept_units.min() < 0.1 and kept_units.max() > 0.9


@pytest.mark.parametrize("bad, message", [
    ({"num_layers": 7, "num_heads": 1, "num_units": 1}, r"num_layers must be an integer in \[0, 6\], got 7"),
    ({"num_layers": -1, "num_heads": 1, "num_units": 1}, r"num_layers must be an integer in \[0, 6\], got -1"),
    ({"num_layers": 2.5, "num_heads": 1, "num_units": 1}, r"num_layers must be an integer .* got 2.5 \(float\)"),
    ({"num_layers": True, "num_heads": 1, "num_units": 1}, r"num_layers must be an integer"),
    ({"num_layers": 2, "num_heads": "4", "num_units": 1}, r"num_heads must be an integer in \[0, 12\]"),
    ({"num_layers": 2, "num_heads": 1}, r"missing field\(s\) num_units; expected fields"),
    ({"num_layers": 2, "num_heads": 1, "num_units": 1, "dropout": 0}, r"unknown field\(s\) dropout"),
    ([2, 1, 1], r"must be a mapping"),
])
def test_small_validation_errors(bad, message):
    with pytest.raises(ValueError, match=message):
        MINILM_SPACES["small"].validate(bad)


def test_large_validation_errors():
    space = MINILM_SPACES["large"]
    good = space.largest()
    assert len(good["heads"]) == 18 and len(good["units"]) == 2304
    with pytest.raises(ValueError, match=r"field heads must be a string of 18 hex digits \(72 packed bits, 6 x 12\)"):
        space.validate({**good, "heads": good["heads"][:-2]})
    with pytest.raises(ValueError, match="non-hex"):
        space.validate({**good, "heads": "zz" + good["heads"][2:]})
    with pytest.raises(ValueError, match="field units must be .* got list"):
        space.validate({**good, "units": [1, 0]})
    tiny = TINY_SPACES["large"]  # 3 x 37 = 111 units: 14 bytes, 1 padding bit
    with pytest.raises(ValueError, match="padding bit"):
        tiny.validate({**tiny.smallest(), "units": "0" * 27 + "1"})
    with pytest.raises(ValueError, match=r"heads mask must have shape \(6, 12\)"):
        space.from_masks(np.ones((6, 11)), np.ones((6, 1536)))
    assert space.validate({**good, "heads": good["heads"].upper()}) == good


def test_medium_and_layer_validation_name_the_field():
    with pytest.raises(ValueError, match=r"medium config: field units_3 must be an integer in \[0, 1536\], got 2000"):
        MINILM_SPACES["medium"].validate({**MINILM_SPACES["medium"].largest(), "units_3": 2000})
    with pytest.raises(ValueError, match=r"layer config: field layer_5 must be an integer in \[0, 1\], got 2"):
        MINILM_SPACES["layer"].validate({**MINILM_SPACES["layer"].largest(), "layer_5": 2})
    with pytest.raises(ValueError, match=r"missing field\(s\) layer_5"):
        MINILM_SPACES["layer"].validate({f"layer_{i}": 1 for i in range(5)})


def test_decode_rejects_bad_vectors():
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        MINILM_SPACES["small"].decode(np.zeros(4))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        MINILM_SPACES["small"].decode(np.array([0.5, 2.0, 0.1]))


def test_unknown_names_list_what_exists():
    with pytest.raises(ValueError, match="unknown search space 'huge'; known spaces: small, layer, medium, large"):
        get_search_space("huge", "minilm-l6-h384")
    with pytest.raises(ValueError, match="unknown model 'gpt2'; registered models: minilm-l6-h384"):
        get_search_space("small", "gpt2")
    with pytest.raises(ValueError, match="unknown task 'mnli'; known tasks: rte"):
        get_search_space("small", "minilm-l6-h384", task="mnli")


def test_architecture_from_hf_config_validates():
    with pytest.raises(ValueError, match="model_type 'gpt2' is unsupported"):
        Architecture.from_hf_config({"model_type": "gpt2"})
    with pytest.raises(ValueError, match="head kind 'seq2seq' is unknown"):
        Head("seq2seq")


@pytest.mark.parametrize("name", list(SEARCH_SPACES))
def test_syne_tune_domains_sample_valid_configs(name):
    space = MINILM_SPACES[name]
    domains = space.syne_tune_space()
    assert set(domains) == set(space.largest())
    state = np.random.RandomState(0)
    for _ in range(20):
        config = {k: d.sample(random_state=state) for k, d in domains.items()}
        assert space.validate(config) == config
        assert all(d.is_valid(config[k]) for k, d in domains.items())


def test_num_configs():
    assert MINILM_SPACES["small"].num_configs == 7 * 13 * 1537
    assert MINILM_SPACES["layer"].num_configs == 64
    assert MINILM_SPACES["medium"].num_configs == (13 * 1537) ** 6
    assert MINILM_SPACES["large"].num_configs == 2 ** (72 + 9216)
