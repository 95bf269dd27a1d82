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
