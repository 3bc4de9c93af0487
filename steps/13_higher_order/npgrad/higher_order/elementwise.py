"""Twins of the elementwise backward functions: the same formulas, on Tensors.

Each one reads like its NumPy original with the arrays replaced by Tensors:
``log_back`` is ``grad_out / x`` in both. Where a derivative is piecewise
constant (``maximum``, the in-place relu), the 0/1 pattern is computed from the
values in NumPy and enters as a constant: its own derivative is 0 wherever it
exists, so nothing is lost.
"""

import numpy as np

from npgrad.arrays import Arr
from npgrad.forward import wrap_forward_fn
from npgrad.higher_order.broadcasting import shape_of, unbroadcast_to
from npgrad.higher_order.registry import GRAPH_BACK_FUNCS
from npgrad.ops import (
    add_back0,
    add_back1,
    add_scaled_back0,
    add_scaled_back1,
    exp_back,
    log_back,
    maximum_back0,
    maximum_back1,
    multiply_back0,
    multiply_back1,
    negative_back,
    overwrite_back,
    relu_inplace_back,
    subtract_back0,
    subtract_back1,
    true_divide_back0,
    true_divide_back1,
    where,
    where_back1,
    where_back2,
)
from npgrad.registry import BACK_FUNCS
from npgrad.tensor import Tensor

Operand = Tensor | Arr | float


def _cast(x: Arr, dtype: np.dtype[np.floating]) -> Arr:
    return x.astype(dtype)


def cast_back(grad_out: Arr, out: Arr, x: Arr, dtype: np.dtype[np.floating]) -> Arr:
    """Gradient with respect to ``x`` of ``cast(x, dtype)``: ``grad_out`` in ``x``'s dtype."""
    return grad_out.astype(x.dtype)


_cast_forward = wrap_forward_fn(_cast)
BACK_FUNCS.add_back_func(_cast, 0, cast_back, reads=())


def cast(x: Tensor, dtype: np.dtype[np.floating]) -> Tensor:
    """``x`` converted to ``dtype``, recorded: how a recorded gradient takes its input's dtype.

    A float32 leaf that met float64 values gets a float32 gradient from
    ``backward`` (``_accumulate_into_leaf``); the recorded path gives the same
    through this operation, whose gradient converts back.
    """
    return _cast_forward(x, dtype)


def cast_back_graph(
    grad_out: Tensor, out: Tensor, x: Tensor, dtype: np.dtype[np.floating]
) -> Tensor:
    return cast(grad_out, x.array.dtype)


def _values(value: Operand) -> Arr | float:
    return value.array if isinstance(value, Tensor) else value


def log_back_graph(grad_out: Tensor, out: Tensor, x: Tensor) -> Tensor:
    """``grad_out / x``: the gradient of ``log(x)``."""
    return grad_out / x


def multiply_back0_graph(grad_out: Tensor, out: Tensor, x: Tensor, y: Operand) -> Tensor:
    """``grad_out * y``, summed back to ``x``'s shape."""
    return unbroadcast_to(grad_out * y, x.shape)


def multiply_back1_graph(grad_out: Tensor, out: Tensor, x: Operand, y: Tensor) -> Tensor:
    """``grad_out * x``, summed back to ``y``'s shape."""
    return unbroadcast_to(grad_out * x, y.shape)


def negative_back_graph(grad_out: Tensor, out: Tensor, x: Tensor) -> Tensor:
    """``-grad_out``."""
    return -grad_out


def exp_back_graph(grad_out: Tensor, out: Tensor, x: Tensor) -> Tensor:
    """``grad_out * out``: the output is exp(x), itself a node of the graph."""
    return grad_out * out


def add_back0_graph(grad_out: Tensor, out: Tensor, x: Tensor, y: Operand) -> Tensor:
    return unbroadcast_to(grad_out, x.shape)


def add_back1_graph(grad_out: Tensor, out: Tensor, x: Operand, y: Tensor) -> Tensor:
    return unbroadcast_to(grad_out, y.shape)


def subtract_back1_graph(grad_out: Tensor, out: Tensor, x: Operand, y: Tensor) -> Tensor:
    return unbroadcast_to(-grad_out, y.shape)


def true_divide_back0_graph(grad_out: Tensor, out: Tensor, x: Tensor, y: Operand) -> Tensor:
    """``grad_out / y``, summed back to ``x``'s shape."""
    return unbroadcast_to(grad_out / y, x.shape)


def true_divide_back1_graph(grad_out: Tensor, out: Tensor, x: Operand, y: Tensor) -> Tensor:
    """``-grad_out * x / y**2``, summed back to ``y``'s shape."""
    return unbroadcast_to(-grad_out * x / (y * y), y.shape)


def _maximum_share(winner: Arr | float, loser: Arr | float) -> Arr:
    """1 where ``winner`` is larger (or either is NaN), 0.5 at a tie, 0 where it is smaller."""
    share = np.asarray(~np.less(winner, loser), dtype=np.float64)
    ties = np.equal(winner, loser)
    if ties.any():
        share = share - 0.5 * ties
    return share


def maximum_back0_graph(grad_out: Tensor, out: Tensor, x: Tensor, y: Operand) -> Tensor:
    """``grad_out`` times the constant 1/0.5/0 pattern of ``maximum_back0``."""
    share = _maximum_share(x.array, _values(y)).astype(grad_out.array.dtype, copy=False)
    return unbroadcast_to(grad_out * share, x.shape)


def maximum_back1_graph(grad_out: Tensor, out: Tensor, x: Operand, y: Tensor) -> Tensor:
    """``grad_out`` times the constant 1/0.5/0 pattern of ``maximum_back1``."""
    share = _maximum_share(y.array, _values(x)).astype(grad_out.array.dtype, copy=False)
    return unbroadcast_to(grad_out * share, y.shape)


def where_back1_graph(
    grad_out: Tensor, out: Tensor, condition: Arr, x: Tensor, y: Operand
) -> Tensor:
    """``grad_out`` where ``condition`` holds, 0 elsewhere, summed back to ``x``'s shape."""
    return unbroadcast_to(where(condition, grad_out, 0.0), x.shape)


def where_back2_graph(
    grad_out: Tensor, out: Tensor, condition: Arr, x: Operand, y: Tensor
) -> Tensor:
    """``grad_out`` where ``condition`` fails, 0 elsewhere, summed back to ``y``'s shape."""
    return unbroadcast_to(where(condition, 0.0, grad_out), y.shape)


def add_scaled_back0_graph(
    grad_out: Tensor, out: Tensor, x: Tensor, other: Operand, alpha: float
) -> Tensor:
    return grad_out


def add_scaled_back1_graph(
    grad_out: Tensor, out: Tensor, x: Operand, other: Tensor, alpha: float
) -> Tensor:
    return unbroadcast_to(grad_out * alpha, other.shape)


def relu_inplace_back_graph(grad_out: Tensor, out: Tensor, x: Tensor) -> Tensor:
    """``grad_out`` where the output is positive (or NaN), as a constant pattern."""
    return grad_out * np.asarray(~(out.array <= 0), dtype=grad_out.array.dtype)


def overwrite_back_graph(grad_out: Tensor, out: Tensor, x: Tensor, values: Operand) -> Tensor:
    """Zeros: the overwritten values are gone."""
    return Tensor(np.zeros(shape_of(x), dtype=grad_out.array.dtype))


GRAPH_BACK_FUNCS.add_twin(cast_back, cast_back_graph)
GRAPH_BACK_FUNCS.add_twin(log_back, log_back_graph)
GRAPH_BACK_FUNCS.add_twin(multiply_back0, multiply_back0_graph)
GRAPH_BACK_FUNCS.add_twin(multiply_back1, multiply_back1_graph)
GRAPH_BACK_FUNCS.add_twin(negative_back, negative_back_graph)
GRAPH_BACK_FUNCS.add_twin(exp_back, exp_back_graph)
GRAPH_BACK_FUNCS.add_twin(add_back0, add_back0_graph)
GRAPH_BACK_FUNCS.add_twin(add_back1, add_back1_graph)
GRAPH_BACK_FUNCS.add_twin(subtract_back0, add_back0_graph)  # the same formula as add's
GRAPH_BACK_FUNCS.add_twin(subtract_back1, subtract_back1_graph)
GRAPH_BACK_FUNCS.add_twin(true_divide_back0, true_divide_back0_graph)
GRAPH_BACK_FUNCS.add_twin(true_divide_back1, true_divide_back1_graph)
GRAPH_BACK_FUNCS.add_twin(maximum_back0, maximum_back0_graph)
GRAPH_BACK_FUNCS.add_twin(maximum_back1, maximum_back1_graph)
GRAPH_BACK_FUNCS.add_twin(where_back1, where_back1_graph)
GRAPH_BACK_FUNCS.add_twin(where_back2, where_back2_graph)
GRAPH_BACK_FUNCS.add_twin(add_scaled_back0, add_scaled_back0_graph)
GRAPH_BACK_FUNCS.add_twin(add_scaled_back1, add_scaled_back1_graph)
GRAPH_BACK_FUNCS.add_twin(relu_inplace_back, relu_inplace_back_graph)
GRAPH_BACK_FUNCS.add_twin(overwrite_back, overwrite_back_graph)
