"""The README's two set-up commands stay what CI and users run."""

import re

from conftest import REPO


def readme_commands():
    return re.findall(r"```bash\n(python -m pip install[^\n]*)\n```", (REPO / "README.md").read_text(encoding="utf-8"))


# A stand-in for the system's python: it logs its arguments, and "-m venv DIR" makes DIR/bin/activate put a python
# on PATH that logs "venv DIR" and its arguments.
FAKE_PYTHON = """#!/usr/bin/env bash
echo "system $*" >> "$CI_LOG"
if [ "$1 $2" = "-m venv" ]; then
    mkdir -p "$3/bin"
    printf '#!/usr/bin/env bash\\necho "venv %s $*" >> "$CI_LOG"\\n' "$3" > "$3/bin/python"
    chmod +x "$3/bin/python"
    printf 'PATH="%s/bin:$PATH"\\n' "$3" > "$3/bin/activate"
fi
"""


def run_ci(tmp_path, times):
    """The python calls of ``.ci/run`` run ``times`` times with the stand-in python, one list per run."""
    import os
    import shutil
    import subprocess

    (tmp_path / "repo" / ".ci").mkdir(parents=True)
    shutil.copy(REPO / ".ci" / "run", tmp_path / "repo" / ".ci" / "run")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "python").write_text(FAKE_PYTHON)
    (tmp_path / "bin" / "python").chmod(0o755)
    (tmp_path / "tmp").mkdir()
    runs = []
    for number in range(times):
        log = tmp_path / f"ci-{number}.log"
        environment = {**os.environ, "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}",
                       "TMPDIR": str(tmp_path / "tmp"), "CI_LOG": str(log)}
        environment.pop("VIRTUAL_ENV", None)
        done = subprocess.run(["bash", str(tmp_path / "repo" / ".ci" / "run")], capture_output=True, text=True,
                              env=environment)
        assert done.returncode == 0, done.stderr
        runs.append(log.read_text().splitlines())
    return runs


def test_ci_runs_the_readme_test_command(tmp_path):
    main_job, test_command = readme_commands()[:2]
    assert "textclf train data/rt_polarity.csv" in main_job and "textclf predict saved_models/rt_polarity" in main_job
    [calls] = run_ci(tmp_path, 1)
    venv = calls[0].removeprefix("system -m venv ")
    # After making the environment, every call is its python's: pip's version, then the README's test command.
    readme_calls = [part.removeprefix("python ") for part in test_command.split(" && ")]
    assert calls[1:] == [f"venv {venv} {arguments}" for arguments in ["-m pip --version", *readme_calls]]


def test_ci_installs_into_a_new_virtual_environment_every_run(tmp_path):
    first, second = run_ci(tmp_path, 2)
    venvs = [calls[0].removeprefix("system -m venv ") for calls in (first, second)]
    # Each run makes a new folder (under TMPDIR, from mktemp -d), never a kept environment, and removes it at exit.
    assert venvs[0] != venvs[1]
    assert all(venv.startswith(f"{tmp_path / 'tmp'}/") and venv.endswith("/venv") for venv in venvs)
    assert list((tmp_path / "tmp").iterdir()) == []


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
