"""Central-difference gradients: the independent check every backward formula faces."""

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

Arr = npt.NDArray[Any]


def numeric_vjp(
    func: Callable[..., Arr],
    args: Sequence[object],
    position: int,
    grad_out: Arr,
    *,
    eps: float = 1e-6,
) -> Arr:
    """Gradient of ``sum(grad_out * func(*args))`` with respect to ``args[position]``.

    That is the vector-Jacobian product a backward function computes, here by
    central differences: each element of the argument is moved by ``+eps`` and
    ``-eps`` in turn. Computed in float64 on a copy; ``args`` is not modified.
    Shapes: ``grad_out`` is shaped like ``func``'s output, the result like
    ``args[position]``.
    """
    point = np.array(args[position], dtype=np.float64)  # a copy we may nudge
    call_args = list(args)
    call_args[position] = point
    flat = point.reshape(-1)  # a view: nudging flat nudges point
    grad = np.zeros(point.size, dtype=np.float64)
    for i in range(point.size):
        original = flat[i]
        flat[i] = original + eps
        plus = float(np.sum(grad_out * func(*call_args)))
        flat[i] = original - eps
        minus = float(np.sum(grad_out * func(*call_args)))
        flat[i] = original
        grad[i] = (plus - minus) / (2 * eps)
    return grad.reshape(point.shape)
