"""Atomic Parquet writes and checksum-verified reads."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pandas as pd

from ..atomic import write_atomic
from ..provenance import sha256_file


class ChecksumError(ValueError):
    """A table file's bytes do not match the checksum recorded for it."""


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    """The bytes of ``frame`` as a Parquet file, as :func:`write_parquet` writes them (the same frame gives the same
    bytes, so that a table written again unchanged keeps its checksum)."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False, engine="pyarrow")
    return buffer.getvalue()


def write_parquet(frame: pd.DataFrame, path: str | Path) -> str:
    """Write ``frame`` to ``path`` atomically (no half-written file survives a crash); returns its SHA-256."""
    data = parquet_bytes(frame)
    write_atomic(path, lambda staging: staging.write_bytes(data))
    return hashlib.sha256(data).hexdigest()


def read_parquet(path: str | Path, sha256: str | None = None) -> pd.DataFrame:
    """Read the Parquet file ``path``; with ``sha256``, verify its bytes first (ChecksumError naming the file)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"table file {path} does not exist")
    if sha256 is not None:
        actual = sha256_file(path)
        if actual != sha256:
            raise ChecksumError(f"{path}: SHA-256 is {actual}, the manifest records {sha256}; the file is "
                                "corrupt, truncated or was changed after it was written (enter a table of your own "
                                "with Manifest.write_table, which records its checksum)")
    try:
        return pd.read_parquet(path, engine="pyarrow")
    except Exception as err:  # pyarrow raises several types for damaged files
        raise ChecksumError(f"{path} is not a readable Parquet file: {err}") from err
