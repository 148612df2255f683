"""Finding the encoder layers of a Hugging Face BERT/RoBERTa model and checking it fits a search space."""

from __future__ import annotations

from typing import Any

from ..spaces import SearchSpace


def encoder_layers(model: Any) -> Any:
    """The ``nn.ModuleList`` of transformer layers (``model.base_model.encoder.layer``)."""
    try:
        return model.base_model.encoder.layer
    except AttributeError:
        raise TypeError(f"{type(model).__name__} is not a Hugging Face BERT/RoBERTa model: "
                        "it has no base_model.encoder.layer") from None


def check_fits(model: Any, space: SearchSpace) -> None:
    """Raise ValueError unless ``model`` has the layers, heads and FFN units ``space`` was built for."""
    layers = encoder_layers(model)
    config, a = model.config, space.architecture
    found = (len(layers), config.num_attention_heads, config.intermediate_size)
    expected = (a.num_layers, a.num_heads, a.intermediate_size)
    if getattr(config, "plm_nasbench_layers", None) is not None or found != expected:
        raise ValueError(f"model has (layers, heads, units) = {found} but the {space.name} space was built for "
                         f"{expected}; masks and extraction apply to the unpruned model of the space")
