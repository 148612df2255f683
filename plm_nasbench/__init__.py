"""plm_nasbench: a benchmark for multi-objective NAS as structural pruning of fine-tuned language models.

The top-level import is light (no torch, no transformers); heavy parts load on first use.
"""

__version__ = "0.1.0"
