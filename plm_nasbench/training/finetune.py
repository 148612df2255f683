"""The fine-tuning loop shared by super-network training and standalone fine-tuning.

AdamW, linear decay of the learning rate to 0, shuffled length-bucketed batches with dynamic
padding, optional bf16 autocast; after every epoch the (full) network is evaluated on valid and test.
With a ``resume_file``, the training state is saved after every epoch (and, with ``save_every``, every so
many seconds inside one) and an interrupted run continues where its last saved state left it, to the same
weights as an uninterrupted run; SIGTERM or SIGINT then saves the state after the step in flight (or, during an
epoch's evaluation, the epoch's training) before the process ends (:mod:`.stopping`), so a pre-empted job or a
Ctrl-C loses no training.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import write_atomic
from ..evaluation.predict import DTYPES, autocast, model_inputs, predict, score
from ..spaces import SearchSpace
from ..tasks.batching import EncodedTask, training_batches
from ..tasks.specs import TaskSpec
from .stopping import StopRequested, StopRequests
from .strategies import StrategySettings, strategy_step


#: Seconds between the saves of a resumable training's state inside an epoch, for the callers that save them (an
#: epoch of a large task can outlast a job; one save of MiniLM's state takes about a second).
SAVE_EVERY = 1800.0


@dataclass(frozen=True)
class TrainingSettings:
    """Hyperparameters of one fine-tuning run (paper Table A defaults: lr 2e-5, batch 4, 5 epochs)."""

    epochs: int = 5
    batch_size: int = 4
    learning_rate: float = 2e-5
    weight_decay: float = 0.0
    seed: int = 0
    dtype: str = "float32"
    eval_batch_size: int = 16
    max_steps_per_epoch: int | None = None  # None: whole epochs; a number shortens runs for smoke tests

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "eval_batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype {self.dtype!r} is unsupported; allowed: {', '.join(DTYPES)}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be positive, got {self.learning_rate!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form, recorded with every result."""
        return asdict(self)


def _adamw(model: Any, settings: TrainingSettings) -> Any:
    """AdamW; the fused implementation where torch has one for the parameters' device (5x faster steps on CPU)."""
    import torch

    kwargs = {"lr": settings.learning_rate, "weight_decay": settings.weight_decay}
    try:
        return torch.optim.AdamW(model.parameters(), fused=True, **kwargs)
    except (RuntimeError, TypeError):
        return torch.optim.AdamW(model.parameters(), **kwargs)


def _fingerprint(settings: TrainingSettings, strategy: StrategySettings, steps_per_epoch: int, rows: int) -> str:
    """What a saved training state must match to be resumed: the settings, the strategy and the data size."""
    return json.dumps({"training": settings.to_dict(), "strategy": strategy.to_dict(),
                       "steps_per_epoch": steps_per_epoch, "train_rows": rows}, sort_keys=True)


def _inside_an_epoch(fingerprint: str) -> str:
    """The fingerprint of a state saved inside an epoch: one that readers without that feature do not match."""
    return json.dumps({**json.loads(fingerprint), "saved_inside_an_epoch": True}, sort_keys=True)


def finetune(model: Any, spec: TaskSpec, data: EncodedTask, settings: TrainingSettings,
             space: SearchSpace | None = None, strategy: StrategySettings | None = None,
             evaluate: bool = True, show_progress: bool = False,
             resume_file: str | Path | None = None, save_every: float | None = None) -> list[dict[str, Any]]:
    """Fine-tune ``model`` in place; returns one record per epoch (losses, valid/test metric and error, times;
    with ``resume_file`` also ``resumes``: how often the run had been resumed by the end of the epoch, as the
    saved states record it: a resumed run killed before its next save leaves no trace).

    Without ``strategy`` the whole model is trained with the task loss; with one, each step follows that
    super-network strategy over ``space``. With ``resume_file``, the training state (weights, optimiser,
    schedule, random generators, history) is written there atomically after every epoch but the last and, with
    ``save_every``, after the first step that ends that many seconds after the epoch's start or the last save
    inside it (an epoch longer than a job's time limit then still advances); a call that finds it continues after
    the last saved step (the file must come from the same settings, strategy and data; the caller deletes it when
    the run is done). A state saved inside an epoch carries a fingerprint that versions of this package without
    that feature refuse, so that they do not redo the epoch on its half-trained weights.
    """
    import torch
    from tqdm.auto import tqdm

    if strategy is not None and space is None:
        raise ValueError("a super-network strategy needs the search space its sub-networks come from")
    strategy = strategy or StrategySettings("standard")
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    device = next(model.parameters()).device
    steps_per_epoch = -(-len(data.train) // settings.batch_size)
    if settings.max_steps_per_epoch is not None:
        steps_per_epoch = min(steps_per_epoch, settings.max_steps_per_epoch)
    total_steps = steps_per_epoch * settings.epochs
    optimizer = _adamw(model, settings)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: max(0.0, 1 - step / total_steps))
    history: list[dict[str, Any]] = []
    cumulative, step, done, resumes = 0.0, 0, 0, 0
    position, epoch_rng, losses, trained = 0, None, [], 0.0  # the epoch in progress: batches, order, losses, seconds
    fingerprint = _fingerprint(settings, strategy, steps_per_epoch, len(data.train))
    if resume_file is not None and Path(resume_file).is_file():
        state = torch.load(resume_file, map_location="cpu", weights_only=True)
        if state["fingerprint"] != (_inside_an_epoch(fingerprint) if state.get("position") else fingerprint):
            raise ValueError(f"{resume_file} holds the training state of another run ({state['fingerprint']}), not "
                             f"of this one ({fingerprint}); delete it to train from the start")
        saved_on = state.get("device", "cpu")  # states written before the device was recorded are the CPU's
        if saved_on != device.type:
            raise ValueError(f"{resume_file} holds a training state from {saved_on}, but this run is on "
                             f"{device.type}: a run resumes on the kind of device it started on; delete the file to "
                             "train from the start")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        torch.set_rng_state(state["torch_rng"])
        if device.type == "cuda":  # dropout on the GPU draws from the device's own generator
            torch.cuda.set_rng_state(state["cuda_rng"], device)
        rng.bit_generator.state = state["numpy_rng"]
        history, cumulative, step, done = state["history"], state["cumulative"], state["step"], state["epoch"]
        resumes = state["resumes"] + 1
        if state.get("position"):  # saved inside epoch done + 1
            position, epoch_rng, losses, trained = (state["position"], state["epoch_rng"], state["losses"],
                                                    state["trained"])
        if show_progress:
            tqdm.write(f"resuming from {resume_file} after epoch {done} of {settings.epochs}"
                       + (f" and {position} of epoch {done + 1}'s {steps_per_epoch} steps" if position else ""))

    def save(epoch: int, **inside: Any) -> None:
        """Write the training state after ``epoch`` finished epochs (``inside``: how far the next one got)."""
        state = {"fingerprint": _inside_an_epoch(fingerprint) if inside else fingerprint, "epoch": epoch,
                 "step": step, "cumulative": cumulative,
                 "history": history, "resumes": resumes, "model": model.state_dict(),
                 "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
                 "torch_rng": torch.get_rng_state(), "numpy_rng": rng.bit_generator.state, "device": device.type,
                 **inside}
        if device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(device)
        write_atomic(resume_file, lambda staging: torch.save(state, staging))

    with StopRequests(active=resume_file is not None) as stop:
        for epoch in range(done + 1, settings.epochs + 1):
            model.train()
            start = saved = time.perf_counter()
            if position:  # the order the epoch drew when it began, then the generator's state at the saved step
                now_rng, rng.bit_generator.state = rng.bit_generator.state, epoch_rng
                batches = training_batches(data.train, settings.batch_size, rng, data.multiple_choice, start=position)
                rng.bit_generator.state = now_rng
            else:
                epoch_rng = rng.bit_generator.state
                batches = training_batches(data.train, settings.batch_size, rng, data.multiple_choice)
            for position, batch in tqdm(zip(range(position + 1, steps_per_epoch + 1), batches), initial=position,
                                        total=steps_per_epoch, disable=not show_progress,
                                        desc=f"epoch {epoch}/{settings.epochs}"):
                with autocast(settings.dtype, device.type):
                    loss = strategy_step(model, model_inputs(batch, device), batch["labels"].to(device), space,
                                         strategy, rng, step / total_steps, spec.is_regression)
                optimizer.step()
                schedule.step()
                optimizer.zero_grad(set_to_none=True)
                losses.append(loss)
                step += 1
                if resume_file is not None and position < steps_per_epoch and (
                        stop.received or save_every is not None and time.perf_counter() - saved >= save_every):
                    save(epoch - 1, position=position, epoch_rng=epoch_rng, losses=losses,
                         trained=trained + time.perf_counter() - start)
                    saved = time.perf_counter()
                    if stop.received:
                        stop.stop()
            record = {"epoch": epoch, "train_loss": float(np.mean(losses)),
                      "train_time": trained + time.perf_counter() - start}
            epoch_losses, position, losses, trained = losses, 0, [], 0.0
            if resume_file is not None:
                record["resumes"] = resumes
            start = time.perf_counter()
            while evaluate:
                try:
                    with stop.abandoning():  # a signal now: save the epoch's training, evaluate it when resumed
                        for split in ("valid", "test"):
                            encoded = getattr(data, split)
                            logits = predict(model, encoded, data.multiple_choice, settings.eval_batch_size,
                                             settings.dtype)
                            record[f"{split}_metric"], record[f"{split}_error"] = score(spec, logits,
                                                                                        encoded.labels)
                    break
                except StopRequested:
                    save(epoch - 1, position=steps_per_epoch, epoch_rng=epoch_rng, losses=epoch_losses,
                         trained=record["train_time"])
                    stop.stop()  # returns only where the handler before it lets the run go on: evaluate again
                    start = time.perf_counter()
            record["eval_time"] = time.perf_counter() - start
            cumulative += record["train_time"] + record["eval_time"]
            record["cumulative_time"] = cumulative
            history.append(record)
            if resume_file is not None and (epoch < settings.epochs or stop.received):
                save(epoch)  # after the last epoch only when stopping, so that a resumed run need not train it again
                if stop.received:
                    stop.stop()
    model.eval()
    return history
