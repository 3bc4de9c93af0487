"""Carry an uncommitted fix in one step forward into every later step.

``python -m shared.tools.propagate NN`` (``nox -s propagate -- NN``) takes
``git diff HEAD`` of step NN's folder (the step's own README.md left out: it
describes that step only), rewrites its paths to each later step's folder and
applies it there. Every later step is checked first with ``git apply --check``;
if any would fail, nothing is applied, and the message names each step and
each hunk (file and line range) that does not apply, so no step is left half
patched. ``--until MM`` stops at step MM (for a fix that a later lesson
rewrote anyway). New files are carried only when git knows them: ``git add -N
FILE`` first.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from shared.steps import REPO_ROOT, step_dirs

_HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
# Header lines that carry a path; nothing in a hunk's body is ever rewritten.
_PATH_HEADERS = ("diff --git ", "--- ", "+++ ", "rename from ", "rename to ")


class PropagateError(Exception):
    """The fix cannot be carried forward; nothing was applied."""


@dataclass(frozen=True)
class FilePatch:
    """One file's part of a patch: its header lines and its hunks."""

    header: list[str]
    hunks: list[list[str]]

    def text(self, hunks: Sequence[list[str]] | None = None) -> str:
        """The patch text, with all hunks or only the given ones."""
        chosen = self.hunks if hunks is None else hunks
        return "".join(self.header) + "".join("".join(hunk) for hunk in chosen)

    @property
    def path(self) -> str:
        """The file's path (the new side, or the old side of a deletion)."""
        for line in self.header:
            if line.startswith("+++ ") and not line.startswith("+++ /dev/null"):
                return line[len("+++ b/") :].rstrip("\n")
        for line in self.header:
            if line.startswith("--- "):
                return line[len("--- a/") :].rstrip("\n")
        return self.header[0].split(" b/", 1)[-1].rstrip("\n")


def split_patch(patch: str) -> list[FilePatch]:
    """Split a ``git diff`` into its files and their hunks.

    Hunk bodies are delimited by the line counts in each ``@@`` header, so a
    removed line that itself starts with ``-- `` is never mistaken for a header.
    """
    lines = patch.splitlines(keepends=True)
    files: list[FilePatch] = []
    index = 0
    while index < len(lines):
        if not lines[index].startswith("diff --git "):
            index += 1
            continue
        header = [lines[index]]
        index += 1
        while index < len(lines) and not lines[index].startswith(("@@", "diff --git ")):
            header.append(lines[index])
            index += 1
        hunks: list[list[str]] = []
        while index < len(lines) and lines[index].startswith("@@"):
            match = _HUNK.match(lines[index])
            if match is None:
                raise PropagateError(f"cannot read the hunk header {lines[index]!r}")
            old_left = int(match.group(2) or "1")
            new_left = int(match.group(4) or "1")
            hunk = [lines[index]]
            index += 1
            while index < len(lines) and (old_left > 0 or new_left > 0):
                line = lines[index]
                hunk.append(line)
                index += 1
                if line.startswith(" "):
                    old_left, new_left = old_left - 1, new_left - 1
                elif line.startswith("-"):
                    old_left -= 1
                elif line.startswith("+"):
                    new_left -= 1
            while index < len(lines) and lines[index].startswith("\\"):
                hunk.append(lines[index])  # "\ No newline at end of file"
                index += 1
            hunks.append(hunk)
        files.append(FilePatch(header, hunks))
    return files


def retarget(files: Sequence[FilePatch], source: str, target: str) -> list[FilePatch]:
    """The same patch for another step: ``steps/NN_x/`` becomes ``steps/MM_y/`` in headers."""
    moved: list[FilePatch] = []
    for file in files:
        header = [
            line.replace(f"/{source}/", f"/{target}/").replace(f" {source}/", f" {target}/")
            if line.startswith(_PATH_HEADERS)
            else line
            for line in file.header
        ]
        moved.append(FilePatch(header, file.hunks))
    return moved


def _git(repo: Path, *args: str, input_text: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args], cwd=repo, input=input_text, capture_output=True, text=True, check=False
    )


def _apply(repo: Path, patch: str, *flags: str) -> subprocess.CompletedProcess[str]:
    with tempfile.NamedTemporaryFile("w", suffix=".patch", delete=False) as handle:
        handle.write(patch)
    try:
        return _git(repo, "apply", "--whitespace=nowarn", *flags, handle.name)
    finally:
        Path(handle.name).unlink()


def _hunk_range(hunk: list[str]) -> str:
    match = _HUNK.match(hunk[0])
    assert match is not None
    start, length = int(match.group(1)), int(match.group(2) or "1")
    return f"lines {start}-{start + max(length, 1) - 1}"


def failing_hunks(repo: Path, files: Sequence[FilePatch], folder: str = "") -> list[str]:
    """Each hunk that does not apply on its own, as ``file, lines A-B`` (relative to ``folder``)."""
    failing: list[str] = []
    for file in files:
        path = file.path.removeprefix(folder)
        if not file.hunks:
            if _apply(repo, file.text(), "--check").returncode != 0:
                failing.append(f"{path} (the file itself: added, removed or renamed)")
            continue
        for hunk in file.hunks:
            if _apply(repo, file.text([hunk]), "--check").returncode != 0:
                failing.append(f"{path}, {_hunk_range(hunk)} ({hunk[0].strip()})")
    return failing


def uncommitted_patch(repo: Path, folder: str) -> str:
    """``git diff HEAD`` of one step folder, without its README."""
    result = _git(
        repo,
        "diff",
        "HEAD",
        "--no-color",
        "--no-ext-diff",
        "--no-renames",
        "--src-prefix=a/",
        "--dst-prefix=b/",
        "--",
        f"steps/{folder}/",
        f":(exclude)steps/{folder}/README.md",
    )
    if result.returncode != 0:
        raise PropagateError(f"git diff failed: {result.stderr.strip()}")
    return result.stdout


def propagate(step: int, repo: Path = REPO_ROOT, until: int | None = None) -> list[str]:
    """Apply step ``step``'s uncommitted change to every later step; return their folders.

    Raises ``PropagateError`` (having applied nothing) when the change is empty
    or does not apply to some later step.
    """
    steps = step_dirs(repo / "steps")
    if step not in steps:
        raise PropagateError(f"there is no step {step:02d} in {repo / 'steps'}")
    source = steps[step].name
    later = [
        folder.name
        for number, folder in steps.items()
        if number > step and (until is None or number <= until)
    ]
    files = split_patch(uncommitted_patch(repo, source))
    if not files:
        raise PropagateError(
            f"steps/{source} has no uncommitted change to carry forward (git diff HEAD is "
            "empty; new files count only after `git add -N`)"
        )
    problems: list[str] = []
    for target in later:
        patch = "".join(file.text() for file in retarget(files, source, target))
        check = _apply(repo, patch, "--check")
        if check.returncode != 0:
            moved = retarget(files, source, target)
            hunks = failing_hunks(repo, moved, f"steps/{target}/") or [check.stderr.strip()]
            problems.append(f"steps/{target}: " + "; ".join(hunks))
    if problems:
        listed = "\n  ".join(problems)
        raise PropagateError(
            f"the change in steps/{source} does not apply to every later step, so nothing was "
            f"applied. Failing hunks:\n  {listed}\n"
            "Edit those steps by hand (and list deliberate differences in their README), or "
            "carry the change only up to the step before with --until."
        )
    applied: list[str] = []
    for target in later:
        patch = "".join(file.text() for file in retarget(files, source, target))
        result = _apply(repo, patch)
        if result.returncode != 0:  # checked above, so only a race with another editor
            for done in reversed(applied):
                undo = "".join(file.text() for file in retarget(files, source, done))
                _apply(repo, undo, "--reverse")
            raise PropagateError(f"applying to steps/{target} failed: {result.stderr.strip()}")
        applied.append(target)
    return applied


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m shared.tools.propagate NN [--until MM] [--repo DIR]``."""
    parser = argparse.ArgumentParser(
        prog="nox -s propagate --",
        description="Carry the uncommitted change in step NN into every later step.",
    )
    parser.add_argument("step", type=int)
    parser.add_argument("--until", type=int, default=None, help="the last step to change")
    parser.add_argument("--repo", type=Path, default=REPO_ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        applied = propagate(args.step, args.repo.resolve(), args.until)
    except PropagateError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if not applied:
        print(f"step {args.step:02d} is the last step: nothing to carry forward")
        return 0
    print(f"carried the change in step {args.step:02d} into: {', '.join(applied)}")
    print("now run `nox -s drift` and the tests of those steps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
