"""What the command does with an error: the user's (TextclfError, OSError) is one line and exit 2; a bug in textclf
(any other exception, a plain ValueError included) keeps its traceback."""

import pytest

from textclf.cli import main
from textclf.cli import commands
from textclf.errors import TextclfError


def failing_with(error):
    def command(args):
        raise error
    return command


def test_a_users_error_is_one_line_and_exit_2(monkeypatch, capsys):
    monkeypatch.setitem(commands.COMMANDS, "predict", failing_with(TextclfError("`top_k` must be >= 1")))
    assert main(["predict", "somewhere", "text"]) == 2
    assert capsys.readouterr().err == "textclf predict: error: `top_k` must be >= 1\n"


def test_a_missing_file_is_one_line_naming_it(monkeypatch, capsys):
    monkeypatch.setitem(commands.COMMANDS, "predict", failing_with(FileNotFoundError(2, "No such file or directory",
                                                                                     "in.txt")))
    assert main(["predict", "somewhere", "text"]) == 2
    assert capsys.readouterr().err == "textclf predict: error: No such file or directory: in.txt\n"


@pytest.mark.parametrize("bug", [ValueError("operands could not be broadcast"), KeyError("classes"),
                                 TypeError("'NoneType' object is not subscriptable")])
def test_a_bug_keeps_its_traceback(bug, monkeypatch):
    monkeypatch.setitem(commands.COMMANDS, "predict", failing_with(bug))
    with pytest.raises(type(bug)) as raised:  # Python prints it and exits with status 1.
        main(["predict", "somewhere", "text"])
    assert raised.value is bug


def test_the_wide_branchs_sizes_are_no_setting(capsys):
    # Training decides the branch's n-grams; a value given for them left a wide=tfidf run with an unfitted branch.
    import dataclasses

    from textclf import TrainConfig
    from textclf.estimator import TextClassifier

    with pytest.raises(SystemExit) as exit_status:  # argparse's own refusal.
        main(["train", "data.csv", "--wide-bigrams", "5"])
    assert exit_status.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == "textclf: error: unrecognized arguments: --wide-bigrams 5"
    assert not any("bigram" in field.name for field in dataclasses.fields(TrainConfig))
    assert "wide_bigrams" not in TextClassifier().get_params()
    with pytest.raises(TextclfError) as error:
        TrainConfig.from_dict({"wide": "tfidf", "wide_bigrams": 5}, source="run/config.json")
    assert str(error.value).startswith("Unknown setting(s) 'wide_bigrams' in run/config.json.")
