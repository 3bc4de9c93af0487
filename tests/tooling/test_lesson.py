"""The lesson's Exercises table: parsed, chosen from, and run with ``--exercise``."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from shared.steps import REPO_ROOT, step_dir, step_dirs
from shared.tools.lesson import (
    TestRef,
    choose_exercise,
    lesson_exercises,
    missing_tests,
    parse_exercises,
    parse_hints,
    select_tests,
    table_place,
)

pytestmark = pytest.mark.tooling

STEPS = sorted(step_dirs())

# A row too long for one line of code.
_ROW_2 = (
    "| 2 | `add`, `add_back0/1`, `relu(x, inplace=True)` "
    "| `tests/test_07_o.py`: `test_c[pool-*]`; `tests/test_07_nn.py`: `test_d` | |"
)
_README = """# Step 07: made up

## Exercises
Some prose first, and a table that is not the exercises':

| Option | Meaning |
|---|---|
| `--x` | nothing |

| # | Implement | Checked by (`tests/test_07_nn.py`) | Cases |
|---|---|---|---|
| 1 | `Module.state_dict`, `load_state_dict` (in `npgrad/nn.py`) | `test_a`, `test_b` | `x` |
ROW_2
| 3 | `add_`, `Tensor.add_`, `--model resnet` | `test_e` \\| not a cell | |

Run them.

## Hints
### Exercise 1: saving
<details><summary>Hint 1</summary>

Copy the arrays.

</details>

## Decisions
- none
""".replace("ROW_2", _ROW_2)


def test_the_table_gives_names_tests_and_their_modules() -> None:
    exercises = parse_exercises(_README)
    assert [exercise.number for exercise in exercises] == [1, 2, 3]
    first, second, third = exercises
    assert first.names == ("Module.state_dict", "load_state_dict")  # the file is no name
    assert first.tests == (
        TestRef("test_a", "tests/test_07_nn.py"),
        TestRef("test_b", "tests/test_07_nn.py"),
    )
    assert second.names == ("add", "add_back0", "add_back1", "relu")
    assert second.tests == (
        TestRef("test_c", "tests/test_07_o.py", "pool-*"),
        TestRef("test_d", "tests/test_07_nn.py"),
    )
    assert third.names == ("add_", "Tensor.add_")
    hints = parse_hints(_README)
    assert hints is not None
    assert hints.startswith("### Exercise 1: saving\n<details>")
    assert hints.endswith("</details>")
    assert parse_exercises("# Step 01\n\nNo exercises.\n") == []
    assert parse_hints("# Step 01\n") is None


def test_an_exercise_is_chosen_by_number_name_last_part_or_prefix() -> None:
    exercises = parse_exercises(_README)
    assert choose_exercise(exercises, "2", 7).number == 2
    assert choose_exercise(exercises, "state_dict", 7).number == 1  # the last part
    assert choose_exercise(exercises, "Module.state_dict", 7).number == 1
    assert choose_exercise(exercises, "load", 7).number == 1  # a unique prefix
    assert choose_exercise(exercises, "add", 7).number == 2  # exact beats the prefix of add_
    assert choose_exercise(exercises, "add_", 7).number == 3
    assert choose_exercise(exercises, "add_back", 7).number == 2  # two names, one row
    with pytest.raises(LookupError, match=r"'ad' is ambiguous.*2 \(add, add_back0.*3 \(add_"):
        choose_exercise(exercises, "ad", 7)
    with pytest.raises(LookupError, match=r"no exercise 'zip'; choose a number 1-3 or one of: "):
        choose_exercise(exercises, "zip", 7)
    with pytest.raises(LookupError, match="step 07 has no exercise 4; choose a number 1-3"):
        choose_exercise(exercises, "4", 7)


def test_tests_are_selected_by_module_name_and_id_and_missing_ones_are_named() -> None:
    exercises = parse_exercises(_README)
    collected = [
        ("tests/test_07_nn.py", "test_a", None),
        ("tests/test_07_o.py", "test_c", "x(1, 2)-pool"),
        ("tests/test_07_o.py", "test_c", "x(1, 2)-avg_pool"),
        ("tests/test_07_nn.py", "test_d", None),
        ("tests/test_06_ops.py", "test_e", None),  # an earlier step's test of that name
        ("tests/test_07_nn.py", "test_e", None),
    ]
    assert select_tests(7, [exercises[1]], collected) == [False, True, False, True, False, False]
    assert select_tests(7, [exercises[2]], collected) == [False] * 5 + [True]
    assert missing_tests(7, exercises, collected) == ["exercise 1: tests/test_07_nn.py::test_b"]


def test_the_table_names_a_function_in_full_by_its_last_part_or_by_what_contains_it() -> None:
    """What the workspace stubs: the functions a row names; None for the rest."""
    exercises = parse_exercises(_README)
    assert table_place("Module.state_dict", exercises) == (0, 0)  # in full
    assert table_place("load_state_dict", exercises) == (0, 1)
    assert table_place("Module.load_state_dict", exercises) == (0, 1)  # by its last part
    assert table_place("add_back1", exercises) == (1, 2)
    assert table_place("relu.<locals>.inner", exercises) == (1, 3)  # returned by relu
    assert table_place("Tensor.add_", exercises) == (2, 1)  # in full beats add_ alone
    assert table_place("Module.add_", exercises) == (2, 0)
    # Not named: neither a prefix of a name nor a name the table only contains.
    for qualname in ("Module.__init__", "state", "add_back2", "Tensor.relu_", "Module"):
        assert table_place(qualname, exercises) is None, qualname
    assert table_place("add", []) is None


def _pytest(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:randomly", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


_COLLECTED = re.compile(r"^(tests/\S+\.py)::(\w+)(?:\[(.*)\])?$", re.MULTILINE)


@pytest.mark.parametrize("step", STEPS, ids=[f"step{step:02d}" for step in STEPS])
def test_every_test_the_exercises_table_names_exists(step: int) -> None:
    """README and tests cannot drift: ``--exercise`` checks every test the table names."""
    exercises = lesson_exercises(step)
    assert exercises, f"{step_dir(step).name}/README.md has no Exercises table"
    for exercise in exercises:
        assert exercise.tests, f"exercise {exercise.number} names no test"
    numbers = [arg for exercise in exercises for arg in ("--exercise", str(exercise.number))]
    result = _pytest("--step", str(step), "--collect-only", "-q", *numbers)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    collected = [(m.group(1), m.group(2), m.group(3)) for m in _COLLECTED.finditer(result.stdout)]
    # Each row's tests are collected, and nothing else is.
    for exercise in exercises:
        for ref in exercise.tests:
            assert any(ref.matches(step, test) for test in collected), ref
    assert all(select_tests(step, exercises, collected))


def test_exercise_runs_exactly_the_tests_of_one_row() -> None:
    """At step 05, ``--exercise backward`` is exercise 3: its tests and no other."""
    (exercise,) = [e for e in lesson_exercises(5) if "Tensor.backward" in e.names]
    result = _pytest("--step", "5", "--collect-only", "-q", "--exercise", "backward")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    names = {m.group(2) for m in _COLLECTED.finditer(result.stdout)}
    assert names == {ref.name for ref in exercise.tests}


def test_an_unknown_exercise_is_one_line_listing_the_valid_ones() -> None:
    result = _pytest("--step", "5", "-q", "--exercise", "nothing_like_it")
    assert result.returncode == 4
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "step 05 has no exercise 'nothing_like_it'" in lines[0]
    assert "topological_sort" in lines[0]
    assert "Tensor.backward" in lines[0]


@pytest.mark.parametrize(
    ("broken", "line", "says"),
    [
        ("autograd.py", "def broken(:\n", "SyntaxError: invalid syntax"),
        ("tensor.py", "from npgrad.nowhere import thing\n", "ModuleNotFoundError"),
        ("ops.py", "raise ValueError('a learner wrote this')\n", "ValueError: a learner wrote"),
    ],
    ids=["syntax", "import", "runtime"],
)
def test_a_workspace_that_does_not_import_is_one_line_naming_file_and_line(
    tmp_path: Path, broken: str, line: str, says: str
) -> None:
    shutil.copytree(step_dir(5) / "npgrad", tmp_path / "npgrad")
    path = tmp_path / "npgrad" / broken
    number = len(path.read_text(encoding="utf-8").splitlines()) + 1
    with path.open("a", encoding="utf-8") as handle:
        handle.write(line)
    for quiet in ([], ["-q"]):
        result = _pytest("--step", "5", f"--impl={tmp_path}", *quiet)
        assert result.returncode == 4
        output = result.stdout + result.stderr
        assert "INTERNALERROR" not in output
        lines = [text for text in output.splitlines() if text.strip()]
        assert len(lines) == 1, output
        assert f"{path}:{number}: {says}" in lines[0]
