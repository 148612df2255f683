"""Atomic writes: a file or folder is built under a temporary name next to its target and renamed into place,
so a crash never leaves a half-written one."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path


def _mode_for(path: Path, directory: bool) -> int:
    """The permissions ``path`` keeps if it exists, else those a plain ``open``/``mkdir`` would give it under the
    process's umask (temporary files are private, 0600/0700, which would hide tables from a cluster's other users)."""
    if path.exists():
        return path.stat().st_mode & 0o7777
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if directory else 0o666) & ~umask


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary file path next to ``path``; on success it is renamed onto ``path``, on failure removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    os.chmod(staging, _mode_for(path, directory=False))
    try:
        yield Path(staging)
        os.replace(staging, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staging)


def write_atomic(path: str | Path, write: Callable[[Path], None]) -> None:
    """Run ``write(temporary_path)`` and move the result onto ``path`` atomically."""
    with atomic_path(path) as staging:
        write(staging)


@contextlib.contextmanager
def atomic_directory(path: str | Path) -> Iterator[Path]:
    """Yield a temporary folder next to ``path``; on success it replaces ``path``, on failure it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    os.chmod(staging, _mode_for(path, directory=True))
    try:
        yield staging
        if path.exists():
            shutil.rmtree(path)
        os.replace(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def read_block(path: str | Path, start: str, end: str) -> str:
    """The text between the markers ``start`` and ``end`` in the text file ``path``, without the markers and the
    newlines next to them."""
    path = Path(path)
    found = re.search(re.escape(start) + "\n?(.*?)\n?" + re.escape(end), path.read_text(), flags=re.S)
    if found is None:
        raise ValueError(f"{path} has no {start} ... {end} block")
    return found.group(1)


def replace_block(path: str | Path, start: str, end: str, block: str) -> None:
    """Replace the text between the markers ``start`` and ``end`` in the text file ``path`` with ``block``
    (atomically); the markers stay."""
    path = Path(path)
    text = path.read_text()
    if start not in text or end not in text:
        raise ValueError(f"{path} has no {start} ... {end} block to replace")
    text = re.sub(re.escape(start) + ".*?" + re.escape(end), lambda _: f"{start}\n{block}\n{end}", text, flags=re.S)
    write_atomic(path, lambda staging: staging.write_text(text))
