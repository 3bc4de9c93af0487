"""A step's README examples run as a test of that step (and of a learner's workspace)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from shared.steps import REPO_ROOT, shown, step_dirs
from shared.testing.readme_doctest import ITEM_NAME, readme_examples

pytestmark = pytest.mark.tooling

STEPS = sorted(step_dirs())
FIRST = STEPS[0]


def _pytest(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
        check=False,
    )


def _collected_readmes(output: str) -> set[str]:
    return {line for line in output.splitlines() if line.endswith(f"README.md::{ITEM_NAME}")}


def _workspace(tmp_path: Path, readme: str | None) -> Path:
    workspace = tmp_path / "workspace"
    shutil.copytree(step_dirs()[FIRST] / "npgrad", workspace / "npgrad")
    if readme is not None:
        (workspace / "README.md").write_text(readme, encoding="utf-8")
    return workspace


@pytest.mark.parametrize("step", STEPS, ids=[f"step{step:02d}" for step in STEPS])
def test_only_the_selected_steps_readme_is_collected(step: int) -> None:
    readme = step_dirs()[step] / "README.md"
    collected = _pytest("--step", str(step), "--collect-only")
    assert collected.returncode == 0, collected.stdout + collected.stderr
    expected = {f"{shown(readme)}::{ITEM_NAME}"} if readme_examples(readme).examples else set()
    assert _collected_readmes(collected.stdout) == expected


_README = """# A lesson

>>> from npgrad import log_back
>>> import numpy as np
>>> log_back(np.array([2.0]), np.array([0.0]), np.array([4.0])).tolist()
[0.5]
>>> [1.0,
...  2.0]
[1.0,    2.0]
>>> list(range(30))
[0, 1, ..., 29]
"""


def test_a_workspace_readme_runs_against_the_workspace(tmp_path: Path) -> None:
    workspace = _workspace(tmp_path, _README)
    passed = _pytest("--step", str(FIRST), f"--impl={workspace}", "--new-only")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert (
        f"{workspace / 'README.md'}::{ITEM_NAME}"
        in _pytest("--step", str(FIRST), f"--impl={workspace}", "--collect-only").stdout
    )
    # A wrong number in the lesson fails the run and shows the example.
    (workspace / "README.md").write_text(_README.replace("[0.5]", "[0.25]"), encoding="utf-8")
    failed = _pytest("--step", str(FIRST), f"--impl={workspace}", "--new-only")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "Expected:\n    [0.25]\nGot:\n    [0.5]" in failed.stdout


def test_a_workspace_without_a_readme_runs_the_steps(tmp_path: Path) -> None:
    workspace = _workspace(tmp_path, None)
    collected = _pytest("--step", str(FIRST), f"--impl={workspace}", "--collect-only")
    readme = step_dirs()[FIRST] / "README.md"
    expected = {f"{shown(readme)}::{ITEM_NAME}"} if readme_examples(readme).examples else set()
    assert _collected_readmes(collected.stdout) == expected


def test_naming_test_files_leaves_the_readme_out(tmp_path: Path) -> None:
    workspace = _workspace(tmp_path, _README)
    module = next(REPO_ROOT.glob(f"tests/test_{FIRST:02d}_*.py"))
    collected = _pytest("--step", str(FIRST), f"--impl={workspace}", "--collect-only", str(module))
    assert collected.returncode == 0, collected.stdout + collected.stderr
    assert not _collected_readmes(collected.stdout)
    whole = _pytest("--step", str(FIRST), f"--impl={workspace}", "--collect-only", "tests")
    assert _collected_readmes(whole.stdout) == {f"{workspace / 'README.md'}::{ITEM_NAME}"}
