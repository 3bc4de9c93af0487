"""Twins of the shape backward functions, and ``scatter_add``, the adjoint of indexing.

Reshaping, permuting, expanding, stacking and joining move values without
changing them, so each twin is one shape operation on ``grad_out``. Indexing is
the exception: its backward adds ``grad_out`` into zeros at the indexed places
(``np.add.at``, so repeated indices sum), which no earlier operation does. It
becomes an operation of its own here, ``scatter_add``, registered in both
tables: its gradient is indexing again, so indexing and ``scatter_add`` are each
other's backward, to any order.
"""

from collections.abc import Callable

import numpy as np

from npgrad.arrays import Arr
from npgrad.forward import wrap_forward_fn
from npgrad.higher_order.broadcasting import shape_of, unbroadcast_to
from npgrad.higher_order.registry import GRAPH_BACK_FUNCS
from npgrad.history import (
    view_index,
    view_of_back,
    write_through_view_back0,
    write_through_view_back1,
)
from npgrad.ops import (
    concatenate_back,
    expand_back,
    getitem,
    getitem_back,
    permute,
    permute_back,
    reshape,
    reshape_back,
    stack_back,
)
from npgrad.registry import BACK_FUNCS
from npgrad.tensor import ArrayIndex, Tensor


def _scatter_add(values: Arr, index: ArrayIndex, shape: tuple[int, ...]) -> Arr:
    """Zeros of ``shape`` with ``values`` added at ``index``; repeated places receive the sum."""
    out = np.zeros(shape, dtype=values.dtype)
    np.add.at(out, index, values)  # type: ignore[arg-type]  # any valid NumPy index
    return out


def scatter_add_back(
    grad_out: Arr, out: Arr, values: Arr, index: ArrayIndex, shape: tuple[int, ...]
) -> Arr:
    """Gradient with respect to ``values`` of ``scatter_add``: ``grad_out[index]``."""
    return np.asarray(grad_out[index])


_scatter_add_forward = wrap_forward_fn(_scatter_add)
BACK_FUNCS.add_back_func(_scatter_add, 0, scatter_add_back, reads=())


def scatter_add(values: Tensor, index: ArrayIndex, shape: tuple[int, ...]) -> Tensor:
    """Zeros of ``shape`` with ``values`` added at ``index``: the adjoint of ``x[index]``.

    ``scatter_add(g, index, x.shape)`` is the gradient of ``x[index]`` for the
    gradient ``g`` of the result; an element indexed twice receives both.
    Shapes: ``values`` has the shape of ``zeros(shape)[index]``; the result ``shape``.
    """
    return _scatter_add_forward(values, index, tuple(shape))


def getitem_back_graph(grad_out: Tensor, out: Tensor, x: Tensor, index: ArrayIndex) -> Tensor:
    return scatter_add(grad_out, index, x.shape)


def scatter_add_back_graph(
    grad_out: Tensor, out: Tensor, values: Tensor, index: ArrayIndex, shape: tuple[int, ...]
) -> Tensor:
    return getitem(grad_out, index)


def reshape_back_graph(grad_out: Tensor, out: Tensor, x: Tensor, shape: tuple[int, ...]) -> Tensor:
    return reshape(grad_out, x.shape)


def permute_back_graph(grad_out: Tensor, out: Tensor, x: Tensor, dims: tuple[int, ...]) -> Tensor:
    """``grad_out`` permuted by the inverse of ``dims``."""
    inverse = [0] * len(dims)
    for position, dim in enumerate(dims):
        inverse[dim % x.ndim] = position
    return permute(grad_out, tuple(inverse))


def expand_back_graph(grad_out: Tensor, out: Tensor, x: Tensor, sizes: tuple[int, ...]) -> Tensor:
    return unbroadcast_to(grad_out, x.shape)


def stack_back_graph(
    position: int, grad_out: Tensor, out: Tensor, *arrays: Tensor | Arr, dim: int
) -> Tensor:
    """Slice ``position`` of ``grad_out`` along the stacking dimension."""
    axis = dim % out.ndim
    return getitem(grad_out, (slice(None),) * axis + (position,))


def concatenate_back_graph(
    position: int, grad_out: Tensor, out: Tensor, *arrays: Tensor | Arr, dim: int
) -> Tensor:
    """The run of ``grad_out`` along ``dim`` that array ``position`` filled."""
    axis = dim % out.ndim
    start = sum(shape_of(array)[axis] for array in arrays[:position])
    run = slice(start, start + shape_of(arrays[position])[axis])
    return getitem(grad_out, (slice(None),) * axis + (run,))


def view_of_back_graph(
    grad_out: Tensor, out: Tensor, base: Tensor, of_base: Callable[[Arr], Arr]
) -> Tensor:
    """Each element's gradient added back where the view took it from."""
    size = int(np.prod(base.shape))
    flat = view_index(base.shape, of_base).ravel()
    return reshape(scatter_add(reshape(grad_out, (-1,)), flat, (size,)), base.shape)


def write_through_view_back0_graph(
    grad_out: Tensor, out: Tensor, base: Tensor, values: Tensor | Arr, of_base: Callable[[Arr], Arr]
) -> Tensor:
    """``grad_out``, times 0 where the written values went."""
    keep = np.ones(int(np.prod(base.shape)), dtype=grad_out.array.dtype)
    keep[view_index(base.shape, of_base).ravel()] = 0
    return grad_out * keep.reshape(base.shape)


def write_through_view_back1_graph(
    grad_out: Tensor,
    out: Tensor,
    base: Tensor | Arr,
    values: Tensor,
    of_base: Callable[[Arr], Arr],
) -> Tensor:
    """The part of ``grad_out`` where the written values went."""
    return getitem(reshape(grad_out, (-1,)), view_index(shape_of(base), of_base))


GRAPH_BACK_FUNCS.add_twin(getitem_back, getitem_back_graph)
GRAPH_BACK_FUNCS.add_twin(scatter_add_back, scatter_add_back_graph)
GRAPH_BACK_FUNCS.add_twin(reshape_back, reshape_back_graph)
GRAPH_BACK_FUNCS.add_twin(permute_back, permute_back_graph)
GRAPH_BACK_FUNCS.add_twin(expand_back, expand_back_graph)
GRAPH_BACK_FUNCS.add_twin(stack_back, stack_back_graph)
GRAPH_BACK_FUNCS.add_twin(concatenate_back, concatenate_back_graph)
GRAPH_BACK_FUNCS.add_twin(view_of_back, view_of_back_graph)
GRAPH_BACK_FUNCS.add_twin(write_through_view_back0, write_through_view_back0_graph)
GRAPH_BACK_FUNCS.add_twin(write_through_view_back1, write_through_view_back1_graph)
