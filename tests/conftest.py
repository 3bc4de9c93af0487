"""Fixtures shared by the suite (step selection lives in shared.testing.plugin)."""

from collections.abc import Iterator

import pytest


@pytest.fixture
def grad_tracking_off() -> Iterator[None]:
    """Turn grad tracking off for one test and back on afterwards, whatever happens."""
    import npgrad

    npgrad.set_grad_enabled(False)
    try:
        yield
    finally:
        npgrad.set_grad_enabled(True)
