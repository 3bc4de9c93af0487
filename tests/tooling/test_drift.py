"""The drift check: clean on the tree, and it names an injected difference."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from shared.steps import REPO_ROOT, STEPS_DIR, step_dirs
from shared.tools.drift import CHANGED_HEADING, check_drift
from shared.tools.source import find_moves

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


# --- moved definitions, on small made-up steps -----------------------------------------

_BEFORE = {
    "npgrad/core.py": """
class Box:
    def size(self) -> int:
        return 1


def same(x: int) -> int:
    return x + 1


def edited(x: int) -> int:
    return x + 2
""",
    "npgrad/left.py": "def twice(x: int) -> int:\n    return 2 * x\n",
    "npgrad/right.py": "def twice(x: int) -> int:\n    return 2 * x\n",
}

# core.py is gone: Box and same moved unchanged, edited changed on the way; twice
# left two modules, so where it came from is not guessed.
_AFTER = {
    "npgrad/ops/parts.py": """
class Box:
    def size(self) -> int:
        return 10


def same(x: int) -> int:
    return x + 1


def edited(x: int) -> int:
    return x + 20


def twice(x: int) -> int:
    return x + x
""",
}


def _made_up_steps(root: Path, readme: str = "") -> Path:
    steps = root / "steps"
    for name, modules in (("01_first", _BEFORE), ("02_second", _AFTER)):
        for path, source in modules.items():
            (steps / name / path).parent.mkdir(parents=True, exist_ok=True)
            (steps / name / path).write_text(source.lstrip(), encoding="utf-8")
    (steps / "02_second" / "README.md").write_text(readme, encoding="utf-8")
    return steps


def test_a_moved_definition_is_compared_with_its_old_text(tmp_path: Path) -> None:
    steps = _made_up_steps(tmp_path)
    drifts, notes, _ = check_drift(steps)
    found = [(d.path, d.qualname, d.moved_from) for d in drifts]
    assert found == [
        ("npgrad/ops/parts.py", "Box.size", "npgrad/core.py"),
        ("npgrad/ops/parts.py", "edited", "npgrad/core.py"),
    ]
    assert not notes
    first_line = drifts[1].describe().splitlines()[0]
    assert first_line == (
        "02_second: npgrad/ops/parts.py: edited (moved from npgrad/core.py) differs from 01_first"
    )
    # Listed by name, or with its old or its new module in front: accepted. A
    # moved definition listed but unchanged is a note, like any other.
    readme = (
        f"# Step 02\n\n{CHANGED_HEADING}\n- `core.Box.size`: ten.\n"
        "- `ops.parts.edited`: adds twenty.\n- `same`: not really.\n"
    )
    steps = _made_up_steps(tmp_path / "listed", readme)
    drifts, notes, _ = check_drift(steps)
    assert not drifts, [drift.describe() for drift in drifts]
    assert [note.name for note in notes] == ["same"]


def test_only_an_unambiguous_move_is_a_move() -> None:
    before = {"a.py": ["moved", "copied", "both"], "b.py": ["both", "split"], "c.py": ["kept"]}
    after = {
        "a.py": ["copied"],
        "n.py": ["moved", "copied", "both", "split", "kept"],
        "m.py": ["split"],
        "c.py": ["kept"],
    }
    # copied stays in a.py (a copy), both left two modules, split lands in two,
    # kept never left c.py: only moved is a move.
    assert find_moves(before, after) == {("n.py", "moved"): "a.py"}
