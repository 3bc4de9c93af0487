"""Does each exercise of a step have a test that reaches it? Checked by running the tests.

``python -m shared.tools.roundtrip NN`` writes step NN's workspace, runs the
step's tests against it and reads the failures from ``--junitxml``. A failure
counts only if its message is a stub's (``step NN: implement <qualname>
(<file>)``); anything else (an ImportError, a TypeError, a collection error) is
reported as unexpected. One stub can hide another (nothing runs after
``Tensor.__init__`` raises), so the check peels: each function a failure
names is restored from the solution and the tests run again, until no test
fails. A function still stubbed then is one no test reaches. Tests introduced
at step NN are tried first (``--new-only``), then the whole selection, so the
report also tells which exercises only an earlier step's tests reach.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from shared.steps import REPO_ROOT, STEPS_DIR
from shared.tools.exercise import Plan, restore, write_workspace

# A failing hypothesis test makes hypothesis import libcst, which (where it is
# installed) warns about mypy_extensions.TypedDict; the suite turns warnings
# into errors, which would end the run with an INTERNALERROR instead of the
# test's own failure.
PYTEST_FLAGS = (
    "-q",
    "-p",
    "no:randomly",
    "-p",
    "no:cacheprovider",
    "-W",
    "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning",
)


@dataclass(frozen=True)
class Failure:
    """One failed or errored test as junit reports it."""

    test: str
    message: str
    text: str = ""


@dataclass
class TestRun:
    """The outcome of one pytest run."""

    returncode: int
    tests: list[str]
    failures: list[Failure]
    output: str


def run_tests(
    step: int,
    workspace: Path,
    new_only: bool = False,
    extra: Sequence[str] = (),
) -> TestRun:
    """Run step ``step``'s selection against ``workspace`` in a fresh interpreter.

    It uses the "tooling" hypothesis profile: fine for finding which stubs the
    tests reach; the thorough runs are the test sessions' own.
    """
    with tempfile.TemporaryDirectory() as scratch:
        junit = Path(scratch) / "junit.xml"
        command = [
            sys.executable,
            "-m",
            "pytest",
            "--step",
            str(step),
            # --impl=DIR, not --impl DIR: before the plugin is loaded pytest takes
            # a bare existing path for a test path, which moves its rootdir there.
            f"--impl={workspace}",
            f"--junitxml={junit}",
            *PYTEST_FLAGS,
            *(["--new-only"] if new_only else []),
            *extra,
        ]
        env = {
            **os.environ,
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            # See the "tooling" profile in shared.testing.plugin: no shrinking, few examples.
            "NPGRAD_HYPOTHESIS_PROFILE": "tooling",
        }
        result = subprocess.run(
            command, cwd=REPO_ROOT, capture_output=True, text=True, env=env, check=False
        )
        tests: list[str] = []
        failures: list[Failure] = []
        if junit.exists():
            for case in ElementTree.parse(junit).iter("testcase"):
                test = f"{case.get('classname', '')}::{case.get('name', '')}"
                tests.append(test)
                for outcome in case:
                    if outcome.tag in ("failure", "error"):
                        message = outcome.get("message") or ""
                        failures.append(Failure(test, message, outcome.text or message))
    return TestRun(result.returncode, tests, failures, result.stdout + result.stderr)


def stub_pattern(step: int) -> re.Pattern[str]:
    """Matches a stub's message and captures the qualified name it names."""
    return re.compile(rf"step {step:02d}: implement (\S+) \(\S+\)")


# The last line of each traceback in a report: "E   TypeError: ..." or, inside an
# exception group, "    | TypeError: ...".
_EXCEPTION_LINE = re.compile(r"^[\sE|+]*([A-Za-z_][\w.]*(?:Error|Exception)): ", re.MULTILINE)


def stub_names(failure: Failure, pattern: re.Pattern[str]) -> list[str] | None:
    """The stubs a failure reports, or None when anything else went wrong.

    A stub's ``NotImplementedError`` is a ``RuntimeError``, so a test expecting
    ``pytest.raises(RuntimeError, match=...)`` reports it as a regex mismatch
    that quotes the stub's message: that counts as the stub's failure too. An
    exception group (hypothesis found several distinct failures) counts when
    every exception in it is a stub's.
    """
    match = pattern.search(failure.message)
    if match is not None:
        return [match.group(1)]
    if failure.message.startswith(("ExceptionGroup", "BaseExceptionGroup")):
        kinds = {kind for kind in _EXCEPTION_LINE.findall(failure.text)}
        kinds = {kind for kind in kinds if not kind.endswith("ExceptionGroup")}
        names = [found.group(1) for found in pattern.finditer(failure.text)]
        if names and kinds <= {"NotImplementedError"}:
            return names
    return None


@dataclass
class Coverage:
    """Which test first reached each exercise, and what went wrong on the way."""

    plan: Plan  # the workspace's: its step and its exercises
    reached_by_new: dict[str, str] = field(default_factory=dict)
    reached_by_earlier: dict[str, str] = field(default_factory=dict)
    unexpected: list[Failure] = field(default_factory=list)
    runs: int = 0
    first: TestRun | None = None  # the learner's first run: all stubs, this step's tests

    @property
    def exercises(self) -> list[str]:
        """The qualified names of the exercises, in the plan's order."""
        return [exercise.qualname for exercise in self.plan.exercises]

    @property
    def unreached(self) -> list[str]:
        """Exercises no test reached."""
        reached = self.reached_by_new.keys() | self.reached_by_earlier.keys()
        return [name for name in self.exercises if name not in reached]


def peel(workspace: Path, coverage: Coverage, new_only: bool) -> None:
    """Run, restore what the failures name, repeat: until no new exercise is named."""
    plan = coverage.plan
    pattern = stub_pattern(plan.step)
    found = coverage.reached_by_new if new_only else coverage.reached_by_earlier
    while True:
        run = run_tests(plan.step, workspace, new_only=new_only)
        coverage.runs += 1
        if coverage.first is None:
            coverage.first = run
        named: dict[str, str] = {}
        for failure in run.failures:
            names = stub_names(failure, pattern)
            if names is None:
                # Only the first run's count. In later rounds the workspace mixes
                # stubs and solutions, and a stub that should have restored global
                # state (a context manager's __exit__, say) can fail later tests: a
                # side effect, not a finding.
                if run is coverage.first:
                    coverage.unexpected.append(failure)
                continue
            for name in names:
                named.setdefault(name, failure.test)
        if run.returncode not in (0, 1):  # usage error, internal error, nothing collected
            coverage.unexpected.append(Failure("pytest", run.output[-2000:]))
        fresh = {name: test for name, test in named.items() if name in coverage.unreached}
        if not fresh:
            return
        found.update(fresh)
        restore(workspace, plan.step, fresh, plan=plan)


def check_coverage(step: int, workspace: Path, steps_dir: Path = STEPS_DIR) -> Coverage:
    """Write the workspace, then peel with step NN's own tests, then with all of them.

    Leaves ``workspace`` with only the unreached exercises still stubbed; the
    returned coverage holds the workspace's plan.
    """
    coverage = Coverage(write_workspace(step, workspace, force=True, steps_dir=steps_dir))
    peel(workspace, coverage, new_only=True)
    if coverage.unreached:
        peel(workspace, coverage, new_only=False)
    return coverage


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m shared.tools.roundtrip NN``: which test reaches each exercise."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("step", type=int)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        coverage = check_coverage(args.step, Path(scratch) / "workspace")
    print(f"step {args.step:02d}: {len(coverage.exercises)} exercises, {coverage.runs} test runs")
    for name in coverage.exercises:
        if name in coverage.reached_by_new:
            print(f"  {name}: {coverage.reached_by_new[name]}")
        elif name in coverage.reached_by_earlier:
            test = coverage.reached_by_earlier[name]
            print(f"  {name}: only an earlier step's test reaches it: {test}")
        else:
            print(f"  {name}: NO TEST REACHES IT")
    for failure in coverage.unexpected:
        print(f"  unexpected failure: {failure.test}: {failure.message[:300]}")
    return 1 if coverage.unreached or coverage.unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
