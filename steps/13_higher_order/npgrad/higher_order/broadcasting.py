"""``unbroadcast`` for Tensors, and the small conversions every twin needs."""

import numpy as np

from npgrad.arrays import Arr
from npgrad.ops import sum
from npgrad.tensor import Tensor


def as_tensor(value: Tensor | Arr | float) -> Tensor:
    """``value`` itself when it is a Tensor, otherwise a constant Tensor holding it."""
    return value if isinstance(value, Tensor) else Tensor(np.asarray(value))


def shape_of(value: Tensor | Arr | float) -> tuple[int, ...]:
    """The shape of a Tensor, an array or a number (``()``)."""
    return value.shape if isinstance(value, Tensor) else np.shape(value)


def unbroadcast_to(grad: Tensor, shape: tuple[int, ...]) -> Tensor:
    """Sum ``grad`` down to ``shape``, as ``unbroadcast`` does for arrays, recorded.

    First the dimensions broadcasting prepended, then (kept as size 1) each one
    where ``shape`` has size 1 and ``grad`` does not. Nothing is recorded when
    the shapes already agree. A ``shape`` that does not broadcast to
    ``grad.shape`` raises ``ValueError``, as ``unbroadcast`` does.
    """
    n_prepended = grad.ndim - len(shape)
    if n_prepended < 0:
        raise ValueError(
            f"cannot unbroadcast shape {grad.shape} to {shape}: "
            "the gradient has fewer dimensions than the input it belongs to"
        )
    if n_prepended > 0:
        grad = sum(grad, tuple(range(n_prepended)))
    stretched = tuple(
        axis
        for axis, (before, after) in enumerate(zip(shape, grad.shape, strict=True))
        if before == 1 and after != 1
    )
    if stretched:
        grad = sum(grad, stretched, keepdim=True)
    if grad.shape != shape:
        raise ValueError(
            f"cannot unbroadcast to shape {shape}: "
            f"shape {shape} does not broadcast to the gradient's shape"
        )
    return grad
