"""Where plm_nasbench keeps its tables, surrogates and caches (each overridable by an environment variable)."""

from __future__ import annotations

import os
from pathlib import Path

#: Environment variables overriding the folders of the tables, the surrogates and the checkpoint cache.
DATA_ENV, SURROGATES_ENV, CACHE_ENV = "PLM_NASBENCH_DATA", "PLM_NASBENCH_SURROGATES", "PLM_NASBENCH_CACHE"
_CHECKOUT = Path(__file__).resolve().parent.parent
#: The tables and surrogates that come with the package (the defaults when no environment variable is set).
PACKAGE_DATA, PACKAGE_SURROGATES = _CHECKOUT / "data", _CHECKOUT / "surrogates"


def _folder(env: str, default: Path) -> Path:
    override = os.environ.get(env)
    return Path(override) if override else default


def data_dir() -> Path:
    """Folder of the benchmark tables: ``$PLM_NASBENCH_DATA``, else ``data/`` of the source checkout."""
    return _folder(DATA_ENV, PACKAGE_DATA)


def surrogates_dir() -> Path:
    """Folder of the surrogates: ``$PLM_NASBENCH_SURROGATES``, else ``surrogates/`` of the source checkout."""
    return _folder(SURROGATES_ENV, PACKAGE_SURROGATES)


def cache_dir() -> Path:
    """Folder of fine-tuned checkpoints: ``$PLM_NASBENCH_CACHE``, else ``$XDG_CACHE_HOME/plm_nasbench``
    (``~/.cache/plm_nasbench``). It lives outside the git checkout."""
    return _folder(CACHE_ENV, Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "plm_nasbench")
