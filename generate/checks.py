"""Checks shared by the plan reader and the configuration selections: each raises a ValueError naming where."""

from __future__ import annotations

import math
from typing import Any


def fail(where: str, message: str) -> None:
    """Raise a ValueError that starts with ``where`` (a plan file and the entry in it)."""
    raise ValueError(f"{where}: {message}")


def check_number(value: Any, key: str, where: str, integer: bool = True, smallest: float = 0,
                 inclusive: bool = True) -> None:
    """``value`` is an integer (or, with ``integer=False``, a finite number) >= ``smallest`` (> without
    ``inclusive``); booleans are not numbers here."""
    typed = isinstance(value, int) if integer else isinstance(value, (int, float)) and math.isfinite(value)
    if isinstance(value, bool) or not typed or not (value >= smallest if inclusive else value > smallest):
        fail(where, f"{key} must be {'an integer' if integer else 'a finite number'} "
                    f"{'>=' if inclusive else '>'} {smallest}, got {value!r}")
