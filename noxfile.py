"""How the project is checked: read top to bottom, this is the table of contents.

Every step folder ``steps/NN_name`` gets its own sessions, generated in the
loop at the bottom:

- ``test-NN``: the tests introduced at step NN or earlier, against that step's
  ``npgrad`` (``-- --impl DIR`` tests a learner's workspace instead). It does
  not install torch: PyTorch parity tests skip with a reason unless torch is
  there. The default ``test`` session installs it and requires them to run;
- ``typecheck-NN``: ``mypy --strict`` on that step's package and its tests.

Plain ``nox`` runs the default sessions: ``lint``, ``typecheck`` and ``test``
(every step, one process per step, in one environment).
"""

from pathlib import Path

import nox

ROOT = Path(__file__).parent
PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")
STEPS = {
    int(path.name[:2]): path
    for path in sorted((ROOT / "steps").iterdir())
    if path.is_dir() and path.name[:2].isdigit()
}
LATEST = max(STEPS)
# One BLAS thread everywhere: on a busy 2-core machine, two threads were
# measured 4-50x slower, and results must not depend on thread count.
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

nox.options.sessions = ["lint", "typecheck", "test"]
nox.options.reuse_venv = "yes"


def install_groups(session: nox.Session, *groups: str) -> None:
    """Install dependency groups from pyproject.toml into the session's environment."""
    session.install(*nox.project.dependency_groups(PYPROJECT, *groups))


def step_test_files(step: int) -> list[str]:
    """The test modules a step introduces (``tests/test_NN_*.py``)."""
    return sorted(str(path) for path in (ROOT / "tests").glob(f"test_{step:02d}_*.py"))


def run_step_tests(session: nox.Session, step: int, *pytest_args: str) -> None:
    """Run one step's test selection in its own interpreter."""
    session.run("python", "-m", "pytest", "--step", str(step), *pytest_args, env=ONE_THREAD)


def typecheck_step(session: nox.Session, step: int) -> None:
    """``mypy --strict`` on one step's package and the tests that step introduces."""
    session.run(
        "mypy",
        str(STEPS[step] / "npgrad"),
        *step_test_files(step),
        env={"MYPYPATH": f"{STEPS[step]}:{ROOT}"},
    )


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint rules and formatting, everywhere."""
    install_groups(session, "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on every step, then on shared, the conftests and this file."""
    install_groups(session, "typecheck", "reference")
    for step in STEPS:
        typecheck_step(session, step)
    latest_path = {"MYPYPATH": f"{STEPS[LATEST]}:{ROOT}"}
    session.run("mypy", "shared", "conftest.py", "noxfile.py", env=latest_path)
    session.run("mypy", "tests/conftest.py", env=latest_path)  # a second module named conftest


@nox.session
def test(session: nox.Session) -> None:
    """Every step's tests, one process per step, with PyTorch parity tests required to run."""
    install_groups(session, "test", "reference")
    session.env["NPGRAD_REQUIRE_TORCH"] = "1"
    for step in STEPS:
        run_step_tests(session, step, "-q", *session.posargs)


def make_step_sessions(step: int) -> None:
    @nox.session(name=f"test-{step:02d}", default=False)
    def test_step(session: nox.Session) -> None:
        install_groups(session, "test")
        run_step_tests(session, step, *session.posargs)

    @nox.session(name=f"typecheck-{step:02d}", default=False)
    def typecheck_one(session: nox.Session) -> None:
        install_groups(session, "typecheck", "reference")
        typecheck_step(session, step)

    test_step.__doc__ = f"Tests of steps 01-{step:02d} against {STEPS[step].name}."
    typecheck_one.__doc__ = f"mypy --strict on {STEPS[step].name} and its tests."


for _step in STEPS:
    make_step_sessions(_step)
