"""``nox -s diff-NN``: a summary, then the unified diff from the previous step."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from shared.steps import REPO_ROOT, previous_step_dir, step_dir, step_dirs
from shared.tools.diff import compare_folders, moved_definitions, render

pytestmark = pytest.mark.tooling

STEPS = sorted(step_dirs())


@pytest.mark.parametrize("step", STEPS[1:], ids=[f"step{step:02d}" for step in STEPS[1:]])
def test_diff_of_every_step_prints_a_summary_then_the_diff(step: int) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "shared.tools.diff", str(step)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    before, after = previous_step_dir(step), step_dir(step)
    assert before is not None
    changes = compare_folders(before, after)
    assert changes, "a step that changes nothing"
    lines = result.stdout.splitlines()
    assert lines[0] == f"steps/{before.name} -> steps/{after.name}"
    for change in changes:
        assert any(
            line.split() == [change.status, change.path, f"+{change.added}", f"-{change.removed}"]
            for line in lines[1 : len(changes) + 1]
        ), change.path
    assert "__pycache__" not in result.stdout
    assert f"+++ steps/{after.name}/" in result.stdout
    # The code first, the README last: in the summary and in the diff.
    shown = [line.split()[1] for line in lines[1 : len(changes) + 1]]
    assert shown == [change.path for change in changes]
    headers = [line for line in lines if line.startswith(("+++ ", "--- "))]
    assert headers, result.stdout[:2000]
    if "README.md" in shown:
        assert shown[-1] == "README.md", shown
        assert "README.md" in headers[-1], headers[-2:]
    python_files = [i for i, path in enumerate(shown) if path.endswith(".py")]
    assert python_files == list(range(len(python_files))), shown


def test_diff_counts_added_removed_and_changed_files_code_first_readme_last(
    tmp_path: Path,
) -> None:
    before, after = tmp_path / "01_a", tmp_path / "02_b"
    for folder in (before, after):
        (folder / "__pycache__").mkdir(parents=True)
        (folder / "__pycache__" / "x.pyc").write_bytes(bytes(range(256)))
        (folder / "same.py").write_text("x = 1\n")
    (before / "old.py").write_text("a = 1\nb = 2\n")
    (before / "edit.py").write_text("one\ntwo\nthree\n")
    (after / "edit.py").write_text("one\n2\nthree\nfour\n")
    (after / "new.py").write_text("c = 3\n")
    (before / "README.md").write_text("# Lesson\n")
    (after / "README.md").write_text("# Lesson, better\n")
    (after / "data.txt").write_text("numbers\n")
    order = [change.path for change in compare_folders(before, after)]
    assert order == ["edit.py", "new.py", "old.py", "data.txt", "README.md"]
    changes = {change.path: change for change in compare_folders(before, after)}
    assert set(changes) == {"edit.py", "new.py", "old.py", "data.txt", "README.md"}
    assert (changes["edit.py"].status, changes["edit.py"].added, changes["edit.py"].removed) == (
        "changed",
        2,
        1,
    )
    assert (changes["new.py"].status, changes["new.py"].added) == ("added", 1)
    assert changes["new.py"].diff[0].startswith("--- /dev/null")
    assert (changes["old.py"].status, changes["old.py"].removed) == ("removed", 2)


def test_the_first_step_has_no_diff() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "shared.tools.diff", str(STEPS[0])],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "first step" in result.stderr


def test_the_summary_names_definitions_that_moved_between_modules(tmp_path: Path) -> None:
    before, after = tmp_path / "01_a", tmp_path / "02_b"
    (before / "pkg").mkdir(parents=True)
    (after / "pkg" / "ops").mkdir(parents=True)
    (before / "pkg" / "ops.py").write_text(
        "def a() -> int:\n    return 1\n\n\ndef b() -> int:\n    return 2\n"
    )
    (after / "pkg" / "ops" / "parts.py").write_text(
        "def b() -> int:\n    return 20\n\n\ndef a() -> int:\n    return 1\n"
    )
    moves = moved_definitions(before, after)
    lines = list(render(before, after, compare_folders(before, after), moves))
    moved = "  moved    2 definition(s) pkg/ops.py -> pkg/ops/parts.py: 1 unchanged; changed: b\n"
    assert lines[3].startswith("2 file(s): 1 added, 1 removed")
    assert lines[4:6] == [moved, "\n"]
