"""``load_task``: a task's train/valid/test splits following the paper's protocol, with provenance.

Protocol: the task's training data is split 70/30 into train and valid with a fixed data seed; the
test set is the GLUE dev set (IMDB: test; SWAG: validation). Optional caps subsample each split
without replacement (seeded by the data seed) and are recorded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .examples import Examples
from .readers import read_task_file
from .specs import TaskSpec, get_task_spec

#: Environment variable naming a folder in the GLUE layout, used when ``data_dir`` is not given.
DATASETS_ENV = "PLM_NASBENCH_DATASETS"
TRAIN_FRACTION = 0.7
DEFAULT_DATA_SEED = 128


@dataclass
class TaskData:
    """The three splits of a task plus where they came from."""

    spec: TaskSpec
    train: Examples
    valid: Examples
    test: Examples
    provenance: dict[str, Any] = field(default_factory=dict)


def _cap(examples: Examples, cap: int | None, rng: np.random.Generator) -> Examples:
    if cap is None or cap >= len(examples):
        return examples
    return examples.subset(np.sort(rng.choice(len(examples), size=cap, replace=False)))


def first_present(folder: Path, candidates: tuple[str, ...]) -> Path | None:
    """The first of ``candidates`` (paths relative to ``folder``, e.g. a task's test files) that is a file there."""
    return next((folder / c for c in candidates if (folder / c).is_file()), None)


@dataclass(frozen=True)
class LocalFiles:
    """A task's files in a data folder: the first training and test candidates present (None: none), and which of
    them hold only part of their split."""

    spec: TaskSpec
    train: Path | None
    test: Path | None
    partial: list[str]

    @property
    def lacking(self) -> list[tuple[str, ...]]:
        """The candidate lists of the files a load cannot do without: the training file unless a partial file was
        found (a task whose data exists only in part, such as SWAG's first validation rows), and the test file."""
        return [files for files, path, needed in ((self.spec.train_files, self.train, not self.partial),
                                                  (self.spec.test_files, self.test, True))
                if path is None and needed]


def local_files(spec: TaskSpec, folder: Path) -> LocalFiles:
    """``spec``'s files in ``folder``, as :func:`load_task` looks them up."""
    test, train = first_present(folder, spec.test_files), first_present(folder, spec.train_files)
    partial = [str(p.relative_to(folder)) for p in (train, test)
               if p is not None and str(p.relative_to(folder)) in spec.partial_files]
    return LocalFiles(spec, train, test, partial)


def _read_local(spec: TaskSpec, folder: Path, allow_partial: bool) -> tuple[Examples, Examples | None, dict]:
    if not folder.is_dir():
        raise FileNotFoundError(f"data folder {folder} does not exist; pass data_dir= a folder in the GLUE layout "
                                f"(e.g. shared/datasets) or set ${DATASETS_ENV}")
    found = local_files(spec, folder)
    test_path, train_path, partial = found.test, found.train, found.partial
    if spec.test_files in found.lacking:
        raise FileNotFoundError(f"no test file for task {spec.name} in {folder}; looked for "
                                f"{', '.join(spec.test_files)}")
    if partial and not allow_partial:
        raise ValueError(f"task {spec.name}: only partial data found in {folder} ({', '.join(partial)}); "
                         "pass allow_partial=True to use it (recorded in the provenance)")
    if spec.train_files in found.lacking:
        raise FileNotFoundError(f"no training file for task {spec.name} in {folder}; looked for "
                                f"{', '.join(spec.train_files)}")
    test = read_task_file(spec.name, test_path)
    train = read_task_file(spec.name, train_path) if train_path is not None else None
    files = {"train": str(train_path) if train_path else None, "test": str(test_path)}
    return test, train, {"source": "local", "data_dir": str(folder), "files": files, "partial_files": partial}


def _read_hub(spec: TaskSpec) -> tuple[Examples, Examples, dict]:
    import datasets

    path, name, train_split, test_split = spec.hub
    splits = {}
    for split in (train_split, test_split):
        try:
            dataset = datasets.load_dataset(path, name, split=split)
        except Exception as err:  # offline, no access, missing dataset: say how to use local files instead
            raise ConnectionError(
                f"task {spec.name}: no data folder was given (data_dir=None and ${DATASETS_ENV} is unset), so its "
                f"data was looked up on the Hugging Face Hub ({path}, {name}, split {split}), which failed: "
                f"{type(err).__name__}: {err}. Pass data_dir= (on the command line: --data-dir) naming a folder in "
                f"the GLUE layout ({spec.train_files[0]} ...), or set ${DATASETS_ENV}") from err
        splits[split] = examples_from_hf(spec, dataset)
    return splits[test_split], splits[train_split], {"source": "hub", "hub_dataset": path, "hub_config": name,
                                                     "files": {"train": train_split, "test": test_split},
                                                     "partial_files": []}


def examples_from_hf(spec: TaskSpec, dataset: Any) -> Examples:
    """Convert a Hugging Face ``datasets`` split of ``spec`` into Examples (GLUE label ids are kept)."""
    columns = {
        "rte": ("sentence1", "sentence2"), "mrpc": ("sentence1", "sentence2"), "stsb": ("sentence1", "sentence2"),
        "qnli": ("question", "sentence"), "cola": ("sentence", None), "sst2": ("sentence", None),
        "imdb": ("text", None), "swag": ("sent1", "sent2"),
    }[spec.name]
    labels = np.asarray(dataset["label"], dtype=np.float64 if spec.is_regression else np.int64)
    text_b = list(dataset[columns[1]]) if columns[1] else None
    endings = list(zip(*(dataset[f"ending{i}"] for i in range(4)))) if spec.kind == "choice" else None
    return Examples(list(dataset[columns[0]]), text_b, labels, endings)


def load_task(name: str, data_dir: str | Path | None = None, *, data_seed: int = DEFAULT_DATA_SEED,
              max_train: int | None = None, max_valid: int | None = None, max_test: int | None = None,
              allow_partial: bool = False) -> TaskData:
    """Load task ``name`` split into train/valid/test.

    ``data_dir`` is a folder in the GLUE layout (``rte/train.tsv`` ...); without it ``$PLM_NASBENCH_DATASETS``
    is used, else the Hugging Face Hub. ``max_*`` cap the splits. Partial local data (QNLI's 9,999-row train
    sample, SWAG's first 91 validation rows) needs ``allow_partial=True``; with SWAG's 91 rows and no training
    file, 30% of the rows become the test set and the rest is split 70/30.
    """
    spec = get_task_spec(name)
    for cap_name, cap in (("max_train", max_train), ("max_valid", max_valid), ("max_test", max_test)):
        if cap is not None and (not isinstance(cap, int) or cap < 1):
            raise ValueError(f"{cap_name} must be a positive integer or None, got {cap!r}")
    folder = data_dir if data_dir is not None else os.environ.get(DATASETS_ENV)
    if folder is not None:
        test, train, provenance = _read_local(spec, Path(folder), allow_partial)
    else:
        test, train, provenance = _read_hub(spec)
    rng = np.random.default_rng(data_seed)
    notes = []
    if train is None:  # SWAG with only validation rows: carve a training set out of them (smoke tests only)
        order = rng.permutation(len(test))
        n_test = int(round(0.3 * len(test)))
        train, test = test.subset(np.sort(order[n_test:])), test.subset(np.sort(order[:n_test]))
        notes.append(f"no training file: {n_test} of the validation rows form the test set, the other "
                     f"{len(train)} are split into train/valid; for smoke tests, not for tables")
    source_rows = {"train": len(train), "test": len(test)}
    order = rng.permutation(len(train))
    n_train = int(round(TRAIN_FRACTION * len(train)))
    train_split, valid_split = train.subset(order[:n_train]), train.subset(order[n_train:])
    train_split, valid_split, test = (_cap(train_split, max_train, rng), _cap(valid_split, max_valid, rng),
                                      _cap(test, max_test, rng))
    provenance.update(
        task=name, data_seed=data_seed, train_fraction=TRAIN_FRACTION, source_rows=source_rows,
        caps={"max_train": max_train, "max_valid": max_valid, "max_test": max_test},
        rows={"train": len(train_split), "valid": len(valid_split), "test": len(test)},
        partial=bool(provenance["partial_files"]) or bool(notes), notes=notes,
    )
    if "qnli/train_subset_9999.tsv" in provenance["partial_files"]:
        notes.append("QNLI train is a 9,999-row random sample of the GLUE train file (104,743 rows)")
    return TaskData(spec, train_split, valid_split, test, provenance)
