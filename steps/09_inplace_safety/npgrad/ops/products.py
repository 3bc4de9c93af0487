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


BACK_FUNCS.add_back_func(_matmul_2d, 0, matmul_back0, reads=(1,))
BACK_FUNCS.add_back_func(_matmul_2d, 1, matmul_back1, reads=(0,))


def _linear(x: Arr, weight: Arr, bias: Arr | None) -> Arr:
    """``x @ weight.T + bias`` (no bias for None) as one operation: ``Linear``'s forward.

    The same numbers as the three recorded operations ``x @ weight.T + bias``
    (transpose, matmul, add), with one recipe instead of three and no
    broadcasting to undo: the engine's time per operation is what a small
    model spends most of its time on (step 08's README, "How this is made fast").
    Shapes: ``x`` (batch, in), ``weight`` (out, in), ``bias`` (out,) or None; the
    result (batch, out).
    """
    _check_matmul_operands(x, weight)
    if x.ndim != 2 or weight.ndim != 2 or x.shape[1] != weight.shape[1]:
        raise ValueError(
            f"linear needs x of shape (batch, in) and weight of shape (out, in), got "
            f"{x.shape} and {weight.shape}"
        )
    out: Arr = x @ weight.T
    return out if bias is None else out + bias


linear: Callable[[Tensor, Tensor, Tensor | None], Tensor] = wrap_forward_fn(_linear)


def linear_back0(grad_out: Arr, out: Arr, x: Arr, weight: Arr, bias: Arr | None) -> Arr:
    """Gradient with respect to ``x`` (argument 0) of ``out = x @ weight.T + bias``.

    ``grad_out @ weight``: ``matmul_back0`` with ``y = weight.T``.
    Shapes: ``x`` (batch, in), ``weight`` (out, in); ``grad_out`` (batch, out), the
    result (batch, in).
    """
    return grad_out @ weight


def linear_back1(grad_out: Arr, out: Arr, x: Arr, weight: Arr, bias: Arr | None) -> Arr:
    """Gradient with respect to ``weight`` (argument 1) of ``out = x @ weight.T + bias``.

    ``grad_out.T @ x``: ``matmul_back1``'s ``x.T @ grad_out``, transposed, as
    ``weight.T`` was, computed directly in the weight's shape.
    Shapes: ``x`` (batch, in), ``weight`` (out, in); ``grad_out`` (batch, out), the
    result (out, in).
    """
    return grad_out.T @ x


def linear_back2(grad_out: Arr, out: Arr, x: Arr, weight: Arr, bias: Arr) -> Arr:
    """Gradient with respect to ``bias`` (argument 2) of ``out = x @ weight.T + bias``.

    The bias is broadcast over the batch, so its gradient is ``grad_out`` summed
    over the batch: ``unbroadcast`` of ``add_back1``, written out.
    Shapes: ``grad_out`` (batch, out), the result (out,).
    """
    grad: Arr = grad_out.sum(axis=0)
    return grad


BACK_FUNCS.add_back_func(_linear, 0, linear_back0, reads=(1,))


BACK_FUNCS.add_back_func(_linear, 1, linear_back1, reads=(0,))


BACK_FUNCS.add_back_func(_linear, 2, linear_back2, reads=())
