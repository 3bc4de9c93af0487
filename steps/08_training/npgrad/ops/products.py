"""Matrix products: ``matmul`` with batching and broadcasting, and ``einsum``."""

from collections.abc import Callable

import numpy as np

from npgrad.arrays import Arr
from npgrad.forward import wrap_forward_fn
from npgrad.registry import BACK_FUNCS
from npgrad.tensor import Tensor


def _check_matmul_operands(x: object, y: object) -> None:
    """Raise ``TypeError`` unless both operands of matmul are arrays (a number has no rows)."""
    for operand in (x, y):
        if not isinstance(operand, np.ndarray):
            raise TypeError(
                f"matmul needs two tensors, got {type(operand).__name__} {operand!r}: "
                "to scale a tensor by a number, use * instead of @"
            )


def _matmul_2d(x: Arr, y: Arr) -> Arr:
    """``x @ y`` for two 2-D arrays whose inner sizes agree; anything else raises."""
    _check_matmul_operands(x, y)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[0]:
        raise ValueError(
            f"matmul needs two 2-D tensors of shapes (m, k) and (k, n), got {x.shape} and "
            f"{y.shape}: check the inner sizes, or transpose one side (.T)"
        )
    return x @ y


matmul: Callable[[Tensor | Arr, Tensor | Arr], Tensor] = wrap_forward_fn(_matmul_2d)


def matmul_back0(grad_out: Arr, out: Arr, x: Arr, y: Arr) -> Arr:
    """Gradient with respect to ``x`` (argument 0) of ``out = x @ y``: ``grad_out @ y.T``.

    Shapes: ``x`` is (m, k), ``y`` is (k, n); ``grad_out`` is (m, n), the result (m, k).
    """
    return grad_out @ y.T


def matmul_back1(grad_out: Arr, out: Arr, x: Arr, y: Arr) -> Arr:
    """Gradient with respect to ``y`` (argument 1) of ``out = x @ y``: ``x.T @ grad_out``.

    Shapes: ``x`` is (m, k), ``y`` is (k, n); ``grad_out`` is (m, n), the result (k, n).
    """
    return x.T @ grad_out


BACK_FUNCS.add_back_func(_matmul_2d, 0, matmul_back0)
BACK_FUNCS.add_back_func(_matmul_2d, 1, matmul_back1)
