"""Reading task files in the GLUE folder layout (.tsv with quoting disabled, IMDB .csv.gz, SWAG .csv)."""

from __future__ import annotations

import csv
import gzip
import sys
from pathlib import Path

import numpy as np

from .examples import Examples

NLI_LABELS = {"entailment": 0, "not_entailment": 1}


def _rows(path: Path, delimiter: str, quoting: int) -> list[list[str]]:
    """All rows of a (possibly gzipped) delimited file, header included; a UTF-8 BOM is dropped."""
    csv.field_size_limit(sys.maxsize)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle, delimiter=delimiter, quoting=quoting))


def _columns(path: Path, header: list[str], rows: list[list[str]], wanted: list[str],
             first_line: int = 2) -> list[list[str]]:
    missing = [c for c in wanted if c not in header]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}; the header has {', '.join(header)}")
    positions = [header.index(c) for c in wanted]
    out: list[list[str]] = [[] for _ in wanted]
    for line, row in enumerate(rows, start=first_line):
        if len(row) != len(header):
            raise ValueError(f"{path}, line {line}: {len(row)} fields, expected {len(header)} like the header")
        for values, position in zip(out, positions):
            values.append(row[position])
    return out


def _labels(path: Path, values: list[str], mapping: dict[str, int] | None = None, dtype: type = int,
            first_line: int = 2) -> np.ndarray:
    out = []
    for line, value in enumerate(values, start=first_line):
        try:
            out.append(mapping[value] if mapping else dtype(value))
        except (KeyError, ValueError):
            allowed = ", ".join(mapping) if mapping else f"a {dtype.__name__}"
            raise ValueError(f"{path}, line {line}: label {value!r} is not one of {allowed}") from None
    return np.array(out, dtype=np.float64 if dtype is float else np.int64)


def read_task_file(task: str, path: Path) -> Examples:
    """Read one split of ``task`` from ``path``; malformed rows raise ValueError naming file and line."""
    tsv = path.suffix == ".tsv"
    if task == "cola":  # GLUE CoLA has no header: source, label, original mark, sentence
        rows = _rows(path, "\t", csv.QUOTE_NONE)
        sentence, label = _columns(path, ["source", "label", "mark", "sentence"], rows, ["sentence", "label"], 1)
        return Examples(sentence, None, _labels(path, label, first_line=1))
    header, *rows = _rows(path, "\t" if tsv else ",", csv.QUOTE_NONE if tsv else csv.QUOTE_MINIMAL)
    if task in ("rte", "qnli"):
        first = "sentence1" if task == "rte" else "question"
        a, b, label = _columns(path, header, rows, [first, "sentence2" if task == "rte" else "sentence", "label"])
        return Examples(a, b, _labels(path, label, NLI_LABELS))
    if task == "mrpc":
        a, b, label = _columns(path, header, rows, ["#1 String", "#2 String", "Quality"])
        return Examples(a, b, _labels(path, label))
    if task == "stsb":
        a, b, score = _columns(path, header, rows, ["sentence1", "sentence2", "score"])
        return Examples(a, b, _labels(path, score, dtype=float))
    if task in ("sst2", "imdb"):
        text, label = _columns(path, header, rows, ["sentence" if task == "sst2" else "text", "label"])
        return Examples(text, None, _labels(path, label))
    if task == "swag":
        sent1, sent2, *endings, label = _columns(
            path, header, rows, ["sent1", "sent2", "ending0", "ending1", "ending2", "ending3", "label"])
        return Examples(sent1, sent2, _labels(path, label), list(zip(*endings)))
    raise ValueError(f"no reader for task {task!r}")
