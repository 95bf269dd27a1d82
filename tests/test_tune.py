"""``textclf tune``: the budget, a search on tiny data that ends in a normal run, resuming it, and what it refuses.

The tests below the slow ones fake the training (``fake_training``): each trial scores what the test lists, and
the final run is recorded, not trained, so they exercise the search, its folder and the checks in seconds.
"""

import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from textclf.cli import main
from textclf.errors import TextclfError
from textclf.training.tune import parse_budget

from conftest import NEGATIVE, POSITIVE, TOPICS, make_rows, write_csv


def test_budgets_read_as_durations():
    assert [parse_budget(text) for text in ("90s", "20m", "1.5h", "2", " 3m ")] == [90.0, 1200.0, 5400.0, 120.0, 180.0]
    for bad in ("0m", "-5m", "20 minutes", "m", ""):
        with pytest.raises(ValueError, match=r"`budget` must be a positive duration such as 90s, 20m or 1.5h"):
            parse_budget(bad)


def test_a_bad_budget_exits_2(binary_csv, tmp_path, capsys):
    assert main(["tune", str(binary_csv), "--output", str(tmp_path / "t"), "--budget", "soon"]) == 2
    assert "`budget` must be a positive duration" in capsys.readouterr().err


@pytest.mark.slow
def test_tune_searches_then_trains_the_best_and_a_rerun_resumes(tmp_path, capsys):
    data = write_csv(tmp_path / "reviews.csv", make_rows({"fresh": POSITIVE, "rotten": NEGATIVE}, 60, seed=2))
    output = tmp_path / "tuned"
    flags = ["--output", str(output), "--epochs", "1", "--batch-size", "16", "--embedding-dim", "4", "--budget", "30m"]
    assert main(["tune", str(data), "--max-trials", "2", *flags]) == 0
    out = capsys.readouterr().out.splitlines()
    summary = json.loads(out[-1])
    assert summary["trials"] == 2 and summary["export"] == str(output / "1")
    trials = json.loads((output / "tune" / "trials.json").read_text())
    assert [row["val_macro_f1"] for row in trials] == sorted((row["val_macro_f1"] for row in trials), reverse=True)
    assert sum(line.startswith("| ") for line in out) == 1 + 2  # Header and one row per trial.
    # The final run is the best trial's settings, trained as `textclf train` would.
    run_dir = output / "runs" / os.listdir(output / "runs")[0]
    config = json.loads((run_dir / "config.json").read_text())
    best = trials[0]["settings"]
    assert {name: config[name] for name in best} == best
    assert (config["epochs"], config["embedding_dim"]) == (1, 4)  # Flags fix the settings not searched.
    # The same command with room for one more trial resumes: the two finished trials are kept.
    assert main(["tune", str(data), "--max-trials", "3", *flags]) == 0
    captured = capsys.readouterr()
    assert "resuming the search in" in captured.err and "2 trials already finished" in captured.err
    assert json.loads(captured.out.splitlines()[-1])["trials"] == 3
    assert sorted(os.listdir(output)) == ["1", "2", "runs", "tune"]


@pytest.mark.slow
def test_the_search_is_kept_when_the_final_run_fails_and_restart_reaches_it(tmp_path, capsys, monkeypatch):
    import textclf.training.run

    data = write_csv(tmp_path / "reviews.csv", make_rows({"fresh": POSITIVE, "rotten": NEGATIVE}, 60, seed=2))
    output = tmp_path / "tuned"
    flags = ["--output", str(output), "--epochs", "1", "--batch-size", "16", "--embedding-dim", "4", "--max-trials", "1"]
    calls = []

    def interrupted_elsewhere(*args, **kwargs):
        calls.append(kwargs["restart"])
        raise TextclfError("The interrupted run in OUT used different settings ... or pass --restart")

    monkeypatch.setattr(textclf.training.run, "train", interrupted_elsewhere)
    assert main(["tune", str(data), *flags]) == 2
    assert "used different settings" in capsys.readouterr().err
    assert len(json.loads((output / "tune" / "trials.json").read_text())) == 1  # The search's result is kept.
    assert main(["tune", str(data), *flags, "--restart"]) == 2
    assert "1 trials already finished" in capsys.readouterr().err  # The rerun searches no more.
    assert calls == [False, True]


@pytest.fixture
def fake_training(monkeypatch):
    """Trials score the next of ``fake["scores"]`` (an exception is raised) without training; the final run is
    recorded in ``fake["final"]``; ``fake["trials"]`` counts the trials run."""
    import textclf.training.fit
    import textclf.training.run
    from textclf.training.run import TrainResult

    fake = {"scores": [], "trials": [], "final": []}

    def fit_prepared(settings, prepared, verbose=0):
        fake["trials"].append(settings)
        outcome = fake["scores"].pop(0) if fake["scores"] else 0.5
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def train(dataset, config, valid=None, output=None, restart=False):
        fake["final"].append((config, restart))
        return TrainResult(run_dir=Path(output) / "runs" / "fake", metrics={"accuracy": 0.5, "macro_f1": 0.5},
                           history={}, config=config, export_dir=Path(output) / "1")

    monkeypatch.setattr(textclf.training.fit, "fit_prepared", fit_prepared)
    def validation_metrics(outcome, classes):
        # A score stands for a model without a wide branch that predicted both classes; a dict is the metrics.
        return None, outcome if isinstance(outcome, dict) else {"macro_f1": outcome,
                                                                "confusion_matrix": [[3, 1], [1, 3]]}

    monkeypatch.setattr(textclf.training.fit, "validation_metrics", validation_metrics)
    monkeypatch.setattr(textclf.training.run, "train", train)
    return fake


def _tune(capsys, data, output, *flags):
    """``(exit status, stdout, stderr)`` of ``textclf tune DATA --output OUTPUT FLAGS``."""
    status = main(["tune", str(data), "--output", str(output), *map(str, flags)])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _reviews(tmp_path, count=60, name="reviews.csv"):
    return write_csv(tmp_path / name, make_rows({"fresh": POSITIVE, "rotten": NEGATIVE}, count, seed=2))


def test_a_search_on_other_data_is_refused_and_restart_discards_it(tmp_path, capsys, fake_training):
    reviews, topics = _reviews(tmp_path), write_csv(tmp_path / "topics.csv", make_rows(TOPICS, 90, seed=3))
    output = tmp_path / "tb"
    assert _tune(capsys, reviews, output, "--max-trials", 1)[0] == 0
    status, _, err = _tune(capsys, topics, output, "--max-trials", 2)
    assert status == 2 and err.splitlines()[-1] == (
        f"textclf tune: error: The search in {output / 'tune'} was made with different data (48 training and 12 "
        "validation rows then, 72 and 18 now, or the same counts with other texts or labels); its 1 finished trials "
        "would be ranked with this search's. Rerun the command that made it to resume it, choose another --output, "
        "or pass --restart to discard those trials and start a new search")
    assert len(fake_training["trials"]) == 1 and len(fake_training["final"]) == 1  # Nothing mixed, nothing trained.
    status, out, err = _tune(capsys, topics, output, "--max-trials", 2, "--restart")
    assert status == 0, err
    assert f"--restart: discarded the 1 trials in {output / 'tune'}, made with different data" in err
    assert json.loads(out.splitlines()[-1])["trials"] == 2
    assert [row["trial"] for row in json.loads((output / "tune" / "trials.json").read_text())] == ["0", "1"]
    assert len(fake_training["trials"]) == 3 and fake_training["final"][-1][1] is True


def test_a_search_with_other_fixed_settings_is_refused(tmp_path, capsys, fake_training):
    reviews, output = _reviews(tmp_path), tmp_path / "tb"
    assert _tune(capsys, reviews, output, "--max-trials", 1, "--embedding-dim", 4, "--epochs", 1)[0] == 0
    status, _, err = _tune(capsys, reviews, output, "--max-trials", 2, "--embedding-dim", 8, "--epochs", 2)
    assert status == 2 and err.splitlines()[-1] == (
        f"textclf tune: error: The search in {output / 'tune'} was made with different settings: embedding_dim=4 "
        "(this search: embedding_dim=8), epochs=1 (this search: epochs=2); its 1 finished trials would be ranked "
        "with this search's. Rerun the command that made it to resume it, choose another --output, or pass "
        "--restart to discard those trials and start a new search")
    # The budget, --max-trials and the searched settings may change: the search resumes.
    status, out, err = _tune(capsys, reviews, output, "--max-trials", 2, "--embedding-dim", 4, "--epochs", 1,
                             "--budget", "30m", "--units", 16)
    assert status == 0, err
    assert "1 trials already finished" in err and json.loads(out.splitlines()[-1])["trials"] == 2
    assert len(fake_training["trials"]) == 2


def test_failed_trials_do_not_count_toward_max_trials(tmp_path, capsys, fake_training):
    fake_training["scores"] = [RuntimeError("a bug in a trial"), 0.75]
    status, out, err = _tune(capsys, _reviews(tmp_path), tmp_path / "tb", "--max-trials", 1)
    assert status == 0, err
    assert json.loads(out.splitlines()[-1])["trials"] == 1 and len(fake_training["trials"]) == 2
    rows = json.loads((tmp_path / "tb" / "tune" / "trials.json").read_text())
    assert [(row["trial"], row["val_macro_f1"]) for row in rows] == [("1", 0.75)]


def test_a_second_tune_on_the_same_folder_is_refused_while_the_first_runs(tmp_path, capsys, fake_training):
    reviews, output = _reviews(tmp_path), tmp_path / "tb"
    (output / "tune").mkdir(parents=True)
    lock = output / "tune" / "lock"
    # Another process holding the lock, as a running tune does; killing it must free the folder.
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, sys, time; handle = open(sys.argv[1], 'a+'); "
                               "fcntl.flock(handle, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(600)",
                               str(lock)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "locked\n"
        status, _, err = _tune(capsys, reviews, output, "--max-trials", 1)
        assert status == 2 and err.splitlines()[-1] == (
            f"textclf tune: error: Another `textclf tune` is searching in {output / 'tune'} (it holds {lock}); wait "
            "for it to finish or choose another --output")
    finally:
        holder.kill()
        holder.wait()
    assert fake_training["trials"] == []
    status, _, err = _tune(capsys, reviews, output, "--max-trials", 1)
    assert status == 0, err
    with open(lock, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # Released when the tune ended.


def test_data_and_settings_are_checked_before_the_search(tmp_path, capsys, fake_training):
    reviews, output = _reviews(tmp_path), tmp_path / "tb"
    one_class = write_csv(tmp_path / "one_class.csv", [(f"good film {index}", "fresh") for index in range(20)])
    unseen = write_csv(tmp_path / "valid.csv", [("good", "fresh"), ("bad", "rotten"), ("so so", "meh")])
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("good 0.1 0.2\nbad 0.2 0.1\n", encoding="utf-8")
    for data, flags, message in [
        (one_class, [], f"{one_class}: training needs at least two different labels; found only 'fresh'"),
        (reviews, ["--valid", unseen], f"{unseen}: labels 'meh' do not occur in the training data (training labels: "
                                       "'fresh', 'rotten')"),
        (reviews, ["--embeddings", vectors, "--embedding-dim", 4],
         f"{vectors} holds vectors of dimension 2, but embedding_dim is 4; pass --embedding-dim 2"),
        (reviews, ["--validation-fraction", 0],
         "`validation_fraction` must be > 0 when no validation file is given (early stopping and the metrics need "
         "validation rows). Received: validation_fraction=0.0; pass a fraction such as 0.2, or --valid FILE"),
    ]:
        status, _, err = _tune(capsys, data, output, "--max-trials", 2, *flags)
        assert (status, err.splitlines()[-1]) == (2, f"textclf tune: error: {message}")
        assert "Traceback" not in err
    assert fake_training["trials"] == [] and not (output / "tune").exists()


def test_a_users_error_in_a_trial_stops_the_search(tmp_path, capsys, fake_training):
    reviews, output = _reviews(tmp_path), tmp_path / "tb"
    fake_training["scores"] = [TextclfError("`units` must fit in memory. Received: units=128")]
    status, _, err = _tune(capsys, reviews, output, "--max-trials", 3)
    assert (status, err.splitlines()[-1]) == (2, "textclf tune: error: `units` must fit in memory. Received: units=128")
    assert len(fake_training["trials"]) == 1 and fake_training["final"] == []
    # The stopped trial is run again, not counted as failed.
    status, out, err = _tune(capsys, reviews, output, "--max-trials", 3)
    assert status == 0, err
    assert sorted(row["trial"] for row in json.loads((output / "tune" / "trials.json").read_text())) == ["0", "1", "2"]
    assert len(fake_training["trials"]) == 4


def test_an_output_that_cannot_hold_the_search_is_one_line(tmp_path, capsys, fake_training):
    reviews = _reviews(tmp_path)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "tune").write_text("not a folder")
    (tmp_path / "file").write_text("not a folder")
    for output, path in [(tmp_path / "taken", tmp_path / "taken" / "tune"), (tmp_path / "file", tmp_path / "file")]:
        status, _, err = _tune(capsys, reviews, output, "--max-trials", 1)
        assert (status, err.splitlines()[-1]) == (2, (
            f"textclf tune: error: {path} is a file, but `textclf tune` keeps its search in the folder "
            f"{output / 'tune'}. Move the file away or choose another --output"))
    assert fake_training["trials"] == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_output_is_one_line(tmp_path, capsys, fake_training):
    output = tmp_path / "read_only"
    output.mkdir(mode=0o500)
    status, _, err = _tune(capsys, _reviews(tmp_path), output, "--max-trials", 1)
    assert (status, err.splitlines()[-1]) == (2, f"textclf tune: error: Permission denied: {output / 'tune'}")


@pytest.mark.parametrize("name, damage, problem", [
    ("state/oracle.json", lambda text: text[:120], None),
    ("state/trial_0/trial.json", lambda text: "{}", "no best_step, hyperparameters, message, metrics, score, status, "
                                                     "trial_id"),
    ("search.json", lambda text: "[]", "not a JSON object"),
], ids=["truncated oracle.json", "trial.json without its keys", "search.json not an object"])
def test_a_damaged_search_file_is_named_and_restart_discards_it(tmp_path, capsys, fake_training, name, damage,
                                                                problem):
    reviews, output = _reviews(tmp_path), tmp_path / "tb"
    assert _tune(capsys, reviews, output, "--max-trials", 1)[0] == 0
    path = output / "tune" / name
    path.write_text(damage(path.read_text(encoding="utf-8")), encoding="utf-8")
    if problem is None:
        with pytest.raises(ValueError) as parsing:
            json.loads(path.read_text(encoding="utf-8"))
        problem = f"not valid JSON: {parsing.value}"
    status, _, err = _tune(capsys, reviews, output, "--max-trials", 1)
    assert (status, err.splitlines()[-1]) == (2, (
        f"textclf tune: error: {path} is damaged ({problem}), so the search in {output / 'tune'} cannot be resumed. "
        f"Delete {output / 'tune'}, or pass --restart to discard it and start a new search"))
    status, out, err = _tune(capsys, reviews, output, "--max-trials", 1, "--restart")
    assert status == 0, err
    assert f"--restart: discarded the search in {output / 'tune'} ({path} was damaged)" in err
    assert len(fake_training["trials"]) == 2 and json.loads(out.splitlines()[-1])["trials"] == 1


def test_the_trials_table_rounds_what_it_shows():
    from textclf.training.tune import trials_table

    rows = [{"trial": "3", "settings": {"arch": "gru", "units": 32, "dropout_rate": 0.30000000000000004,
                                        "learning_rate": 0.0012345678, "max_len_percentile": 99.0},
             "val_macro_f1": 0.812345, "seconds": 12.6, "recurrent_macro_f1": 0.3333333, "stuck": True},
            {"trial": "1", "settings": {"arch": "gru", "units": 64, "dropout_rate": 0.2, "learning_rate": 0.003,
                                        "max_len_percentile": 90.0},
             "val_macro_f1": 0.75, "seconds": 9.2, "recurrent_macro_f1": 0.75, "stuck": False},
            # A trial of a search made before the recurrent part was recorded.
            {"trial": "0", "settings": {"arch": "lstm", "units": 16, "dropout_rate": 0.1, "learning_rate": 0.01,
                                        "max_len_percentile": 95.0}, "val_macro_f1": 0.5, "seconds": None}]
    assert trials_table(rows).splitlines() == [
        "| trial | arch | units | dropout_rate | learning_rate | max_len_percentile | validation macro-F1 | "
        "recurrent macro-F1 | seconds | note |",
        "|---|---|---|---|---|---|---|---|---|---|",
        "| 3 | gru | 32 | 0.3 | 0.0012 | 99 | 0.8123 | 0.3333 | 13 | stuck: one class |",
        "| 1 | gru | 64 | 0.2 | 0.003 | 90 | 0.7500 | 0.7500 | 9 |  |",
        "| 0 | lstm | 16 | 0.1 | 0.01 | 95 | 0.5000 | — | — |  |",
    ]


def test_a_trial_whose_recurrent_part_predicted_one_class_is_flagged(tmp_path, capsys, fake_training):
    from textclf.training.tune import recurrent_part

    stuck = {"macro_f1": 0.8, "parts": {"recurrent": {"accuracy": 0.5, "macro_f1": 1 / 3, "predicted_classes": 1}}}
    assert recurrent_part(stuck) == (1 / 3, 1)
    # Without a wide branch the recurrent part is the model: the classes it predicted are the confusion's columns.
    assert recurrent_part({"macro_f1": 0.4, "confusion_matrix": [[4, 0], [3, 0]]}) == (0.4, 1)
    assert recurrent_part({"macro_f1": 0.6, "confusion_matrix": [[3, 1], [1, 3]]}) == (0.6, 2)
    fake_training["scores"] = [stuck, 0.6]
    status, out, err = _tune(capsys, _reviews(tmp_path), tmp_path / "tb", "--max-trials", 2)
    assert status == 0, err
    rows = json.loads((tmp_path / "tb" / "tune" / "trials.json").read_text())
    assert [(row["trial"], row["val_macro_f1"], row["recurrent_macro_f1"], row["stuck"]) for row in rows] == [
        ("0", 0.8, 1 / 3, True), ("1", 0.6, 0.6, False)]
    table = [line for line in out.splitlines() if line.startswith("| 0 ") or line.startswith("| 1 ")]
    assert [line.split(" | ")[-4:] for line in table] == [["0.8000", "0.3333", "0", "stuck: one class |"],
                                                         ["0.6000", "0.6000", "0", " |"]]
    assert "trial 0: validation macro-F1 0.8000 (recurrent part 0.3333, stuck: one class) with" in err
