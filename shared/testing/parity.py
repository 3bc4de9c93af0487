"""PyTorch as the reference: helpers for parity tests.

torch is optional. A parity test calls ``require_torch()``, which skips the
test with a reason when torch is missing, except where the environment sets
``NPGRAD_REQUIRE_TORCH=1`` (the sessions that install torch, CI among them):
there a missing torch fails, so parity tests can never skip silently.
"""

import os
from types import ModuleType
from typing import Any

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
