"""Peak memory of a block of work: the most bytes its tensors held at once, above what was held when it began.

CUDA: ``torch.cuda.max_memory_allocated`` after a reset of the peak statistics. CPU: the allocation and free
events of torch's CPU allocator that the profiler records (``profile_memory=True``), summed in time order;
their running maximum is the peak. (Until 2026-12-03 the CPU peak was the process's peak resident set size,
``VmHWM``, which counts every heap page a pass touched: glibc keeps freed blocks in its heap, so when the
layers of a sub-network differ in shape their buffers do not reuse each other's pages and that "peak" grew
towards the sum over layers; it also depended on what ran before. The ``memory_*`` columns of edition 1's
latency tables were measured that way; see the README. Merged batches record the method, :func:`peak_method`,
in their provenance's ``memory_peaks``.) torch runs one profiler per
process, so blocks measured in several threads take turns, and a block inside a running profiler gets NaN.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import warnings
from collections.abc import Iterator
from typing import Any


def peak_method(device: str) -> str:
    """How :func:`peak_memory` measures on ``device``, as recorded with the results (tables' provenance)."""
    return "torch.cuda.max_memory_allocated" if device.startswith("cuda") else "torch CPU allocator events"


_PROFILER_LOCK = threading.RLock()  # re-entered by a nested peak_memory, which then reports NaN


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """File descriptor 2 pointed at /dev/null (the profiler's native library logs its start and stop there)."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _held_peak(events: list[tuple[int, int]]) -> int:
    """The running maximum of allocated bytes over (time, +allocated / -freed bytes) events, from 0."""
    held = peak = 0
    for _, nbytes in sorted(events):
        held += nbytes
        peak = max(peak, held)
    return peak


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
    elif device.type == "cpu":
        from torch.autograd import DeviceType
        from torch.profiler import ProfilerActivity, profile

        with _PROFILER_LOCK:  # the profiler and file descriptor 2 belong to the whole process: threads take turns
            if torch.autograd.profiler._is_profiler_enabled:  # a user's profiler, or a nested peak_memory
                warnings.warn("peak_memory on a CPU runs torch's profiler, which is running already here: the "
                              "memory peak is reported as NaN", stacklevel=3)
                yield result
                return
            profiler = profile(activities=[ProfilerActivity.CPU], profile_memory=True)
            with _native_stderr_silenced():
                profiler.start()
            try:
                yield result
            finally:
                with _native_stderr_silenced():
                    profiler.stop()
        events = [(e.start_ns(), e.nbytes()) for e in profiler.profiler.kineto_results.events()
                  if e.name() == "[memory]" and e.device_type() == DeviceType.CPU]
        result["bytes"] = float(_held_peak(events))
    else:
        yield result
