"""Neighbouring steps agree, except where the later step's README says they differ.

``python -m shared.tools.drift`` (``nox -s drift``): for every pair of
neighbouring steps, each top-level function, class and method present in
both (same module file, same qualified name; see ``shared.tools.source`` for
what is compared) must have the same source text, unless the later step's
README names it under the heading ``## Changed from the previous step``. A name
is written in backticks anywhere in that section, such as `Tensor.__mul__`
or `multiply_back0`; a module prefix is accepted too (`tensor.Tensor.__mul__`,
`npgrad.tensor.Tensor.__mul__`). Exits 1 naming each unlisted difference and
how to fix it. A listed name that is present in both steps but identical is
reported as a note only.

A definition that moved to another module (see ``shared.tools.source.find_moves``:
``npgrad/ops.py`` split into ``npgrad/ops/``, say) is compared with its text in
the module it left, so a move does not hide a change: a moved definition that
differs must be listed like any other (by its name, or with either module in
front). A move that is ambiguous (a name that two old modules defined, or that
lands in two new ones) is not guessed: the definition counts as new.
"""

from __future__ import annotations

import argparse
import itertools
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from shared.steps import STEPS_DIR, shown, step_dirs
from shared.tools.source import Definition, find_moves, step_modules

CHANGED_HEADING = "## Changed from the previous step"


@dataclass(frozen=True)
class Drift:
    """A definition that differs between two neighbouring steps without being listed."""

    before: Path
    after: Path
    path: str
    qualname: str
    moved_from: str | None = None  # the module it left, for a moved definition

    def describe(self) -> str:
        """What differs and the two ways to fix it."""
        readme = shown(self.after / "README.md")
        moved = f" (moved from {self.moved_from})" if self.moved_from is not None else ""
        return (
            f"{self.after.name}: {self.path}: {self.qualname}{moved} differs from "
            f"{self.before.name}\n"
            f"    fix: make the two match (fix it in the earliest step, then "
            f"`nox -s propagate -- {self.before.name[:2]}`), or, if the change is deliberate, "
            f"list `{self.qualname}` with a reason under '{CHANGED_HEADING}' in {readme}"
        )


@dataclass(frozen=True)
class Note:
    """A README entry naming a definition that did not change."""

    step: Path
    name: str

    def describe(self) -> str:
        """The note, with what to do about it."""
        return (
            f"note: {shown(self.step / 'README.md')} lists `{self.name}` under "
            f"'{CHANGED_HEADING}', but it is identical in the previous step"
        )


def listed_changes(readme: Path) -> tuple[set[str], set[str]]:
    """The names in a README's ``## Changed from the previous step`` section.

    Returns every backticked name in the section (each one excuses a change),
    and the names that open a bullet (``- `a`, `b`: why``), which are what the
    section lists: only those are worth a note when nothing changed.
    """
    if not readme.is_file():
        return set(), set()
    names: set[str] = set()
    leading: set[str] = set()
    inside = False
    for line in readme.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            inside = line.strip().lower() == CHANGED_HEADING.lower()
            continue
        if not inside:
            continue
        names.update(_clean(name) for name in re.findall(r"`([^`]+)`", line))
        bullet = _BULLET_NAMES.match(line)
        if bullet:
            leading.update(_clean(name) for name in re.findall(r"`([^`]+)`", bullet.group(1)))
    return names, leading


# A bullet that opens with backticked names: "- `a`, `b` and `c`: the reason".
_BULLET_NAMES = re.compile(r"^\s*[-*]\s+((?:`[^`]+`(?:\s*,\s*|\s+and\s+|\s*)?)+)")


def _clean(name: str) -> str:
    return name.strip().removesuffix("()")


def _aliases(path: str, qualname: str) -> set[str]:
    """Every way a README may name one definition: bare, or with its module in front."""
    module = path.removesuffix(".py").replace("/", ".")
    names = {qualname, f"{module}.{qualname}"}
    if module.endswith(".__init__"):
        names.add(f"{module.removesuffix('.__init__')}.{qualname}")
    parts = module.split(".")
    names.update(f"{'.'.join(parts[start:])}.{qualname}" for start in range(len(parts)))
    return names


def compare_steps(before: Path, after: Path) -> tuple[list[Drift], list[Note]]:
    """The unlisted differences between two neighbouring steps, and notes on their README.

    Each definition is compared with its text in the same module of the earlier
    step or, if it moved there from another module, with its text in that one.
    """
    listed, leading = listed_changes(after / "README.md")
    old_definitions: dict[str, dict[str, Definition]] = {
        path: module.definitions() for path, module in step_modules(before).items()
    }
    new_definitions: dict[str, dict[str, Definition]] = {
        path: module.definitions() for path, module in step_modules(after).items()
    }
    moves = find_moves(old_definitions, new_definitions)
    drifts: list[Drift] = []
    unchanged_listed: set[str] = set()
    for path, definitions in new_definitions.items():
        for qualname, definition in definitions.items():
            moved_from = moves.get((path, qualname))
            previous = old_definitions.get(moved_from or path, {}).get(qualname)
            if previous is None:
                continue
            mentioned = _aliases(path, qualname) & listed
            if moved_from is not None:
                mentioned |= _aliases(moved_from, qualname) & listed
            if previous.text == definition.text:
                unchanged_listed |= mentioned
            elif not mentioned:
                drifts.append(Drift(before, after, path, qualname, moved_from))
    notes = [Note(after, name) for name in sorted(unchanged_listed & leading)]
    return drifts, notes


def check_drift(steps_dir: Path = STEPS_DIR) -> tuple[list[Drift], list[Note], int]:
    """Compare every pair of neighbouring steps: drifts, notes and the number of pairs."""
    folders = list(step_dirs(steps_dir).values())
    drifts: list[Drift] = []
    notes: list[Note] = []
    for before, after in itertools.pairwise(folders):
        pair_drifts, pair_notes = compare_steps(before, after)
        drifts += pair_drifts
        notes += pair_notes
    return drifts, notes, max(len(folders) - 1, 0)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m shared.tools.drift [--steps-dir DIR]``: exit 1 on unlisted differences."""
    parser = argparse.ArgumentParser(description="Check that neighbouring steps do not drift.")
    parser.add_argument("--steps-dir", type=Path, default=STEPS_DIR)
    args = parser.parse_args(argv)
    drifts, notes, pairs = check_drift(args.steps_dir)
    for note in notes:
        print(note.describe())
    for drift in drifts:
        print(drift.describe())
    if drifts:
        print(f"drift: {len(drifts)} unlisted difference(s) in {pairs} pair(s) of steps")
        return 1
    print(f"drift: none; {pairs} pair(s) of neighbouring steps checked")
    return 0


if __name__ == "__main__":
    sys.exit(main())
