"""Fine-tuned super-networks saved as safetensors with their training provenance, in the cache folder.

A checkpoint is a folder holding ``config.json`` and ``model.safetensors`` (Hugging Face
``save_pretrained``) plus ``provenance.json``: what was trained (model, task and its data caps,
search space, strategy, training settings), its per-epoch history, the environment and the SHA-256 of
the weights. Folders are written under a temporary name and renamed into place, so a crash never leaves
a half-written checkpoint; loading verifies the weights' checksum.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..atomic import atomic_directory
from ..locking import exclusive_lock
from ..paths import cache_dir
from ..provenance import sha256_file

PROVENANCE_FILE = "provenance.json"
WEIGHTS_FILE = "model.safetensors"


def checkpoint_key(description: dict[str, Any]) -> str:
    """A short stable digest of a JSON-able description of what was trained."""
    text = json.dumps(description, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def checkpoint_path(model_name: str, task: str, strategy: str, seed: int, description: dict[str, Any],
                    root: str | Path | None = None) -> Path:
    """Where the checkpoint described by ``description`` lives: ``<cache>/supernetworks/<model>/<task>/...``."""
    root = Path(root) if root is not None else cache_dir()
    return root / "supernetworks" / model_name / task / f"{strategy}-seed{seed}-{checkpoint_key(description)}"


def save_checkpoint(model: Any, path: str | Path, provenance: dict[str, Any]) -> Path:
    """Save ``model`` and ``provenance`` to folder ``path`` atomically; an existing folder is replaced."""
    path = Path(path)
    with atomic_directory(path) as staging:
        model.save_pretrained(staging, safe_serialization=True)
        record = dict(provenance, weights_sha256=sha256_file(staging / WEIGHTS_FILE))
        (staging / PROVENANCE_FILE).write_text(json.dumps(record, indent=2, sort_keys=True, default=str))
    return path


def read_provenance(path: str | Path) -> dict[str, Any]:
    """The provenance record of the checkpoint in folder ``path``."""
    file = Path(path) / PROVENANCE_FILE
    if not file.is_file():
        raise FileNotFoundError(f"{file} does not exist: {path} is not a plm_nasbench checkpoint")
    return json.loads(file.read_text())


def cached_checkpoints(root: str | Path | None = None) -> list[dict[str, Any]]:
    """Every super-network in the cache (``root``, default the package's cache folder), one record each: model,
    task, strategy, training seed, the space whose sampler trained it, ``supernetwork_id`` (the weights'
    SHA-256, first 16 hex digits, as in the tables), its epochs, training seconds and finish date; and every
    training under way (``state``: ``training``) or interrupted (``interrupted``: its state is saved and the next
    call resumes it); for these two, ``epochs_done`` counts the finished epochs and ``training_seconds`` the
    seconds (those of an epoch saved part-way included) of their last saved state. Every record also gives the
    training's settings that tell two runs of one (task, strategy, seed) apart: ``dtype``, ``epochs`` (planned)
    and ``train_rows`` (the training examples, after any cap); ``None`` where a saved state cannot be read."""
    base = (Path(root) if root is not None else cache_dir()) / "supernetworks"
    records = []
    for folder in sorted(base.glob("*/*/*")):
        model, task, name = folder.relative_to(base).parts
        if folder.is_dir() and (folder / PROVENANCE_FILE).is_file():
            provenance = read_provenance(folder)
            description = provenance["description"]
            records.append({"model": model, "task": task, "strategy": description["strategy"]["name"],
                            "seed": description["training"]["seed"], "supernetwork_space": description["search_space"],
                            "supernetwork_id": provenance["weights_sha256"][:16], "state": "trained",
                            "epochs_done": description["training"].get("epochs"),
                            "training_seconds": provenance.get("training_seconds"),
                            "finished": provenance.get("finished"), "dtype": description["training"].get("dtype"),
                            "epochs": description["training"].get("epochs"),
                            "train_rows": description["data"].get("rows", {}).get("train"), "folder": str(folder)})
        elif name.endswith(".resume.pt") and not folder.with_name(name[:-len(".resume.pt")]).is_dir():
            checkpoint = name[:-len(".resume.pt")]
            strategy, _, seed = checkpoint.rsplit("-", 1)[0].rpartition("-seed")
            with exclusive_lock(folder.with_name(checkpoint + ".lock"), blocking=False) as free:
                state = "interrupted" if free else "training"  # a trainer holds the lock while it trains
            progress = _resume_progress(folder)  # the last save's (written atomically, so whole while it trains)
            records.append({"model": model, "task": task, "strategy": strategy, "seed": int(seed),
                            "supernetwork_space": None, "supernetwork_id": None, "state": state,
                            "epochs_done": progress.get("epoch"), "training_seconds": progress.get("cumulative"),
                            "finished": None, "dtype": progress.get("dtype"), "epochs": progress.get("epochs"),
                            "train_rows": progress.get("train_rows"), "folder": str(folder)})
    return records


def _resume_progress(path: Path) -> dict[str, Any]:
    """``epoch`` (finished epochs) and ``cumulative`` (seconds, including those of an epoch saved part-way) of a
    saved training state, with the ``dtype``, planned ``epochs`` and ``train_rows`` its fingerprint records;
    empty where the file cannot be read as one."""
    import pickle

    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        progress = {"epoch": int(state["epoch"]),
                    "cumulative": float(state["cumulative"]) + float(state.get("trained", 0))}
    except (OSError, EOFError, RuntimeError, KeyError, TypeError, pickle.UnpicklingError):
        return {}
    try:
        fingerprint = json.loads(state["fingerprint"])
        training = fingerprint["training"]
        return dict(progress, dtype=training["dtype"], epochs=training["epochs"], train_rows=fingerprint["train_rows"])
    except (KeyError, TypeError, ValueError):  # a state without a readable fingerprint: its progress alone
        return progress


def load_checkpoint(path: str | Path, device: str = "cpu") -> tuple[Any, dict[str, Any]]:
    """The fine-tuned model saved in folder ``path`` (eval mode) and its provenance; the weights' checksum is verified."""
    import transformers

    path = Path(path)
    provenance = read_provenance(path)
    weights = path / WEIGHTS_FILE
    if not weights.is_file():
        raise FileNotFoundError(f"{weights} is missing: the checkpoint is incomplete; delete {path} and retrain")
    actual = sha256_file(weights)
    if actual != provenance.get("weights_sha256"):
        raise ValueError(f"{weights} has SHA-256 {actual}, but {path / PROVENANCE_FILE} records "
                         f"{provenance.get('weights_sha256')}: the file is corrupt; delete {path} and retrain")
    config = transformers.AutoConfig.from_pretrained(path)
    cls = getattr(transformers, config.architectures[0])
    model = cls.from_pretrained(path, local_files_only=True)
    return model.float().to(device).eval(), provenance
