"""Operations that change a tensor's values in place, recorded by the history module."""

import numpy as np

from npgrad import history
from npgrad.arrays import Arr
from npgrad.ops.broadcasting import unbroadcast
from npgrad.registry import BACK_FUNCS
from npgrad.tensor import Tensor


def add_(x: Tensor, other: Tensor | float, alpha: float = 1.0) -> Tensor:
    """Add ``alpha * other`` to ``x`` in place and return ``x``.

    Recorded like every in-place operation (``npgrad.history.record_inplace``):
    the version of ``x``'s memory is bumped, and while tracking is on and ``x``
    or ``other`` needs a gradient, ``x`` becomes the result of
    ``before + alpha * other``, where ``before`` is a new node that took over
    ``x``'s history. A leaf that requires grad cannot be changed in place while
    tracking is on.
    """
    value = other.array if isinstance(other, Tensor) else other
    check_writable(x, value, alpha, "add_")
    return history.record_inplace(x, "add_", _add_scaled, other, alpha)


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


def _add_scaled(x: Arr, other: Arr | float, alpha: float) -> Arr:
    """``x += alpha * other``, written into ``x``, which is returned."""
    return np.add(x, other if alpha == 1.0 else other * alpha, out=x)


def add_scaled_back0(grad_out: Arr, out: Arr, x: Arr, other: Arr | float, alpha: float) -> Arr:
    """Gradient with respect to ``x`` of the in-place ``x += alpha * other``: ``grad_out``.

    Shapes: ``x``, ``out`` and ``grad_out`` share ``x``'s shape.
    """
    return grad_out


def add_scaled_back1(grad_out: Arr, out: Arr, x: Arr, other: Arr, alpha: float) -> Arr:
    """Gradient with respect to ``other`` of the in-place ``x += alpha * other``.

    ``alpha * grad_out``, summed back to ``other``'s shape (``other``
    broadcasts to ``x``'s shape).
    """
    return unbroadcast(grad_out * alpha, other)


BACK_FUNCS.add_back_func(_add_scaled, 0, add_scaled_back0, reads=())
BACK_FUNCS.add_back_func(_add_scaled, 1, add_scaled_back1, reads=())


def overwrite(x: Tensor, values: Arr, operation: str) -> Tensor:
    """Write ``values`` over every element of ``x``, as the in-place operation ``operation``.

    Recorded like ``add_``; the gradient for ``x``'s old values is zero, since
    none of them is left (``uniform_`` is built on it).
    """
    return history.record_inplace(x, operation, _overwrite, values)


def _overwrite(x: Arr, values: Arr) -> Arr:
    """``x`` with ``values`` written over it, in place; ``x`` is returned."""
    x[...] = values
    return x


def overwrite_back(grad_out: Arr, out: Arr, x: Arr, values: Arr) -> Arr:
    """Gradient with respect to the overwritten ``x``: zeros, its values are gone."""
    return np.zeros(x.shape, dtype=grad_out.dtype)


BACK_FUNCS.add_back_func(_overwrite, 0, overwrite_back, reads=())
