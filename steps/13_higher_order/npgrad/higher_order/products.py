"""Twins of the product backward functions: matmul's and einsum's gradients are products too.

A product is linear in each factor, so its gradient for one factor is another
product of ``grad_out`` with the other factors; written with ``matmul`` and
``einsum`` on Tensors, it is recorded like any forward computation.
"""

import numpy as np

from npgrad.arrays import Arr
from npgrad.higher_order.broadcasting import as_tensor, unbroadcast_to
from npgrad.higher_order.registry import GRAPH_BACK_FUNCS
from npgrad.ops import (
    einsum,
    einsum_back,
    linear_back0,
    linear_back1,
    linear_back2,
    matmul,
    matmul_back0,
    matmul_back1,
    permute,
    reshape,
    sum,
)
from npgrad.ops.products import einsum_back_spec
from npgrad.tensor import Tensor


def _swap_last_two(x: Tensor) -> Tensor:
    dims = tuple(range(x.ndim))
    return permute(x, (*dims[:-2], dims[-1], dims[-2]))


def _as_2d(grad_out: Tensor, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``x`` as (..., m, k), ``y`` as (..., k, n), ``grad_out`` as (..., m, n)."""
    if x.ndim == 1:
        x = reshape(x, (1, x.shape[0]))
    if y.ndim == 1:
        y = reshape(y, (y.shape[0], 1))
    batch = np.broadcast_shapes(x.shape[:-2], y.shape[:-2])
    return x, y, reshape(grad_out, (*batch, x.shape[-2], y.shape[-1]))


def matmul_back0_graph(grad_out: Tensor, out: Tensor, x: Tensor, y: Tensor | Arr) -> Tensor:
    """``grad_out @ y.T`` (last two dimensions swapped), batch dimensions summed back."""
    x2, y2, grad2 = _as_2d(grad_out, x, as_tensor(y))
    return reshape(unbroadcast_to(matmul(grad2, _swap_last_two(y2)), x2.shape), x.shape)


def matmul_back1_graph(grad_out: Tensor, out: Tensor, x: Tensor | Arr, y: Tensor) -> Tensor:
    """``x.T @ grad_out`` (last two dimensions swapped), batch dimensions summed back."""
    x2, y2, grad2 = _as_2d(grad_out, as_tensor(x), y)
    return reshape(unbroadcast_to(matmul(_swap_last_two(x2), grad2), y2.shape), y.shape)


def einsum_back_graph(
    position: int, grad_out: Tensor, out: Tensor, subscripts: str, *operands: Tensor | Arr
) -> Tensor:
    """``einsum_back`` as a recorded einsum of ``grad_out`` with the other operands."""
    shapes = [operand.shape for operand in operands]
    spec, helpers = einsum_back_spec(position, subscripts, shapes, grad_out.array.dtype)
    others = [as_tensor(other) for k, other in enumerate(operands) if k != position - 1]
    return einsum(spec, grad_out, *others, *(Tensor(helper) for helper in helpers))


GRAPH_BACK_FUNCS.add_twin(matmul_back0, matmul_back0_graph)
GRAPH_BACK_FUNCS.add_twin(matmul_back1, matmul_back1_graph)
GRAPH_BACK_FUNCS.add_twin(einsum_back, einsum_back_graph)


def linear_back0_graph(
    grad_out: Tensor, out: Tensor, x: Tensor | Arr, weight: Tensor | Arr, bias: Tensor | Arr | None
) -> Tensor:
    """``grad_out @ weight``: the gradient of ``x @ weight.T + bias`` for ``x``."""
    return matmul(grad_out, as_tensor(weight))


def linear_back1_graph(
    grad_out: Tensor, out: Tensor, x: Tensor | Arr, weight: Tensor | Arr, bias: Tensor | Arr | None
) -> Tensor:
    """``grad_out.T @ x``: the gradient for ``weight``, in the weight's shape."""
    return matmul(permute(grad_out, (1, 0)), as_tensor(x))


def linear_back2_graph(
    grad_out: Tensor, out: Tensor, x: Tensor | Arr, weight: Tensor | Arr, bias: Tensor | Arr
) -> Tensor:
    """``grad_out`` summed over the batch: the gradient for ``bias``."""
    return sum(grad_out, 0)


GRAPH_BACK_FUNCS.add_twin(linear_back0, linear_back0_graph)
GRAPH_BACK_FUNCS.add_twin(linear_back1, linear_back1_graph)
GRAPH_BACK_FUNCS.add_twin(linear_back2, linear_back2_graph)
