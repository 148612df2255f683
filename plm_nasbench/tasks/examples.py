"""Examples of a task split: texts and labels as plain Python lists and numpy arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Examples:
    """Rows of one split.

    ``text_a`` is the first sentence (or the SWAG context), ``text_b`` the second sentence (or the
    SWAG ending prefix; None for single-sentence tasks), ``endings`` the SWAG candidate endings.
    ``labels`` are ints (classification, choice) or floats (regression).
    """

    text_a: list[str]
    text_b: list[str] | None
    labels: np.ndarray
    endings: list[tuple[str, ...]] | None = None

    def __post_init__(self) -> None:
        n = len(self.text_a)
        for name in ("text_b", "endings"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise ValueError(f"examples field {name} has {len(value)} rows, text_a has {n}")
        if len(self.labels) != n:
            raise ValueError(f"examples have {n} texts but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.text_a)

    def subset(self, index: np.ndarray) -> "Examples":
        """The rows at positions ``index`` (in that order)."""
        index = np.asarray(index, dtype=int)
        pick = lambda values: None if values is None else [values[i] for i in index]
        return Examples(pick(self.text_a), pick(self.text_b), self.labels[index], pick(self.endings))
