"""Operations that change a tensor's values in place, recorded by the history module."""

import numpy as np

from npgrad.arrays import Arr
from npgrad.tensor import Tensor


def add_(x: Tensor, other: Tensor | float, alpha: float = 1.0) -> Tensor:
    """Add ``alpha * other`` to ``x`` in place and return ``x``; untracked.

    Writes into ``x.array`` (so every tensor sharing that array sees the
    change) and records nothing: a recipe that saved ``x.array`` for backward
    now holds the new values. Meant for updates outside the graph, such as an
    optimizer step; step 09 makes in-place operations safe inside it.
    """
    value = other.array if isinstance(other, Tensor) else other
    check_writable(x, value, alpha, "add_")
    np.add(x.array, value if alpha == 1.0 else value * alpha, out=x.array)
    return x


def check_writable(x: Tensor, value: Arr | float, alpha: float, name: str) -> None:
    """Raise unless ``x.array`` can take ``x + alpha * value`` in place (``name`` is the caller)."""
    array = x.array
    if not array.flags.writeable:
        raise ValueError(
            f"{name}() cannot write into this tensor: its array is read-only, as the result "
            "of expand() is (one stored value stands for many elements); use the "
            "out-of-place form (x = x + other), or change a copy (Tensor(x.array.copy()))"
        )
    if isinstance(value, np.ndarray) and value.dtype == array.dtype and array.dtype.kind == "f":
        return  # an optimiser's update, the usual case: floats into floats always fit
    result = np.result_type(array, value) if alpha == 1.0 else np.result_type(array, value, alpha)
    if not np.can_cast(result, array.dtype, casting="same_kind"):
        raise TypeError(
            f"{name}() cannot store {result} results in a tensor of dtype {array.dtype}: "
            "an in-place operation keeps the tensor's dtype; use the out-of-place form "
            f"(x = x + other, which gives {result}), or create x as floating point"
        )
