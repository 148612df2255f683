"""Where a result came from: package and library versions, git commit, hardware and time (pure Python)."""

from __future__ import annotations

import datetime
import functools
import hashlib
import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

from . import __version__

_LIBRARIES = ("torch", "transformers", "numpy", "pandas", "pyarrow", "scipy", "scikit-learn", "xgboost")


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the source checkout this package runs from (with ``+dirty`` if modified), or None.

    Read once per process (the first call), so it names the code this process loaded even if the checkout moves
    on, provided the first call comes when the code is loaded: ``python -m generate`` makes it at start."""
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                check=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_signature() -> str:
    """The CPU's family, model and stepping numbers (from /proc/cpuinfo; empty where there is none): virtual
    machines that report one model name can be different, differently fast processors."""
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file():
        return ""
    fields: dict[str, str] = {}
    for line in cpuinfo.read_text().splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("cpu family", "model", "stepping") and key not in fields:
            fields[key] = value.strip()
        if not line.strip() and fields:  # the first processor's block is enough
            break
    return " ".join(f"{k} {v}" for k, v in fields.items())


def library_versions() -> dict[str, str | None]:
    """Installed versions of the libraries that shape the numbers (None where not installed)."""
    versions: dict[str, str | None] = {}
    for name in _LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def now() -> str:
    """The current UTC time in ISO 8601."""
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def environment(device: str | None = None) -> dict[str, Any]:
    """Everything about the running environment that a result should carry."""
    env: dict[str, Any] = {
        "plm_nasbench_version": __version__, "git_commit": git_commit(), "python": platform.python_version(),
        **library_versions(), "cpu": cpu_model(), "cpu_signature": cpu_signature(), "cpu_count": os.cpu_count(), "hostname": platform.node(),
    }
    if device is not None:
        env["device"] = device
    torch = sys.modules.get("torch")  # timings depend on the intra-op thread count; never import torch here
    if torch is not None:
        env["torch_threads"] = torch.get_num_threads()
        if device is not None and device.startswith("cuda"):  # on a GPU the numbers depend on it and its libraries
            env.update(gpu=torch.cuda.get_device_name(torch.device(device)), cuda=torch.version.cuda,
                       cudnn=torch.backends.cudnn.version())
    return env


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
