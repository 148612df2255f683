"""Fine-tuning and the six super-network strategies on a learnable toy task with tiny models."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from conftest import tiny_model, toy_sentences, toy_tokenizer
from plm_nasbench.models import architecture_of
from plm_nasbench.spaces import get_search_space
from plm_nasbench.tasks import Examples, get_task_spec
from plm_nasbench.tasks.batching import EncodedTask, encode
from plm_nasbench.training import STRATEGIES, StrategySettings, TrainingSettings, finetune
from plm_nasbench.training.losses import distillation_loss


def toy_task(task: str = "sst2", n: int = 96) -> EncodedTask:
    tokenizer = toy_tokenizer()
    texts, labels = toy_sentences(n)
    if task == "stsb":
        examples = Examples(texts, texts, np.array(labels, dtype=np.float64) * 4 + 0.5)
    elif task == "swag":
        endings = [("good", "bad") if l else ("bad", "good") for l in labels]
        examples = Examples(texts, ["it is"] * n, np.zeros(n, dtype=np.int64), endings)
    else:
        examples = Examples(texts, None, np.array(labels))
    encoded = encode(examples, tokenizer, max_length=16)
    return EncodedTask(encoded, encoded, encoded, task == "swag", 16)


FAST = dict(batch_size=16, learning_rate=1e-3, epochs=4)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_strategies_learn_the_toy_task(strategy):
    model = tiny_model("bert")
    space = get_search_space("small", architecture_of(model))
    history = finetune(model, get_task_spec("sst2"), toy_task(), TrainingSettings(**FAST), space,
                       StrategySettings(strategy))
    losses = [h["train_loss"] for h in history]
    assert all(np.isfinite(losses))
    assert losses[-1] < losses[0]
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    assert all(0 <= h["valid_error"] <= 1 and h["cumulative_time"] > 0 for h in history)


def test_standard_finetuning_reaches_low_error():
    model = tiny_model("roberta")
    history = finetune(model, get_task_spec("sst2"), toy_task(n=160), TrainingSettings(**{**FAST, "learning_rate": 3e-3, "epochs": 8}))
    assert history[-1]["valid_error"] < 0.1


@pytest.mark.parametrize("task", ["stsb", "swag"])
def test_regression_and_multiple_choice(task):
    head = "multiple_choice" if task == "swag" else "sequence_classification"
    model = tiny_model("bert", head, num_labels=1)
    space = get_search_space("medium", architecture_of(model))
    history = finetune(model, get_task_spec(task), toy_task(task), TrainingSettings(**FAST), space,
                       StrategySettings("full"))
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert np.isfinite(history[-1]["valid_metric"])


def count_forwards(model, strategy: StrategySettings) -> int:
    calls = []
    handle = model.bert.embeddings.register_forward_hook(lambda *args: calls.append(1))
    space = get_search_space("small", architecture_of(model))
    finetune(model, get_task_spec("sst2"), toy_task(n=16), TrainingSettings(batch_size=16, epochs=1), space,
             strategy, evaluate=False)
    handle.remove()
    return len(calls)


def test_number_of_random_subnetworks_takes_effect():
    assert count_forwards(tiny_model("bert"), StrategySettings("full", num_random=2)) == 4
    assert count_forwards(tiny_model("bert"), StrategySettings("full", num_random=5)) == 7
    assert count_forwards(tiny_model("bert"), StrategySettings("sandwich", num_random=0)) == 2
    assert count_forwards(tiny_model("bert"), StrategySettings("kd")) == 2


def test_temperature_takes_effect():
    torch.manual_seed(0)
    student, teacher, labels = torch.randn(8, 3), torch.randn(8, 3), torch.randint(0, 3, (8,))
    at_1 = distillation_loss(student, teacher, labels, False, 1.0)
    at_10 = distillation_loss(student, teacher, labels, False, 10.0)
    assert at_1 != at_10
    # Soft part vanishes when the student equals the teacher: only the task loss is left.
    same = distillation_loss(teacher, teacher, labels, False, 10.0)
    assert same.item() == pytest.approx(torch.nn.functional.cross_entropy(teacher, labels).item(), abs=1e-5)
    regression = distillation_loss(torch.ones(4, 1), torch.zeros(4, 1), torch.ones(4), True, 10.0)
    assert regression.item() == pytest.approx(1.0)


def test_bad_settings_are_rejected():
    with pytest.raises(ValueError, match="unknown strategy 'bigNAS'; known strategies: standard, random"):
        StrategySettings("bigNAS")
    with pytest.raises(ValueError, match="temperature must be positive"):
        StrategySettings("kd", temperature=0)
    with pytest.raises(ValueError, match="dtype 'float16' is unsupported; allowed: float32, bfloat16"):
        TrainingSettings(dtype="float16")
    with pytest.raises(ValueError, match="needs the search space"):
        finetune(tiny_model("bert"), get_task_spec("sst2"), toy_task(n=8), TrainingSettings(),
                 strategy=StrategySettings("full"))


def test_bf16_autocast_warns_where_the_device_has_no_bf16(monkeypatch):
    from plm_nasbench.evaluation import predict

    with pytest.raises(ValueError, match="bf16 support is known for 'cpu' and 'cuda' devices only"):
        predict.native_bf16("meta")
    monkeypatch.setattr(predict, "native_bf16", lambda device="cpu": False)
    with pytest.warns(UserWarning, match="device 'cpu' has no bfloat16 support .* several times slower"):
        predict.autocast("bfloat16", "cpu")
    monkeypatch.setattr(predict, "native_bf16", lambda device="cpu": True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert predict.autocast("bfloat16", "cpu").fast_dtype == torch.bfloat16


@pytest.mark.parametrize("space_name", ["layer", "large"])
def test_full_strategy_trains_on_other_spaces(space_name):
    """A super-network can be trained by sampling any space (the reference trains one per space)."""
    model = tiny_model("bert")
    space = get_search_space(space_name, architecture_of(model))
    history = finetune(model, get_task_spec("sst2"), toy_task(), TrainingSettings(**FAST), space,
                       StrategySettings("full"))
    assert np.isfinite([h["train_loss"] for h in history]).all()
    assert history[-1]["train_loss"] < history[0]["train_loss"]


def fresh_bert():
    """A tiny BERT and its small space, the same for every call."""
    model = tiny_model("bert")
    return model, get_search_space("small", architecture_of(model))


def assert_same_run(history, expected, model, straight):
    """The resumed run ended with the uninterrupted run's history and weights, bit for bit."""
    for key in ("train_loss", "valid_error", "test_error"):
        assert [h[key] for h in history] == [h[key] for h in expected]
    for (name, a), (_, b) in zip(straight.state_dict().items(), model.state_dict().items()):
        assert torch.equal(a, b), name


@pytest.mark.parametrize("save_every", [None, 0.0])
def test_an_interrupted_run_resumes_to_the_same_weights(tmp_path, monkeypatch, save_every):
    """A killed run (here: an error in the third step of its second epoch) continues from the state saved last
    (after the first epoch, or with ``save_every=0`` after every step: after the second step of the second epoch),
    and ends with the weights and history of a run that was never interrupted."""
    import importlib

    finetune_module = importlib.import_module("plm_nasbench.training.finetune")  # the module, not the function

    settings, strategy = TrainingSettings(**{**FAST, "epochs": 3}), StrategySettings("full")
    spec, data = get_task_spec("sst2"), toy_task()

    straight, space = fresh_bert()
    expected = finetune(straight, spec, data, settings, space, strategy)

    calls, step = {"n": 0}, finetune_module.strategy_step

    def failing_step(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 9:  # 6 steps an epoch: the third of the second epoch
            raise RuntimeError("killed")
        return step(*args, **kwargs)

    resume_file = tmp_path / "state.pt"
    interrupted, space = fresh_bert()
    monkeypatch.setattr(finetune_module, "strategy_step", failing_step)
    with pytest.raises(RuntimeError, match="killed"):
        finetune(interrupted, spec, data, settings, space, strategy, resume_file=resume_file, save_every=save_every)
    monkeypatch.undo()
    saved = torch.load(resume_file, weights_only=True)
    assert (saved["epoch"], saved["step"], saved.get("position")) == ((1, 6, None) if save_every is None else (1, 8, 2))
    assert ("saved_inside_an_epoch" in saved["fingerprint"]) == (save_every is not None)  # older readers refuse it
    resumed, space = fresh_bert()
    history = finetune(resumed, spec, data, settings, space, strategy, resume_file=resume_file, save_every=save_every)
    assert [h["resumes"] for h in history] == [0, 1, 1]
    assert_same_run(history, expected, resumed, straight)
    with pytest.raises(ValueError, match="training state of another run"):
        finetune(fresh_bert()[0], spec, data, TrainingSettings(**{**FAST, "epochs": 4}), space, strategy,
                 resume_file=resume_file)
    state = torch.load(resume_file, weights_only=True)
    assert state["device"] == "cpu"
    torch.save(dict(state, device="cuda"), resume_file)  # as a GPU run would have left it
    with pytest.raises(ValueError, match="training state from cuda, but this run is on cpu"):
        finetune(fresh_bert()[0], spec, data, settings, space, strategy, resume_file=resume_file)


class Preempted(Exception):
    """What the test's own SIGTERM handler raises (the default one would end pytest)."""


@pytest.mark.parametrize("when", ["step", "last_evaluation"])
def test_sigterm_saves_the_training_state_before_the_run_ends(tmp_path, monkeypatch, when):
    """SIGTERM (a cluster's pre-emption) in the third step of the second epoch saves the state after that step, and
    SIGTERM during the last epoch's evaluation abandons it and saves the epoch's training, before the signal takes
    its usual effect (here the previous handler's); the resumed run ends with the weights and history of an
    uninterrupted one and, in the second case, trains no further step."""
    import importlib
    import signal

    finetune_module = importlib.import_module("plm_nasbench.training.finetune")
    settings, strategy = TrainingSettings(**{**FAST, "epochs": 3}), StrategySettings("full")
    spec, data = get_task_spec("sst2"), toy_task()

    straight, space = fresh_bert()
    expected = finetune(straight, spec, data, settings, space, strategy)

    def signalling(function, on_call):
        calls = {"n": 0}

        def wrapped(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == on_call:
                signal.raise_signal(signal.SIGTERM)
            return function(*args, **kwargs)
        return wrapped

    if when == "step":  # 6 steps an epoch: the third of the second
        monkeypatch.setattr(finetune_module, "strategy_step", signalling(finetune_module.strategy_step, 9))
    else:  # valid and test after each epoch: the last epoch's valid
        monkeypatch.setattr(finetune_module, "predict", signalling(finetune_module.predict, 5))

    def previous_handler(signum, frame):
        raise Preempted

    before = signal.signal(signal.SIGTERM, previous_handler)
    resume_file = tmp_path / "state.pt"
    interrupted, space = fresh_bert()
    try:
        with pytest.raises(Preempted):
            finetune(interrupted, spec, data, settings, space, strategy, resume_file=resume_file)
        assert signal.getsignal(signal.SIGTERM) is previous_handler  # put back before the signal took effect
    finally:
        signal.signal(signal.SIGTERM, before)
    monkeypatch.undo()
    saved = torch.load(resume_file, weights_only=True)
    # during the evaluation: the last epoch's training, its evaluation abandoned (6 steps an epoch)
    assert (saved["epoch"], saved["step"], saved.get("position")) == ((1, 9, 3) if when == "step" else (2, 18, 6))
    if when == "last_evaluation":  # nothing is left to train, only the evaluation to make again
        monkeypatch.setattr(finetune_module, "strategy_step", lambda *args, **kwargs: pytest.fail("trained again"))
    resumed, space = fresh_bert()
    history = finetune(resumed, spec, data, settings, space, strategy, resume_file=resume_file)
    assert_same_run(history, expected, resumed, straight)


def test_a_second_signal_stops_at_once_and_ignored_signals_threads_and_returning_handlers_keep_their_effect():
    import signal
    import threading

    from plm_nasbench.training.stopping import StopRequests

    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)  # a background job inherits SIG_IGN
    try:
        with pytest.raises(KeyboardInterrupt):
            with StopRequests() as stop:
                signal.raise_signal(signal.SIGINT)
                assert stop.received == signal.SIGINT  # held: the loop saves, then calls stop()
                signal.raise_signal(signal.SIGINT)  # asked again: KeyboardInterrupt now
                pytest.fail("the second SIGINT was held too")
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, inherited)
    notes = []
    term_before = signal.signal(signal.SIGTERM, lambda signum, frame: notes.append(signum))  # lets the run go on
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as in a job started in the background
    try:
        with StopRequests() as stop:
            signal.raise_signal(signal.SIGINT)
            assert stop.received is None  # ignored, as without the context
            signal.raise_signal(signal.SIGTERM)
            stop.stop()
            assert notes == [signal.SIGTERM] and stop.received is None
            signal.raise_signal(signal.SIGTERM)
            assert stop.received == signal.SIGTERM and notes == [signal.SIGTERM]  # held again, not disarmed
            stop.stop()
        assert notes == [signal.SIGTERM] * 2
    finally:
        signal.signal(signal.SIGINT, before)
        signal.signal(signal.SIGTERM, term_before)
    seen = []
    thread = threading.Thread(target=lambda: seen.append(StopRequests().__enter__()._previous))
    thread.start()
    thread.join()
    assert seen == [{}]  # handlers can only be set in the main thread


def test_the_query_path_names_the_same_strategies():
    from plm_nasbench.benchmark.core import STRATEGIES as QUERY_STRATEGIES

    assert QUERY_STRATEGIES == STRATEGIES
