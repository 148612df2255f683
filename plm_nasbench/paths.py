"""Where plm_nasbench keeps its tables and caches."""

from __future__ import annotations

import os
from pathlib import Path

#: Environment variable overriding the folder of the benchmark tables.
DATA_ENV = "PLM_NASBENCH_DATA"


def data_dir() -> Path:
    """Folder of the benchmark tables: ``$PLM_NASBENCH_DATA``, else ``data/`` of the source checkout."""
    override = os.environ.get(DATA_ENV)
    if override:
        return Path(override)
    return Path(__file__).resolve().parent.parent / "data"

#: Environment variable overriding the cache folder (fine-tuned super-network checkpoints).
CACHE_ENV = "PLM_NASBENCH_CACHE"


def cache_dir() -> Path:
    """Folder of fine-tuned checkpoints: ``$PLM_NASBENCH_CACHE``, else ``$XDG_CACHE_HOME/plm_nasbench``
    (``~/.cache/plm_nasbench``). It lives outside the git checkout."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "plm_nasbench"

#: Environment variable overriding the folder of the shipped surrogates.
SURROGATES_ENV = "PLM_NASBENCH_SURROGATES"


def surrogates_dir() -> Path:
    """Folder of the surrogates: ``$PLM_NASBENCH_SURROGATES``, else ``surrogates/`` of the source checkout."""
    override = os.environ.get(SURROGATES_ENV)
    if override:
        return Path(override)
    return Path(__file__).resolve().parent.parent / "surrogates"
