"""Standalone fine-tuning (standard NAS): one sub-network cut from the pre-trained weights and trained alone.

The returned learning curve (valid/test error and cumulative runtime after every epoch) is the
multi-fidelity data that MO-ASHA consumes: epoch is the fidelity, ``cumulative_time`` its cost.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..spaces import SearchSpace
from ..tasks.batching import EncodedTask
from ..tasks.specs import TaskSpec
from .finetune import TrainingSettings, finetune


def finetune_standalone(model_name: str, spec: TaskSpec, data: EncodedTask, space: SearchSpace,
                        config: Mapping[str, Any], settings: TrainingSettings, *, device: str = "cpu",
                        show_progress: bool = False, resume_file: str | Path | None = None,
                        save_every: float | None = None) -> list[dict[str, Any]]:
    """Fine-tune sub-network ``config`` of ``space`` from the pre-trained ``model_name``; its per-epoch curve.

    The task head is initialised from ``settings.seed``. Each record holds ``epoch``, ``train_loss``,
    ``valid_metric``/``valid_error``, ``test_metric``/``test_error``, ``train_time``, ``eval_time`` and
    ``cumulative_time`` (seconds of training and evaluation up to the end of that epoch). ``resume_file`` and
    ``save_every``: as for :func:`~plm_nasbench.training.finetune.finetune` (the file must be this
    configuration's; with it each record also holds ``resumes``).
    """
    import torch

    from ..models import architecture_of, extract_subnetwork, load_model

    config = space.validate(config)
    torch.manual_seed(settings.seed)
    pretrained = load_model(model_name, spec.name)
    if architecture_of(pretrained) != space.architecture:
        raise ValueError(f"search space {space.name!r} was built for another architecture than model "
                         f"{model_name!r} with the {spec.name} head; build it with get_search_space(..., "
                         f"model={model_name!r}, task={spec.name!r})")
    model = extract_subnetwork(pretrained, space, config).to(device)
    del pretrained
    return finetune(model, spec, data, settings, show_progress=show_progress, resume_file=resume_file,
                    save_every=save_every)
