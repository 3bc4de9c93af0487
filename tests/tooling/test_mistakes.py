"""The common mistakes each lesson lists: applied to the solution, each fails its test as told.

A mistake is a patch ``tests/tooling/mistakes/NN_slug.patch``: three header lines
(``# mistake:``, ``# test:``, ``# message:``), then a unified diff against the
step folder (``a/npgrad/...``, ``b/npgrad/...``). The test copies step NN's
``npgrad`` and the scripts beside it (``train.py``) into a workspace, applies
the patch with ``git apply``, runs the named test with ``--step NN --impl
WORKSPACE`` and checks that it fails and that its output holds the message, so
the lessons' catalogue of mistakes stays true.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from shared.steps import REPO_ROOT, shown, step_dirs

pytestmark = pytest.mark.tooling

MISTAKES_DIR = Path(__file__).parent / "mistakes"
PATCHES = sorted(MISTAKES_DIR.glob("*.patch"))
_NAME = re.compile(r"^(\d{2})_[a-z0-9_]+\.patch$")
_HEADER_KEYS = ("mistake", "test", "message")
_TEST_ID = re.compile(r"^tests/test_\d{2}_\w+\.py::\w+(\[[^\]]*\])?$")


class MalformedPatchError(ValueError):
    """A mistake patch whose name or header does not follow the format."""


@dataclass(frozen=True)
class Mistake:
    """One mistake patch: what it is, which step, which test catches it and how."""

    path: Path
    step: int
    description: str
    test: str
    message: str


def read_mistake(path: Path) -> Mistake:
    """Parse a patch's name and its three header lines; raise MalformedPatchError if wrong."""
    expected = (
        "a mistake patch is named NN_slug.patch and starts with three lines:\n"
        "  # mistake: <what the learner did>\n"
        "  # test: tests/test_NN_name.py::test_name\n"
        "  # message: <text the failing test prints>\n"
        "then a unified diff against the step folder (a/npgrad/..., b/npgrad/...)"
    )
    name = _NAME.match(path.name)
    if name is None:
        raise MalformedPatchError(f"{shown(path)}: bad file name; {expected}")
    lines = path.read_text(encoding="utf-8").splitlines()
    fields: dict[str, str] = {}
    for index, key in enumerate(_HEADER_KEYS):
        line = lines[index] if index < len(lines) else ""
        prefix = f"# {key}:"
        if not line.startswith(prefix) or not line[len(prefix) :].strip():
            raise MalformedPatchError(
                f"{shown(path)}: line {index + 1} should be '{prefix} ...', "
                f"not {line!r}; {expected}"
            )
        fields[key] = line[len(prefix) :].strip()
    if not _TEST_ID.match(fields["test"]):
        raise MalformedPatchError(
            f"{shown(path)}: '# test: {fields['test']}' is not a test id; {expected}"
        )
    if not any(line.startswith("--- a/") for line in lines[3:]):
        raise MalformedPatchError(f"{shown(path)}: no diff after the header; {expected}")
    step = int(name.group(1))
    if step not in step_dirs():
        raise MalformedPatchError(f"{shown(path)}: there is no step {step:02d}")
    return Mistake(path, step, fields["mistake"], fields["test"], fields["message"])


def _apply(mistake: Mistake, workspace: Path) -> None:
    step = step_dirs()[mistake.step]
    shutil.copytree(step / "npgrad", workspace / "npgrad")
    for script in step.glob("*.py"):  # such as step 08's train.py, which a patch may change
        shutil.copy2(script, workspace / script.name)
    applied = subprocess.run(
        ["git", "apply", "--unidiff-zero", str(mistake.path)],
        cwd=workspace,
        capture_output=True,
        text=True,
        check=False,
    )
    assert applied.returncode == 0, (
        f"{shown(mistake.path)} does not apply to step {mistake.step:02d}'s npgrad: "
        f"{applied.stderr}"
    )


def _run_test(mistake: Mistake, workspace: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--step",
            str(mistake.step),
            f"--impl={workspace}",
            "-q",
            "-p",
            "no:cacheprovider",
            # the full message: pytest shortens long assertion lines otherwise
            "-vv",
            mistake.test,
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "OPENBLAS_NUM_THREADS": "1",
            "NPGRAD_HYPOTHESIS_PROFILE": "tooling",
        },
        check=False,
    )


@pytest.mark.parametrize("patch", PATCHES, ids=[path.stem for path in PATCHES])
def test_mistake_fails_its_test_with_its_message(patch: Path, tmp_path: Path) -> None:
    mistake = read_mistake(patch)
    workspace = tmp_path / "workspace"
    _apply(mistake, workspace)
    result = _run_test(mistake, workspace)
    output = result.stdout + result.stderr
    assert result.returncode == 1, (
        f"{mistake.test} should fail on the mistake '{mistake.description}' "
        f"(exit code {result.returncode}):\n{output[-3000:]}"
    )
    assert "1 failed" in output, f"{mistake.test} did not run exactly one test:\n{output[-3000:]}"
    # Only the error lines (pytest's "E   ..."): the traceback also shows the test's
    # source, which holds the message whether or not the failure printed it. A long
    # message may be wrapped across lines: compare with whitespace collapsed.
    errors = " ".join(line[1:] for line in output.splitlines() if line.startswith("E "))
    assert " ".join(mistake.message.split()) in " ".join(errors.split()), (
        f"{mistake.test} failed without the message {mistake.message!r}:\n{output[-3000:]}"
    )


def test_every_patch_has_a_well_formed_header() -> None:
    """Each patch names an existing step and a test id; the catalogue is not empty."""
    assert PATCHES, f"no mistake patches in {shown(MISTAKES_DIR)}"
    for patch in PATCHES:
        read_mistake(patch)


@pytest.mark.parametrize(
    ("name", "text", "complaint"),
    [
        ("1_bad.patch", "# mistake: x\n# test: t\n# message: m\n--- a/x\n", "bad file name"),
        ("01_no_header.patch", "--- a/npgrad/x.py\n", "line 1 should be '# mistake: ...'"),
        ("01_no_message.patch", "# mistake: x\n# test: tests/test_01_a.py::test_b\n", "line 3"),
        (
            "01_bad_test.patch",
            "# mistake: x\n# test: test_b\n# message: m\n--- a/npgrad/x.py\n",
            "is not a test id",
        ),
        (
            "01_no_diff.patch",
            "# mistake: x\n# test: tests/test_01_a.py::test_b\n# message: m\n",
            "no diff after the header",
        ),
    ],
)
def test_a_malformed_patch_is_reported_clearly(
    name: str, text: str, complaint: str, tmp_path: Path
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(MalformedPatchError, match=re.escape(complaint)) as raised:
        read_mistake(path)
    assert "# message: <text the failing test prints>" in str(raised.value)
