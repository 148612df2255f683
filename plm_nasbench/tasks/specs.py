"""The benchmark tasks: head, metric and where their data lives (GLUE folder layout or the Hub)."""

from __future__ import annotations

from dataclasses import dataclass

from ..architecture import TASK_HEADS, Head


@dataclass(frozen=True)
class TaskSpec:
    """One benchmark task.

    ``train_files``/``test_files`` are candidate paths inside the task's folder, in order of
    preference; ``partial`` marks files that hold only part of the split.
    """

    name: str
    metric: str
    kind: str  # "pair", "single", "choice"
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    hub: tuple[str, str | None, str, str]  # dataset path, config name, train split, test split
    partial_files: tuple[str, ...] = ()

    @property
    def head(self) -> Head:
        """The prediction head this task needs."""
        return TASK_HEADS[self.name]

    @property
    def is_regression(self) -> bool:
        """True for STS-B (one real-valued output)."""
        return self.head.is_regression


TASKS: dict[str, TaskSpec] = {
    "rte": TaskSpec("rte", "accuracy", "pair", ("rte/train.tsv",), ("rte/dev.tsv",),
                    ("nyu-mll/glue", "rte", "train", "validation")),
    "mrpc": TaskSpec("mrpc", "f1", "pair", ("mrpc/train.tsv",), ("mrpc/dev.tsv",),
                     ("nyu-mll/glue", "mrpc", "train", "validation")),
    "stsb": TaskSpec("stsb", "spearman", "pair", ("stsb/train.tsv",), ("stsb/dev.tsv",),
                     ("nyu-mll/glue", "stsb", "train", "validation")),
    "cola": TaskSpec("cola", "matthews", "single", ("cola/train.tsv",), ("cola/dev.tsv",),
                     ("nyu-mll/glue", "cola", "train", "validation")),
    "sst2": TaskSpec("sst2", "accuracy", "single", ("sst2/train.tsv",), ("sst2/dev.tsv",),
                     ("nyu-mll/glue", "sst2", "train", "validation")),
    "qnli": TaskSpec("qnli", "accuracy", "pair", ("qnli/train.tsv", "qnli/train_subset_9999.tsv"),
                     ("qnli/dev_glue_original.tsv", "qnli/dev.tsv"), ("nyu-mll/glue", "qnli", "train", "validation"),
                     partial_files=("qnli/train_subset_9999.tsv",)),
    "imdb": TaskSpec("imdb", "accuracy", "single", ("imdb/train.csv.gz",), ("imdb/test.csv.gz",),
                     ("stanfordnlp/imdb", None, "train", "test")),
    "swag": TaskSpec("swag", "accuracy", "choice", ("swag/train.csv",), ("swag/val.csv", "swag/val_first91.csv"),
                     ("allenai/swag", "regular", "train", "validation"), partial_files=("swag/val_first91.csv",)),
}


def get_task_spec(name: str) -> TaskSpec:
    """Look up a task; unknown names raise a ValueError listing the known tasks."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}") from None
