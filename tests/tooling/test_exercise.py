"""The exercise workspace of every step: stubs that fail the right way, and a clean round trip."""

from __future__ import annotations

import filecmp
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from shared.steps import REPO_ROOT, step_dirs
from shared.tools.exercise import resolve_names, restore, write_workspace
from shared.tools.roundtrip import check_coverage, run_tests
from shared.tools.source import step_files

pytestmark = pytest.mark.tooling

STEPS = sorted(step_dirs())


@pytest.mark.parametrize("step", STEPS, ids=[f"step{step:02d}" for step in STEPS])
def test_exercise_round_trip(step: int, tmp_path: Path) -> None:
    """Stubs fail only with their own NotImplementedError, each is reached, restoring passes."""
    workspace = tmp_path / "workspace"
    # Writes the workspace, then finds which test reaches each stub. One stub can
    # hide another, so they are peeled off a layer at a time: the stubs each run
    # names are restored, and the tests run again.
    coverage = check_coverage(step, workspace)
    plan = coverage.plan
    assert plan.exercises, f"step {step:02d} has nothing to implement"
    # The learner's first run: only this step's tests, and they fail.
    first = coverage.first
    assert first is not None
    assert first.returncode == 1, first.output[-3000:]
    assert first.failures
    assert all(f"test_{step:02d}_" in test for test in first.tests), first.tests
    # Every failure of every run is a stub's NotImplementedError: no ImportError,
    # TypeError or collection error.
    assert not coverage.unexpected, coverage.unexpected
    # Each stubbed function fails at least one test.
    assert not coverage.unreached, f"no test reaches {coverage.unreached}"

    restore(workspace, step, plan=plan)
    solution = step_dirs()[step] / "npgrad"
    for path in step_files(solution):
        assert filecmp.cmp(solution / path, workspace / "npgrad" / path, shallow=False), path
    # Byte for byte the step itself (checked thoroughly by `nox -s test-NN`); a quick run.
    final = run_tests(step, workspace, extra=["-x"])
    assert final.returncode == 0, final.output[-3000:]
    assert not final.failures


@pytest.fixture(scope="module")
def mypy_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One mypy cache for every workspace: NumPy's stubs are analysed once."""
    return tmp_path_factory.mktemp("mypy_cache")


@pytest.mark.parametrize("step", STEPS, ids=[f"step{step:02d}" for step in STEPS])
def test_workspace_passes_mypy_strict(step: int, tmp_path: Path, mypy_cache: Path) -> None:
    write_workspace(step, tmp_path)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--config-file",
            str(REPO_ROOT / "mypy.ini"),
            "--cache-dir",
            str(mypy_cache),
            str(tmp_path / "npgrad"),
        ],
        env={**os.environ, "MYPYPATH": str(tmp_path)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _run_exercise(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shared.tools.exercise", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )


def test_exercise_refuses_a_non_empty_directory_without_force(tmp_path: Path) -> None:
    step = f"{STEPS[-1]:02d}"
    (tmp_path / "notes.txt").write_text("mine\n", encoding="utf-8")
    refused = _run_exercise(step, str(tmp_path))
    assert refused.returncode == 2
    assert "not empty" in refused.stderr
    assert "--force" in refused.stderr
    assert not (tmp_path / "npgrad").exists()
    forced = _run_exercise(step, str(tmp_path), "--force")
    assert forced.returncode == 0, forced.stderr
    assert (tmp_path / "npgrad" / "__init__.py").is_file()
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "mine\n"
    readme = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert f"nox -s test-{step} -- --impl {tmp_path}" in readme
    assert "--new-only" in readme
    assert f"nox -s test-{step} -- --impl {tmp_path} --exercise 1" in readme
    assert f"nox -s exercise-{step} -- {tmp_path} --restore NAME" in readme


def test_step_05_gives_its_private_helpers_and_follows_the_lessons_order(tmp_path: Path) -> None:
    plan = write_workspace(5, tmp_path)
    exercises = [(exercise.lesson, exercise.qualname) for exercise in plan.exercises]
    assert exercises == [
        (1, "topological_sort"),
        (2, "sorted_computational_graph"),
        (3, "backprop"),
        (3, "Tensor.backward"),
    ]
    given = {item.qualname: item.reason for item in plan.given}
    for helper in ("_short_repr", "_parents", "_initial_grad"):
        assert "private helper" in given[helper]
    source = (tmp_path / "npgrad" / "autograd.py").read_text(encoding="utf-8")
    assert "implement _parents" not in source
    assert "implement topological_sort" in source
    readme = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert readme.index("`topological_sort`") < readme.index("`Tensor.backward`")
    assert "- `_parents` (`npgrad/autograd.py`): given: a private helper" in readme


def test_restore_takes_a_short_name_and_lists_the_valid_ones_otherwise(tmp_path: Path) -> None:
    assert _run_exercise("05", str(tmp_path)).returncode == 0
    tensor_py = tmp_path / "npgrad" / "tensor.py"
    assert "implement Tensor.backward" in tensor_py.read_text(encoding="utf-8")
    restored = _run_exercise("05", str(tmp_path), "--restore", "backward")
    assert restored.returncode == 0, restored.stderr
    assert "Tensor.backward" in restored.stdout
    assert "implement Tensor.backward" not in tensor_py.read_text(encoding="utf-8")
    autograd = (tmp_path / "npgrad" / "autograd.py").read_text(encoding="utf-8")
    assert "implement backprop" in autograd  # only the one named
    for wrong, says in (("nothing_like_it", "is not an exercise"), ("back", "is ambiguous")):
        refused = _run_exercise("05", str(tmp_path), "--restore", wrong)
        assert refused.returncode == 2
        assert refused.stderr.count("\n") == 1, refused.stderr
        assert says in refused.stderr
        assert "backprop" in refused.stderr
        assert "Tensor.backward" in refused.stderr


# --- the stubbing rules, on a small package made for them -------------------------------

_BEFORE = """
def kept(x: int) -> int:
    return x + 1
"""

_AFTER = '''
from collections.abc import Callable
from typing import Protocol, overload


def kept(x: int) -> int:
    return x + 1


class Getter(Protocol):
    def __call__(self, key: str, /) -> int: ...


class Box:
    """A box."""

    def __init__(self, size: int, label: str) -> None:
        self.size = size
        self.items: list[int] = []
        self.label = label.upper()

    def describe(self) -> str:
        return f"{self.label}: {len(self.items)} of {self.size}"

    @overload
    def get(self) -> list[int]: ...
    @overload
    def get(self, index: int) -> int: ...
    def get(self, index: int | None = None) -> list[int] | int:
        """The items, or one of them."""
        return self.items if index is None else self.items[index]


class Registry:
    def __init__(self) -> None:
        self.entries: dict[str, int] = {}

    def add(self, name: str, value: int) -> None:
        self.entries[name] = value

    def clip(self, limit: int) -> None:
        self.entries = {name: min(value, limit) for name, value in self.entries.items()}


def clip(x: int, limit: int) -> int:
    """``x``, at most ``limit``."""
    return min(x, limit)


def make_adder(amount: int) -> Callable[[int], int]:
    """Return a function that adds ``amount``."""

    def add(x: int) -> int:
        return x + amount

    return add


def _helper(x: int) -> int:
    return x * 2


def _named_helper(x: int) -> int:
    return _helper(x) + 1


def unnamed(x: int) -> int:
    """New code the lesson's table does not name."""
    return x - 1


REGISTRY = Registry()
REGISTRY.add("one", 1)
add_two = make_adder(2)
'''

# The lesson: its table orders the exercises and names one private helper.
_README = """# Step 02: second

## Exercises
| # | Implement | Checked by |
|---|---|---|
| 1 | `make_adder` (in `npgrad/core.py`) | `test_adder` |
| 2 | `Box`, `_named_helper` | `tests/test_02_box.py`: `test_box[small-*]` |
| 3 | `clip` | `test_clip` |

## Hints
### Exercise 1: a closure
<details><summary>Hint 1</summary>

```python
## not a heading: inside a code block
```

</details>

## Changed from the previous step
- everything
"""


def _make_steps(root: Path) -> Path:
    steps = root / "steps"
    for name, source in (("01_first", _BEFORE), ("02_second", _AFTER)):
        package = steps / name / "npgrad"
        package.mkdir(parents=True)
        (package / "__init__.py").write_text("from npgrad.core import *  # noqa: F403\n")
        (package / "core.py").write_text(textwrap.dedent(source).lstrip(), encoding="utf-8")
    (steps / "02_second" / "README.md").write_text(_README, encoding="utf-8")
    return steps


def test_stubbing_rules_on_a_made_up_step(tmp_path: Path) -> None:
    steps = _make_steps(tmp_path)
    workspace = tmp_path / "workspace"
    plan = write_workspace(2, workspace, steps_dir=steps)
    # In the lesson's order, with the lesson's numbers; a private helper the
    # table names is an exercise, one it does not name is given, and so is
    # public new code the table does not name.
    names = [(exercise.lesson, exercise.qualname) for exercise in plan.exercises]
    assert names == [
        (1, "make_adder.<locals>.add"),
        (2, "Box.__init__"),
        (2, "Box.describe"),
        (2, "Box.get"),
        (2, "_named_helper"),
        (3, "clip"),  # the function; not Registry.clip, which no row names in full
    ]
    assert [item.qualname for item in plan.given] == [
        "Registry.__init__",
        "Registry.add",
        "Registry.clip",
        "_helper",
        "unnamed",
    ]
    assert plan.summary == "6 exercises (functions to write) in 3 lesson rows"
    source = (workspace / "npgrad" / "core.py").read_text(encoding="utf-8")
    assert "def kept(x: int) -> int:\n    return x + 1" in source  # unchanged: no exercise
    assert "def __call__(self, key: str, /) -> int: ..." in source  # Protocol stub kept
    assert "def get(self) -> list[int]: ..." in source  # overload kept
    # The docstring stays first; the stub names the step, the function and the file.
    assert (
        '"""The items, or one of them."""\n        raise NotImplementedError('
        '"step 02: implement Box.get (npgrad/core.py)")'
    ) in source
    # The closure factory runs at import: its returned function is the exercise.
    assert "    return add\n" in source
    assert 'raise NotImplementedError("step 02: implement make_adder.<locals>.add' in source
    # Attributes only the stubbed __init__ assigned stay declared for mypy.
    assert "self.size: int\n        self.items: list[int]\n        raise" in source
    assert "self.label" not in source.split("def describe")[0]  # its type is unknown: left out
    readme = (workspace / "README.md").read_text(encoding="utf-8")
    assert "`Registry.add` (`npgrad/core.py`): given: runs while the package imports" in readme
    assert "| 2 | `Box.get` | `npgrad/core.py` | The items, or one of them. |" in readme
    assert "`_helper` (`npgrad/core.py`): given: a private helper" in readme
    assert "`unnamed` (`npgrad/core.py`): given: not one of the lesson's exercises." in readme
    assert 'def unnamed(x: int) -> int:\n    """New code' in source
    assert "implement unnamed" not in source
    assert "\n6 exercises (functions to write) in 3 lesson rows.\n" in readme
    assert f"--impl {workspace} --exercise 2   # Box, _named_helper" in readme
    # The lesson's hints, repeated whole (a "## " line in a code block is no heading).
    assert "## Hints (from the lesson)\n\n### Exercise 1: a closure\n" in readme
    assert "## not a heading: inside a code block\n```\n\n</details>\n" in readme
    assert "Changed from the previous step" not in readme
    # --restore names: in full, by the last part, by a unique prefix, by the lesson's number.
    assert resolve_names(plan, ["Box.get", "describe", "make_"]) == [
        "Box.get",
        "Box.describe",
        "make_adder.<locals>.add",
    ]
    assert resolve_names(plan, ["make_adder"]) == ["make_adder.<locals>.add"]
    assert resolve_names(plan, ["1"]) == ["make_adder.<locals>.add"]
    assert len(resolve_names(plan, ["2"])) == 4
    with pytest.raises(LookupError, match=r"'Box\.' is ambiguous.*Box\.__init__, Box\.describe"):
        resolve_names(plan, ["Box."])
    with pytest.raises(LookupError, match=r"'kept' is not an exercise.*choose one of: make_adder"):
        resolve_names(plan, ["kept"])
    with pytest.raises(LookupError, match="exercise 4 has no stub"):
        resolve_names(plan, ["4"])
    restore(workspace, 2, steps_dir=steps)
    assert (workspace / "npgrad" / "core.py").read_bytes() == (
        steps / "02_second" / "npgrad" / "core.py"
    ).read_bytes()


# --- moved functions, and a step without an Exercises table ----------------------------

_MOVED_BEFORE = {
    "core.py": """
def same(x: int) -> int:
    return x + 1


def edited(x: int) -> int:
    return x + 2


def copied(x: int) -> int:
    return x + 3
""",
    "gone.py": "def vanished(x: int) -> int:\n    return x - 1\n",
    "left.py": "def twice(x: int) -> int:\n    return 2 * x\n",
    "right.py": "def twice(x: int) -> int:\n    return 2 * x\n",
}

_MOVED_AFTER = {
    # same and edited leave core.py, copied stays there and is copied into parts.py
    # too; gone.py, left.py and right.py are gone.
    "core.py": "def copied(x: int) -> int:\n    return x + 3\n",
    "parts.py": """
def same(x: int) -> int:
    return x + 1


def edited(x: int) -> int:
    return x + 20


def copied(x: int) -> int:
    return x + 3


def twice(x: int) -> int:
    return 2 * x


def vanished(x: int) -> int:
    return x - 1
""",
}


def _write_step(folder: Path, modules: dict[str, str]) -> None:
    package = folder / "npgrad"
    package.mkdir(parents=True)
    imports = "".join(f"from npgrad.{name[:-3]} import *  # noqa: F403\n" for name in modules)
    (package / "__init__.py").write_text(imports, encoding="utf-8")
    for name, source in modules.items():
        (package / name).write_text(textwrap.dedent(source).lstrip(), encoding="utf-8")


def test_a_function_moved_unchanged_is_given_and_a_moved_changed_one_is_an_exercise(
    tmp_path: Path,
) -> None:
    steps = tmp_path / "steps"
    _write_step(steps / "01_first", _MOVED_BEFORE)
    _write_step(steps / "02_second", _MOVED_AFTER)  # no README: no Exercises table
    workspace = tmp_path / "workspace"
    plan = write_workspace(2, workspace, steps_dir=steps)
    # edited moved and changed; copied still lives in its old module (a copy, not a
    # move); twice left two modules (ambiguous): all three are new code. same and
    # vanished (whose module is gone) moved unchanged: given.
    assert sorted((e.path, e.qualname, e.lesson) for e in plan.exercises) == [
        ("npgrad/parts.py", "copied", None),
        ("npgrad/parts.py", "edited", None),
        ("npgrad/parts.py", "twice", None),
    ]
    assert [(g.path, g.qualname, g.reason) for g in plan.given] == [
        ("npgrad/parts.py", "same", "moved from npgrad/core.py, unchanged"),
        ("npgrad/parts.py", "vanished", "moved from npgrad/gone.py, unchanged"),
    ]
    source = (workspace / "npgrad" / "parts.py").read_text(encoding="utf-8")
    assert "def same(x: int) -> int:\n    return x + 1\n" in source
    assert "implement edited (npgrad/parts.py)" in source
    core = (workspace / "npgrad" / "core.py").read_text(encoding="utf-8")
    assert "implement" not in core  # unchanged in its own module
    readme = (workspace / "README.md").read_text(encoding="utf-8")
    assert "- `same` (`npgrad/parts.py`): given: moved from npgrad/core.py, unchanged." in readme
    summary = (
        "3 exercises (functions to write) in 0 lesson rows (the README has no Exercises table)"
    )
    assert plan.summary == summary
    assert f"\n{summary}.\n" in readme
    assert "The lesson has no Exercises table: every new or changed function is here." in readme


def test_count_prints_every_steps_exercises_and_writes_nothing(tmp_path: Path) -> None:
    steps = _make_steps(tmp_path)
    before = sorted(path for path in tmp_path.rglob("*") if "__pycache__" not in path.parts)
    counted = _run_exercise("--count", "--steps-dir", str(steps))
    assert counted.returncode == 0, counted.stderr
    lines = counted.stdout.splitlines()
    assert lines[0].startswith("| Step | Exercises | Lesson rows with stubs | Rows in the table |")
    # Step 01 has no previous step: its one function is new; no README, no table.
    assert lines[2:] == ["| 01_first | 1 | 0 | 0 | 0 |", "| 02_second | 6 | 3 | 3 | 5 |"]
    after = sorted(path for path in tmp_path.rglob("*") if "__pycache__" not in path.parts)
    assert after == before
    one = _run_exercise("02", "--count", "--steps-dir", str(steps))
    assert one.stdout.splitlines()[2:] == ["| 02_second | 6 | 3 | 3 | 5 |"]
    written = _run_exercise("02", str(tmp_path / "workspace"), "--steps-dir", str(steps))
    assert written.returncode == 0, written.stderr
    assert "\n6 exercises (functions to write) in 3 lesson rows\n" in written.stdout
    missing = _run_exercise("--steps-dir", str(steps))
    assert missing.returncode == 2
    assert "give the step number and the workspace directory (or --count)" in missing.stderr
