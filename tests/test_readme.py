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
