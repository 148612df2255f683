"""Physically smaller sub-networks: fewer layers and narrower Q/K/V/O and FFN matrices.

``extract_subnetwork`` copies the kept rows and columns of the fine-tuned weights into a new
Hugging Face model of the same class. Per-layer sizes are recorded in its config
(``plm_nasbench_layers``: ``[heads, units]`` per kept layer) together with the search space and
configuration it came from (``plm_nasbench_subnetwork``), so ``model.save_pretrained(path)`` writes
a folder that :func:`load_subnetwork` rebuilds exactly. (Hugging Face's own ``from_pretrained``
cannot, since it assumes every layer has the same size.)
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..spaces import SearchSpace
from .structure import check_fits, encoder_layers


class SkippedAttention(nn.Module):
    """Attention block of a layer with no heads: returns its input unchanged (residual only)."""

    def forward(self, hidden_states: torch.Tensor, *args: Any, **kwargs: Any) -> tuple[torch.Tensor, None]:
        return hidden_states, None


class SkippedFFNOutput(nn.Module):
    """FFN output block of a layer with no units: returns the attention output unchanged."""

    def forward(self, hidden_states: torch.Tensor, input_tensor: torch.Tensor) -> torch.Tensor:
        return input_tensor


def _slice_linear(linear: nn.Linear, index: torch.Tensor, dim: int) -> nn.Linear:
    """A new Linear keeping rows (``dim=0``, outputs) or columns (``dim=1``, inputs) ``index``."""
    weight = linear.weight.detach().index_select(dim, index.to(linear.weight.device))
    bias = linear.bias.detach() if linear.bias is not None else None
    if bias is not None and dim == 0:
        bias = bias.index_select(0, index.to(bias.device))
    elif bias is not None:
        bias = bias.clone()
    out = torch.nn.utils.skip_init(nn.Linear, weight.shape[1], weight.shape[0], bias=bias is not None,
                                   device="meta")
    out.weight = nn.Parameter(weight, requires_grad=linear.weight.requires_grad)
    if bias is not None:
        out.bias = nn.Parameter(bias, requires_grad=linear.bias.requires_grad)
    return out


def shrink_layer(layer: nn.Module, heads: np.ndarray, units: np.ndarray, head_size: int) -> None:
    """Keep only attention heads ``heads`` and FFN units ``units`` (index arrays) of one layer, in place."""
    if len(heads) == 0:
        layer.attention = SkippedAttention()
    else:
        columns = torch.as_tensor((np.asarray(heads)[:, None] * head_size + np.arange(head_size)).ravel())
        attention = layer.attention.self
        for proj in ("query", "key", "value"):
            setattr(attention, proj, _slice_linear(getattr(attention, proj), columns, 0))
        layer.attention.output.dense = _slice_linear(layer.attention.output.dense, columns, 1)
        attention.num_attention_heads = len(heads)
        attention.all_head_size = len(columns)
    if len(units) == 0:
        layer.intermediate = nn.Identity()
        layer.output = SkippedFFNOutput()
    else:
        index = torch.as_tensor(np.asarray(units))
        layer.intermediate.dense = _slice_linear(layer.intermediate.dense, index, 0)
        layer.output.dense = _slice_linear(layer.output.dense, index, 1)


def extract_subnetwork(model: Any, space: SearchSpace, config: Mapping[str, Any], *,
                       share_weights: bool = False) -> Any:
    """A new, physically smaller model computing sub-network ``config`` of ``space`` (``model`` is unchanged).

    The sliced attention and FFN matrices are always new tensors. With ``share_weights=True`` the
    unsliced ones (embeddings, layer norms, pooler, head) are the super-network's own tensors rather
    than copies: cheaper, meant for inference; training such a sub-network would change the super-network.
    """
    check_fits(model, space)
    config = space.validate(config)
    head_mask, ffn_mask = space.masks(config)
    shared = {id(t): t for t in [*model.parameters(), *model.buffers()]} if share_weights else {}
    sub = copy.deepcopy(model, memo=shared)
    layers = encoder_layers(sub)
    kept, sizes = [], []
    for i, (layer, heads, units) in enumerate(zip(layers, head_mask, ffn_mask)):
        if not heads.any() and not units.any():
            continue
        shrink_layer(layer, np.flatnonzero(heads), np.flatnonzero(units), space.architecture.head_size)
        kept.append(i)
        sizes.append([int(heads.sum()), int(units.sum())])
    sub.base_model.encoder.layer = nn.ModuleList([layers[i] for i in kept])
    sub.config.num_hidden_layers = len(kept)
    sub.config.plm_nasbench_layers = sizes
    sub.config.plm_nasbench_subnetwork = {
        "search_space": space.name,
        "config": config,
        "kept_layers": kept,
        "num_parameters": space.num_parameters(config),
    }
    return sub.eval() if not model.training else sub


def load_subnetwork(path: str | Path) -> Any:
    """Load a sub-network saved with ``save_pretrained`` after :func:`extract_subnetwork`."""
    import transformers
    from safetensors.torch import load_file

    path = Path(path)
    weights = path / "model.safetensors"
    if not weights.is_file():
        raise FileNotFoundError(f"no model.safetensors in {path}: save the sub-network with save_pretrained(path)")
    config = transformers.AutoConfig.from_pretrained(path)
    sizes = getattr(config, "plm_nasbench_layers", None)
    if sizes is None:
        raise ValueError(f"{path / 'config.json'} has no plm_nasbench_layers: not an extracted sub-network; "
                         "load an unpruned model with transformers' from_pretrained")
    cls = getattr(transformers, config.architectures[0])
    model = cls(config)
    head_size = config.hidden_size // config.num_attention_heads
    for layer, (heads, units) in zip(encoder_layers(model), sizes):
        shrink_layer(layer, np.arange(heads), np.arange(units), head_size)
    model.load_state_dict(load_file(weights), strict=True)
    return model.eval()
