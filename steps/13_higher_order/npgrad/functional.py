"""Hessian-vector and Jacobian-vector products, built on ``grad(..., create_graph=True)``.

Both are PyTorch's ``torch.autograd.functional.hvp`` and ``jvp``, for a function
of Tensors: each takes ``func``, the point ``inputs`` (a Tensor or a sequence of
them) and the vector ``v`` (shaped like ``inputs``), and returns
``(func(*inputs), product)`` with the product shaped like ``inputs``. The
inputs are differentiated as fresh leaves, so their own ``requires_grad`` and
``.grad`` do not matter and are left alone; the results are constants.

- ``hvp``: the gradient of ``g . v``, where ``g`` is the recorded gradient of a
  one-element ``func``: one backward pass through a backward pass, never the
  whole Hessian.
- ``jvp``: reverse mode gives ``J^T u`` for any ``u``; that is linear in ``u``,
  so differentiating it with respect to ``u`` (a dummy, zeros) in the direction
  ``v`` gives ``J v``, the forward-mode product, with two reverse passes (the
  double-backward trick).
"""

from collections.abc import Callable, Sequence
from typing import overload

import numpy as np

from npgrad.grad_mode import set_grad_enabled
from npgrad.higher_order.engine import grad
from npgrad.history import needs_grad
from npgrad.tensor import Tensor


@overload
def hvp(func: Callable[..., Tensor], inputs: Tensor, v: Tensor) -> tuple[Tensor, Tensor]: ...
@overload
def hvp(
    func: Callable[..., Tensor], inputs: Sequence[Tensor], v: Sequence[Tensor]
) -> tuple[Tensor, tuple[Tensor, ...]]: ...
def hvp(
    func: Callable[..., Tensor], inputs: Tensor | Sequence[Tensor], v: Tensor | Sequence[Tensor]
) -> tuple[Tensor, Tensor | tuple[Tensor, ...]]:
    """``(func(*inputs), H v)``: the Hessian of the one-element ``func`` times ``v``."""
    points, vectors = _pair_up("hvp", inputs, v)
    leaves = [Tensor(point.array, requires_grad=True) for point in points]
    with set_grad_enabled(True):
        out = func(*leaves)
        if out.array.size != 1:
            raise ValueError(
                f"hvp needs a function with a one-element output, got shape {out.shape}: "
                "reduce it first (for example with .sum())"
            )
        grads = grad(out, leaves, create_graph=True, allow_unused=True)
        products = _vector_products(grads, vectors, leaves)
    return Tensor(out.array), products[0] if isinstance(inputs, Tensor) else products


@overload
def jvp(func: Callable[..., Tensor], inputs: Tensor, v: Tensor) -> tuple[Tensor, Tensor]: ...
@overload
def jvp(
    func: Callable[..., Tensor], inputs: Sequence[Tensor], v: Sequence[Tensor]
) -> tuple[Tensor, Tensor]: ...
def jvp(
    func: Callable[..., Tensor], inputs: Tensor | Sequence[Tensor], v: Tensor | Sequence[Tensor]
) -> tuple[Tensor, Tensor]:
    """``(func(*inputs), J v)``: the Jacobian of ``func`` times ``v``, shaped like the output."""
    points, vectors = _pair_up("jvp", inputs, v)
    leaves = [Tensor(point.array, requires_grad=True) for point in points]
    with set_grad_enabled(True):
        out = func(*leaves)
        dtype = out.array.dtype if out.array.dtype.kind == "f" else np.float64  # as PyTorch's
        if not needs_grad(out):
            return Tensor(out.array), Tensor(np.zeros(out.shape, dtype=dtype))
        dummy = Tensor(np.zeros(out.shape, dtype=dtype), requires_grad=True)
        transposed = grad(out, leaves, grad_outputs=dummy, create_graph=True, allow_unused=True)
        (product,) = _vector_products(transposed, vectors, [dummy])
    return Tensor(out.array), product


def _pair_up(
    name: str, inputs: Tensor | Sequence[Tensor], v: Tensor | Sequence[Tensor]
) -> tuple[list[Tensor], list[Tensor]]:
    """The inputs and the vectors as two lists of Tensors of matching shapes."""
    points = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    vectors = [v] if isinstance(v, Tensor) else list(v)
    if len(points) != len(vectors):
        raise ValueError(
            f"{name} got {len(points)} input(s) but {len(vectors)} vector(s): v must have "
            "one tensor per input"
        )
    for position, (point, vector) in enumerate(zip(points, vectors, strict=True)):
        if point.shape != vector.shape:
            raise ValueError(
                f"{name}: v[{position}] has shape {vector.shape} but input {position} has shape "
                f"{point.shape}; each vector must have its input's shape"
            )
    return points, vectors


def _vector_products(
    grads: Sequence[Tensor], vectors: Sequence[Tensor], wrt: list[Tensor]
) -> tuple[Tensor, ...]:
    """The gradient of ``sum(g_i . v_i)`` with respect to each of ``wrt``, as constants.

    A ``g_i`` that is a constant (its function is linear there) adds nothing.
    """
    used = [(g, vector) for g, vector in zip(grads, vectors, strict=True) if needs_grad(g)]
    if not used:
        return tuple(Tensor(np.zeros_like(tensor.array)) for tensor in wrt)
    outputs = [g for g, _ in used]
    starts = [vector for _, vector in used]
    return grad(outputs, wrt, grad_outputs=starts, allow_unused=True)
