"""What a step README asks of the learner: its Exercises table and its Hints.

The table (``## Exercises``) has a ``#`` column, an ``Implement`` column with
the backticked names of the functions and methods to write, and a ``Checked
by`` column with the backticked names of the tests that check them, each
optionally preceded by its module in backticks (``tests/test_07_nn.py``); a
module named in the column header applies to every row. A test name may carry
a parametrization pattern: ``test_pooling[max_pool2d-*]`` means the cases of
``test_pooling`` whose id matches ``max_pool2d-*`` as a glob or, taken as parts
separated by ``-``, has a part matching each of its parts other than ``*``. Other text in the cells
(prose, file names, options) is not a name and is skipped.

``pytest --step NN --exercise NAME`` (``shared.testing.plugin``) runs the tests
of one row. The table also decides what the exercise workspace
(``shared.tools.exercise``) stubs: of the functions new or changed in the step,
only those a row names (``table_place``: in full, by the last part, or through
the class or function that contains them) become exercises, in the table's
order; the workspace repeats the ``## Hints`` section. Stdlib only.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from shared.steps import STEPS_DIR, step_dir

_BACKTICKED = re.compile(r"`([^`]+)`")
_CELL_SEPARATOR = re.compile(r"(?<!\\)\|")
_NAME = re.compile(r"[A-Za-z_][\w.]*")
# ``add_back0/1`` or ``conv2d_back0/1/2``: one name per digit.
_NUMBERED = re.compile(r"^([A-Za-z_][\w.]*?)(\d)((?:/\d)+)$")
_TEST = re.compile(r"^(test_\w+)(?:\[(.+)\])?$")
_MODULE = re.compile(r"^[\w./-]+\.py$")
_FENCE = re.compile(r"^\s*(```|~~~)")


# A collected test: its module relative to the repository root, its function's
# name and its parametrization id (None for a test that is not parametrized).
CollectedTest = tuple[str, str, str | None]


def is_step_module(module: str, step: int) -> bool:
    """Whether ``module`` is one of the test modules step ``step`` introduces."""
    return fnmatch.fnmatchcase(module, f"tests/test_{step:02d}_*.py")


@dataclass(frozen=True)
class TestRef:
    """One test a row names: its function, its module if given, a pattern on its ids."""

    __test__ = False  # not a pytest test class, whatever its name

    name: str
    module: str | None = None  # relative to the repository root: "tests/test_07_nn.py"
    ids: str | None = None  # an fnmatch pattern on the parametrization id

    def __str__(self) -> str:
        text = self.name if self.ids is None else f"{self.name}[{self.ids}]"
        return text if self.module is None else f"{self.module}::{text}"

    def matches(self, step: int, test: CollectedTest) -> bool:
        """Whether a collected test is this one; without a module, in step ``step``'s modules."""
        module, function, param_id = test
        if function != self.name:
            return False
        if module != self.module and (self.module is not None or not is_step_module(module, step)):
            return False
        if self.ids is None:
            return True
        if param_id is None:
            return False
        if fnmatch.fnmatchcase(param_id, self.ids):
            return True
        # `[max_pool2d-*]` also means "the cases with max_pool2d", wherever it is in the id.
        parts = set(param_id.split("-"))
        wanted = [part for part in self.ids.split("-") if part != "*"]
        return bool(wanted) and all(
            any(fnmatch.fnmatchcase(part, pattern) for part in parts) for pattern in wanted
        )


@dataclass(frozen=True)
class LessonExercise:
    """One row of a step README's Exercises table."""

    number: int
    implement: str  # the cell as written, for messages and the workspace README
    names: tuple[str, ...]  # functions and methods, as written: "backprop", "Tensor.backward"
    tests: tuple[TestRef, ...]


def short_name(name: str) -> str:
    """The last part of a dotted name: ``backward`` for ``Tensor.backward``."""
    return name.rpartition(".")[2]


def sections(text: str) -> dict[str, str]:
    """The README's ``## `` sections by title, each body without its heading.

    Lines inside fenced code blocks are never headings.
    """
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    fenced = False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        if not fenced and line.startswith("## "):
            current = found.setdefault(line[3:].strip(), [])
            continue
        if current is not None:
            current.append(line)
    return {title: "\n".join(lines).strip("\n") for title, lines in found.items()}


def _cells(line: str) -> list[str]:
    inner = line.strip()
    inner = inner[1:] if inner.startswith("|") else inner
    inner = inner[:-1] if inner.endswith("|") and not inner.endswith("\\|") else inner
    return [cell.strip() for cell in _CELL_SEPARATOR.split(inner)]


def _names(cell: str) -> list[str]:
    names: list[str] = []
    for token in _BACKTICKED.findall(cell):
        token = token.strip()
        numbered = _NUMBERED.match(token)
        if numbered:
            stem, first, rest = numbered.groups()
            names += [stem + digit for digit in (first, *rest.split("/")[1:])]
            continue
        match = _NAME.match(token)
        # A name alone or a call written out (`relu(x, inplace=True)`); not a file.
        rest = token[match.end() :] if match else ""
        if match and (not rest or rest.startswith("(")) and not token.endswith(".py"):
            names.append(match.group())
    return list(dict.fromkeys(names))


def _tests(cell: str, module: str | None) -> list[TestRef]:
    tests: list[TestRef] = []
    for token in _BACKTICKED.findall(cell):
        token = token.strip()
        if _MODULE.match(token):
            module = token
            continue
        match = _TEST.match(token)
        if match:
            tests.append(TestRef(match.group(1), module, match.group(2)))
    return list(dict.fromkeys(tests))


def parse_exercises(text: str) -> list[LessonExercise]:
    """The rows of the README's Exercises table, in order; [] when it has none.

    The table is the first in the ``## Exercises`` section whose header starts
    with ``#`` and has an ``Implement`` and a ``Checked by`` column.
    """
    body = sections(text).get("Exercises")
    if body is None:
        return []
    lines = body.splitlines()
    for index, line in enumerate(lines):
        if not line.lstrip().startswith("|"):
            continue
        header = _cells(line)
        implement = next((i for i, c in enumerate(header) if c.startswith("Implement")), None)
        checked = next((i for i, c in enumerate(header) if c.startswith("Checked by")), None)
        if header[0] != "#" or implement is None or checked is None:
            continue
        default_module = next(
            (token for token in _BACKTICKED.findall(header[checked]) if _MODULE.match(token)),
            None,
        )
        exercises: list[LessonExercise] = []
        for row in lines[index + 2 :]:  # after the |---| line
            if not row.lstrip().startswith("|"):
                break
            cells = _cells(row)
            if len(cells) <= max(implement, checked) or not cells[0].isdigit():
                continue
            exercises.append(
                LessonExercise(
                    int(cells[0]),
                    cells[implement],
                    tuple(_names(cells[implement])),
                    tuple(_tests(cells[checked], default_module)),
                )
            )
        return exercises
    return []


def parse_hints(text: str) -> str | None:
    """The body of the README's ``## Hints`` section, or None."""
    body = sections(text).get("Hints")
    return body if body else None


def readme_path(step: int, steps_dir: Path = STEPS_DIR) -> Path:
    """The lesson of one step: ``steps/NN_name/README.md``."""
    return step_dir(step, steps_dir) / "README.md"


def _read(step: int, steps_dir: Path) -> str:
    path = readme_path(step, steps_dir)
    return path.read_text(encoding="utf-8") if path.is_file() else ""


def lesson_exercises(step: int, steps_dir: Path = STEPS_DIR) -> list[LessonExercise]:
    """The Exercises table of step ``step``'s README."""
    return parse_exercises(_read(step, steps_dir))


def lesson_hints(step: int, steps_dir: Path = STEPS_DIR) -> str | None:
    """The Hints section of step ``step``'s README, or None."""
    return parse_hints(_read(step, steps_dir))


def table_place(qualname: str, exercises: Sequence[LessonExercise]) -> tuple[int, int] | None:
    """(row index, position in the row) of the table's best mention of a function, or None.

    ``qualname`` is a function's or method's qualified name (a nested function
    as ``outer.<locals>.inner``). A name in the Implement column mentions it
    written in full (``Tensor.__repr__``, ``outer.inner``), by its last part
    alone (``__repr__``), or as a class or function that contains it
    (``Module`` for ``Module.train``, ``wrap_forward_fn`` for the function it
    returns). The strongest mention wins, in that order; the first row wins a
    tie. None means no row names the function: the lesson does not ask for it.
    """
    best: tuple[int, int, int] | None = None  # (-strength, row, position)
    full = qualname.replace(".<locals>", "")
    for row, exercise in enumerate(exercises):
        for position, name in enumerate(exercise.names):
            if name == full:
                strength = 3
            elif "." not in name and short_name(full) == name:
                strength = 2
            elif full.startswith(name + "."):
                strength = 1
            else:
                continue
            candidate = (-strength, row, position)
            best = candidate if best is None else min(best, candidate)
    return None if best is None else (best[1], best[2])


def valid_choices(exercises: Sequence[LessonExercise]) -> str:
    """What ``--exercise`` accepts, for error messages."""
    if not exercises:
        return "(the README has no Exercises table)"
    numbers = f"{exercises[0].number}-{exercises[-1].number}"
    names = ", ".join(dict.fromkeys(name for exercise in exercises for name in exercise.names))
    return f"a number {numbers}" + (f" or one of: {names}" if names else "")


def choose_exercise(exercises: Sequence[LessonExercise], wanted: str, step: int) -> LessonExercise:
    """The row ``wanted`` means: its number, or a name in its Implement column.

    A name matches written in full (``Tensor.backward``) or by its last part
    (``backward``); failing that, an unambiguous prefix of either. An unknown
    or ambiguous name raises ``LookupError`` saying what is valid.
    """
    wanted = wanted.strip()
    if wanted.isdigit():
        for exercise in exercises:
            if exercise.number == int(wanted):
                return exercise
        raise LookupError(
            f"step {step:02d} has no exercise {wanted}; choose {valid_choices(exercises)}"
        )

    def rows(match: Callable[[str], bool]) -> dict[int, LessonExercise]:
        return {
            exercise.number: exercise
            for exercise in exercises
            if any(match(name) or match(short_name(name)) for name in exercise.names)
        }

    def prefix(name: str) -> bool:
        return name.startswith(wanted)

    matches = rows(lambda name: name == wanted) or rows(prefix)
    if len(matches) == 1:
        return next(iter(matches.values()))
    if not matches:
        raise LookupError(
            f"step {step:02d} has no exercise {wanted!r}; choose {valid_choices(exercises)}"
        )
    listed = "; ".join(
        f"{number} ({', '.join(n for n in exercise.names if prefix(n) or prefix(short_name(n)))})"
        for number, exercise in matches.items()
    )
    raise LookupError(
        f"{wanted!r} is ambiguous at step {step:02d}: it names exercises {listed}; "
        "give the number or more of the name"
    )


def select_tests(
    step: int, chosen: Sequence[LessonExercise], collected: Sequence[CollectedTest]
) -> list[bool]:
    """For each collected test, whether one of the chosen rows names it."""
    refs = [ref for exercise in chosen for ref in exercise.tests]
    return [any(ref.matches(step, test) for ref in refs) for test in collected]


def missing_tests(
    step: int, exercises: Sequence[LessonExercise], collected: Sequence[CollectedTest]
) -> list[str]:
    """``exercise N: test`` for every test the table names that no collected test is."""
    return [
        f"exercise {exercise.number}: {ref}"
        for exercise in exercises
        for ref in exercise.tests
        if not any(ref.matches(step, test) for test in collected)
    ]
