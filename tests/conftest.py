"""Fixtures shared by the suite (step selection lives in shared.testing.plugin)."""

import contextlib
import sys
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def grad_tracking_back_on() -> Iterator[None]:
    """Turn grad tracking back on after every test.

    A broken ``NoGrad`` (or a learner's half-written one) then fails only its
    own tests, instead of leaving tracking off for the rest of the run.
    """
    yield
    # Not imported here: the tooling tests run without any npgrad on the path.
    npgrad = sys.modules.get("npgrad")
    set_grad_enabled = getattr(npgrad, "set_grad_enabled", None)  # from step 03
    if set_grad_enabled is not None:
        # In a learner's step-03 workspace it is still a stub; its own tests say so,
        # so every other test need not also report an error at teardown.
        with contextlib.suppress(NotImplementedError):
            set_grad_enabled(True)


@pytest.fixture
def grad_tracking_off() -> Iterator[None]:
    """Turn grad tracking off for one test and back on afterwards, whatever happens."""
    import npgrad

    npgrad.set_grad_enabled(False)
    try:
        yield
    finally:
        npgrad.set_grad_enabled(True)
