"""A learner's workspace: step NN with the code the lesson adds replaced by ``raise``.

``nox -s exercise-NN -- DIR [--force]`` (``python -m shared.tools.exercise NN DIR``)
copies step NN's ``npgrad`` package into ``DIR`` and replaces the body of each
function and method the lesson asks for with
``raise NotImplementedError("step NN: implement <qualname> (<file>)")``. What
counts as new or changed since the previous step comes from the code itself
(see ``shared.tools.source``), so there are no markers to maintain; what the
lesson asks for comes from its README's Exercises table. The rules:

- The lesson decides: when the step README has an Exercises table (see
  ``shared.tools.lesson``), only the new or changed functions a row names
  (in full, by the last part, or through the class or function containing
  them) are exercises; every other new or changed function is given, and the
  workspace README lists it under Given as "not one of the lesson's
  exercises". A README without a table makes every new or changed function
  an exercise.
- A function that moved to another module is compared with its text in the
  module it left (``shared.tools.source.find_moves``). Moved unchanged, it is
  given and listed as "moved from <old file>, unchanged"; moved and changed,
  it is new code like any other. An ambiguous move counts as new.
- Signatures, decorators, annotations and docstrings stay; the docstring stays
  the first statement, then comes the ``raise``.
- ``@overload`` signatures and bodies that are already empty (``...``, ``pass``,
  a docstring alone) or already only ``raise NotImplementedError`` (Protocol
  methods, abstract methods) are left alone: there is nothing to implement.
- Functions that run while ``import npgrad`` executes (found by importing the
  solution in a subprocess under ``sys.setprofile``) cannot raise, or the
  workspace would not import. When such a function returns a nested function
  (a closure factory such as ``wrap_forward_fn``), the nested function is the
  exercise instead; otherwise its body is given and the workspace README says so.
- Private helpers (a name part that starts with ``_`` and is not a dunder, such
  as ``_parents``) are given, unless the step README's Exercises table names
  them (``sum`` (``_sum``)).
- A stubbed method keeps the attribute declarations mypy needs: each
  ``self.x: T = ...`` (or ``self.x = param`` of an annotated parameter) that
  no other code of the class assigns becomes ``self.x: T`` before the
  ``raise``, so the workspace still passes ``mypy --strict``.

The exercises come in the lesson's order: by the row of the README's
Exercises table that names each (see ``shared.tools.lesson``); without a
table, in dependency order. The workspace README lists them with the row's
number (for ``nox -s test-NN -- --impl DIR --exercise N``), says how many
there are ("N exercises (functions to write) in M lesson rows", printed too)
and repeats the lesson's Hints. ``python -m shared.tools.exercise --count``
prints that count for every step without writing a workspace.

``--restore [NAME ...]`` (``nox -s exercise-NN -- DIR --restore NAME``) puts the
solution's bodies back: all of them, or the named exercises, each named in
full (``Tensor.backward``), by its last part (``backward``), by a prefix only
one exercise has, or by the lesson's exercise number (all of its functions).
An unknown or ambiguous name is an error that lists the valid ones. A learner
can give up on one exercise, and the tooling tests prove that the stubs
replaced exactly the bodies. Through nox, the learner's own Python needs no
NumPy (the planner imports the solution).
"""

from __future__ import annotations

import argparse
import ast
import json
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from shared.steps import STEPS_DIR, previous_step_dir, step_dir, step_dirs
from shared.tools.lesson import (
    LessonExercise,
    lesson_exercises,
    lesson_hints,
    short_name,
    table_place,
)
from shared.tools.source import (
    IGNORED_NAMES,
    FunctionNode,
    Module,
    SourceText,
    docstring_summary,
    find_moves,
    is_overload,
    own_statements,
    parse_module,
    step_modules,
)

PACKAGE = "npgrad"


class WorkspaceNotEmptyError(Exception):
    """The target directory holds files and ``--force`` was not given."""


@dataclass(frozen=True)
class Exercise:
    """One function or method whose body the learner writes."""

    step: int
    path: str
    qualname: str
    summary: str
    line: int
    lesson: int | None = None  # the row of the README's Exercises table that asks for it

    @property
    def message(self) -> str:
        """What the stub raises: names the step, the function and its file."""
        return f"step {self.step:02d}: implement {self.qualname} ({self.path})"


@dataclass(frozen=True)
class Given:
    """A new or changed function whose body the workspace keeps, and why."""

    path: str
    qualname: str
    line: int
    reason: str


@dataclass(frozen=True)
class Plan:
    """What the workspace of one step stubs and what it gives."""

    step: int
    folder: Path
    previous: Path | None
    exercises: tuple[Exercise, ...]
    given: tuple[Given, ...]
    lesson: tuple[LessonExercise, ...] = ()  # the README's Exercises table

    @property
    def rows(self) -> int:
        """How many rows of the lesson's Exercises table have a stub in the workspace."""
        return len({e.lesson for e in self.exercises if e.lesson is not None})

    @property
    def summary(self) -> str:
        """``N exercises (functions to write) in M lesson rows``, and what the table has."""
        count, rows = len(self.exercises), self.rows
        text = (
            f"{count} {_plural(count, 'exercise')} ({_plural(count, 'function')} to write) "
            f"in {rows} lesson {_plural(rows, 'row')}"
        )
        if not self.lesson:
            return text + " (the README has no Exercises table)"
        if rows != len(self.lesson):
            return text + f" (the README's Exercises table has {len(self.lesson)})"
        return text


def _plural(count: int, word: str) -> str:
    return word if count == 1 else word + "s"


# Run in a fresh interpreter: records (file, co_qualname) of every function of
# the package that is called while ``import npgrad`` executes (sys.setprofile
# sees every Python-level call, including those made by decorators and by
# module-level registrations), and the order in which the package's modules
# finish executing: a module finishes after the modules it needs.
_TRACE_SCRIPT = """
import json, os, sys
root = os.path.abspath(sys.argv[1])
package = os.path.join(root, "npgrad") + os.sep
called, finished = set(), []

def profile(frame, event, arg):
    code = frame.f_code
    if not code.co_filename.startswith(package):
        return
    path = os.path.relpath(code.co_filename, root).replace(os.sep, "/")
    if event == "call":
        called.add((path, code.co_qualname))
    elif event == "return" and code.co_qualname == "<module>" and path not in finished:
        finished.append(path)

sys.path.insert(0, root)
sys.setprofile(profile)
import npgrad
sys.setprofile(None)
print(json.dumps({"called": sorted(called), "finished": finished}))
"""


@dataclass(frozen=True)
class ImportTrace:
    """What ``import npgrad`` runs: functions as ``(file, qualname)``, and module order."""

    called: frozenset[tuple[str, str]]
    finished: tuple[str, ...]


def trace_import(folder: Path) -> ImportTrace:
    """Import ``folder``'s package in a subprocess and report what ran."""
    result = subprocess.run(
        [sys.executable, "-c", _TRACE_SCRIPT, str(folder)],
        capture_output=True,
        text=True,
        cwd=folder,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"importing npgrad from {folder} failed:\n{result.stderr}")
    report = json.loads(result.stdout)
    called = frozenset((path, qualname) for path, qualname in report["called"])
    return ImportTrace(called, tuple(report["finished"]))


def implementation(nodes: Sequence[FunctionNode]) -> FunctionNode | None:
    """The ``def`` with a real body among a name's definitions (not an ``@overload``)."""
    real = [node for node in nodes if not is_overload(node)]
    return real[-1] if real else None


def _has_docstring(node: FunctionNode) -> bool:
    first = node.body[0]
    return (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    )


def _code_statements(node: FunctionNode) -> list[ast.stmt]:
    return node.body[1:] if _has_docstring(node) else node.body


def is_trivial(node: FunctionNode) -> bool:
    """True for a body with nothing to implement: empty, ``...``, ``pass`` or a bare raise.

    A bare raise is ``raise NotImplementedError`` with or without a message, as
    in an abstract method.
    """
    code = _code_statements(node)
    if not code:
        return True
    if len(code) > 1:
        return False
    statement = code[0]
    if isinstance(statement, ast.Pass):
        return True
    if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
        return statement.value.value is Ellipsis
    if isinstance(statement, ast.Raise) and statement.exc is not None:
        raised = statement.exc.func if isinstance(statement.exc, ast.Call) else statement.exc
        return isinstance(raised, ast.Name) and raised.id == "NotImplementedError"
    return False


def _returned_nested_functions(node: FunctionNode) -> list[str]:
    """Names of the functions defined inside ``node`` that ``node`` returns."""
    statements = own_statements(node)
    nested = {
        statement.name
        for statement in statements
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    returned = {
        statement.value.id
        for statement in statements
        if isinstance(statement, ast.Return) and isinstance(statement.value, ast.Name)
    }
    return sorted(nested & returned)


Functions = dict[str, list[FunctionNode]]


def _new_code(
    qualname: str,
    module: Module,
    functions: Functions,
    old: Module | None,
    old_functions: Functions,
) -> FunctionNode | None:
    """``qualname``'s implementation if the learner has code to write there, else None.

    That is a body that is not trivial, in a function that is new or whose text
    differs from ``old``, the previous step's version of the module, or of the
    module the function moved from (its functions, ``old_functions``, are found
    once per module, not once per name).
    """
    node = implementation(functions[qualname])
    if node is None or is_trivial(node):
        return None
    old_nodes = old_functions.get(qualname)
    unchanged = (
        old is not None
        and old_nodes is not None
        and old.function_text(old_nodes) == module.function_text(functions[qualname])
    )
    return None if unchanged else node


def _has_code(nodes: Sequence[FunctionNode]) -> FunctionNode | None:
    """A name's implementation if its body is not trivial."""
    node = implementation(nodes)
    return None if node is None or is_trivial(node) else node


def plan_exercises(step: int, steps_dir: Path = STEPS_DIR) -> Plan:
    """Which functions of step ``step`` become exercises and which are given."""
    folder = step_dir(step, steps_dir)
    previous = previous_step_dir(step, steps_dir)
    # Moves are found across the whole step folder (code can move into the
    # package from a script beside it), but only the package is stubbed.
    old_modules = step_modules(previous) if previous is not None else {}
    old_functions = {path: module.functions() for path, module in old_modules.items()}
    new_modules = step_modules(folder)
    new_functions = {path: module.functions() for path, module in new_modules.items()}
    moves = find_moves(old_functions, new_functions)
    trace = trace_import(folder)
    calls = trace.called
    exercises: list[Exercise] = []
    given: list[Given] = []
    for path, module in new_modules.items():
        if not path.startswith(PACKAGE + "/"):
            continue
        functions = new_functions[path]
        for qualname in functions:
            if "<locals>" in qualname:
                continue  # a nested function is an exercise only through its closure factory
            # A moved function is compared with its text in the module it left.
            moved_from = moves.get((path, qualname))
            source = moved_from or path
            old_module, old_names = old_modules.get(source), old_functions.get(source, {})
            node = _new_code(qualname, module, functions, old_module, old_names)
            if node is None:
                kept = _has_code(functions[qualname])
                if moved_from is not None and kept is not None:
                    given.append(Given(path, qualname, kept.lineno, moved_reason(moved_from)))
                continue
            if (path, qualname) not in calls:
                exercises.append(
                    Exercise(step, path, qualname, docstring_summary(node), node.lineno)
                )
                continue
            inner_exercises = []
            for name in _returned_nested_functions(node):
                inner = f"{qualname}.<locals>.{name}"
                inner_node = _new_code(inner, module, functions, old_module, old_names)
                if inner_node is None or (path, inner) in calls:
                    continue
                summary = docstring_summary(inner_node) or (
                    f"the function {qualname} returns: {docstring_summary(node)}"
                )
                inner_exercises.append(Exercise(step, path, inner, summary, inner_node.lineno))
            if inner_exercises:
                exercises += inner_exercises
            else:
                given.append(Given(path, qualname, node.lineno, "runs while the package imports"))
    lesson = lesson_exercises(step, steps_dir)
    named = {name for row in lesson for name in row.names}
    # A bare name that is itself a new function (``relu``) means that function,
    # not also every method of the same last part (``Tensor.relu``).
    functions_named = named & {e.qualname for e in exercises if "." not in e.qualname}
    for exercise in list(exercises):
        if is_private(exercise.qualname) and not named & set(aliases(exercise.qualname)):
            reason = PRIVATE_REASON
        elif lesson and lesson_place(exercise.qualname, lesson)[0] == len(lesson):
            reason = NOT_IN_LESSON_REASON  # the table decides what the lesson asks for
        elif lesson and _named_only_as_another_function(exercise.qualname, named, functions_named):
            reason = NOT_IN_LESSON_REASON
        else:
            continue
        exercises.remove(exercise)
        given.append(Given(exercise.path, exercise.qualname, exercise.line, reason))
    # In dependency order: modules in the order they finish importing (a module
    # finishes after those it needs), then in source order within a module.
    rank = {path: index for index, path in enumerate(trace.finished)}
    exercises.sort(key=lambda e: (rank.get(e.path, len(rank)), e.path, e.line))
    given.sort(key=lambda g: (rank.get(g.path, len(rank)), g.path, g.line))
    # Then in the lesson's order: by the row of the README's table that names
    # each, and within a row in the order it names them; what no row names
    # (only when the README has no table) comes last.
    placed = [(lesson_place(exercise.qualname, lesson), exercise) for exercise in exercises]
    placed.sort(key=lambda item: item[0])
    ordered = [
        replace(exercise, lesson=lesson[row].number if row < len(lesson) else None)
        for (row, _), exercise in placed
    ]
    return Plan(step, folder, previous, tuple(ordered), tuple(given), tuple(lesson))


PRIVATE_REASON = "a private helper; the lesson does not ask for it"
NOT_IN_LESSON_REASON = "not one of the lesson's exercises"


def moved_reason(old_path: str) -> str:
    """Why a function that moved unchanged from ``old_path`` is given."""
    return f"moved from {old_path}, unchanged"


def is_private(qualname: str) -> bool:
    """A name the lesson does not teach: some part starts with ``_`` and is no dunder."""
    return any(
        part.startswith("_") and not part.endswith("__")
        for part in qualname.split(".")
        if part != "<locals>"
    )


def aliases(qualname: str) -> list[str]:
    """The names that call a function: in full, without ``<locals>``, by its last part.

    A nested function is also called by the function that returns it:
    ``wrap_forward_fn`` for ``wrap_forward_fn.<locals>.wrapped``.
    """
    parts = [part for part in qualname.split(".") if part != "<locals>"]
    found = [qualname, ".".join(parts), parts[-1]]
    if "<locals>" in qualname:
        found.append(qualname.partition(".<locals>")[0])
    return list(dict.fromkeys(found))


def _named_only_as_another_function(
    qualname: str, named: set[str], functions_named: set[str]
) -> bool:
    """Whether the table mentions a method only by a last part that names a function.

    ``relu`` in a row names the new function ``relu``; ``Tensor.relu`` is an
    exercise only if a row writes it in full or names its class.
    """
    if "." not in qualname or qualname in named:
        return False
    if any(qualname.startswith(name + ".") for name in named):
        return False
    return short_name(qualname) in functions_named


def lesson_place(qualname: str, lesson: Sequence[LessonExercise]) -> tuple[int, int]:
    """(row, position in the row) of the table's best mention of a function; last if none.

    See ``shared.tools.lesson.table_place`` for which mention is best; a
    function no row names is placed after every row (``len(lesson)``).
    """
    place = table_place(qualname, lesson)
    return (len(lesson), 0) if place is None else place


# --- rewriting bodies -------------------------------------------------------------------

Span = tuple[tuple[int, int], tuple[int, int]]


def body_span(node: FunctionNode) -> Span | None:
    """Where a function's code is: from its first statement after the docstring to its end."""
    code = _code_statements(node)
    if not code:
        return None
    first, last = code[0], code[-1]
    start = (first.lineno, first.col_offset)
    if isinstance(first, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        # A decorated statement starts at its first decorator (the column before the "@").
        for decorator in first.decorator_list:
            start = min(start, (decorator.lineno, decorator.col_offset - 1))
    assert last.end_lineno is not None
    assert last.end_col_offset is not None
    return start, (last.end_lineno, last.end_col_offset)


def _replace(text: SourceText, edits: Iterable[tuple[Span, str]]) -> str:
    """Apply non-overlapping ``(span, new text)`` edits to a source."""
    data = text.data
    for (start, end), new in sorted(edits, key=lambda edit: edit[0], reverse=True):
        data = data[: text.offset(*start)] + new.encode("utf-8") + data[text.offset(*end) :]
    return data.decode("utf-8")


def _indentation(text: SourceText, start: tuple[int, int]) -> str | None:
    """The whitespace before ``start`` on its line, or None if code precedes it there."""
    line = text.lines[start[0] - 1][: start[1]].decode("utf-8")
    return line if not line.strip() else None


def _self_attributes(node: FunctionNode) -> list[tuple[str, ast.expr | None]]:
    """``(name, annotation)`` per ``self.name`` assignment; the annotation may be unknown."""
    arguments = node.args.posonlyargs + node.args.args
    if not arguments:
        return []
    self_name = arguments[0].arg
    annotated_parameters = {
        argument.arg: argument.annotation
        for argument in arguments + node.args.kwonlyargs
        if argument.annotation is not None
    }
    found: list[tuple[str, ast.expr | None]] = []
    for statement in own_statements(node):
        targets: list[ast.expr] = []
        annotation: ast.expr | None = None
        if isinstance(statement, ast.AnnAssign):
            targets, annotation = [statement.target], statement.annotation
        elif isinstance(statement, ast.Assign | ast.AugAssign):
            targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
            value = statement.value
            if isinstance(value, ast.Name) and value.id in annotated_parameters:
                annotation = annotated_parameters[value.id]
        for target in targets:
            if (
                isinstance(target, ast.Attribute)
                and isinstance(target.value, ast.Name)
                and target.value.id == self_name
            ):
                found.append((target.attr, annotation))
    return found


def _declarations(
    module: Module, qualname: str, node: FunctionNode, stubbed: set[str], declared: set[str]
) -> list[str]:
    """``self.x: T`` lines that keep the attributes a stubbed method defines visible to mypy.

    Only for attributes nothing else in the class assigns (a second declaration
    would be an error of its own); ``declared`` collects what is already emitted.
    """
    class_name, _, _ = qualname.rpartition(".")
    cls = module.classes().get(class_name)
    if cls is None:
        return []
    elsewhere: set[str] = set()
    for statement in cls.body:
        if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
            elsewhere.add(statement.target.id)
        elif isinstance(statement, ast.Assign):
            elsewhere |= {target.id for target in statement.targets if isinstance(target, ast.Name)}
        elif (
            isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef)
            and f"{class_name}.{statement.name}" not in stubbed
        ):
            elsewhere |= {name for name, _ in _self_attributes(statement)}
    lines: list[str] = []
    for name, annotation in _self_attributes(node):
        if name in elsewhere or name in declared or annotation is None:
            continue
        declared.add(name)
        self_name = (node.args.posonlyargs + node.args.args)[0].arg
        lines.append(f"{self_name}.{name}: {module.text.segment(annotation)}")
    return lines


def stub_module(module: Module, exercises: Sequence[Exercise]) -> str:
    """The module's source with the body of each exercise replaced by its ``raise``."""
    functions = module.functions()
    stubbed = {exercise.qualname for exercise in exercises}
    declared_per_class: dict[str, set[str]] = {}
    edits: list[tuple[Span, str]] = []
    for exercise in exercises:
        node = implementation(functions[exercise.qualname])
        assert node is not None
        span = body_span(node)
        assert span is not None  # a trivial body is never an exercise
        declared = declared_per_class.setdefault(exercise.qualname.rpartition(".")[0], set())
        statements = _declarations(module, exercise.qualname, node, stubbed, declared)
        statements.append(f"raise NotImplementedError({json.dumps(exercise.message)})")
        indent = _indentation(module.text, span[0])
        separator = "\n" + indent if indent is not None else "; "
        edits.append((span, separator.join(statements)))
    return _replace(module.text, edits)


def restore_module(workspace: Module, solution: Module, qualnames: Iterable[str]) -> str:
    """The workspace module with the named functions' code taken from the solution."""
    mine, theirs = workspace.functions(), solution.functions()
    edits: list[tuple[Span, str]] = []
    for qualname in qualnames:
        if qualname not in mine:
            raise LookupError(f"{workspace.path} has no function {qualname} to restore")
        node, original = implementation(mine[qualname]), implementation(theirs[qualname])
        assert node is not None
        assert original is not None
        span, original_span = body_span(node), body_span(original)
        if span is None or original_span is None:
            raise ValueError(f"{qualname} in {workspace.path} has no body to replace")
        edits.append((span, solution.text.between(*original_span)))
    return _replace(workspace.text, edits)


# --- the workspace ----------------------------------------------------------------------


def _ignore_caches(directory: str, names: list[str]) -> set[str]:
    return {name for name in names if name in IGNORED_NAMES or name.endswith(".pyc")}


def write_workspace(
    step: int, dest: Path, force: bool = False, steps_dir: Path = STEPS_DIR
) -> Plan:
    """Write step ``step``'s exercise workspace into ``dest``; return what it stubs.

    A ``dest`` that holds anything is refused unless ``force``; with ``force``,
    ``dest/npgrad`` is replaced and ``dest/README.md`` overwritten, and other
    files in ``dest`` are left alone.
    """
    if dest.exists() and not dest.is_dir():
        raise WorkspaceNotEmptyError(f"{dest} exists and is not a directory")
    if dest.is_dir() and any(dest.iterdir()) and not force:
        raise WorkspaceNotEmptyError(
            f"{dest} is not empty: choose an empty or new directory, or pass --force "
            f"to replace {dest / PACKAGE} and {dest / 'README.md'}"
        )
    plan = plan_exercises(step, steps_dir)
    package = dest / PACKAGE
    if package.exists():
        shutil.rmtree(package)
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(plan.folder / PACKAGE, package, ignore=_ignore_caches)
    by_file: dict[str, list[Exercise]] = {}
    for exercise in plan.exercises:
        by_file.setdefault(exercise.path, []).append(exercise)
    for path, exercises in by_file.items():
        module = parse_module(plan.folder, path)
        (dest / path).write_text(stub_module(module, exercises), encoding="utf-8")
    (dest / "README.md").write_text(workspace_readme(plan, dest), encoding="utf-8")
    return plan


def restore(
    workspace: Path,
    step: int,
    qualnames: Iterable[str] | None = None,
    steps_dir: Path = STEPS_DIR,
    plan: Plan | None = None,
) -> list[Exercise]:
    """Put the solution's code back into a workspace: every exercise, or the named ones.

    ``plan`` saves re-planning (which imports the solution) when the caller has it.
    """
    plan = plan if plan is not None else plan_exercises(step, steps_dir)
    wanted = None if qualnames is None else set(qualnames)
    chosen = [e for e in plan.exercises if wanted is None or e.qualname in wanted]
    if wanted is not None and (unknown := wanted - {e.qualname for e in chosen}):
        raise LookupError(f"not exercises of step {step:02d}: {', '.join(sorted(unknown))}")
    by_file: dict[str, list[str]] = {}
    for exercise in chosen:
        by_file.setdefault(exercise.path, []).append(exercise.qualname)
    for path, names in by_file.items():
        mine, theirs = parse_module(workspace, path), parse_module(plan.folder, path)
        (workspace / path).write_text(restore_module(mine, theirs, names), encoding="utf-8")
    return chosen


def resolve_names(plan: Plan, names: Iterable[str]) -> list[str]:
    """The exercises (qualified names) that names given on the command line mean.

    A name is an exercise's qualified name (``Tensor.backward``), its last part
    (``backward``), a prefix of either that only one exercise has, or the
    number of a row of the lesson's Exercises table (every stub of that row).
    An unknown or ambiguous name raises ``LookupError`` listing the valid ones.
    """
    qualnames = [exercise.qualname for exercise in plan.exercises]
    chosen: list[str] = []
    for name in names:
        if name.isdigit():
            row = [e.qualname for e in plan.exercises if e.lesson == int(name)]
            if not row:
                numbers = sorted({e.lesson for e in plan.exercises if e.lesson is not None})
                raise LookupError(
                    f"the lesson's exercise {name} has no stub in the step {plan.step:02d} "
                    f"workspace; the exercises with stubs are {', '.join(map(str, numbers))}"
                )
            chosen += row
            continue
        found = [q for q in qualnames if name in aliases(q)] or [
            q for q in qualnames if any(alias.startswith(name) for alias in aliases(q))
        ]
        if len(found) > 1:
            raise LookupError(
                f"{name!r} is ambiguous at step {plan.step:02d}: it could be "
                f"{', '.join(found)}; give more of the name"
            )
        if not found:
            numbers = sorted({e.lesson for e in plan.exercises if e.lesson is not None})
            by_number = f", or a lesson exercise number ({', '.join(map(str, numbers))})"
            raise LookupError(
                f"{name!r} is not an exercise of step {plan.step:02d}; choose one of: "
                f"{', '.join(qualnames)} (or its last part, a unique prefix"
                f"{by_number if numbers else ''})"
            )
        chosen += found
    return list(dict.fromkeys(chosen))


def workspace_readme(plan: Plan, dest: Path) -> str:
    """The workspace's README: the exercises in the lesson's order, its hints, how to test."""
    number = f"{plan.step:02d}"
    name = plan.folder.name
    since = f"since {plan.previous.name}" if plan.previous is not None else "(the first step)"
    columns = (
        "The first column is the exercise's number in the lesson's Exercises table."
        if plan.lesson
        else "The lesson has no Exercises table: every new or changed function is here."
    )
    asked = (
        f"that is new or changed {since} and that the lesson's Exercises table names"
        if plan.lesson
        else f"that is new or changed {since}"
    )
    rows = "\n".join(
        f"| {e.lesson if e.lesson is not None else '-'} | `{e.qualname}` | `{e.path}` "
        f"| {e.summary or '(no docstring)'} |"
        for e in plan.exercises
    )
    given = (
        "\n".join(f"- `{g.qualname}` (`{g.path}`): given: {g.reason}." for g in plan.given)
        or "- nothing: every new or changed function is an exercise."
    )
    if plan.lesson:
        one_by_one = "\n".join(
            f"nox -s test-{number} -- --impl {dest} --exercise {row.number}"
            f"   # {_brief(row.implement)}"
            for row in plan.lesson
        )
        one_at_a_time = f"""One exercise at a time (the tests the lesson's table lists for it; a
function name from its Implement column works too, such as `--exercise {_example(plan)}`):

```sh
{one_by_one}
```
"""
    else:
        one_at_a_time = ""
    hints = lesson_hints(plan.step, plan.folder.parent)
    hints_section = (
        f"## Hints (from the lesson)\n\n{hints}\n"
        if hints
        else "## Hints\n\nThe lesson has no hints for this step.\n"
    )
    return f"""# Workspace for step {number}: {name}

This is step {number}'s `npgrad` package with the body of each function and
method {asked}
replaced by `raise NotImplementedError("step {number}: implement <name> (<file>)")`.
Signatures, type annotations and docstrings are kept. Read the lesson first:
`steps/{name}/README.md`.

## Exercises, in the lesson's order
{plan.summary}.

{columns}

| Exercise | Implement | File | What it does |
|---|---|---|---|
{rows}

## Given
{given}

A function that runs while `import npgrad` executes (a registration, a
constructor of a module-level object) cannot be stubbed, or the package would
not import; its body is given. When such a function returns a nested function
(a closure factory), the nested function is the exercise instead. Private
helpers (names that start with `_`) are given unless the lesson's table asks
for them, and so is other new code the table does not name. A function that
only moved to another module is given. `@overload` signatures and bodies that
are only `...` (Protocol methods) are never exercises.

## Test your work
From the repository root (nox installs NumPy and pytest into one environment
that every step's sessions share):

{one_at_a_time}
Then everything:

```sh
nox -s test-{number} -- --impl {dest} --new-only   # only the tests step {number} adds
nox -s test-{number} -- --impl {dest}              # every test of steps 01-{number}
```

A syntax or import error in the workspace is reported as one line naming the
file and line. Compare with the solution: `diff -ru {dest}/npgrad steps/{name}/npgrad`
(or `nox -s diff-{number}` for what the lesson changed). Stuck on one function?
`nox -s exercise-{number} -- {dest} --restore NAME` puts the solution of that
function back. NAME is a name from the table (`{_example(plan, short=False)}`),
its last part (`{_example(plan)}`), a prefix only one exercise has, or the
lesson's exercise number (all of its functions); `--restore` alone puts back
every one. Through nox, your own Python needs neither NumPy nor pytest.

{hints_section}"""


def _brief(text: str, width: int = 60) -> str:
    plain = " ".join(text.replace("`", "").split())
    return plain if len(plain) <= width else plain[: width - 3].rstrip() + "..."


def _example(plan: Plan, short: bool = True) -> str:
    """A name that picks one exercise, for the README's examples: a method's if possible."""
    methods = [e for e in plan.exercises if "." in e.qualname and "<locals>" not in e.qualname]
    for exercise in methods + list(plan.exercises):
        if not short:
            return exercise.qualname
        name = aliases(exercise.qualname)[-1]
        try:
            if resolve_names(plan, [name]) == [exercise.qualname]:
                return name
        except LookupError:
            continue
    return plan.exercises[0].qualname if plan.exercises else "NAME"


def count_exercises(steps: Iterable[int] | None = None, steps_dir: Path = STEPS_DIR) -> str:
    """A table of each step's exercises (stubs) and lesson rows; writes no workspace."""
    numbers = list(steps) if steps is not None else sorted(step_dirs(steps_dir))
    lines = [
        "| Step | Exercises | Lesson rows with stubs | Rows in the table | Given |",
        "|---|---:|---:|---:|---:|",
    ]
    for number in numbers:
        plan = plan_exercises(number, steps_dir)
        lines.append(
            f"| {plan.folder.name} | {len(plan.exercises)} | {plan.rows} "
            f"| {len(plan.lesson)} | {len(plan.given)} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m shared.tools.exercise NN DIR [--force] [--restore [NAME ...]]`` or ``--count``.

    ``--count`` (``[NN] --count``) prints each step's exercises and lesson rows.
    """
    parser = argparse.ArgumentParser(
        prog="nox -s exercise-NN --",
        description="Write step NN's exercise workspace into DIR.",
    )
    parser.add_argument("step", type=int, nargs="?", help="the step number, such as 05")
    parser.add_argument("dir", type=Path, nargs="?", help="the workspace directory to write")
    parser.add_argument(
        "--force",
        action="store_true",
        help="write into a non-empty DIR (replaces DIR/npgrad and DIR/README.md)",
    )
    parser.add_argument(
        "--restore",
        nargs="*",
        metavar="NAME",
        default=None,
        help="instead, put the solution back into DIR: every exercise, or the named ones "
        "(a full name such as Tensor.backward, a short one such as backward, a unique "
        "prefix, or the lesson's exercise number for all of its functions)",
    )
    parser.add_argument(
        "--count",
        action="store_true",
        help="instead, print each step's number of exercises and lesson rows (or step NN's); "
        "writes nothing",
    )
    parser.add_argument("--steps-dir", type=Path, default=STEPS_DIR, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    steps_dir: Path = args.steps_dir
    if args.count:
        try:
            print(count_exercises(None if args.step is None else [args.step], steps_dir), end="")
        except LookupError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        return 0
    if args.step is None or args.dir is None:
        parser.error("give the step number and the workspace directory (or --count)")
    dest: Path = args.dir.expanduser().resolve()
    try:
        if args.restore is not None:
            plan = plan_exercises(args.step, steps_dir)
            names = resolve_names(plan, args.restore) if args.restore else None
            restored = restore(dest, args.step, names, steps_dir, plan=plan)
            print(f"restored {len(restored)} function(s) in {dest}:")
            for exercise in restored:
                print(f"  {exercise.path}: {exercise.qualname}")
            return 0
        plan = write_workspace(args.step, dest, force=args.force, steps_dir=steps_dir)
    except WorkspaceNotEmptyError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except LookupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote the step {args.step:02d} workspace to {dest}")
    print(plan.summary)
    for exercise in plan.exercises:
        number = "-" if exercise.lesson is None else exercise.lesson
        print(f"  {number:>2}. {exercise.path}: {exercise.qualname}")
    for item in plan.given:
        print(f"  given: {item.path}: {item.qualname} ({item.reason})")
    first = f" --exercise {plan.lesson[0].number}" if plan.lesson else ""
    print(f"read {dest / 'README.md'}, then: nox -s test-{args.step:02d} -- --impl {dest}{first}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
