"""The query API: ``Benchmark`` answers from the tables, the surrogates or the real evaluator (no torch on import)."""

from .core import BACKENDS, Benchmark
from .table import ConfigNotInTableError

__all__ = ["BACKENDS", "Benchmark", "ConfigNotInTableError"]
