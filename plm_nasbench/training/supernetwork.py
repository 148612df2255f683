"""Fine-tuning a super-network with one of the six strategies, cached as a checkpoint.

``train_supernetwork`` is the one recipe behind every weight-sharing number: it loads the pre-trained
model with the task's head (head weights initialised from the training seed), fine-tunes it with the
chosen strategy over the search space, and saves it with its provenance. A second call with the same
description reloads the checkpoint instead of training again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..locking import exclusive_lock
from ..provenance import environment, now
from ..spaces import get_search_space
from ..tasks.batching import encode_task
from ..tasks.loading import TaskData
from ..models.checkpoints import checkpoint_path, load_checkpoint, read_provenance, save_checkpoint
from .finetune import SAVE_EVERY, TrainingSettings, finetune
from .strategies import StrategySettings

#: Data provenance fields that decide which examples were used (not where they were read from).
_DATA_KEY_FIELDS = ("task", "source", "data_seed", "train_fraction", "caps", "rows", "partial_files")


def supernetwork_description(model_name: str, data: TaskData, space_name: str, strategy: StrategySettings,
                             settings: TrainingSettings, max_length: int) -> dict[str, Any]:
    """Everything that decides a super-network's weights (the checkpoint's key)."""
    return {
        "model": model_name, "data": {k: data.provenance.get(k) for k in _DATA_KEY_FIELDS},
        "max_length": max_length, "search_space": space_name, "strategy": strategy.to_dict(),
        "training": {k: v for k, v in settings.to_dict().items() if k != "eval_batch_size"},
    }


def train_supernetwork(model_name: str, data: TaskData, space_name: str, strategy: StrategySettings,
                       settings: TrainingSettings, *, max_length: int = 128, device: str = "cpu",
                       cache_root: str | Path | None = None, retrain: bool = False,
                       show_progress: bool = False, save_every: float = SAVE_EVERY) -> tuple[Any, dict[str, Any]]:
    """The fine-tuned super-network and its provenance, from the cache when it is there.

    ``space_name`` is the space whose sampler gives the strategy its sub-networks. ``retrain=True``
    trains again and replaces the cached checkpoint. Training saves its state next to the checkpoint after
    every epoch and every ``save_every`` seconds inside one, so an interrupted run (a killed process, a
    pre-empted cluster job, a session's end) resumes from its last saved step when called again. The
    provenance holds the description, the per-epoch history (valid/test of the full network), the training
    time and the environment.
    """
    description = supernetwork_description(model_name, data, space_name, strategy, settings, max_length)
    path = checkpoint_path(model_name, data.spec.name, strategy.name, settings.seed, description, cache_root)
    with exclusive_lock(path.with_name(path.name + ".lock")):  # one trainer per checkpoint across processes
        if path.exists() and not retrain:
            model, provenance = load_checkpoint(path, device)
            return model, dict(provenance, checkpoint=str(path))
        resume_file = path.with_name(path.name + ".resume.pt")  # the saved training state, for an interrupted run
        if retrain:
            resume_file.unlink(missing_ok=True)
        return _train(model_name, data, space_name, strategy, settings, max_length, device, description, path,
                      resume_file, show_progress, save_every)


def _train(model_name: str, data: TaskData, space_name: str, strategy: StrategySettings, settings: TrainingSettings,
           max_length: int, device: str, description: dict[str, Any], path: Path, resume_file: Path,
           show_progress: bool, save_every: float) -> tuple[Any, dict[str, Any]]:
    import torch

    from ..models import architecture_of, load_model, load_tokenizer

    torch.manual_seed(settings.seed)
    model = load_model(model_name, data.spec.name).to(device)
    space = get_search_space(space_name, architecture_of(model))
    encoded = encode_task(data, load_tokenizer(model_name), max_length)
    started = now()
    history = finetune(model, data.spec, encoded, settings, space, strategy, show_progress=show_progress,
                       resume_file=resume_file, save_every=save_every)
    provenance = {
        "kind": "supernetwork", "description": description, "data_provenance": data.provenance,
        "history": history, "training_seconds": history[-1]["cumulative_time"], "started": started,
        "finished": now(), "environment": environment(device),
    }
    save_checkpoint(model, path, provenance)
    resume_file.unlink(missing_ok=True)
    return model, dict(read_provenance(path), checkpoint=str(path))  # with the weights' SHA-256, as a reload has
