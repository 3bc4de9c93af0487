"""What one lesson changes: the previous step's folder against this one's.

``python -m shared.tools.diff NN`` (``nox -s diff-NN``) prints a summary (each
file added, removed or changed, with its added and removed line counts), then
the whole change as a unified diff in the style of ``diff -ruN``: an added file
appears as a diff from ``/dev/null``, so its full text is shown. The code comes
first (Python files, then any other file), the README's change last, so the
lesson's prose does not push the code off the screen. Caches such as
``__pycache__`` are ignored.

When functions, classes or methods moved from one module to another (see
``shared.tools.source.find_moves``), the summary says so per pair of modules,
with how many moved unchanged and which changed on the way: the diff itself
shows a move only as lines removed from one file and added to another.
"""

from __future__ import annotations

import argparse
import difflib
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from shared.steps import STEPS_DIR, previous_step_dir, shown, step_dir
from shared.tools.source import Definition, find_moves, step_files, step_modules


@dataclass(frozen=True)
class FileChange:
    """One file's change between two step folders."""

    path: str
    status: str  # "added", "removed" or "changed"
    added: int
    removed: int
    diff: list[str]


@dataclass(frozen=True)
class MovedDefinitions:
    """The definitions that moved from one module to another, split by whether they changed."""

    old_path: str
    new_path: str
    unchanged: tuple[str, ...]
    changed: tuple[str, ...]

    def describe(self) -> str:
        """One summary line: where they moved, how many, and the ones that changed."""
        count = len(self.unchanged) + len(self.changed)
        changed = f"; changed: {', '.join(self.changed)}" if self.changed else ""
        return (
            f"  moved    {count} definition(s) {self.old_path} -> {self.new_path}: "
            f"{len(self.unchanged)} unchanged{changed}\n"
        )


def moved_definitions(before: Path, after: Path) -> list[MovedDefinitions]:
    """The definitions that moved between modules from ``before`` to ``after``.

    Grouped by (old module, new module), each in source order; empty when a
    module of either folder does not parse (the diff is still worth showing).
    """
    try:
        old = {path: module.definitions() for path, module in step_modules(before).items()}
        new = {path: module.definitions() for path, module in step_modules(after).items()}
    except SyntaxError:
        return []
    moves = find_moves(old, new)
    groups: dict[tuple[str, str], tuple[list[str], list[str]]] = {}
    for new_path, definitions in new.items():
        for qualname, definition in definitions.items():
            old_path = moves.get((new_path, qualname))
            if old_path is None:
                continue
            previous: Definition = old[old_path][qualname]
            unchanged, changed = groups.setdefault((old_path, new_path), ([], []))
            (unchanged if previous.text == definition.text else changed).append(qualname)
    return [
        MovedDefinitions(old_path, new_path, tuple(unchanged), tuple(changed))
        for (old_path, new_path), (unchanged, changed) in sorted(groups.items())
    ]


def _read_lines(path: Path) -> list[str] | None:
    """The file's lines, or None for a file that is not UTF-8 text."""
    try:
        return path.read_text(encoding="utf-8").splitlines(keepends=True)
    except UnicodeDecodeError:
        return None


def display_order(path: str) -> tuple[int, str]:
    """Where a file's change is shown: Python code, then other files, then Markdown."""
    suffix = Path(path).suffix
    return (0 if suffix == ".py" else 2 if suffix == ".md" else 1, path)


def compare_folders(before: Path, after: Path) -> list[FileChange]:
    """Every file that differs between two step folders: code first, the README last."""
    old_files, new_files = set(step_files(before)), set(step_files(after))
    changes: list[FileChange] = []
    for path in sorted(old_files | new_files, key=display_order):
        old_path, new_path = before / path, after / path
        old_lines = _read_lines(old_path) if path in old_files else []
        new_lines = _read_lines(new_path) if path in new_files else []
        status = (
            "added" if path not in old_files else "removed" if path not in new_files else "changed"
        )
        if old_lines is None or new_lines is None:  # binary: say so, like diff does
            if status == "changed" and old_path.read_bytes() == new_path.read_bytes():
                continue
            note = f"Binary files {shown(old_path)} and {shown(new_path)} differ\n"
            changes.append(FileChange(path, status, 0, 0, [note]))
            continue
        if old_lines == new_lines and status == "changed":
            continue
        diff = list(
            difflib.unified_diff(
                old_lines,
                new_lines,
                fromfile=shown(old_path) if path in old_files else "/dev/null",
                tofile=shown(new_path) if path in new_files else "/dev/null",
            )
        )
        added = sum(1 for line in diff[2:] if line.startswith("+"))
        removed = sum(1 for line in diff[2:] if line.startswith("-"))
        changes.append(FileChange(path, status, added, removed, diff))
    return changes


def render(
    before: Path,
    after: Path,
    changes: Sequence[FileChange],
    moves: Sequence[MovedDefinitions] = (),
) -> Iterator[str]:
    """The summary (files, then moved definitions), then the diff, as lines of text."""
    yield f"{shown(before)} -> {shown(after)}\n"
    if not changes:
        yield "no differences\n"
        return
    width = max(len(change.path) for change in changes)
    for change in changes:
        yield f"  {change.status:<8} {change.path:<{width}}  +{change.added} -{change.removed}\n"
    counts = {status: sum(c.status == status for c in changes) for status in ("added", "removed")}
    changed = len(changes) - counts["added"] - counts["removed"]
    yield (
        f"{len(changes)} file(s): {counts['added']} added, {counts['removed']} removed, "
        f"{changed} changed; +{sum(c.added for c in changes)} -{sum(c.removed for c in changes)}"
        " lines\n"
    )
    for moved in moves:
        yield moved.describe()
    yield "\n"
    for change in changes:
        for line in change.diff:
            yield line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m shared.tools.diff NN``: the change from the previous step to step NN."""
    parser = argparse.ArgumentParser(description="Show what step NN changes.")
    parser.add_argument("step", type=int)
    parser.add_argument("--steps-dir", type=Path, default=STEPS_DIR)
    args = parser.parse_args(argv)
    try:
        after = step_dir(args.step, args.steps_dir)
    except LookupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    before = previous_step_dir(args.step, args.steps_dir)
    if before is None:
        print(f"error: step {args.step:02d} is the first step: nothing to diff", file=sys.stderr)
        return 2
    try:
        changes = compare_folders(before, after)
        sys.stdout.writelines(render(before, after, changes, moved_definitions(before, after)))
        sys.stdout.flush()
    except BrokenPipeError:  # piped into `head` or a pager that quit: not an error
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (the interpreter closes it at exit)
    return 0


if __name__ == "__main__":
    sys.exit(main())
