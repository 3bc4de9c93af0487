"""Elementwise operations: arithmetic, exp and log, maximum and relu.

Shapes: the inputs broadcast together (a Python float counts as a 0-d
array); ``out`` and ``grad_out`` have the broadcast shape, and each backward
function returns its input's shape, summing over broadcast dimensions with
``unbroadcast``.
"""

from collections.abc import Callable

import numpy as np

from npgrad import history
from npgrad.arrays import Arr
from npgrad.forward import wrap_forward_fn
from npgrad.ops.broadcasting import unbroadcast
from npgrad.ops.inplace import check_writable
from npgrad.registry import BACK_FUNCS
from npgrad.tensor import Tensor

log: Callable[[Tensor], Tensor] = wrap_forward_fn(np.log)


def log_back(grad_out: Arr, out: Arr, x: Arr) -> Arr:
    """Gradient with respect to ``x`` of ``out = log(x)``: ``grad_out / x``."""
    return grad_out / x


BACK_FUNCS.add_back_func(np.log, 0, log_back, reads=(0,))

multiply: Callable[[Tensor | Arr | float, Tensor | Arr | float], Tensor] = wrap_forward_fn(
    np.multiply
)


def multiply_back0(grad_out: Arr, out: Arr, x: Arr, y: Arr | float) -> Arr:
    """Gradient with respect to ``x`` (argument 0) of ``out = x * y``: ``grad_out * y``."""
    return unbroadcast(grad_out * y, x)


def multiply_back1(grad_out: Arr, out: Arr, x: Arr | float, y: Arr) -> Arr:
    """Gradient with respect to ``y`` (argument 1) of ``out = x * y``: ``grad_out * x``."""
    return unbroadcast(grad_out * x, y)


BACK_FUNCS.add_back_func(np.multiply, 0, multiply_back0, reads=(1,))
BACK_FUNCS.add_back_func(np.multiply, 1, multiply_back1, reads=(0,))


def forward_and_back(a: Arr, b: Arr, c: Arr) -> tuple[Arr, Arr, Arr]:
    """Gradients of ``g`` with respect to ``a``, ``b`` and ``c``, by hand.

    The graph is ``d = a * b; e = log(c); f = d * e; g = log(f)``. Backward
    starts from dg/dg = 1 and visits each node after every node that uses it,
    so each backward function receives a finished gradient.
    """
    d = a * b
    e = np.log(c)
    f = d * e
    g = np.log(f)

    dg_dg = np.ones_like(g)
    dg_df = log_back(dg_dg, g, f)
    dg_dd = multiply_back0(dg_df, f, d, e)
    dg_de = multiply_back1(dg_df, f, d, e)
    dg_da = multiply_back0(dg_dd, d, a, b)
    dg_db = multiply_back1(dg_dd, d, a, b)
    dg_dc = log_back(dg_de, e, c)
    return dg_da, dg_db, dg_dc


negative: Callable[[Tensor], Tensor] = wrap_forward_fn(np.negative)


def negative_back(grad_out: Arr, out: Arr, x: Arr) -> Arr:
    """Gradient with respect to ``x`` of ``out = -x``: ``-grad_out``."""
    return -grad_out


BACK_FUNCS.add_back_func(np.negative, 0, negative_back, reads=())

exp: Callable[[Tensor], Tensor] = wrap_forward_fn(np.exp)


def exp_back(grad_out: Arr, out: Arr, x: Arr) -> Arr:
    """Gradient with respect to ``x`` of ``out = exp(x)``: ``grad_out * out``.

    The derivative of exp is exp itself, which the forward pass already
    computed: reuse ``out`` instead of calling ``np.exp(x)`` again.
    """
    return grad_out * out


BACK_FUNCS.add_back_func(np.exp, 0, exp_back, reads=("out",))

add: Callable[[Tensor | Arr | float, Tensor | Arr | float], Tensor] = wrap_forward_fn(np.add)


def add_back0(grad_out: Arr, out: Arr, x: Arr, y: Arr | float) -> Arr:
    """Gradient with respect to ``x`` (argument 0) of ``out = x + y``: ``grad_out``, unbroadcast."""
    return unbroadcast(grad_out, x)


def add_back1(grad_out: Arr, out: Arr, x: Arr | float, y: Arr) -> Arr:
    """Gradient with respect to ``y`` (argument 1) of ``out = x + y``: ``grad_out``, unbroadcast."""
    return unbroadcast(grad_out, y)


BACK_FUNCS.add_back_func(np.add, 0, add_back0, reads=())
BACK_FUNCS.add_back_func(np.add, 1, add_back1, reads=())

subtract: Callable[[Tensor | Arr | float, Tensor | Arr | float], Tensor] = wrap_forward_fn(
    np.subtract
)


def subtract_back0(grad_out: Arr, out: Arr, x: Arr, y: Arr | float) -> Arr:
    """Gradient with respect to ``x`` (argument 0) of ``out = x - y``: ``grad_out``, unbroadcast."""
    return unbroadcast(grad_out, x)


def subtract_back1(grad_out: Arr, out: Arr, x: Arr | float, y: Arr) -> Arr:
    """Gradient with respect to ``y`` (argument 1) of ``out = x - y``: ``-grad_out`` unbroadcast."""
    return unbroadcast(-grad_out, y)


BACK_FUNCS.add_back_func(np.subtract, 0, subtract_back0, reads=())
BACK_FUNCS.add_back_func(np.subtract, 1, subtract_back1, reads=())

true_divide: Callable[[Tensor | Arr | float, Tensor | Arr | float], Tensor] = wrap_forward_fn(
    np.true_divide
)


def true_divide_back0(grad_out: Arr, out: Arr, x: Arr, y: Arr | float) -> Arr:
    """Gradient with respect to ``x`` (argument 0) of ``out = x / y``: ``grad_out / y``."""
    return unbroadcast(grad_out / y, x)


def true_divide_back1(grad_out: Arr, out: Arr, x: Arr | float, y: Arr) -> Arr:
    """Gradient with respect to ``y`` (argument 1) of ``out = x / y``: ``-grad_out * x / y**2``.

    Read from the inputs only, not as ``-grad_out * out / y``: a backward that
    reads ``out`` gives a wrong answer once ``out`` is changed in place.
    """
    return unbroadcast(-grad_out * x / (y * y), y)


BACK_FUNCS.add_back_func(np.true_divide, 0, true_divide_back0, reads=(1,))
BACK_FUNCS.add_back_func(np.true_divide, 1, true_divide_back1, reads=(0, 1))

maximum: Callable[[Tensor | float, Tensor | float], Tensor] = wrap_forward_fn(np.maximum)


def maximum_back0(grad_out: Arr, out: Arr, x: Arr, y: Arr | float) -> Arr:
    """Gradient with respect to ``x`` (argument 0) of ``out = maximum(x, y)``.

    ``grad_out`` where ``x`` is larger, half of it where ``x`` and ``y`` tie
    (the tie splits the gradient evenly between the two), 0 where ``x`` is
    smaller. Where either is NaN the output is NaN and ``grad_out`` passes to
    both, as in PyTorch, so the gradient does not hide the NaN.
    """
    grad = grad_out * ~(x < y)  # not "x > y": a comparison with NaN is False
    ties = np.equal(x, y)
    if ties.any():  # rare with real data, so only then pay for the split
        grad = grad - grad_out * ties * 0.5
    return unbroadcast(grad, x)


def maximum_back1(grad_out: Arr, out: Arr, x: Arr | float, y: Arr) -> Arr:
    """Gradient with respect to ``y`` (argument 1) of ``out = maximum(x, y)``.

    ``grad_out`` where ``y`` is larger, half of it at a tie, 0 where ``y`` is
    smaller, and ``grad_out`` where either is NaN (as in PyTorch).
    """
    grad = grad_out * ~(y < x)
    ties = np.equal(x, y)
    if ties.any():  # rare with real data, so only then pay for the split
        grad = grad - grad_out * ties * 0.5
    return unbroadcast(grad, y)


BACK_FUNCS.add_back_func(np.maximum, 0, maximum_back0, reads=(0, 1))
BACK_FUNCS.add_back_func(np.maximum, 1, maximum_back1, reads=(0, 1))


def relu(x: Tensor, inplace: bool = False) -> Tensor:
    """``maximum(x, 0.0)``: negative values become 0.

    Built on ``maximum``, so at exactly 0 the tie splits the gradient and
    relu's gradient there is 0.5 (``torch.relu`` gives 0).

    With ``inplace=True`` the result is written into ``x``'s array and ``x``
    is returned, saving one array of activations. That variant has its own
    backward, which reads the output (the input's old values are gone), so
    its gradient at exactly 0 is 0, as in PyTorch. It bumps ``x``'s version and
    refuses a leaf that requires grad while tracking is on.
    """
    if not inplace:
        return maximum(x, 0.0)
    check_writable(x, 0, 1.0, "relu_")
    return history.record_inplace(x, "relu(inplace=True)", _relu_inplace)


def _relu_inplace(x: Arr) -> Arr:
    """Negative values of ``x`` become 0, written into ``x``, which is returned."""
    return np.maximum(x, 0, out=x)


def relu_inplace_back(grad_out: Arr, out: Arr, x: Arr) -> Arr:
    """Gradient with respect to ``x`` of the in-place relu: ``grad_out`` except where ``out <= 0``.

    Read from the output, since the input's old values were overwritten: the
    gradient at exactly 0 is 0, and at a NaN it passes, as in PyTorch.
    Shapes: all share ``x``'s shape.
    """
    return grad_out * ~(out <= 0)


BACK_FUNCS.add_back_func(_relu_inplace, 0, relu_inplace_back, reads=("out",))


def _where(condition: Arr, x: Arr | float, y: Arr | float) -> Arr:
    """``np.where(condition, x, y)`` for a boolean ``condition``; anything else raises."""
    if np.asarray(condition).dtype != np.bool_:
        raise TypeError(
            f"where() needs a boolean condition, got dtype {np.asarray(condition).dtype}: "
            "compare first (x > 0), as in PyTorch"
        )
    return np.asarray(np.where(condition, x, y))


_where_forward = wrap_forward_fn(_where)


def where(condition: Tensor | Arr, x: Tensor | float, y: Tensor | float) -> Tensor:
    """``x`` where the boolean ``condition`` holds, ``y`` elsewhere; a gradient for ``x`` and ``y``.

    The condition gets none: it is boolean, so it never requires grad and is
    never a parent, whether a Tensor (``x > 0``) or an array. Shapes:
    ``condition``, ``x`` and ``y`` broadcast together; the result has the
    broadcast shape.
    """
    return _where_forward(condition, x, y)


def where_back1(grad_out: Arr, out: Arr, condition: Arr, x: Arr, y: Arr | float) -> Arr:
    """Gradient with respect to ``x`` (argument 1) of ``out = where(condition, x, y)``.

    ``grad_out`` where ``condition`` holds (those elements came from ``x``),
    0 elsewhere, unbroadcast. The condition itself gets no gradient.
    Shapes: ``condition``, ``x`` and ``y`` broadcast together; ``grad_out`` has
    the broadcast shape, the result ``x``'s shape.
    """
    return unbroadcast(np.where(condition, grad_out, 0.0), x)


def where_back2(grad_out: Arr, out: Arr, condition: Arr, x: Arr | float, y: Arr) -> Arr:
    """Gradient with respect to ``y`` (argument 2) of ``out = where(condition, x, y)``.

    ``grad_out`` where ``condition`` fails (those elements came from ``y``),
    0 elsewhere, unbroadcast.
    Shapes: ``condition``, ``x`` and ``y`` broadcast together; ``grad_out`` has
    the broadcast shape, the result ``y``'s shape.
    """
    return unbroadcast(np.where(condition, 0.0, grad_out), y)


BACK_FUNCS.add_back_func(_where, 1, where_back1, reads=(0,))
BACK_FUNCS.add_back_func(_where, 2, where_back2, reads=(0,))

floor: Callable[[Tensor], Tensor] = wrap_forward_fn(np.floor, is_differentiable=False)

ceil: Callable[[Tensor], Tensor] = wrap_forward_fn(np.ceil, is_differentiable=False)
