"""What the two command lines (``plm-nasbench`` and ``python -m generate``) share about their terminal output."""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int, file: Any = None,
                  line: str | None = None) -> None:
    print(f"warning: {message}", file=sys.stderr)


def one_line_warnings() -> None:
    """Show warnings as one line on stderr, without the source line a library warning would point at."""
    warnings.showwarning = _show_warning


def discard_stdout() -> None:
    """After a BrokenPipeError (output piped into a reader that stopped, such as ``head``): send what is left of
    stdout to the null device, so that the interpreter's final flush does not fail again."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
