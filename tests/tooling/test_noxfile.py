"""The noxfile: every step's learner sessions share one environment, the type checks another."""

from __future__ import annotations

import importlib
import sys

import nox
import pytest

from shared.steps import REPO_ROOT, step_dirs

pytestmark = pytest.mark.tooling

STEPS = sorted(step_dirs())


def _sessions() -> dict[str, nox._decorators.Func]:
    """The sessions the noxfile defines, by name (importing it registers them)."""
    sys.path.insert(0, str(REPO_ROOT))
    try:
        noxfile = importlib.import_module("noxfile")
    finally:
        sys.path.remove(str(REPO_ROOT))
    sessions = dict(nox.registry.get())
    assert noxfile.LEARNER_ENV in sessions
    return sessions


def test_learner_sessions_of_every_step_share_one_environment() -> None:
    sessions = _sessions()
    learner = [f"test-{step:02d}" for step in STEPS] + [f"exercise-{step:02d}" for step in STEPS]
    learner += [f"diff-{step:02d}" for step in STEPS[1:]]
    for name in learner:
        func = sessions[name]
        # No environment of its own: it runs in the one learner-env sets up.
        assert func.venv_backend == "none", name
        assert list(func.requires) == ["learner-env"], name
    checks = ["typecheck"] + [f"typecheck-{step:02d}" for step in STEPS]
    for name in checks:
        assert sessions[name].venv_backend == "none", name
        assert list(sessions[name].requires) == ["typecheck-env"], name
    for name in ("learner-env", "typecheck-env"):
        assert sessions[name].venv_backend is None  # the default: a real environment
        assert not sessions[name].requires
