"""Two workers on localhost, runs resumed after SIGKILL, and the bad-input cases of both (exit status 2)."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from textclf import TrainConfig, evaluate, load
from textclf.training.prepare import prepare_in_memory
from textclf.training.resume import InProgress
from textclf.cli import main

from conftest import (NEGATIVE, POSITIVE, TOPICS, Crash, crash_at_save, make_rows, multilabel_rows, tiny_config,
                      whole_and_resumed, write_csv)

REPO = Path(__file__).resolve().parent.parent
DIGEST_HOOK = Path(__file__).resolve().parent / "train_writing_weights_digest.py"
SETTINGS = ["--epochs", "3", "--units", "8", "--embedding-dim", "8", "--batch-size", "16", "--max-len", "8",
            "--learning-rate", "0.02", "--seed", "7"]


def free_ports(count):
    """Ports the kernel says are free on the loopback interface."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for each in sockets:
            each.bind(("127.0.0.1", 0))
        return [each.getsockname()[1] for each in sockets]
    finally:
        for each in sockets:
            each.close()


def start_train(argv, folder: Path, name: str, digest_file=None, **environment):
    """``python -m textclf.cli train ARGV`` on this checkout, its output in ``folder/name.out`` and ``.err``.

    With ``digest_file``, the final weights' SHA-256 goes there (tests/train_writing_weights_digest.py).
    """
    env = {key: value for key, value in os.environ.items() if key != "TF_CONFIG"}
    env.update(PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3", **environment)
    command = ["-m", "textclf.cli"] if digest_file is None else [str(DIGEST_HOOK), str(digest_file)]
    with open(folder / f"{name}.out", "w") as out, open(folder / f"{name}.err", "w") as err:
        return subprocess.Popen([sys.executable, *command, "train", *map(str, argv)],
                                cwd=folder, env=env, stdout=out, stderr=err)


def stop_all(processes):
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


def weights_digest(model) -> str:
    import hashlib

    return hashlib.sha256(b"".join(np.ascontiguousarray(weight).tobytes() for weight in model.get_weights())).hexdigest()


@pytest.mark.slow
def test_two_workers_end_with_identical_weights_and_only_the_chief_writes(tmp_path):
    train_csv = write_csv(tmp_path / "topics.csv", make_rows(TOPICS, 300, seed=11))
    valid_csv = write_csv(tmp_path / "valid.csv", make_rows(TOPICS, 60, seed=12))
    (tmp_path / "worker-tmp").mkdir()
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    processes = []
    try:
        started = time.monotonic()
        for index in range(2):
            processes.append(start_train(
                [train_csv, "--valid", valid_csv, "--output", tmp_path / "distributed", "--strategy", "multiworker",
                 *SETTINGS], tmp_path, f"worker{index}",
                TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
                digest_file=tmp_path / f"worker{index}.digest",
                TMPDIR=str(tmp_path / "worker-tmp")))
        for process in processes:
            process.wait(timeout=max(1.0, started + 150 - time.monotonic()))
        two_workers_seconds = time.monotonic() - started
        started = time.monotonic()
        processes.append(start_train(
            [train_csv, "--valid", valid_csv, "--output", tmp_path / "single", "--strategy", "none", *SETTINGS],
            tmp_path, "single"))
        processes[-1].wait(timeout=90)
        one_worker_seconds = time.monotonic() - started
    finally:
        stop_all(processes)
    for name, process in zip(("worker0", "worker1", "single"), processes):
        assert process.returncode == 0, (tmp_path / f"{name}.err").read_text()
    print(f"\ntwo workers {two_workers_seconds:.1f} s, one worker {one_worker_seconds:.1f} s (wall, with start-up)")

    # Same weights on both workers, and they are the weights the chief saved.
    digests = [(tmp_path / f"worker{index}.digest").read_text().strip() for index in range(2)]
    assert len(digests[0]) == 64 and digests[0] == digests[1]
    chief = json.loads((tmp_path / "worker0.out").read_text().strip().splitlines()[-1])
    assert weights_digest(load(chief["run"]).run.model) == digests[0]

    # The chief alone wrote: one run folder, one export version, no in-progress state, no worker leftovers.
    output = tmp_path / "distributed"
    assert chief["export"] == str(output / "1")
    assert sorted(os.listdir(output)) == ["1", "runs"]
    assert os.listdir(output / "runs") == [Path(chief["run"]).name]
    worker = json.loads((tmp_path / "worker1.out").read_text().strip().splitlines()[-1])
    assert (worker["run"], worker["export"]) == (None, None)
    assert os.listdir(tmp_path / "worker-tmp") == []
    assert "this is worker 1 (2 processes), 2 replicas in all" in (tmp_path / "worker1.err").read_text()

    distributed_accuracy = evaluate(output, valid_csv)["accuracy"]
    single_accuracy = evaluate(tmp_path / "single", valid_csv)["accuracy"]
    assert single_accuracy >= 0.8
    assert abs(distributed_accuracy - single_accuracy) <= 0.05


@pytest.mark.slow
def test_a_killed_run_resumes_from_its_last_checkpoint(tmp_path):
    data = write_csv(tmp_path / "reviews.csv", make_rows({"fresh": POSITIVE, "rotten": NEGATIVE}, 2000, seed=3))
    output = tmp_path / "reviews"
    argv = [data, "--output", output, "--epochs", "2", "--units", "4", "--embedding-dim", "4", "--batch-size", "8",
            "--max-len", "8", "--checkpoint-every", "20"]
    checkpoint_state = output / "runs" / ".in-progress" / "checkpoint" / "checkpoint"
    processes = []
    try:
        first = start_train(argv, tmp_path, "first")
        processes.append(first)
        deadline = time.monotonic() + 90
        while not checkpoint_state.exists():
            assert first.poll() is None, "ended before its first checkpoint:\n" + (tmp_path / "first.err").read_text()
            assert time.monotonic() < deadline, "no checkpoint within 90 s"
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)  # 1600 rows of batch 8: about 200 steps per epoch, so mid-epoch.
        first.wait(timeout=30)
        assert first.returncode == -signal.SIGKILL
        assert not (output / "1").exists()
        second = start_train(argv, tmp_path, "second")
        processes.append(second)
        second.wait(timeout=120)
    finally:
        stop_all(processes)
    log = (tmp_path / "second.err").read_text()
    assert second.returncode == 0, log
    assert "resuming the interrupted run in " + str(output / "runs" / ".in-progress") in log
    resumed = re.search(r"resuming from \S+/ckpt-\d+: epoch 1/2, step (\d+) \((\d+) steps trained\)", log)
    assert resumed, log
    step = int(resumed.group(1))
    assert 0 < step < 200 and step % 20 == 0 and int(resumed.group(2)) == step
    assert (output / "1" / "saved_model.pb").is_file()
    runs = os.listdir(output / "runs")  # The in-progress folder is gone.
    assert len(runs) == 1 and not runs[0].startswith(".")
    assert len(json.loads((output / "runs" / runs[0] / "history.json").read_text())["loss"]) == 2


@pytest.mark.slow
def test_an_interrupted_run_resumes_to_the_weights_of_an_uninterrupted_one(tmp_path, monkeypatch, capsys):
    data = write_csv(tmp_path / "reviews.csv", make_rows({"fresh": POSITIVE, "rotten": NEGATIVE}, 120, seed=4))
    config = tiny_config(epochs=3, batch_size=8, checkpoint_every=4, patience=3)

    def pretend_it_took_1000_s(folder):  # The interrupted part's time counts in run.json.
        seconds_file = folder / "runs" / ".in-progress" / "seconds.json"
        assert json.loads(seconds_file.read_text())["seconds"] > 0
        seconds_file.write_text(json.dumps({"seconds": 1000.0}))

    whole, resumed, log = whole_and_resumed(data, config, tmp_path, monkeypatch, capsys, 5, pretend_it_took_1000_s)
    assert 1000 < json.loads((resumed.run_dir / "run.json").read_text())["training_seconds"] < 1300
    # Saves at steps 4, 8, 12, the end of epoch 1 (12 steps), then step 16: epoch 2 after its 4th step.
    assert re.search(r"resuming from \S+/ckpt-5: epoch 2/3, step 4 \(16 steps trained\)", log), log

    assert resumed.history == whole.history
    for expected, actual in zip(load(whole.run_dir).run.model.get_weights(),
                                load(resumed.run_dir).run.model.get_weights()):
        np.testing.assert_array_equal(expected, actual)


@pytest.mark.slow
def test_every_run_checkpoints_at_epoch_ends_and_resumes_multi_label_too(tmp_path, monkeypatch, capsys):
    # No --checkpoint-every: the default run still checkpoints at each epoch end.

    data = write_csv(tmp_path / "topics.csv", multilabel_rows(96, seed=5))
    config = tiny_config(epochs=3, patience=3, multi_label=True, threshold=0.5)
    whole, resumed, log = whole_and_resumed(data, config, tmp_path, monkeypatch, capsys, 1)
    # 76 training rows in length-bucketed batches of up to 16: the first save ends epoch 1, after 6 steps.
    assert re.search(r"resuming from \S+/ckpt-1: epoch 2/3, step 0 \(6 steps trained\)", log), log
    assert resumed.history == whole.history
    assert resumed.metrics == whole.metrics
    for expected, actual in zip(load(whole.run_dir).run.model.get_weights(),
                                load(resumed.run_dir).run.model.get_weights()):
        np.testing.assert_array_equal(expected, actual)


@pytest.mark.slow
def test_a_checkpoint_of_other_settings_or_data_is_refused_until_restart(tmp_path, binary_csv, monkeypatch, capsys):
    output = tmp_path / "reviews"
    tiny = ["--epochs", "2", "--units", "4", "--embedding-dim", "4", "--batch-size", "16", "--max-len", "6"]
    crash_at_save(monkeypatch, 1)
    with pytest.raises(Crash):
        main(["train", str(binary_csv), "--output", str(output), *tiny])
    monkeypatch.undo()
    in_progress = output / "runs" / ".in-progress"
    assert sorted(os.listdir(in_progress)) == ["checkpoint", "config.json", "labels.json", "lock", "state.json",
                                               "tokenizer.json"]
    capsys.readouterr()

    status = main(["train", str(binary_csv), "--output", str(output), *tiny, "--units", "5"])
    err = capsys.readouterr().err
    assert status == 2
    assert err.splitlines()[-1] == (
        f"textclf train: error: The interrupted run in {in_progress} used different settings: units=4 (this run: "
        "units=5). Rerun the interrupted command (same settings and data) to resume from its checkpoint, or pass "
        "--restart (restart=True) to discard its checkpoint and start this one fresh")

    other_data = write_csv(tmp_path / "other.csv", make_rows({"fresh": POSITIVE, "rotten": NEGATIVE}, 80, seed=99))
    status = main(["train", str(other_data), "--output", str(output), *tiny])
    assert status == 2
    assert (f"The interrupted run in {in_progress} was trained on different data (64 training and 16 validation "
            "rows then, 64 and 16 now, or the same counts with other texts or labels)") in capsys.readouterr().err

    status = main(["train", str(binary_csv), "--output", str(output), *tiny, "--units", "5", "--restart"])
    err = capsys.readouterr().err
    assert status == 0, err
    assert f"--restart: discarded the interrupted run in {in_progress}" in err
    assert "resuming" not in err
    assert json.loads((output / "1" / "textclf.json").read_text())["config"]["units"] == 5
    assert not in_progress.exists()


def test_a_second_run_into_the_same_output_is_refused_while_one_trains(tmp_path, binary_csv, capsys):
    holder = InProgress.open(tmp_path / "reviews" / "runs", TrainConfig(), prepare_in_memory(TrainConfig(), binary_csv))
    try:
        status = main(["train", str(binary_csv), "--output", str(tmp_path / "reviews"), "--epochs", "1"])
    finally:
        holder.close()
    assert status == 2
    assert (f"textclf train: error: Another `textclf train` is training into {tmp_path / 'reviews'} (it holds "
            f"{tmp_path / 'reviews' / 'runs' / '.in-progress' / 'lock'}); wait for it to finish or choose another "
            "--output") in capsys.readouterr().err
    assert not (tmp_path / "reviews" / "runs" / ".in-progress").exists()  # Nothing to resume: cleaned up.


@pytest.mark.slow
def test_mirrored_without_a_gpu_warns_and_trains_on_the_cpu(tmp_path, binary_csv, capsys):
    import tensorflow as tf

    status = main(["train", str(binary_csv), "--output", str(tmp_path / "mirrored"), "--strategy", "mirrored",
                   "--epochs", "2", "--units", "4", "--embedding-dim", "4", "--batch-size", "16", "--max-len", "6"])
    err = capsys.readouterr().err
    assert status == 0, err
    if tf.config.list_physical_devices("GPU"):
        assert "strategy 'mirrored': " in err and "GPU replica" in err
    else:
        assert ("warning: strategy 'mirrored' found no GPU, so it trains on the CPU with a single replica "
                "(like strategy 'none')") in err
    assert (tmp_path / "mirrored" / "1" / "saved_model.pb").is_file()
    assert "note: " not in err  # 64 training rows at batch 16 are 4 steps an epoch: enough.


@pytest.mark.slow
def test_a_batch_that_leaves_few_steps_an_epoch_gets_a_note(tmp_path, binary_csv, capsys):
    status = main(["train", str(binary_csv), "--output", str(tmp_path / "few"), "--epochs", "1", "--units", "4",
                   "--embedding-dim", "4", "--max-len", "6", "--batch-size", "40"])
    err = capsys.readouterr().err
    assert status == 0, err
    assert ("note: 64 training rows make 2 steps an epoch at batch_size=40; a smaller --batch-size (for example 32) "
            "gives more updates per epoch") in err


@pytest.mark.parametrize("tf_config, message", [
    (None, "strategy 'multiworker' needs the TF_CONFIG environment variable describing the cluster"),
    ("{oops", "TF_CONFIG is not valid JSON (Expecting property name enclosed in double quotes: line 1 column 2 "
              "(char 1)). Received: TF_CONFIG='{oops'"),
    ('["a:1"]', 'TF_CONFIG must be a JSON object with "cluster" and "task"'),
    ('{"task": {"type": "worker", "index": 0}}', 'TF_CONFIG needs a "cluster" object with a "worker" list'),
    ('{"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}',
     'TF_CONFIG cluster.worker must be a non-empty list of "host:port" addresses'),
    ('{"cluster": {"worker": ["a:1", "b"]}, "task": {"type": "worker", "index": 0}}',
     'TF_CONFIG cluster.worker[1] must be a "host:port" address with a port from 1 to 65535, not \'b\''),
    ('{"cluster": {"worker": ["a:1"], "ps": ["b:2"]}, "task": {"type": "worker", "index": 0}}',
     "TF_CONFIG cluster lists 'ps' tasks; MultiWorkerMirroredStrategy uses only"),
    ('{"cluster": {"worker": ["a:1", "a:1"]}, "task": {"type": "worker", "index": 0}}',
     "TF_CONFIG lists a:1 more than once; every task needs its own port"),
    ('{"cluster": {"worker": ["a:1"]}}', 'TF_CONFIG needs a "task" object saying which process this is'),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "evaluator", "index": 0}}',
     "TF_CONFIG task.type must be one of the cluster's task types ('worker'), not 'evaluator'"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": "0"}}',
     "TF_CONFIG task.index must be an integer, not '0'"),
    ('{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}',
     "TF_CONFIG task.index 2 is out of range: cluster.worker lists 2 addresses (indices 0 to 1)"),
])
def test_a_bad_tf_config_exits_2_with_a_message(tf_config, message, binary_csv, tmp_path, monkeypatch, capsys):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    status = main(["train", str(binary_csv), "--output", str(tmp_path / "out"), "--strategy", "multiworker"])
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("textclf train: error: ") and message in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("changes, message", [
    ({"strategy": "horovod"}, "`strategy` must be one of none, mirrored, multiworker. Received: strategy='horovod'"),
    ({"checkpoint_every": -1}, "`checkpoint_every` must be a non-negative integer. Received: checkpoint_every=-1"),
])
def test_invalid_distributed_settings_are_named(changes, message):
    with pytest.raises(ValueError) as error:
        TrainConfig(**changes)
    assert message in str(error.value)


def test_an_unknown_strategy_flag_is_an_argparse_error(binary_csv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", str(binary_csv), "--strategy", "horovod"])
    assert exit_info.value.code == 2
    assert "argument --strategy: invalid choice: 'horovod'" in capsys.readouterr().err


def _lone_worker(tmp_path, name, **environment):
    """Worker 0 of a two-worker TF_CONFIG whose worker 1 never starts."""
    data = write_csv(tmp_path / "topics.csv", make_rows(TOPICS, 60, seed=3))
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    process = start_train([data, "--output", tmp_path / "out", "--strategy", "multiworker", *SETTINGS], tmp_path,
                          name, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 0}}),
                          **environment)
    return process, f"worker 1 at 127.0.0.1:{ports[1]}"


@pytest.mark.slow
def test_a_worker_whose_peers_never_come_says_which_and_gives_up(tmp_path):
    process, missing = _lone_worker(tmp_path, "lone", TEXTCLF_CLUSTER_TIMEOUT="12")
    try:
        process.wait(timeout=120)
    finally:
        stop_all([process])
    err = (tmp_path / "lone.err").read_text()
    assert f"waiting for the other workers of TF_CONFIG (10 s of 12 s); not answering yet: {missing}" in err
    assert err.strip().splitlines()[-1] == (
        f"textclf train: error: the other workers of TF_CONFIG did not all join within 12 s (not answering: "
        f"{missing}); start every worker, or raise TEXTCLF_CLUSTER_TIMEOUT")
    assert process.returncode == -signal.SIGKILL  # Only a kill ends the C++ wait.
    assert not (tmp_path / "out" / "1").exists()


@pytest.mark.slow
def test_ctrl_c_stops_a_worker_waiting_for_its_peers(tmp_path):
    process, _ = _lone_worker(tmp_path, "interrupted")
    try:
        deadline = time.monotonic() + 90
        while "joining the TF_CONFIG cluster" not in (tmp_path / "interrupted.err").read_text():
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.5)
        time.sleep(3)  # Inside the strategy's C++ wait.
        process.send_signal(signal.SIGINT)
        process.wait(timeout=20)
    finally:
        stop_all([process])
    assert "stopped by SIGINT while waiting for the other workers of TF_CONFIG" in (
        tmp_path / "interrupted.err").read_text()
    assert process.returncode == -signal.SIGKILL
