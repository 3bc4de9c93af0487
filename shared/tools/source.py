"""The definitions in a step's modules, found with ``ast``, and the text each is compared by.

Both the drift check and the exercise generator compare two neighbouring
steps definition by definition: each top-level function, each class and each
method, keyed by the module file it lives in (relative to the step folder,
such as ``npgrad/tensor.py``) and its qualified name (``Tensor.__mul__``).

Functions are compared by their whole source text, decorators included, so a
changed comment counts as a change. A class is compared by its decorators, its
header, its docstring and the statements of its body that are not methods or
nested classes; its methods and nested classes are definitions of their own.
The ``@overload`` stubs of a function share its qualified name and are part of
its text. Module-level statements other than ``def`` and ``class`` (imports,
registrations, assignments) are not definitions.

A definition can move between modules (``npgrad/ops.py`` split into a package
``npgrad/ops/``): ``find_moves`` pairs a definition that appears in one module
with the same qualified name leaving another, and both tools then compare it
with its old text. A move is recognised only when it is unambiguous: the name
was defined in exactly one module of the earlier step, that module no longer
defines it (or no longer exists), and exactly one module of the later step
newly defines it. Anything else (a copy that stays in its old module too, a
name two old modules defined, a name that lands in two new modules) is new.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef

# Caches that tools and test runs leave inside a step folder: never lesson content.
IGNORED_NAMES = frozenset(
    {"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".hypothesis"}
)


def step_files(folder: Path) -> list[str]:
    """Every file of a step folder, as sorted POSIX paths relative to it, caches left out."""
    found: list[str] = []
    for path in folder.rglob("*"):
        relative = path.relative_to(folder)
        if any(part in IGNORED_NAMES for part in relative.parts) or path.suffix == ".pyc":
            continue
        if path.is_file():
            found.append(relative.as_posix())
    return sorted(found)


class SourceText:
    """A module's source, addressable by the ``(line, column)`` positions ``ast`` reports.

    ``ast`` columns count UTF-8 bytes, so the lines are kept as bytes, and where
    each line starts is worked out once.
    """

    def __init__(self, source: str) -> None:
        self.source = source
        self.data = source.encode("utf-8")
        self.lines = self.data.splitlines(keepends=True)
        self.line_starts = [0, *itertools.accumulate(len(text) for text in self.lines)]

    def offset(self, line: int, column: int) -> int:
        """The byte offset of a 1-based ``line`` and 0-based byte ``column``."""
        return self.line_starts[line - 1] + column

    def between(self, start: tuple[int, int], end: tuple[int, int]) -> str:
        """The text from ``start`` up to (not including) ``end``."""
        return self.data[self.offset(*start) : self.offset(*end)].decode("utf-8")

    def segment(self, node: ast.expr | ast.stmt) -> str:
        """The source text of one node (its first line without indentation)."""
        if node.end_lineno is None or node.end_col_offset is None:
            # only for nodes without positions, which parsed code never has
            raise ValueError(f"no source position for {ast.dump(node)[:60]}")
        return self.between((node.lineno, node.col_offset), (node.end_lineno, node.end_col_offset))


def is_overload(node: FunctionNode) -> bool:
    """True for a ``@overload`` (or ``@typing.overload``) signature stub."""
    return any(
        (isinstance(decorator, ast.Name) and decorator.id == "overload")
        or (isinstance(decorator, ast.Attribute) and decorator.attr == "overload")
        for decorator in node.decorator_list
    )


def docstring_summary(node: FunctionNode | ast.ClassDef) -> str:
    """The first line of a definition's docstring, or an empty string."""
    docstring = ast.get_docstring(node)
    return docstring.strip().splitlines()[0] if docstring and docstring.strip() else ""


@dataclass(frozen=True)
class Definition:
    """One function, class or method of a module, and the text it is compared by."""

    path: str
    qualname: str
    kind: Literal["function", "class"]
    text: str
    line: int


@dataclass(frozen=True)
class Module:
    """A parsed module of a step folder."""

    path: str
    text: SourceText
    tree: ast.Module

    def definitions(self) -> dict[str, Definition]:
        """The module's definitions by qualified name, in source order."""
        functions: dict[str, list[FunctionNode]] = {}
        classes: dict[str, ast.ClassDef] = {}
        _collect(self.tree.body, "", functions, classes)
        found: list[Definition] = [
            Definition(self.path, name, "class", self._class_text(node), node.lineno)
            for name, node in classes.items()
        ]
        found += [
            Definition(self.path, name, "function", self.function_text(nodes), nodes[0].lineno)
            for name, nodes in functions.items()
        ]
        return {definition.qualname: definition for definition in sorted(found, key=_by_line)}

    def classes(self) -> dict[str, ast.ClassDef]:
        """Every class by qualified name, nested ones too."""
        found: dict[str, ast.ClassDef] = {}
        _collect(self.tree.body, "", {}, found, nested=True)
        return found

    def functions(self) -> dict[str, list[FunctionNode]]:
        """Every function by qualified name, nested ones too (``outer.<locals>.inner``).

        A name maps to all of its ``def`` statements: the ``@overload`` stubs,
        then the implementation.
        """
        found: dict[str, list[FunctionNode]] = {}
        _collect(self.tree.body, "", found, {}, nested=True)
        return found

    def function_text(self, nodes: list[FunctionNode]) -> str:
        """The compared text of a function: every ``def`` of its name, decorators included."""
        parts: list[str] = []
        for node in nodes:
            parts += ["@" + self.text.segment(decorator) for decorator in node.decorator_list]
            parts.append(self.text.segment(node))
        return "\n".join(parts)

    def _class_text(self, node: ast.ClassDef) -> str:
        parts = ["@" + self.text.segment(decorator) for decorator in node.decorator_list]
        first = node.body[0]
        header_end = (first.lineno, first.col_offset)
        parts.append(self.text.between((node.lineno, node.col_offset), header_end).rstrip())
        parts += [
            self.text.segment(statement)
            for statement in node.body
            if not isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        ]
        return "\n".join(parts)


def _by_line(definition: Definition) -> int:
    return definition.line


def _collect(
    body: list[ast.stmt],
    prefix: str,
    functions: dict[str, list[FunctionNode]],
    classes: dict[str, ast.ClassDef],
    nested: bool = False,
) -> None:
    """Gather the functions and classes of one body under qualified names starting ``prefix``."""
    for statement in body:
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
            name = prefix + statement.name
            functions.setdefault(name, []).append(statement)
            if nested:
                _collect(own_statements(statement), name + ".<locals>.", functions, classes, nested)
        elif isinstance(statement, ast.ClassDef):
            name = prefix + statement.name
            classes[name] = statement
            _collect(statement.body, name + ".", functions, classes, nested)


def own_statements(function: FunctionNode) -> list[ast.stmt]:
    """The statements of a function at any block depth, without entering nested scopes."""
    found: list[ast.stmt] = []
    pending: list[ast.stmt] = list(function.body)
    while pending:
        statement = pending.pop(0)
        found.append(statement)
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            continue
        for child in ast.iter_child_nodes(statement):
            if isinstance(child, ast.stmt):
                pending.append(child)
            elif isinstance(child, ast.ExceptHandler | ast.match_case):
                pending += child.body
    return found


def parse_module(folder: Path, path: str) -> Module:
    """Parse ``folder / path``; a syntax error names the file."""
    source = (folder / path).read_text(encoding="utf-8")
    return Module(path, SourceText(source), ast.parse(source, filename=str(folder / path)))


def step_modules(folder: Path) -> dict[str, Module]:
    """Every Python module of a step folder by relative path (``npgrad/tensor.py``)."""
    return {path: parse_module(folder, path) for path in step_files(folder) if path.endswith(".py")}


def find_moves(
    before: Mapping[str, Collection[str]], after: Mapping[str, Collection[str]]
) -> dict[tuple[str, str], str]:
    """Where each moved definition came from: ``(new path, qualname) -> old path``.

    ``before`` and ``after`` map each module's path to the qualified names it
    defines, in the earlier and the later step. See the module's docstring for
    when a definition counts as moved.
    """
    old_homes = _homes(before)
    moves: dict[tuple[str, str], str] = {}
    for qualname, homes in _homes(after).items():
        previous = old_homes.get(qualname, set())
        arrived = homes - previous
        if len(arrived) == 1 and len(previous) == 1 and not previous & homes:
            moves[(next(iter(arrived)), qualname)] = next(iter(previous))
    return moves


def _homes(modules: Mapping[str, Collection[str]]) -> dict[str, set[str]]:
    """The modules that define each qualified name."""
    found: dict[str, set[str]] = {}
    for path, qualnames in modules.items():
        for qualname in qualnames:
            found.setdefault(qualname, set()).add(path)
    return found
