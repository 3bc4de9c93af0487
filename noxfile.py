"""How the project is checked: read top to bottom, this is the table of contents.

Every step folder ``steps/NN_name`` gets its own sessions, generated in the
loop at the bottom:

- ``test-NN``: the tests introduced at step NN or earlier, against that step's
  ``npgrad`` (``-- --impl DIR`` tests a learner's workspace instead, ``--exercise
  N`` only the tests the README lists for exercise N). It does not install
  torch: PyTorch parity tests skip with a reason unless torch is there. The
  default ``test`` session installs it and requires them to run;
- ``typecheck-NN``: ``mypy --strict`` on that step's package and its tests;
- ``diff-NN`` (what lesson NN changes: the code first, the README last) and
  ``exercise-NN -- DIR`` (a learner's workspace; ``-- DIR --restore NAME`` puts
  one solution back).

One environment serves every step's learner sessions: ``test-NN``,
``exercise-NN`` and ``diff-NN`` run in the environment that ``learner-env``
sets up (NumPy, pytest, hypothesis, the training command's packages), and
``typecheck`` and every ``typecheck-NN`` in the one of ``typecheck-env``. nox
runs the environment's session first (``requires``), installing only when the
dependency groups changed, so ``nox -s test-01 test-05`` builds one environment,
not two.

Plain ``nox`` runs the default sessions: ``lint``, ``typecheck`` and ``test``
(every step, one process per step, in one environment), ``drift`` (neighbouring
steps agree except where a README lists a change) and ``tooling`` (the tests of
the learner and maintainer tools in ``shared/tools``). ``propagate -- NN``
carries a fix in step NN into later steps.

``nox -s train -- [options]`` trains step 08's MLP on MNIST, ``nox -s train -- --model cnn``
step 11's CNN and ``--model resnet`` step 12's ResNet (not a default session).
"""

import os
import shutil
import sys
from pathlib import Path

import nox

ROOT = Path(__file__).parent
# nox does not put this file's folder on sys.path; shared.steps is stdlib only.
sys.path.insert(0, str(ROOT))
from shared.steps import TRAINING_STEP, step_dirs  # noqa: E402

PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")
STEPS = step_dirs(ROOT / "steps")  # the same step folders every tool sees
LATEST = max(STEPS)
# One BLAS thread everywhere: on a busy 2-core machine, two threads were
# measured 4-50x slower, and results must not depend on thread count.
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}

nox.options.sessions = ["lint", "typecheck", "test", "drift", "tooling"]
nox.options.reuse_venv = "yes"


def install_groups(session: nox.Session, *groups: str) -> None:
    """Install dependency groups from pyproject.toml into the session's environment."""
    session.install(*nox.project.dependency_groups(PYPROJECT, *groups))


# --- environments shared by many sessions -------------------------------------------------
# nox gives each session its own environment. The sessions below run in one
# made by another session instead: they use no environment of their own
# (venv_backend="none"), require the session that sets the shared one up, and
# run its interpreter. The interpreter's folder is handed over here: nox runs
# every session of one invocation in this process, the required one first.

LEARNER_ENV = "learner-env"
TYPECHECK_ENV = "typecheck-env"
_shared_bin: dict[str, Path | None] = {}  # None: nox runs without environments (--no-venv)


def shared_environment(name: str, *groups: str) -> None:
    """Define the session ``name`` that sets up one environment with ``groups`` installed.

    It installs only when the environment is new or the groups' requirements
    changed (a stamp file in the environment records what was installed).
    """

    @nox.session(name=name, default=False)
    def setup(session: nox.Session) -> None:
        requirements = nox.project.dependency_groups(PYPROJECT, *groups)
        if session.venv_backend == "none":
            _shared_bin[name] = None
            return
        bin_dir = Path(session.bin)
        stamp = bin_dir.parent / "npgrad-installed.txt"
        wanted = "\n".join(requirements) + "\n"
        if stamp.is_file() and stamp.read_text(encoding="utf-8") == wanted:
            session.log(f"{', '.join(groups)}: already installed in {bin_dir.parent}")
        else:
            session.install(*requirements)
            stamp.write_text(wanted, encoding="utf-8")
        _shared_bin[name] = bin_dir

    setup.__doc__ = (
        f"The environment (dependency groups {', '.join(groups)}) that other sessions share."
    )


shared_environment(LEARNER_ENV, "test")
shared_environment(TYPECHECK_ENV, "typecheck", "reference")


def shared_python(session: nox.Session, name: str) -> str:
    """The interpreter of the shared environment ``name``; its folder goes first on PATH."""
    if name not in _shared_bin:
        session.error(f"the {name} session did not run first: run without --no-dependencies")
    bin_dir = _shared_bin[name]
    if bin_dir is None:
        return "python"
    session.env["PATH"] = os.pathsep.join([str(bin_dir), os.environ.get("PATH", "")])
    session.env["VIRTUAL_ENV"] = str(bin_dir.parent)
    return shutil.which("python", path=str(bin_dir)) or str(bin_dir / "python")


def step_test_files(step: int) -> list[str]:
    """The test modules a step introduces (``tests/test_NN_*.py``)."""
    return sorted(str(path) for path in (ROOT / "tests").glob(f"test_{step:02d}_*.py"))


def run_step_tests(
    session: nox.Session, step: int, *pytest_args: str, python: str = "python"
) -> None:
    """Run one step's test selection in its own interpreter."""
    # `--impl DIR` is passed on as `--impl=DIR`: before the plugin that defines
    # --impl is loaded, pytest takes a bare existing path such as /tmp/ws for a
    # test path and moves its rootdir there, losing the project's conftest.
    joined: list[str] = []
    for arg in pytest_args:
        if joined and joined[-1] == "--impl":
            joined[-1] = f"--impl={arg}"
        else:
            joined.append(arg)
    session.run(python, "-m", "pytest", "--step", str(step), *joined, env=ONE_THREAD)


def typecheck_step(session: nox.Session, step: int, python: str) -> None:
    """``mypy --strict`` on one step's package, its scripts and the tests that step introduces.

    The scripts are the ``.py`` files beside the package, such as step 08's ``train.py``.
    """
    session.run(
        python,
        "-m",
        "mypy",
        str(STEPS[step] / "npgrad"),
        *sorted(str(path) for path in STEPS[step].glob("*.py")),
        *step_test_files(step),
        env={"MYPYPATH": f"{STEPS[step]}:{ROOT}"},
    )


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint rules and formatting, everywhere."""
    install_groups(session, "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(venv_backend="none", requires=[TYPECHECK_ENV])
def typecheck(session: nox.Session) -> None:
    """mypy --strict on every step, then on shared, the conftests and this file."""
    python = shared_python(session, TYPECHECK_ENV)
    for step in STEPS:
        typecheck_step(session, step, python)
    latest_path = {"MYPYPATH": f"{STEPS[LATEST]}:{ROOT}"}
    mypy = (python, "-m", "mypy")
    session.run(*mypy, "shared", "tests/tooling", "conftest.py", "noxfile.py", env=latest_path)
    session.run(*mypy, "tests/conftest.py", env=latest_path)  # a second module named conftest


@nox.session
def test(session: nox.Session) -> None:
    """Every step's tests, one process per step, with PyTorch parity tests required to run."""
    install_groups(session, "test", "reference")
    session.env["NPGRAD_REQUIRE_TORCH"] = "1"
    for step in STEPS:
        run_step_tests(session, step, "-q", *session.posargs)


# The step whose train.py trains each ``--model`` (its lesson's model); the later
# steps' train.py take the earlier models too.
MODEL_STEPS = {"mlp": 11, "cnn": 11, "resnet": 12}


def model_step(args: list[str]) -> int:
    """The step whose train.py to run for ``args``: step 08 without ``--model``."""
    for index, arg in enumerate(args):
        if arg.startswith("--model="):
            return MODEL_STEPS.get(arg.partition("=")[2], max(MODEL_STEPS.values()))
        if arg == "--model":
            name = args[index + 1] if index + 1 < len(args) else ""
            return MODEL_STEPS.get(name, max(MODEL_STEPS.values()))  # its train.py says why
    return TRAINING_STEP


@nox.session(default=False)
def train(session: nox.Session) -> None:
    """Train step 08's MLP on MNIST: ``nox -s train -- --epochs 1 --plot curves.png``.

    Runs ``steps/08_training/train.py`` with the options after ``--`` (see its
    ``--help``), with the repository root on ``PYTHONPATH`` for ``shared``. With
    ``--model cnn`` it runs ``steps/11_conv/train.py``, with ``--model resnet``
    ``steps/12_resnet/train.py`` (``MODEL_STEPS``).
    """
    install_groups(session, "train")
    script = STEPS[model_step(list(session.posargs))] / "train.py"
    env = {**ONE_THREAD, "PYTHONPATH": str(ROOT)}
    session.run("python", str(script), *session.posargs, env=env)


@nox.session
def drift(session: nox.Session) -> None:
    """Neighbouring steps agree, except the changes each step's README lists (stdlib only)."""
    session.run("python", "-m", "shared.tools.drift")


@nox.session
def tooling(session: nox.Session) -> None:
    """Tests of the tooling: every step's exercise round trip, drift, propagate and diff."""
    install_groups(session, "test", "typecheck")
    session.run("python", "-m", "pytest", "--tooling", "tests/tooling", "-q", env=ONE_THREAD)


@nox.session(default=False)
def propagate(session: nox.Session) -> None:
    """Carry the uncommitted change in step NN into every later step: ``-- NN [--until MM]``."""
    session.run("python", "-m", "shared.tools.propagate", *session.posargs)


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """npgrad against hand-written NumPy and PyTorch; per-op cost; deep chains: ``-- --help``.

    One process, one BLAS thread and one torch thread for every side. Prints a summary
    with PASS/FAIL per target, writes ``out/bench.json`` and ``out/bench.png``, and exits
    non-zero when a target fails (``-- --no-fail`` to only report).
    """
    install_groups(session, "bench")
    env = {**ONE_THREAD, "PYTHONPATH": str(ROOT)}
    session.run("python", "-m", "shared.bench", *session.posargs, env=env)


def make_step_sessions(step: int) -> None:
    # The learner's sessions share one environment, the type checks another.
    @nox.session(
        name=f"exercise-{step:02d}", venv_backend="none", requires=[LEARNER_ENV], default=False
    )
    def exercise(session: nox.Session) -> None:
        # NumPy: the solution is imported to find the functions that run at import.
        python = shared_python(session, LEARNER_ENV)
        session.run(python, "-m", "shared.tools.exercise", str(step), *session.posargs)

    exercise.__doc__ = (
        f"Write {STEPS[step].name} with its new code stubbed: ``-- DIR [--force]``; "
        "``-- DIR --restore NAME`` puts one solution back."
    )
    if step != min(STEPS):

        @nox.session(
            name=f"diff-{step:02d}", venv_backend="none", requires=[LEARNER_ENV], default=False
        )
        def diff(session: nox.Session) -> None:
            python = shared_python(session, LEARNER_ENV)
            session.run(python, "-m", "shared.tools.diff", str(step))

        diff.__doc__ = (
            f"What {STEPS[step].name} changes: a summary, the code's diff, then the README's."
        )

    @nox.session(
        name=f"test-{step:02d}", venv_backend="none", requires=[LEARNER_ENV], default=False
    )
    def test_step(session: nox.Session) -> None:
        python = shared_python(session, LEARNER_ENV)
        run_step_tests(session, step, *session.posargs, python=python)

    @nox.session(
        name=f"typecheck-{step:02d}", venv_backend="none", requires=[TYPECHECK_ENV], default=False
    )
    def typecheck_one(session: nox.Session) -> None:
        typecheck_step(session, step, shared_python(session, TYPECHECK_ENV))

    test_step.__doc__ = (
        f"Tests of steps 01-{step:02d} against {STEPS[step].name}: "
        "``-- --impl DIR [--exercise N] [--new-only]``."
    )
    typecheck_one.__doc__ = f"mypy --strict on {STEPS[step].name} and its tests."


for _step in STEPS:
    make_step_sessions(_step)
