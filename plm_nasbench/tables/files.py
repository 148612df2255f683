"""Atomic Parquet writes and checksum-verified reads."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..atomic import atomic_path
from ..provenance import sha256_file


class ChecksumError(ValueError):
    """A table file's bytes do not match the checksum recorded for it."""


def write_parquet(frame: pd.DataFrame, path: str | Path) -> str:
    """Write ``frame`` to ``path`` atomically (no half-written file survives a crash); returns its SHA-256."""
    with atomic_path(path) as staging:
        frame.to_parquet(staging, index=False, engine="pyarrow")
        digest = sha256_file(staging)
    return digest


def read_parquet(path: str | Path, sha256: str | None = None) -> pd.DataFrame:
    """Read the Parquet file ``path``; with ``sha256``, verify its bytes first (ChecksumError naming the file)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"table file {path} does not exist")
    if sha256 is not None:
        actual = sha256_file(path)
        if actual != sha256:
            raise ChecksumError(f"{path}: SHA-256 is {actual}, the manifest records {sha256}; the file is "
                                "corrupt, truncated or was changed after it was written")
    try:
        return pd.read_parquet(path, engine="pyarrow")
    except Exception as err:  # pyarrow raises several types for damaged files
        raise ChecksumError(f"{path} is not a readable Parquet file: {err}") from err
