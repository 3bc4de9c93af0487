"""The drift check: clean on the tree, and it names an injected difference."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from shared.steps import REPO_ROOT, STEPS_DIR, step_dirs
from shared.tools.drift import CHANGED_HEADING, check_drift

pytestmark = pytest.mark.tooling


def _copy_steps(destination: Path) -> Path:
    steps = destination / "steps"
    shutil.copytree(STEPS_DIR, steps, ignore=shutil.ignore_patterns("__pycache__", ".*"))
    return steps


def _steps_with_get_back_func(steps: Path) -> list[int]:
    """Steps whose registry.py defines BackwardFuncLookup.get_back_func (03 onwards)."""
    return [
        number
        for number, folder in step_dirs(steps).items()
        if "def get_back_func" in _read(folder / "npgrad" / "registry.py")
    ]


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.is_file() else ""


def test_the_current_tree_has_no_drift() -> None:
    drifts, _, pairs = check_drift()
    assert pairs == len(step_dirs()) - 1
    assert not drifts, "\n".join(drift.describe() for drift in drifts)


def test_an_unlisted_change_is_named_and_a_listed_one_is_accepted(tmp_path: Path) -> None:
    steps = _copy_steps(tmp_path)
    having = _steps_with_get_back_func(steps)
    assert len(having) >= 2, "needs a method present in two neighbouring steps"
    changed = step_dirs(steps)[having[1]]
    registry = changed / "npgrad" / "registry.py"
    source = registry.read_text(encoding="utf-8")
    edited = source.replace(
        "return self._back_funcs[(forward_fn, arg_position)]",
        "return self._back_funcs[forward_fn, arg_position]",
    )
    assert edited != source
    registry.write_text(edited, encoding="utf-8")

    drifts, _, _ = check_drift(steps)
    named = {(d.after.name, d.path, d.qualname) for d in drifts}
    get_back_func = "BackwardFuncLookup.get_back_func"
    assert (changed.name, "npgrad/registry.py", get_back_func) in named
    if having[1] != having[-1]:  # the next step still has the old text: drift there too
        after = step_dirs(steps)[having[2]].name
        assert (after, "npgrad/registry.py", get_back_func) in named
    cli = subprocess.run(
        [sys.executable, "-m", "shared.tools.drift", "--steps-dir", str(steps)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert cli.returncode == 1
    assert f"{changed.name}: npgrad/registry.py: {get_back_func} differs" in cli.stdout
    assert "nox -s propagate" in cli.stdout
    assert CHANGED_HEADING in cli.stdout

    # Listing it (with a reason) in every README that compares against a different text.
    for number in having[1:3]:
        readme = step_dirs(steps)[number] / "README.md"
        text = readme.read_text(encoding="utf-8")
        if CHANGED_HEADING not in text:
            text += f"\n{CHANGED_HEADING}\n"
        text = text.replace(
            CHANGED_HEADING, f"{CHANGED_HEADING}\n- `{get_back_func}`: a tuple without parentheses."
        )
        readme.write_text(text, encoding="utf-8")
    drifts, _, _ = check_drift(steps)
    assert not drifts, [drift.describe() for drift in drifts]


def test_a_listed_name_that_did_not_change_is_a_note_only(tmp_path: Path) -> None:
    steps = _copy_steps(tmp_path)
    second = list(step_dirs(steps).values())[1]
    readme = second / "README.md"
    text = readme.read_text(encoding="utf-8")
    text = text.replace(CHANGED_HEADING, f"{CHANGED_HEADING}\n- `log_back`: not really.")
    readme.write_text(text, encoding="utf-8")
    drifts, notes, _ = check_drift(steps)
    assert not drifts
    assert [(note.step.name, note.name) for note in notes] == [(second.name, "log_back")]
