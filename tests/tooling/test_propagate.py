"""``nox -s propagate -- NN``: a fix in one step reaches every later step, or none."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.steps import REPO_ROOT, STEPS_DIR, step_dirs
from shared.tools.drift import check_drift
from shared.tools.source import step_files

pytestmark = pytest.mark.tooling

SOURCE_STEP = 3
FILE = "npgrad/grad_mode.py"  # a line no later lesson changes


def _git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Path]:
    """A throwaway git repository holding a copy of the steps, all committed.

    Every test here works on such a copy: afterwards, the repository's own
    ``steps/`` must be byte for byte what it was before the test.
    """
    untouched = _snapshot(STEPS_DIR)
    shutil.copytree(STEPS_DIR, tmp_path / "steps", ignore=shutil.ignore_patterns("__pycache__"))
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-q", "-m", "steps")
    yield tmp_path
    after = _snapshot(STEPS_DIR)
    changed = sorted(
        path for path in after.keys() | untouched.keys() if after.get(path) != untouched.get(path)
    )
    assert not changed, f"the test changed the repository's own {STEPS_DIR}: {changed}"


def _propagate(repo: Path, step: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shared.tools.propagate", str(step), "--repo", str(repo)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def _snapshot(steps: Path) -> dict[str, bytes]:
    """Every file under ``steps`` and its bytes, caches (``__pycache__`` and such) left out."""
    return {path: (steps / path).read_bytes() for path in step_files(steps)}


def test_a_one_line_fix_reaches_every_later_step(repo: Path) -> None:
    steps = step_dirs(repo / "steps")
    target = steps[SOURCE_STEP] / FILE
    old = "on or off for every later operation"
    new = "on or off for all later operations"
    target.write_text(target.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")
    assert check_drift(repo / "steps")[0], "the unpropagated fix is drift"

    result = _propagate(repo, SOURCE_STEP)

    assert result.returncode == 0, result.stderr
    later = [folder for number, folder in steps.items() if number > SOURCE_STEP]
    assert later
    for folder in later:
        text = (folder / FILE).read_text(encoding="utf-8")
        assert new in text, folder.name
        assert old not in text, folder.name
        assert folder.name in result.stdout
    for number, folder in steps.items():
        if number < SOURCE_STEP:
            assert not _git(repo, "status", "--porcelain", "--", str(folder))
    drifts, _, _ = check_drift(repo / "steps")
    assert not drifts, [drift.describe() for drift in drifts]


def test_a_change_that_cannot_apply_leaves_every_step_untouched(repo: Path) -> None:
    steps = step_dirs(repo / "steps")
    ops = steps[SOURCE_STEP] / "npgrad" / "ops.py"
    text = ops.read_text(encoding="utf-8")
    # log_forward exists only at step 03: step 04 replaced it with wrap_forward_fn.
    line = '    """Elementwise natural log, recording a recipe when the result needs a gradient."""'
    assert line in text
    ops.write_text(text.replace(line, line.replace("natural log", "natural logarithm")))
    before = _snapshot(repo / "steps")

    result = _propagate(repo, SOURCE_STEP)

    assert result.returncode == 1
    assert _snapshot(repo / "steps") == before
    next_step = steps[min(number for number in steps if number > SOURCE_STEP)].name
    assert f"steps/{next_step}: npgrad/ops.py, lines " in result.stderr
    assert "nothing was applied" in result.stderr


def test_nothing_to_propagate_is_an_error(repo: Path) -> None:
    result = _propagate(repo, SOURCE_STEP)
    assert result.returncode == 1
    assert "no uncommitted change" in result.stderr
