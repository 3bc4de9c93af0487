"""PyTorch as the reference: helpers for parity tests.

torch is optional. A parity test calls ``require_torch()``, which skips the
test with a reason when torch is missing, except where the environment sets
``NPGRAD_REQUIRE_TORCH=1`` (the sessions that install torch, CI among them):
there a missing torch fails, so parity tests can never skip silently.
"""

import os
from collections.abc import Sequence
from types import ModuleType
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import pytest

TORCH_VERSION = "2.13.0"


def require_torch() -> ModuleType:
    """The torch module, on one thread; skips (or fails, see above) without it."""
    try:
        import torch
    except ImportError:
        if os.environ.get("NPGRAD_REQUIRE_TORCH") == "1":
            pytest.fail("torch is required in this session but is not installed")
        pytest.skip(
            f"torch is not installed: the parity tests need it (pip install torch=={TORCH_VERSION},"
            " or run `nox -s test`, which installs it)"
        )
    torch.set_num_threads(1)
    return torch


def to_numpy(value: Any) -> npt.NDArray[Any]:
    """A torch tensor (detached) as a NumPy array."""
    return np.asarray(value.detach().cpu().numpy())


class HasArray(Protocol):
    """An npgrad Tensor, as far as these helpers need one (no npgrad import here)."""

    @property
    def array(self) -> npt.NDArray[Any]: ...


class Backpropagatable(HasArray, Protocol):
    @property
    def grad(self) -> HasArray | None: ...

    def backward(self, end_grad: npt.NDArray[Any]) -> None: ...


def assert_backward_matches_torch(
    out: Backpropagatable,
    torch_out: Any,
    leaves: Sequence[Backpropagatable],
    torch_leaves: Sequence[Any],
    grad_out: npt.NDArray[Any],
    *,
    rtol: float,
    atol: float,
) -> None:
    """Backpropagate ``grad_out`` through both graphs; every leaf's gradient must agree."""
    out.backward(grad_out)
    torch_out.backward(require_torch().from_numpy(grad_out))
    for leaf, torch_leaf in zip(leaves, torch_leaves, strict=True):
        assert leaf.grad is not None
        assert torch_leaf.grad is not None
        np.testing.assert_allclose(leaf.grad.array, to_numpy(torch_leaf.grad), rtol=rtol, atol=atol)
