"""``textclf tune``: the budget, a search on tiny data that ends in a normal run, and resuming it."""

import json
import os

import pytest

from textclf.cli import main
from textclf.training.tune import parse_budget

from conftest import NEGATIVE, POSITIVE, make_rows, write_csv


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
        raise ValueError("The interrupted run in OUT used different settings ... or pass --restart")

    monkeypatch.setattr(textclf.training.run, "train", interrupted_elsewhere)
    assert main(["tune", str(data), *flags]) == 2
    assert "used different settings" in capsys.readouterr().err
    assert len(json.loads((output / "tune" / "trials.json").read_text())) == 1  # The search's result is kept.
    assert main(["tune", str(data), *flags, "--restart"]) == 2
    assert "1 trials already finished" in capsys.readouterr().err  # The rerun searches no more.
    assert calls == [False, True]
