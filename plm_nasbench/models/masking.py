"""Sub-networks on the shared weights: heads and FFN units masked by forward hooks.

transformers 5 removed ``head_mask``, so masks are applied here. Inside ``with masked(model, space,
config):`` every forward pass of ``model`` computes the sub-network: the attention context of masked
heads is zeroed before the output projection, masked FFN activations are zeroed, a layer with no
heads skips its attention block (output = input) and a layer with no units skips its FFN block.
Hooks are attached on entry and removed on exit, so masks change every step at negligible cost and
gradients flow only to the kept weights.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch

from ..spaces import SearchSpace
from .structure import check_fits, encoder_layers

_ACTIVE = "_plm_nasbench_masked"


def _residual_input(module: Any, args: tuple, kwargs: dict, output: Any) -> Any:
    """Forward hook making a block return its residual input (``input_tensor``): the block is skipped."""
    return args[1] if len(args) > 1 else kwargs["input_tensor"]


def _scale_first_input(mask: torch.Tensor):
    def hook(module: Any, args: tuple, kwargs: dict) -> tuple[tuple, dict]:
        return (args[0] * mask.to(args[0].dtype),) + tuple(args[1:]), kwargs

    return hook


def _scale_output(mask: torch.Tensor):
    def hook(module: Any, args: tuple, output: torch.Tensor) -> torch.Tensor:
        return output * mask.to(output.dtype)

    return hook


@contextmanager
def masked(model: Any, space: SearchSpace, config: Mapping[str, Any]) -> Iterator[Any]:
    """Make ``model`` compute the sub-network ``config`` of ``space`` inside the ``with`` block."""
    check_fits(model, space)
    if getattr(model, _ACTIVE, False):
        raise RuntimeError("model is already inside a masked() block; masks do not nest")
    head_mask, ffn_mask = space.masks(config)
    head_size = space.architecture.head_size
    device = next(model.parameters()).device
    handles = []
    try:
        for layer, heads, units in zip(encoder_layers(model), head_mask, ffn_mask):
            if not heads.any():
                handles.append(layer.attention.output.register_forward_hook(_residual_input, with_kwargs=True))
            elif not heads.all():
                mask = torch.as_tensor(heads.repeat(head_size), dtype=torch.float32, device=device)
                handles.append(layer.attention.output.register_forward_pre_hook(
                    _scale_first_input(mask), with_kwargs=True))
            if not units.any():
                handles.append(layer.output.register_forward_hook(_residual_input, with_kwargs=True))
            elif not units.all():
                mask = torch.as_tensor(units, dtype=torch.float32, device=device)
                handles.append(layer.intermediate.register_forward_hook(_scale_output(mask)))
        setattr(model, _ACTIVE, True)
        yield model
    finally:
        for handle in handles:
            handle.remove()
        setattr(model, _ACTIVE, False)
