"""Logits of many ``small``-space sub-networks at once, sharing every computation they have in common.

In the ``small`` space a sub-network keeps the first ``num_heads`` heads and the first ``num_units``
FFN units of each of its first ``num_layers`` layers. Three kinds of work are therefore shared:

* the embeddings, identical for every sub-network;
* the first layer's attention, whose input is the embeddings: the heads' output projections are
  computed once, head by head, and their running sum gives the attention output for every head count;
  likewise the first layer's FFN for each head count is computed once up to the widest unit count
  asked for, its running sum over unit blocks giving every narrower one;
* depth: sub-networks with the same heads and units differ only in depth, so one pass through the
  deepest gives every shallower one's hidden states.

Deeper layers run on views of the super-network's weights (the kept heads and units are prefixes), so
nothing is copied. The results equal the extracted sub-networks' up to floating-point summation order, and
that order depends on the configurations evaluated together: the first layer's FFN is summed in blocks cut
at every unit count asked for with the same head count (in bf16, each block is rounded), so a configuration's
logits can differ in their last bits, and an example's prediction can flip, with the company it is evaluated
in. :func:`companions` gives a subset the company it had.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..models.structure import encoder_layers
from ..tasks.batching import Encoded, evaluation_batches
from .predict import autocast, head_logits, model_inputs


def _attention_mask(mask: Any) -> Any:
    return mask[:, None, None, :].bool()


def _attention_context(layer: Any, x: Any, mask: Any, width: int, head_size: int) -> Any:
    """Concatenated per-head context vectors (batch x heads x tokens x head_size) of the first ``width`` channels."""
    import torch.nn.functional as F

    attn = layer.attention.self
    batch, tokens = x.shape[:2]
    heads = width // head_size

    def project(linear: Any) -> Any:
        out = F.linear(x, linear.weight[:width], linear.bias[:width])
        return out.view(batch, tokens, heads, head_size).transpose(1, 2)

    return F.scaled_dot_product_attention(project(attn.query), project(attn.key), project(attn.value), attn_mask=mask)


def _layer(layer: Any, x: Any, mask: Any, heads: int, units: int, head_size: int, act: Any) -> Any:
    """One encoder layer keeping its first ``heads`` heads and ``units`` units (weights used as views)."""
    import torch.nn.functional as F

    if heads:
        width = heads * head_size
        context = _attention_context(layer, x, mask, width, head_size)
        context = context.transpose(1, 2).reshape(x.shape[0], x.shape[1], width)
        dense = layer.attention.output.dense
        x = layer.attention.output.LayerNorm(F.linear(context, dense.weight[:, :width], dense.bias) + x)
    if units:
        inner = layer.intermediate.dense
        hidden = act(F.linear(x, inner.weight[:units], inner.bias[:units]))
        outer = layer.output.dense
        x = layer.output.LayerNorm(F.linear(hidden, outer.weight[:, :units], outer.bias) + x)
    return x


def _first_layer(layer: Any, x: Any, mask: Any, widths: dict[int, list[int]], num_heads: int, head_size: int,
                 act: Any) -> dict[tuple[int, int], Any]:
    """First-layer outputs for every (heads, units) in ``widths`` ({heads: sorted unit counts}), sharing the work."""
    import torch
    import torch.nn.functional as F

    out: dict[tuple[int, int], Any] = {}
    dense = layer.attention.output.dense
    max_heads = max(widths)
    partial = None
    if max_heads:
        context = _attention_context(layer, x, mask, max_heads * head_size, head_size)  # B x H x T x A
        weight = dense.weight[:, :max_heads * head_size].reshape(dense.weight.shape[0], max_heads, head_size)
        per_head = torch.einsum("bhta,dha->hbtd", context, weight)
        partial = torch.cumsum(per_head, dim=0)
    for heads, unit_counts in widths.items():
        if heads:
            h = layer.attention.output.LayerNorm(partial[heads - 1] + dense.bias + x)
        else:
            h = x
        inner, outer = layer.intermediate.dense, layer.output.dense
        total, start = None, 0
        for units in unit_counts:
            if units == 0:
                out[(heads, 0)] = h
                continue
            block = F.linear(act(F.linear(h, inner.weight[start:units], inner.bias[start:units])),
                             outer.weight[:, start:units])
            total = block if total is None else total + block
            start = units
            out[(heads, units)] = layer.output.LayerNorm(total + outer.bias + h)
    return out


def _groups(configs: Sequence[dict[str, int]]) -> tuple[list[tuple[int, int, int]], dict[tuple[int, int], set[int]],
                                                        dict[int, list[int]]]:
    """Each configuration's (depth, heads, units) key (no layers, or layers with neither heads nor units: the
    embeddings, (0, 0, 0)); the depths asked for per (heads, units); the sorted unit counts per head count."""
    keys = [(c["num_layers"], c["num_heads"], c["num_units"])
            if c["num_layers"] and (c["num_heads"] or c["num_units"]) else (0, 0, 0) for c in configs]
    depths: dict[tuple[int, int], set[int]] = defaultdict(set)
    for depth, heads, units in keys:
        if depth:
            depths[(heads, units)].add(depth)
    widths: dict[int, list[int]] = defaultdict(list)
    for heads, units in sorted(depths):
        widths[heads].append(units)
    return keys, depths, widths


def companions(evaluated: Sequence[dict[str, int]], subset: Sequence[dict[str, int]]) -> list[dict[str, int]]:
    """One-layer configurations which, evaluated beside ``subset`` (some of the configurations ``evaluated``
    together), give :func:`small_space_logits` the summation order it had for ``evaluated``, so that each of
    ``subset`` gets exactly the logits it got there: every unit count of ``evaluated`` below the widest of
    ``subset`` with the same head count (the FFN's block cuts) and its largest head count (the attention's
    per-head projections). Cheap: their first-layer outputs are computed anyway. None is already in ``subset``."""
    _, _, cuts = _groups(evaluated)
    _, _, asked = _groups(subset)
    extra = [(heads, units) for heads, counts in asked.items() for units in cuts[heads]
             if 0 < units < max(counts) and units not in counts]
    if asked and max(cuts) > max(asked):
        extra.append((max(cuts), 0))
    present = {(c["num_layers"], c["num_heads"], c["num_units"]) for c in subset}
    return [{"num_layers": 1, "num_heads": h, "num_units": u} for h, u in extra if (1, h, u) not in present]


def small_space_logits(model: Any, encoded: Encoded, multiple_choice: bool, configs: Sequence[dict[str, int]],
                       batch_size: int = 16, dtype: str = "float32") -> list[np.ndarray]:
    """Logits of each ``small`` configuration (``num_layers``, ``num_heads``, ``num_units``) of the unpruned
    fine-tuned ``model`` on every example of ``encoded``, in order (float32 numpy arrays)."""
    import torch
    from transformers.activations import ACT2FN

    layers = encoder_layers(model)
    config = model.config
    head_size = config.hidden_size // config.num_attention_heads
    act = ACT2FN[config.hidden_act]
    keys, depths, widths = _groups(configs)
    device = next(model.parameters()).device
    results: dict[tuple[int, int, int], np.ndarray] = {}
    model.eval()
    with torch.inference_mode(), autocast(dtype, device.type):
        for index, batch in evaluation_batches(encoded, batch_size, multiple_choice):
            inputs = model_inputs(batch, device)
            num_choices = inputs["input_ids"].shape[1] if multiple_choice else None
            if num_choices:
                inputs = {k: v.view(-1, v.shape[-1]) for k, v in inputs.items()}
            x = model.base_model.embeddings(input_ids=inputs["input_ids"], token_type_ids=inputs.get("token_type_ids"))
            mask = _attention_mask(inputs["attention_mask"])

            def keep(key: tuple[int, int, int], hidden: Any) -> None:
                logits = head_logits(model, hidden, num_choices).float().cpu().numpy()
                if key not in results:
                    results[key] = np.empty((len(encoded),) + logits.shape[1:], dtype=np.float32)
                results[key][index] = logits

            if (0, 0, 0) in keys:
                keep((0, 0, 0), x)
            if not depths:
                continue
            first = _first_layer(layers[0], x, mask, widths, config.num_attention_heads, head_size, act)
            for (heads, units), needed in depths.items():
                hidden = first[(heads, units)]
                for depth in range(1, max(needed) + 1):
                    if depth > 1:
                        hidden = _layer(layers[depth - 1], hidden, mask, heads, units, head_size, act)
                    if depth in needed:
                        keep((depth, heads, units), hidden)
    return [results[key] for key in keys]
