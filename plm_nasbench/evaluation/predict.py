"""Running a model over an encoded split and scoring its predictions."""

from __future__ import annotations

import contextlib
import functools
import warnings
from typing import Any

import numpy as np

from ..tasks.batching import Encoded, evaluation_batches
from ..tasks.metrics import METRICS, predictions_from_logits
from ..tasks.specs import TaskSpec

DTYPES = ("float32", "bfloat16")


#: Where a device lacks bf16: torch then emulates bf16 autocast (measured by benchmarks/bf16_speed.py).
NO_BF16 = ("has no bfloat16 support (CPUs: oneDNN's bf16 kernels, on x86 AVX-512, AVX-NE-CONVERT or AMX; GPUs: "
           "compute capability 8.0 or newer), so torch emulates bf16 autocast, several times slower than float32")


def autocast(dtype: str, device: str = "cpu") -> Any:
    """Autocast context for ``dtype`` ('float32': none, 'bfloat16': torch.autocast, with a warning where ``device``
    has no bf16 support)."""
    import torch

    if dtype not in DTYPES:
        raise ValueError(f"dtype {dtype!r} is unsupported; allowed: {', '.join(DTYPES)}")
    if dtype == "float32":
        return contextlib.nullcontext()
    if not native_bf16(device):
        warnings.warn(f"device {device!r} {NO_BF16}", stacklevel=2)
    return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)


@functools.lru_cache(maxsize=None)
def native_bf16(device: str = "cpu") -> bool:
    """Whether ``device`` (``cpu``, ``cuda`` or ``cuda:N``) computes bfloat16 natively: a CUDA GPU of compute
    capability 8.0 or newer, or a CPU that oneDNN has bf16 kernels for. Elsewhere torch emulates bf16 autocast: on
    an AVX2-only AMD EPYC (cpu family 23 model 49) a training step took about 9x as long as in float32."""
    import torch

    parsed = torch.device(device)
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            return False
        index = torch.cuda.current_device() if parsed.index is None else parsed.index
        return torch.cuda.get_device_capability(index)[0] >= 8
    if parsed.type != "cpu":
        raise ValueError(f"device {device!r}: bf16 support is known for 'cpu' and 'cuda' devices only")
    return torch.backends.mkldnn.is_available() and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def model_inputs(batch: dict[str, Any], device: Any = None) -> dict[str, Any]:
    """The batch without its labels, moved to ``device``."""
    return {k: (v.to(device) if device is not None else v) for k, v in batch.items() if k != "labels"}


def head_logits(model: Any, hidden: Any, num_choices: int | None) -> Any:
    """Apply ``model``'s pooler and head to last hidden states ``hidden`` (batch x tokens x D)."""
    if type(model).__name__ == "RobertaForSequenceClassification":
        logits = model.classifier(hidden)  # RoBERTa's head pools the first token itself
    else:
        logits = model.classifier(model.base_model.pooler(hidden))
    return logits.view(-1, num_choices) if num_choices else logits


def predict(model: Any, encoded: Encoded, multiple_choice: bool, batch_size: int = 16,
            dtype: str = "float32") -> np.ndarray:
    """Logits of ``model`` for every example of ``encoded``, in the split's order (float32 numpy)."""
    import torch

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out: np.ndarray | None = None
    with torch.inference_mode(), autocast(dtype, device.type):
        for index, batch in evaluation_batches(encoded, batch_size, multiple_choice):
            logits = model(**model_inputs(batch, device)).logits.float().cpu().numpy()
            if out is None:
                out = np.empty((len(encoded),) + logits.shape[1:], dtype=np.float32)
            out[index] = logits
    model.train(was_training)
    return out


def score(spec: TaskSpec, logits: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """The task metric and the benchmark error (1 - metric) of ``logits``."""
    value = METRICS[spec.metric](labels, predictions_from_logits(logits, spec.is_regression))
    return value, 1.0 - value
