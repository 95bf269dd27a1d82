"""The training loop's rules, each checked against what it must compute (textclf.training.loop, textclf.training.steps)."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from textclf.training.loop import LoopState, _early_stopping, _plateau, run_loop
from textclf.training.prepare import new_tokenizer
from textclf.training.rows import TokenizedRows, input_function
from textclf.training.setup import build_fit_model, make_optimizer, seed_everything
from textclf.training.steps import step_functions

from conftest import NEGATIVE, POSITIVE, make_rows, tiny_config


def tiny_model():
    return keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])


def set_weights_to(model, value):
    for weight in model.weights:
        weight.assign(np.full(weight.shape, value, dtype="float32"))


def test_early_stopping_restores_the_weights_of_the_best_epoch_exactly():
    model = tiny_model()
    state = LoopState(model, epochs=6)
    stopped = []
    # Validation loss falls to epoch 2 (0-based 1), then rises; patience 2 stops after epoch 4.
    for epoch, val_loss in enumerate([0.5, 0.4, 0.45, 0.6, 0.3]):
        set_weights_to(model, epoch + 1.0)  # The weights "trained" in this epoch.
        if _early_stopping(state, model, epoch, val_loss, patience=2):
            stopped.append(epoch)
            break
    assert stopped == [3]
    assert int(state.best_epoch) == 1 and float(state.best_loss) == 0.4
    state.restore_best_weights(model)
    assert [weight.numpy().tolist() for weight in model.weights] == [[[2.0], [2.0]], [2.0]]


def test_plateau_halves_the_learning_rate_after_an_epoch_without_improvement():
    model = tiny_model()
    state = LoopState(model, epochs=6)
    optimizer = keras.optimizers.Adam(learning_rate=0.01)
    rates = []
    # Improvements smaller than min_delta (1e-4) do not count as improvements.
    for epoch, val_loss in enumerate([1.0, 0.9, 0.95, 0.89995, 0.8, 0.8]):
        _plateau(state, optimizer, epoch, val_loss, float(optimizer.learning_rate))
        rates.append(float(optimizer.learning_rate))
    assert rates == pytest.approx([0.01, 0.01, 0.005, 0.0025, 0.0025, 0.00125])


def test_balanced_class_weights_scale_each_rows_loss_by_its_class_weight():
    config = tiny_config(max_len=4, dropout_rate=0.0, spatial_dropout_rate=0.0, class_weight="balanced")
    texts, labels = ["good film", "good plot", "great actors", "bad film"], ["pos", "pos", "pos", "neg"]
    classes = ["neg", "pos"]
    tokenizer = new_tokenizer(config)
    tokenizer.fit_on_texts(texts)
    rows = TokenizedRows(tokenizer, texts, labels, config, classes)
    strategy = tf.distribute.get_strategy()
    model = build_fit_model(config, tokenizer, classes)
    optimizer = make_optimizer(config, 1)
    optimizer.build(model.trainable_variables)
    per_row = keras.losses.binary_crossentropy(rows.targets, model(rows.encoded.padded(4), training=False)).numpy()

    def first_step_loss(weights):
        state = LoopState(model, epochs=1)
        train_steps, _ = step_functions(strategy, model, optimizer, classes, weights, state)
        saved = [weight.numpy() for weight in model.weights]
        train_steps(iter(strategy.distribute_datasets_from_function(input_function(rows, 4))), tf.constant(1, tf.int64))
        for weight, value in zip(model.weights, saved):
            weight.assign(value)  # Undo the update, so both calls see the same model.
        return float(state.sums[0])

    # "balanced": rows / (classes * rows of the class) = 4 / (2 * 1) for neg, 4 / (2 * 3) for pos.
    expected = float(np.dot(per_row, [2 / 3, 2 / 3, 2 / 3, 2.0]))
    assert first_step_loss({0: 2.0, 1: 2 / 3}) == pytest.approx(expected, rel=1e-5)
    assert first_step_loss(None) == pytest.approx(float(per_row.sum()), rel=1e-5)


def validation_loss(model, rows):
    total, count = 0.0, 0
    for ids, targets in rows.batches(64):
        total += float(keras.losses.binary_crossentropy(targets, model(ids, training=False)).numpy().sum())
        count += len(targets)
    return total / count


def test_the_loop_returns_the_best_epochs_model_and_follows_the_plateau_rule(capsys):
    # Validation rows whose labels are the opposite of training's: the validation loss rises as training learns.
    train_pairs = make_rows({"pos": POSITIVE, "neg": NEGATIVE}, 64, seed=3)
    valid_pairs = [(text, "neg" if label == "pos" else "pos") for text, label in make_rows(
        {"pos": POSITIVE, "neg": NEGATIVE}, 32, seed=4)]
    config = tiny_config(epochs=6, patience=2, lr_schedule="plateau", learning_rate=0.05, dropout_rate=0.0,
                         spatial_dropout_rate=0.0)
    seed_everything(config.seed)
    tokenizer = new_tokenizer(config)
    tokenizer.fit_on_texts([text for text, _ in train_pairs])
    classes = ["neg", "pos"]
    train_rows = TokenizedRows(tokenizer, *zip(*train_pairs), config, classes)
    valid_rows = TokenizedRows(tokenizer, *zip(*valid_pairs), config, classes)
    ended = []  # (epoch, the model's first weight then): the caller's hook sees each epoch's own weights.
    model, history, seconds = run_loop(config, tokenizer, classes, train_rows, valid_rows, verbose=0,
                                       on_epoch_end=lambda epoch, trained: ended.append(
                                           (epoch, trained, trained.weights[0].numpy().copy())))

    losses = history["val_loss"]
    assert [epoch for epoch, _, _ in ended] == list(range(len(losses)))
    assert all(trained is model for _, trained, _ in ended)
    assert not np.array_equal(ended[0][2], ended[1][2])  # Weights after epoch 1 differ from those after epoch 2.
    assert len(seconds["training"]) == len(seconds["validation"]) == len(losses)
    best = int(np.argmin(losses))
    assert len(losses) == min(best + 1 + config.patience, config.epochs)  # Stopped `patience` epochs after the best.
    assert validation_loss(model, valid_rows) == pytest.approx(losses[best], rel=1e-5)  # The best epoch's weights.
    assert f"restoring the weights of the best epoch: {best + 1} (lowest val_loss {losses[best]:.4f})" in (
        capsys.readouterr().err)
    # The plateau rule, replayed from the history: half the rate after an epoch without a 1e-4 improvement.
    rate, plateau_best = config.learning_rate, math.inf
    for epoch, loss in enumerate(losses):
        assert history["learning_rate"][epoch] == pytest.approx(rate)
        if loss < plateau_best - 1e-4:
            plateau_best = loss
        else:
            rate /= 2
    assert history["learning_rate"][-1] < config.learning_rate  # The rising validation loss did cut the rate.


THREADS = """
import json, os, sys
import tensorflow as tf
from textclf.training.setup import one_thread_per_op_on_cpu
first = one_thread_per_op_on_cpu()
tf.constant(1.0) + 1.0  # The runtime starts here.
print(json.dumps({"applied": first, "intra": tf.config.threading.get_intra_op_parallelism_threads(),
                  "again": one_thread_per_op_on_cpu()}))
"""


def test_with_a_monitored_score_the_best_epoch_is_the_highest_scores_and_the_log_says_so(capsys):
    pairs = make_rows({"pos": POSITIVE, "neg": NEGATIVE}, 32, seed=3)
    config = tiny_config(epochs=6, patience=2)
    tokenizer = new_tokenizer(config)
    tokenizer.fit_on_texts([text for text, _ in pairs])
    rows = TokenizedRows(tokenizer, *zip(*pairs), config, ["neg", "pos"])
    scores = iter([0.5, 0.75, 0.75, 0.7, 0.9])  # Level is no gain: the second epoch stays best, two epochs on.
    _, history, _ = run_loop(config, tokenizer, ["neg", "pos"], rows, rows, verbose=0,
                             monitor=lambda model: next(scores))
    assert len(history["val_loss"]) == 4
    assert "restoring the weights of the best epoch: 2 (highest blend val_macro_f1 0.7500)" in capsys.readouterr().err


class DeferredScores:
    """A monitor that cannot score until ``ready_after`` epochs have ended: the wide branch's search still running."""

    def __init__(self, scores, ready_after):
        self.scores, self.ready_after, self.ended = scores, ready_after, 0

    def outputs(self, model):
        self.ended += 1
        return self.ended - 1  # Stands for the epoch's validation outputs.

    def ready(self):
        return self.ended > self.ready_after

    def score(self, epoch):
        return self.scores[epoch]


@pytest.mark.parametrize("ready_after", [0, 4, 99], ids=["ready-at-once", "ready-after-four", "never-ready"])
def test_epochs_trained_before_the_monitor_can_score_are_scored_later_and_the_run_ends_where_it_would_have(
        ready_after, capsys):
    # Scores 0.5, 0.75, 0.75, 0.7, ...: epoch 2 is best and epoch 4 stops the run (patience 2) whatever epochs
    # were trained meanwhile; the model ends with epoch 2's exact weights, and each kept epoch reaches on_epoch_end
    # once, in order, with its own weights.
    pairs = make_rows({"pos": POSITIVE, "neg": NEGATIVE}, 32, seed=3)
    config = tiny_config(epochs=6, patience=2)
    tokenizer = new_tokenizer(config)
    tokenizer.fit_on_texts([text for text, _ in pairs])
    rows = TokenizedRows(tokenizer, *zip(*pairs), config, ["neg", "pos"])
    monitor, seen = DeferredScores([0.5, 0.75, 0.75, 0.7, 0.9, 0.95], ready_after), []
    model, history, seconds = run_loop(
        config, tokenizer, ["neg", "pos"], rows, rows, verbose=1, monitor=monitor,
        on_epoch_end=lambda epoch, model: seen.append((epoch, [w.numpy().copy() for w in model.weights])))
    assert [epoch for epoch, _ in seen] == [0, 1, 2, 3]
    assert len(history["val_loss"]) == 4
    # Trained: 4 epochs when scores come at once; 5 when they come after the fifth (epochs 4 and 5 scored then);
    # all 6 when none comes before the last epoch (epochs 1-3 are scored when the third ends: patience 2).
    assert len(seconds["training"]) == {0: 4, 4: 5, 99: 6}[ready_after]
    for weight, kept in zip(model.weights, seen[1][1]):
        np.testing.assert_array_equal(weight.numpy(), kept)
    assert not np.array_equal(seen[1][1][0], seen[3][1][0])  # The epochs' weights differ: the check above bites.
    err = capsys.readouterr().err
    assert "restoring the weights of the best epoch: 2 (highest blend val_macro_f1 0.7500)" in err
    assert [line.split(":")[0] for line in err.splitlines() if line.startswith("epoch ")] == [
        "epoch 1/6", "epoch 2/6", "epoch 3/6", "epoch 4", "epoch 4/6"]


def test_a_loss_that_blows_up_after_the_epoch_that_stops_the_run_does_not_fail_it(monkeypatch, capsys):
    # Epochs go on while the monitor cannot score; epoch 5's validation loss is inf, but epoch 4 stops the run
    # (as a run that waited would have stopped, never training epoch 5): it ends at epoch 2's weights, no error.
    from textclf.training import loop

    pairs = make_rows({"pos": POSITIVE, "neg": NEGATIVE}, 32, seed=3)
    config = tiny_config(epochs=6, patience=2)
    tokenizer = new_tokenizer(config)
    tokenizer.fit_on_texts([text for text, _ in pairs])
    rows = TokenizedRows(tokenizer, *zip(*pairs), config, ["neg", "pos"])
    validate, calls = loop._Training.validate, []

    def blowing_up(self):
        calls.append(1)
        return np.array([math.inf, 0.0, 1.0]) if len(calls) == 5 else validate(self)

    monkeypatch.setattr(loop._Training, "validate", blowing_up)
    _, history, seconds = run_loop(config, tokenizer, ["neg", "pos"], rows, rows, verbose=1,
                                   monitor=DeferredScores([0.5, 0.75, 0.75, 0.7, 0.9, 0.95], 99))
    assert len(history["val_loss"]) == 4 and len(seconds["training"]) == 5
    assert "restoring the weights of the best epoch: 2" in capsys.readouterr().err


@pytest.mark.parametrize("environment, expected", [
    ({}, {"applied": True, "intra": 1, "again": True}),
    # The user's own setting wins: nothing is changed.
    ({"TF_NUM_INTRAOP_THREADS": "2"}, {"applied": False, "intra": 0, "again": False}),
])
def test_training_on_a_cpu_runs_each_op_on_one_thread_unless_the_user_chose(environment, expected):
    import json
    import os
    import subprocess
    import sys

    env = {name: value for name, value in os.environ.items() if name != "TF_NUM_INTRAOP_THREADS"}
    process = subprocess.run([sys.executable, "-c", THREADS], capture_output=True, text=True, timeout=300,
                             env=dict(env, CUDA_VISIBLE_DEVICES="", TF_CPP_MIN_LOG_LEVEL="3", **environment))
    assert process.returncode == 0, process.stderr[-2000:]
    assert json.loads(process.stdout.strip().splitlines()[-1]) == expected


def test_after_the_runtime_started_the_thread_setting_is_left_alone():
    import tensorflow as tf

    from textclf.training.setup import one_thread_per_op_on_cpu

    tf.constant(1.0) + 1.0
    before = tf.config.threading.get_intra_op_parallelism_threads()
    assert one_thread_per_op_on_cpu() is (before == 1)
    assert tf.config.threading.get_intra_op_parallelism_threads() == before


def test_mixed_precision_applies_only_while_the_model_is_built_even_when_something_fails(monkeypatch):
    texts = [NEGATIVE, POSITIVE]
    config = tiny_config(mixed_precision=True)
    tokenizer = new_tokenizer(config)
    tokenizer.fit_on_texts(texts)
    assert keras.config.dtype_policy().name == "float32"
    model = build_fit_model(config, tokenizer, ["neg", "pos"])
    assert model.get_layer("embedding").dtype_policy.name == "mixed_bfloat16"
    assert keras.config.dtype_policy().name == "float32"

    def fails(*args, **kwargs):
        raise OSError("broken pipe")

    # Whatever fails after the policy is set (here the log line, as on a closed stderr) restores it.
    for name in ("build_model", "log"):
        with monkeypatch.context() as patch:
            patch.setattr(f"textclf.training.setup.{name}", fails)
            with pytest.raises(OSError, match="broken pipe"):
                build_fit_model(config, tokenizer, ["neg", "pos"])
        assert keras.config.dtype_policy().name == "float32", name
