"""Checkpoints with provenance, cached super-network training, standalone fine-tuning and peak memory."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import tiny_model
from plm_nasbench.evaluation.evaluator import evaluate_subnetworks
from plm_nasbench.evaluation.latency import measure_latency
from plm_nasbench.evaluation.memory import peak_memory
from plm_nasbench.models import architecture_of, extract_subnetwork, load_checkpoint, save_checkpoint
from plm_nasbench.locking import exclusive_lock
from plm_nasbench.models.checkpoints import WEIGHTS_FILE, cached_checkpoints
from plm_nasbench.spaces import get_search_space
from plm_nasbench.tasks import get_task_spec, load_task
from plm_nasbench.tasks.batching import encode_task
from plm_nasbench.training import StrategySettings, TrainingSettings, finetune_standalone, train_supernetwork
from test_training import toy_task


def test_checkpoint_round_trip_and_tamper_detection(tmp_path):
    model = tiny_model("bert")
    path = save_checkpoint(model, tmp_path / "ckpt", {"kind": "test", "note": "tiny"})
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left behind
    loaded, provenance = load_checkpoint(path)
    assert provenance["note"] == "tiny" and len(provenance["weights_sha256"]) == 64
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    spec, data = get_task_spec("sst2"), toy_task(n=24)
    space = get_search_space("small", architecture_of(model))
    configs = [space.sample(np.random.default_rng(1)) for _ in range(3)]
    from_path = evaluate_subnetworks(path, spec, data, space, configs)
    from_model = evaluate_subnetworks(model, spec, data, space, configs)
    assert from_path["valid_error"].tolist() == from_model["valid_error"].tolist()
    weights = path / WEIGHTS_FILE
    weights.write_bytes(weights.read_bytes()[:-8])
    with pytest.raises(ValueError, match="SHA-256.*corrupt"):
        load_checkpoint(path)
    with pytest.raises(FileNotFoundError, match="not a plm_nasbench checkpoint"):
        load_checkpoint(tmp_path)


def test_shared_weights_extraction_leaves_the_supernetwork_intact():
    model = tiny_model("bert")
    space = get_search_space("small", architecture_of(model))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    config = {"num_layers": 1, "num_heads": 1, "num_units": 5}
    shared = extract_subnetwork(model, space, config, share_weights=True)
    copied = extract_subnetwork(model, space, config)
    assert shared.bert.embeddings.word_embeddings.weight is model.bert.embeddings.word_embeddings.weight
    assert copied.bert.embeddings.word_embeddings.weight is not model.bert.embeddings.word_embeddings.weight
    ids = torch.randint(5, 90, (2, 7))
    with torch.no_grad():
        assert torch.allclose(shared(input_ids=ids).logits, copied(input_ids=ids).logits)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert sum(p.numel() for p in shared.parameters()) == space.num_parameters(config)


def test_peak_memory_counts_the_tensors_held_at_once():
    """Blocks freed before the next one is made do not add up (a resident-set peak counted every page touched)."""
    x = torch.zeros(256, 1024)  # 1 MiB, held before the block: not counted
    with torch.inference_mode(), peak_memory("cpu") as peak:
        h = x
        for _ in range(5):
            h = h + 1  # each step holds the new 1 MiB result and the previous one
    assert 2 * 2**20 <= peak["bytes"] < 2 * 2**20 + 4096  # (plus the scalar 1 as a tensor)
    with peak_memory("cpu") as peak:
        held = [torch.zeros(256, 1024) for _ in range(3)]
    assert 3 * 2**20 <= peak["bytes"] < 3 * 2**20 + 4096 and len(held) == 3


def test_peak_memory_grows_with_batch_size():
    model = tiny_model("bert")
    small = measure_latency(model, 16, 1, repeats=2)
    large = measure_latency(model, 16, 512, repeats=2)
    weights_mb = sum(p.numel() * 4 for p in model.parameters()) / 2**20
    assert small["peak_memory_mb"] >= weights_mb
    assert large["peak_memory_mb"] > small["peak_memory_mb"]


@pytest.mark.integration
def test_supernetwork_is_trained_once_then_reloaded(glue, tmp_path):
    data = load_task("rte", glue)
    settings = TrainingSettings(epochs=1, batch_size=8, max_steps_per_epoch=2, seed=3)
    model, first = train_supernetwork("minilm-l6-h384", data, "small", StrategySettings("full"), settings,
                                      max_length=32, cache_root=tmp_path / "cache")
    record = json.loads((tmp_path / first["checkpoint"] / "provenance.json").read_text())
    assert record["description"]["strategy"]["name"] == "full" and record["description"]["training"]["seed"] == 3
    assert record["environment"]["torch"] and len(record["history"]) == 1
    again, second = train_supernetwork("minilm-l6-h384", data, "small", StrategySettings("full"), settings,
                                       max_length=32, cache_root=tmp_path / "cache")
    assert second["checkpoint"] == first["checkpoint"] and second["finished"] == first["finished"]
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
    _, other = train_supernetwork("minilm-l6-h384", data, "small", StrategySettings("sandwich"), settings,
                                  max_length=32, cache_root=tmp_path / "cache")
    assert other["checkpoint"] != first["checkpoint"]

    checkpoint = Path(first["checkpoint"])  # what the cache holds: two trained, one interrupted, one training
    interrupted = checkpoint.with_name("kd-seed3-0123456789abcdef.resume.pt")
    fingerprint = json.dumps({"training": dict(settings.to_dict(), dtype="bfloat16", epochs=4), "train_rows": 123})
    torch.save({"epoch": 2, "cumulative": 31.5, "fingerprint": fingerprint}, interrupted)
    busy = checkpoint.with_name("random-seed1-fedcba9876543210")
    torch.save({"epoch": 1, "cumulative": 9.0}, busy.with_name(busy.name + ".resume.pt"))
    with exclusive_lock(busy.with_name(busy.name + ".lock")):
        records = {(r["strategy"], r["seed"]): r for r in cached_checkpoints(tmp_path / "cache")}
    assert set(records) == {("full", 3), ("sandwich", 3), ("kd", 3), ("random", 1)}
    assert records["full", 3]["state"] == "trained" and records["full", 3]["supernetwork_space"] == "small"
    assert records["full", 3]["supernetwork_id"] == first["weights_sha256"][:16]
    assert records["kd", 3]["state"] == "interrupted" and records["random", 1]["state"] == "training"
    assert (records["kd", 3]["epochs_done"], records["kd", 3]["training_seconds"]) == (2, 31.5)  # how far it got
    assert (records["random", 1]["epochs_done"], records["random", 1]["training_seconds"]) == (1, 9.0)  # last save
    assert records["full", 3]["epochs_done"] == settings.epochs
    assert [records["full", 3][k] for k in ("dtype", "epochs", "train_rows")] == [
        settings.dtype, settings.epochs, len(data.train)]
    assert [records["kd", 3][k] for k in ("dtype", "epochs", "train_rows")] == ["bfloat16", 4, 123]  # its fingerprint's
    assert records["random", 1]["dtype"] is None  # a state without a fingerprint: its progress alone


@pytest.mark.integration
def test_standalone_learning_curve(glue):
    from plm_nasbench.models import load_tokenizer

    data = load_task("rte", glue)
    encoded = encode_task(data, load_tokenizer(), max_length=32)
    space = get_search_space("small", "minilm-l6-h384", task="rte")
    curve = finetune_standalone("minilm-l6-h384", data.spec, encoded, space,
                                {"num_layers": 2, "num_heads": 4, "num_units": 128},
                                TrainingSettings(epochs=3, batch_size=8, max_steps_per_epoch=2))
    assert [r["epoch"] for r in curve] == [1, 2, 3]
    times = [r["cumulative_time"] for r in curve]
    assert all(b > a for a, b in zip(times, times[1:]))
    assert all(0 <= r["valid_error"] <= 1 and 0 <= r["test_error"] <= 1 for r in curve)
    with pytest.raises(ValueError, match="num_heads"):
        finetune_standalone("minilm-l6-h384", data.spec, encoded, space, {"num_layers": 2, "num_heads": 40,
                                                                          "num_units": 1}, TrainingSettings())


def test_peak_memory_inside_a_running_profiler_is_nan_and_leaves_it_working():
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as outer:
        with pytest.warns(UserWarning, match="running already here"), peak_memory("cpu") as peak:
            torch.zeros(256, 1024)
    assert peak["bytes"] != peak["bytes"] and len(outer.events()) > 0  # NaN; the user's profile kept its events
    with peak_memory("cpu") as inner_first:  # and afterwards it measures again
        held = torch.zeros(256, 1024)
    assert inner_first["bytes"] >= 2**20 and held.numel() == 256 * 1024


def test_peak_memory_measured_in_two_threads_takes_turns():
    """torch has one profiler per process: two threads used to crash it."""
    import threading

    peaks = []

    def measure() -> None:
        for _ in range(3):
            with peak_memory("cpu") as peak:
                torch.zeros(256, 1024)
            peaks.append(peak["bytes"])

    threads = [threading.Thread(target=measure) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peaks == [2**20] * 6  # each its own block, not the other thread's
