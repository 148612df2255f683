"""Peak memory of a block of work: the high-water mark above what was in use when it began.

CUDA: ``torch.cuda.max_memory_allocated`` after a reset of the peak statistics. CPU (Linux): the
process's peak resident set size (``VmHWM`` in ``/proc/self/status``), reset by writing 5 to
``/proc/self/clear_refs``, after ``malloc_trim`` has returned freed heap pages to the system so that
reused memory counts again. Elsewhere the peak is reported as NaN.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kib(field: str) -> int:
    for line in _STATUS.read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(f"{field} not in {_STATUS}")


def _trim_heap() -> None:
    name = ctypes.util.find_library("c")
    if name:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(name).malloc_trim(0)


def cpu_peak_supported() -> bool:
    """Whether this system lets the peak resident set size be reset and read (Linux)."""
    return _STATUS.is_file() and _CLEAR_REFS.exists()


@contextlib.contextmanager
def peak_memory(device: Any) -> Iterator[dict[str, float]]:
    """Context manager yielding a dict whose ``"bytes"`` holds, on exit, the block's peak memory above its start."""
    import torch

    result = {"bytes": float("nan")}
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        start = torch.cuda.memory_allocated(device)
        yield result
        torch.cuda.synchronize(device)
        result["bytes"] = float(torch.cuda.max_memory_allocated(device) - start)
    elif device.type == "cpu" and cpu_peak_supported():
        _trim_heap()
        _CLEAR_REFS.write_text("5")
        start = _status_kib("VmRSS")
        yield result
        result["bytes"] = float(max(0, _status_kib("VmHWM") - start) * 1024)
    else:
        yield result
