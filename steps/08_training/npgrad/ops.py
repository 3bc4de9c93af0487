"""Operations on Tensors, each followed by the registration of its backward functions."""

from collections.abc import Callable

import numpy as np

from npgrad.arrays import Arr
from npgrad.backward_fns import (
    add_back0,
    add_back1,
    cross_entropy_back,
    exp_back,
    expand_back,
    getitem_back,
    linear_back0,
    linear_back1,
    linear_back2,
    log_back,
    matmul_back0,
    matmul_back1,
    maximum_back0,
    maximum_back1,
    multiply_back0,
    multiply_back1,
    negative_back,
    permute_back,
    reshape_back,
    subtract_back0,
    subtract_back1,
    sum_back,
    true_divide_back0,
    true_divide_back1,
)
from npgrad.grad_mode import is_grad_enabled
from npgrad.registry import BACK_FUNCS
from npgrad.tensor import ArrayIndex, Index, Recipe, Tensor


def wrap_forward_fn(
    numpy_func: Callable[..., Arr], is_differentiable: bool = True
) -> Callable[..., Tensor]:
    """Turn an array-to-array NumPy function into a Tensor-to-Tensor one.

    The returned function unboxes Tensor arguments to their arrays, calls
    ``numpy_func``, boxes the result in a Tensor and, when tracking is on and
    some Tensor argument needs a gradient (it requires grad or has a recipe),
    records a recipe whose parents are exactly those arguments, by position.
    A non-differentiable function (``is_differentiable=False``) never records
    one. Tensors must be passed positionally: a recipe keys its parents by
    argument position.
    """

    def tensor_func(*args: object, **kwargs: object) -> Tensor:
        for name, value in kwargs.items() if kwargs else ():
            if isinstance(value, Tensor):
                raise TypeError(
                    f"{numpy_func.__name__}() got a Tensor for keyword argument {name!r}: "
                    "pass tensors positionally, since gradients are tracked by argument position"
                )
        # One pass over the arguments: unbox the Tensors, and note those that need a
        # gradient (this wrapper runs for every operation, so it is kept lean).
        arg_values: list[object] = []
        parents: dict[int, Tensor] = {}
        for position, arg in enumerate(args):
            if isinstance(arg, Tensor):
                arg_values.append(arg.array)
                if arg.requires_grad or arg.recipe is not None:
                    parents[position] = arg
            else:
                arg_values.append(arg)
        out = Tensor(numpy_func(*arg_values, **kwargs))
        if parents and is_differentiable and is_grad_enabled():
            out.requires_grad = True
            out.recipe = Recipe(numpy_func, tuple(arg_values), kwargs, parents)
        return out

    return tensor_func


log: Callable[[Tensor], Tensor] = wrap_forward_fn(np.log)
BACK_FUNCS.add_back_func(np.log, 0, log_back)

multiply: Callable[[Tensor | Arr | float, Tensor | Arr | float], Tensor] = wrap_forward_fn(
    np.multiply
)
BACK_FUNCS.add_back_func(np.multiply, 0, multiply_back0)
BACK_FUNCS.add_back_func(np.multiply, 1, multiply_back1)

negative: Callable[[Tensor], Tensor] = wrap_forward_fn(np.negative)
BACK_FUNCS.add_back_func(np.negative, 0, negative_back)

exp: Callable[[Tensor], Tensor] = wrap_forward_fn(np.exp)
BACK_FUNCS.add_back_func(np.exp, 0, exp_back)

_reshape_forward = wrap_forward_fn(np.reshape)
BACK_FUNCS.add_back_func(np.reshape, 0, reshape_back)


def reshape(x: Tensor, shape: tuple[int, ...]) -> Tensor:
    """``x``'s elements in a new shape with as many elements; one size may be -1 (inferred)."""
    try:
        return _reshape_forward(x, shape)
    except (ValueError, TypeError):
        # NumPy's message does not name the tensor's shape; this one does.
        raise ValueError(
            f"cannot reshape a tensor of shape {x.shape} ({x.array.size} elements) to "
            f"{shape}: the new shape must have as many elements, with integer sizes, at "
            "most one of them -1 (inferred)"
        ) from None


_permute_forward = wrap_forward_fn(np.transpose)
BACK_FUNCS.add_back_func(np.transpose, 0, permute_back)


def permute(x: Tensor, dims: tuple[int, ...]) -> Tensor:
    """``x`` with its dimensions reordered: result dimension ``i`` is ``x``'s ``dims[i]``."""
    try:
        return _permute_forward(x, dims)
    except (ValueError, TypeError):
        raise ValueError(
            f"cannot permute a tensor of shape {x.shape} by {dims}: list each of its "
            f"{x.ndim} dimensions exactly once (negative numbers count from the end)"
        ) from None


def _expand(x: Arr, sizes: tuple[int, ...]) -> Arr:
    """``x`` broadcast to ``sizes`` (a read-only view), where -1 keeps that dimension's size.

    Like ``torch.Tensor.expand``: only dimensions of size 1 stretch, and new
    dimensions may be added in front (-1 is not allowed for those).
    """
    n_new = len(sizes) - x.ndim
    shape = tuple(
        x.shape[axis - n_new] if size == -1 and axis >= n_new else size
        for axis, size in enumerate(sizes)
    )
    if n_new < 0 or any(size < 0 for size in shape):
        raise ValueError(_expand_error(x, sizes))
    try:
        return np.broadcast_to(x, shape)
    except ValueError:
        raise ValueError(_expand_error(x, sizes)) from None


def _expand_error(x: Arr, sizes: tuple[int, ...]) -> str:
    return (
        f"cannot expand a tensor of shape {x.shape} to {sizes}: only dimensions of size 1 "
        "stretch, new dimensions go in front, and -1 keeps an existing dimension's size"
    )


expand: Callable[[Tensor, tuple[int, ...]], Tensor] = wrap_forward_fn(_expand)
BACK_FUNCS.add_back_func(_expand, 0, expand_back)


def _sum(x: Arr, dim: int | tuple[int, ...] | None, keepdim: bool) -> Arr:
    """``np.sum`` with PyTorch's argument names, positionally."""
    total: Arr = np.asarray(np.sum(x, axis=dim, keepdims=keepdim))
    return total


_sum_forward = wrap_forward_fn(_sum)
BACK_FUNCS.add_back_func(_sum, 0, sum_back)


def sum(x: Tensor, dim: int | tuple[int, ...] | None = None, keepdim: bool = False) -> Tensor:
    """The sum of ``x`` over ``dim`` (every dimension for None), keeping them as size 1 if asked.

    An empty tuple also sums over every dimension, as in PyTorch (NumPy would
    sum over none).
    """
    if dim == ():
        dim = None
    try:
        return _sum_forward(x, dim, keepdim)
    except (ValueError, TypeError):
        raise ValueError(
            f"cannot sum a tensor of shape {x.shape} over dim={dim!r}: a dim must be an "
            f"integer from {-x.ndim} to {x.ndim - 1}, each listed once (dim=None sums "
            "over every dimension)"
        ) from None


def _getitem(x: Arr, index: ArrayIndex) -> Arr:
    """``x[index]``, as a function the table can key on (always an array, never a scalar)."""
    return np.asarray(x[index])


_getitem_forward = wrap_forward_fn(_getitem)
BACK_FUNCS.add_back_func(_getitem, 0, getitem_back)


def getitem(x: Tensor, index: Index) -> Tensor:
    """``x[index]``: ints, slices, None, Ellipsis, integer arrays or integer Tensors, or a tuple.

    A Tensor inside the index is replaced by its array before the call, so it
    is never a parent: indices select, they have no gradient.
    """
    array_index: ArrayIndex
    if isinstance(index, Tensor):
        array_index = index.array
    elif isinstance(index, tuple):
        array_index = tuple(item.array if isinstance(item, Tensor) else item for item in index)
    else:
        array_index = index
    return _getitem_forward(x, array_index)


add: Callable[[Tensor | Arr | float, Tensor | Arr | float], Tensor] = wrap_forward_fn(np.add)
BACK_FUNCS.add_back_func(np.add, 0, add_back0)
BACK_FUNCS.add_back_func(np.add, 1, add_back1)

subtract: Callable[[Tensor | Arr | float, Tensor | Arr | float], Tensor] = wrap_forward_fn(
    np.subtract
)
BACK_FUNCS.add_back_func(np.subtract, 0, subtract_back0)
BACK_FUNCS.add_back_func(np.subtract, 1, subtract_back1)

true_divide: Callable[[Tensor | Arr | float, Tensor | Arr | float], Tensor] = wrap_forward_fn(
    np.true_divide
)
BACK_FUNCS.add_back_func(np.true_divide, 0, true_divide_back0)
BACK_FUNCS.add_back_func(np.true_divide, 1, true_divide_back1)


def add_(x: Tensor, other: Tensor | float, alpha: float = 1.0) -> Tensor:
    """Add ``alpha * other`` to ``x`` in place and return ``x``; untracked.

    Writes into ``x.array`` (so every tensor sharing that array sees the
    change) and records nothing: a recipe that saved ``x.array`` for backward
    now holds the new values. Meant for updates outside the graph, such as an
    optimizer step; step 09 makes in-place operations safe inside it.
    """
    value = other.array if isinstance(other, Tensor) else other
    _check_writable(x, value, alpha, "add_")
    np.add(x.array, value if alpha == 1.0 else value * alpha, out=x.array)
    return x


def _check_writable(x: Tensor, value: Arr | float, alpha: float, name: str) -> None:
    """Raise unless ``x.array`` can take ``x + alpha * value`` in place (``name`` is the caller)."""
    array = x.array
    if (
        isinstance(value, np.ndarray)
        and value.dtype == array.dtype
        and array.dtype.kind == "f"
        and array.flags.writeable
    ):
        return  # an optimiser's update, the usual case: floats into floats always fit
    if not x.array.flags.writeable:
        raise ValueError(
            f"{name}() cannot write into this tensor: its array is read-only, as the result "
            "of expand() is (one stored value stands for many elements); use the "
            "out-of-place form (x = x + other), or change a copy (Tensor(x.array.copy()))"
        )
    result = (
        np.result_type(x.array, value) if alpha == 1.0 else np.result_type(x.array, value, alpha)
    )
    if not np.can_cast(result, x.array.dtype, casting="same_kind"):
        raise TypeError(
            f"{name}() cannot store {result} results in a tensor of dtype {x.array.dtype}: "
            "an in-place operation keeps the tensor's dtype; use the out-of-place form "
            f"(x = x + other, which gives {result}), or create x as floating point"
        )


maximum: Callable[[Tensor | float, Tensor | float], Tensor] = wrap_forward_fn(np.maximum)
BACK_FUNCS.add_back_func(np.maximum, 0, maximum_back0)
BACK_FUNCS.add_back_func(np.maximum, 1, maximum_back1)


def relu(x: Tensor) -> Tensor:
    """``maximum(x, 0.0)``: negative values become 0.

    Built on ``maximum``, so at exactly 0 the tie splits the gradient and
    relu's gradient there is 0.5 (``torch.relu`` gives 0).
    """
    return maximum(x, 0.0)


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
BACK_FUNCS.add_back_func(_matmul_2d, 0, matmul_back0)
BACK_FUNCS.add_back_func(_matmul_2d, 1, matmul_back1)


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
BACK_FUNCS.add_back_func(_linear, 0, linear_back0)
BACK_FUNCS.add_back_func(_linear, 1, linear_back1)
BACK_FUNCS.add_back_func(_linear, 2, linear_back2)


def _cross_entropy(logits: Arr, labels: Arr) -> Arr:
    """Each row's cross entropy as one operation: ``cross_entropy``'s computation.

    ``loss[i] = log(sum_j exp(logits[i, j])) - logits[i, labels[i]]``, with each
    row's maximum subtracted first (it cancels) so that ``exp`` cannot overflow:
    the same numbers as the six recorded operations step 07 builds it from,
    with one recipe and one backward function, ``cross_entropy_back`` (step
    08's README, "How this is made fast"). ``cross_entropy`` checks the
    arguments. Shapes: ``logits`` (batch, classes), ``labels`` integer class
    indices (batch,); the result (batch,).
    """
    shifted = logits - logits.max(axis=1, keepdims=True)
    loss: Arr = np.log(np.exp(shifted).sum(axis=1)) - shifted[np.arange(len(labels)), labels]
    return loss


_cross_entropy_forward = wrap_forward_fn(_cross_entropy)
BACK_FUNCS.add_back_func(_cross_entropy, 0, cross_entropy_back)


def _argmax(x: Arr, dim: int | None, keepdim: bool) -> Arr:
    """``np.argmax`` with PyTorch's argument names, positionally."""
    indices: Arr = np.asarray(np.argmax(x, axis=dim, keepdims=keepdim))
    return indices


_argmax_forward = wrap_forward_fn(_argmax, is_differentiable=False)


def argmax(x: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Index of the largest value along ``dim`` (of the flattened tensor for None); no gradient."""
    return _argmax_forward(x, dim, keepdim)


eq: Callable[[Tensor | float, Tensor | float], Tensor] = wrap_forward_fn(
    np.equal, is_differentiable=False
)
