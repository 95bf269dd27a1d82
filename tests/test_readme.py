"""The README's two set-up commands stay what CI and users run."""

import re

from conftest import REPO


def readme_commands():
    return re.findall(r"```bash\n(python -m pip install[^\n]*)\n```", (REPO / "README.md").read_text(encoding="utf-8"))


def test_ci_runs_the_readme_test_command():
    main_job, test_command = readme_commands()[:2]
    ci_lines = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert test_command in ci_lines
    assert "textclf train data/rt_polarity.csv" in main_job and "textclf predict saved_models/rt_polarity" in main_job


def test_ci_installs_into_a_new_virtual_environment_every_run():
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    lines = ci.splitlines()
    create = next(index for index, line in enumerate(lines) if line.startswith("python -m venv "))
    activate = next(index for index, line in enumerate(lines) if line.startswith("source ") and "/bin/activate" in line)
    install = lines.index(readme_commands()[1])
    assert create < activate < install
    assert 'venv="$(mktemp -d)/venv"' in lines  # A new folder each run, never a kept environment.


def requirement_names(name: str) -> list[str]:
    """The distributions a requirements file names itself, in order (not those of its ``-r`` files)."""
    lines = (line.split("#", 1)[0].strip() for line in (REPO / name).read_text(encoding="utf-8").splitlines())
    return [re.split(r"[ <>=!~;\[]", line, maxsplit=1)[0].lower() for line in lines if line and not line.startswith("-")]


def test_the_first_command_installs_no_test_package_and_the_test_command_adds_them():
    import pytest

    tomllib = pytest.importorskip("tomllib")  # Python 3.11 and later.
    main_job, test_command = readme_commands()[:2]
    # Command 1 takes requirements.txt as constraints: its pins, for pyproject's dependencies only.
    assert main_job.startswith("python -m pip install -c requirements.txt -e . && textclf train ")
    assert test_command == "python -m pip install -r requirements.txt -e . && python -m pytest -q --all"
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    runtime = [re.split(r"[ <>=!~;\[]", spec, maxsplit=1)[0] for spec in project["dependencies"]]
    pinned = requirement_names("requirements.txt")
    test_only = [name for name in pinned if name not in runtime]
    assert test_only == ["pytest", "hypothesis", "tf-keras", "nbclient", "nbformat", "ipykernel", "pillow"]
    assert project["optional-dependencies"]["test"] == test_only
    assert pinned[:len(runtime)] == runtime  # The runtime pins first, in pyproject's order, then the test ones.
