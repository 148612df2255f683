"""plm_nasbench: a benchmark for multi-objective NAS as structural pruning of fine-tuned language models.

The top-level import is light (no torch, no transformers); heavy parts load on first use.
``from plm_nasbench import Benchmark`` loads the query API (numpy and pandas, still no torch), as does its error
for a configuration the table lacks, ``ConfigNotInTableError``.
"""

from typing import Any

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in ("Benchmark", "ConfigNotInTableError"):
        from . import benchmark

        return getattr(benchmark, name)
    raise AttributeError(f"module 'plm_nasbench' has no attribute {name!r}")
