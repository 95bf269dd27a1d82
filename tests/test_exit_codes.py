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
