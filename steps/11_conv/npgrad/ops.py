"""Operations on Tensors, each followed by the registration of its backward functions."""

import builtins
import functools
import inspect
from collections.abc import Callable, Sequence
from typing import TypeAlias

import numpy as np

from npgrad import history
from npgrad.arrays import Arr
from npgrad.backward_fns import (
    Pair,
    _correlate,
    _window_reduce,
    _windows,
    add_back0,
    add_back1,
    add_scaled_back0,
    add_scaled_back1,
    avg_pool2d_back,
    concatenate_back,
    conv2d_back0,
    conv2d_back1,
    conv2d_back2,
    cross_entropy_back,
    einsum_back,
    einsum_labels,
    exp_back,
    expand_back,
    getitem_back,
    linear_back0,
    linear_back1,
    linear_back2,
    log_back,
    matmul_back0,
    matmul_back1,
    max_pool2d_back,
    maximum_back0,
    maximum_back1,
    multiply_back0,
    multiply_back1,
    negative_back,
    permute_back,
    relu_inplace_back,
    reshape_back,
    stack_back,
    subtract_back0,
    subtract_back1,
    sum_back,
    true_divide_back0,
    true_divide_back1,
    where_back1,
    where_back2,
)
from npgrad.grad_mode import is_grad_enabled
from npgrad.registry import BACK_FUNCS, ArgKey
from npgrad.tensor import ArrayIndex, Index, Tensor


def wrap_forward_fn(
    numpy_func: Callable[..., Arr], is_differentiable: bool = True
) -> Callable[..., Tensor]:
    """Turn an array-to-array NumPy function into a Tensor-to-Tensor one.

    The returned function unboxes Tensor arguments to their arrays, calls
    ``numpy_func``, boxes the result in a Tensor and, when tracking is on and
    some Tensor argument needs a gradient (it requires grad or has a recipe),
    records a recipe whose parents are exactly those arguments. A
    non-differentiable function (``is_differentiable=False``) never records one.

    Parents are keyed by position, except under the keyword rule: a Tensor
    passed by keyword moves to its position when ``numpy_func``'s signature
    allows (``_bind_keywords``), so one backward serves both spellings;
    otherwise it stays a keyword, keyed by its name, and as a parent needs a
    backward function registered under that name, or the call raises
    ``TypeError`` (before computing anything). The recipe also records the
    versions of the arguments that the backward functions read, so backprop
    can tell when one was changed in place since; a result that is a view of
    an argument shares its memory's version counter (``npgrad.history``).
    """

    def tensor_func(*args: object, **kwargs: object) -> Tensor:
        if kwargs and builtins.any(isinstance(value, Tensor) for value in kwargs.values()):
            args, kwargs = _bind_keywords(numpy_func, args, kwargs)
        # Plain loops, no comprehension per step: this wrapper runs for every operation.
        tensors: dict[ArgKey, Tensor] = {}
        for position, arg in enumerate(args):
            if isinstance(arg, Tensor):
                tensors[position] = arg
        for name, value in kwargs.items():
            if isinstance(value, Tensor):
                tensors[name] = value
        parents: dict[ArgKey, Tensor] = {}
        if is_differentiable and is_grad_enabled():
            for key, tensor in tensors.items():
                if tensor._view is not None:
                    history.refresh_view(tensor)
                if tensor.requires_grad or tensor.recipe is not None:  # history.needs_grad
                    parents[key] = tensor
        for name in kwargs:
            if name in parents and not BACK_FUNCS.has_back_func(numpy_func, name):
                raise TypeError(
                    _keyword_error(numpy_func, name, "no backward function is registered for it")
                    + ", or register one with BACK_FUNCS.add_back_func("
                    f"{_name(numpy_func)}, {name!r}, <backward function>)"
                )
        arg_values = tuple([arg.array if isinstance(arg, Tensor) else arg for arg in args])
        kwarg_values = {name: _unbox(value) for name, value in kwargs.items()} if kwargs else kwargs
        out = Tensor(numpy_func(*arg_values, **kwarg_values))
        history.note_view(out, numpy_func, args, arg_values, kwarg_values)
        if parents:
            out.requires_grad = True
            out.recipe = history.make_recipe(
                numpy_func, arg_values, kwarg_values, parents, tensors, out
            )
        return out

    return tensor_func


def _unbox(value: object) -> object:
    return value.array if isinstance(value, Tensor) else value


def _name(func: Callable[..., Arr]) -> str:
    return getattr(func, "__name__", repr(func))


def _keyword_error(func: Callable[..., Arr], keyword: str, reason: str) -> str:
    return (
        f"{_name(func)}() got a Tensor for keyword argument {keyword!r}, but {reason}: "
        "pass tensors positionally"
    )


@functools.cache
def _signature(func: Callable[..., Arr]) -> inspect.Signature | None:
    """``func``'s Python signature, or None where it has none (some C functions)."""
    try:
        return inspect.signature(func)
    except (TypeError, ValueError):
        return None


_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def _bind_keywords(
    func: Callable[..., Arr], args: tuple[object, ...], kwargs: dict[str, object]
) -> tuple[tuple[object, ...], dict[str, object]]:
    """The keyword rule: the call's arguments with Tensor keywords moved where they can go.

    A Tensor keyword naming a parameter of ``func`` that may be passed
    positionally moves to that position (parameters skipped before it take
    their defaults), so it becomes exactly a positional argument. One naming
    a keyword-only parameter, or reaching ``**kwargs``, or passed to a
    ``func`` without an inspectable signature, stays a keyword. A
    positional-only parameter (every input of a NumPy ufunc), a name ``func``
    does not have, or a call that does not bind raises ``TypeError``.
    """
    signature = _signature(func)
    if signature is None:
        return args, kwargs
    parameters = signature.parameters
    positional = [param for param in parameters.values() if param.kind in _POSITIONAL]
    takes_any_keyword = builtins.any(
        param.kind is inspect.Parameter.VAR_KEYWORD for param in parameters.values()
    )
    moving: list[str] = []
    for name, value in kwargs.items():
        if not isinstance(value, Tensor):
            continue
        param = parameters.get(name)
        if param is None and not takes_any_keyword:
            raise TypeError(_keyword_error(func, name, f"{_name(func)} has no such parameter"))
        if param is not None and param.kind is inspect.Parameter.POSITIONAL_ONLY:
            reason = f"{name!r} is a positional-only parameter of {_name(func)}"
            raise TypeError(_keyword_error(func, name, reason))
        if param in positional:
            moving.append(name)
    if not moving:
        return args, kwargs
    try:
        signature.bind(*args, **kwargs)
    except TypeError as error:
        raise TypeError(_keyword_error(func, moving[0], str(error))) from None
    last = max(positional.index(parameters[name]) for name in moving)
    moved = positional[len(args) : last + 1]
    new_args = args + tuple(kwargs.get(param.name, param.default) for param in moved)
    moved_names = {param.name for param in moved}
    new_kwargs = {name: value for name, value in kwargs.items() if name not in moved_names}
    return new_args, new_kwargs


log: Callable[[Tensor], Tensor] = wrap_forward_fn(np.log)
BACK_FUNCS.add_back_func(np.log, 0, log_back, reads=(0,))

multiply: Callable[[Tensor | Arr | float, Tensor | Arr | float], Tensor] = wrap_forward_fn(
    np.multiply
)
BACK_FUNCS.add_back_func(np.multiply, 0, multiply_back0, reads=(1,))
BACK_FUNCS.add_back_func(np.multiply, 1, multiply_back1, reads=(0,))

negative: Callable[[Tensor], Tensor] = wrap_forward_fn(np.negative)
BACK_FUNCS.add_back_func(np.negative, 0, negative_back, reads=())

exp: Callable[[Tensor], Tensor] = wrap_forward_fn(np.exp)
BACK_FUNCS.add_back_func(np.exp, 0, exp_back, reads=("out",))

_reshape_forward = wrap_forward_fn(np.reshape)
BACK_FUNCS.add_back_func(np.reshape, 0, reshape_back, reads=())


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
BACK_FUNCS.add_back_func(np.transpose, 0, permute_back, reads=())


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
    if n_new < 0 or builtins.any(size < 0 for size in shape):
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
BACK_FUNCS.add_back_func(_expand, 0, expand_back, reads=())


def _sum(x: Arr, dim: int | tuple[int, ...] | None, keepdim: bool) -> Arr:
    """``np.sum`` with PyTorch's argument names, positionally."""
    total: Arr = np.asarray(np.sum(x, axis=dim, keepdims=keepdim))
    return total


_sum_forward = wrap_forward_fn(_sum)
BACK_FUNCS.add_back_func(_sum, 0, sum_back, reads=())


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
BACK_FUNCS.add_back_func(_getitem, 0, getitem_back, reads=())


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
BACK_FUNCS.add_back_func(np.add, 0, add_back0, reads=())
BACK_FUNCS.add_back_func(np.add, 1, add_back1, reads=())

subtract: Callable[[Tensor | Arr | float, Tensor | Arr | float], Tensor] = wrap_forward_fn(
    np.subtract
)
BACK_FUNCS.add_back_func(np.subtract, 0, subtract_back0, reads=())
BACK_FUNCS.add_back_func(np.subtract, 1, subtract_back1, reads=())

true_divide: Callable[[Tensor | Arr | float, Tensor | Arr | float], Tensor] = wrap_forward_fn(
    np.true_divide
)
BACK_FUNCS.add_back_func(np.true_divide, 0, true_divide_back0, reads=(1,))
BACK_FUNCS.add_back_func(np.true_divide, 1, true_divide_back1, reads=(0, 1))


def _add_scaled(x: Arr, other: Arr | float, alpha: float) -> Arr:
    """``x += alpha * other``, written into ``x``, which is returned."""
    return np.add(x, other if alpha == 1.0 else other * alpha, out=x)


def add_(x: Tensor, other: Tensor | float, alpha: float = 1.0) -> Tensor:
    """Add ``alpha * other`` to ``x`` in place and return ``x``.

    Recorded like every in-place operation (``npgrad.history.record_inplace``):
    the version of ``x``'s memory is bumped, and while tracking is on and ``x``
    or ``other`` needs a gradient, ``x`` becomes the result of
    ``before + alpha * other``, where ``before`` is a new node that took over
    ``x``'s history. A leaf that requires grad cannot be changed in place while
    tracking is on.
    """
    value = other.array if isinstance(other, Tensor) else other
    _check_writable(x, value, alpha, "add_")
    return history.record_inplace(x, "add_", _add_scaled, other, alpha)


BACK_FUNCS.add_back_func(_add_scaled, 0, add_scaled_back0, reads=())
BACK_FUNCS.add_back_func(_add_scaled, 1, add_scaled_back1, reads=())


def overwrite(x: Tensor, values: Arr, operation: str) -> Tensor:
    """Write ``values`` over every element of ``x``, as the in-place operation ``operation``.

    Recorded like ``add_``; the gradient for ``x``'s old values is zero, since
    none of them is left (``uniform_`` is built on it).
    """
    return history.record_inplace(x, operation, _overwrite, values)


def _overwrite(x: Arr, values: Arr) -> Arr:
    """``x`` with ``values`` written over it, in place; ``x`` is returned."""
    x[...] = values
    return x


def overwrite_back(grad_out: Arr, out: Arr, x: Arr, values: Arr) -> Arr:
    """Gradient with respect to the overwritten ``x``: zeros, its values are gone."""
    return np.zeros(x.shape, dtype=grad_out.dtype)


BACK_FUNCS.add_back_func(_overwrite, 0, overwrite_back, reads=())


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
    _check_writable(x, 0, 1.0, "relu_")
    return history.record_inplace(x, "relu(inplace=True)", _relu_inplace)


def _relu_inplace(x: Arr) -> Arr:
    """Negative values of ``x`` become 0, written into ``x``, which is returned."""
    return np.maximum(x, 0, out=x)


BACK_FUNCS.add_back_func(_relu_inplace, 0, relu_inplace_back, reads=("out",))


def _check_matmul_operands(x: object, y: object) -> None:
    """Raise ``TypeError`` unless both operands of matmul are arrays (a number has no rows)."""
    for operand in (x, y):
        if not isinstance(operand, np.ndarray):
            raise TypeError(
                f"matmul needs two tensors, got {type(operand).__name__} {operand!r}: "
                "to scale a tensor by a number, use * instead of @"
            )


def _matmul(x: Arr, y: Arr) -> Arr:
    """``x @ y`` with PyTorch's shape rules; shapes that do not fit raise, naming both.

    Two 1-D arrays give their dot product (0-d); a 1-D ``x`` is a row and a
    1-D ``y`` a column, whose added dimension is dropped again; arrays with
    more than two dimensions are stacks of matrices in the last two, and
    their batch dimensions (all but the last two) broadcast.
    """
    _check_matmul_operands(x, y)
    if x.ndim == 0 or y.ndim == 0:
        raise ValueError(_matmul_error(x, y, "both need at least one dimension"))
    inner = y.shape[0] if y.ndim == 1 else y.shape[-2]
    if x.shape[-1] != inner:
        reason = f"the last size of the first ({x.shape[-1]}) must equal "
        reason += "the size of the second" if y.ndim == 1 else "the second-to-last of the second"
        raise ValueError(_matmul_error(x, y, f"{reason} ({inner})"))
    try:
        np.broadcast_shapes(x.shape[:-2], y.shape[:-2])
    except ValueError:
        reason = f"the batch shapes {x.shape[:-2]} and {y.shape[:-2]} do not broadcast"
        raise ValueError(_matmul_error(x, y, reason)) from None
    return np.asarray(np.matmul(x, y))


def _matmul_error(x: Arr, y: Arr, reason: str) -> str:
    return (
        f"matmul of incompatible shapes: got {x.shape} and {y.shape}; {reason} "
        "(transpose one side with .T, or reshape it)"
    )


matmul: Callable[[Tensor | Arr, Tensor | Arr], Tensor] = wrap_forward_fn(_matmul)
BACK_FUNCS.add_back_func(_matmul, 0, matmul_back0, reads=(1,))
BACK_FUNCS.add_back_func(_matmul, 1, matmul_back1, reads=(0,))


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
BACK_FUNCS.add_back_func(_linear, 0, linear_back0, reads=(1,))
BACK_FUNCS.add_back_func(_linear, 1, linear_back1, reads=(0,))
BACK_FUNCS.add_back_func(_linear, 2, linear_back2, reads=())


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
BACK_FUNCS.add_back_func(_cross_entropy, 0, cross_entropy_back, reads=(0,))


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


# --- step 10: general operations ---------------------------------------------------------


def _einsum(subscripts: str, *operands: Arr) -> Arr:
    """``np.einsum`` with the subscripts made explicit first (``einsum_labels``).

    So the forward and ``einsum_back`` read the subscripts the same way, and
    an output without ``...`` sums the ellipsis dimensions, as in PyTorch.
    """
    terms, output = einsum_labels(subscripts, [np.shape(operand) for operand in operands])
    return np.asarray(np.einsum(",".join(terms) + "->" + output, *operands))


_einsum_forward = wrap_forward_fn(_einsum)
BACK_FUNCS.add_variadic_back_func(_einsum, einsum_back, reads_other_args=True)


def einsum(subscripts: str, *operands: Tensor) -> Tensor:
    """Einstein summation over ``operands``, with a gradient for each.

    ``einsum("ij,jk->ik", a, b)`` is a matrix product: each letter names a
    dimension, letters missing from the output (after ``->``) are summed, a
    letter repeated in one term takes a diagonal (``"ii->i"``), ``...``
    stands for broadcast dimensions, and without ``->`` the output is every
    letter used once, in ASCII order (uppercase first). Each operand is a
    separate argument of the recorded forward, so one variadic backward
    (``einsum_back``) serves them all. Shapes: one letter per dimension of
    each operand; the result has one dimension per output letter.
    """
    if not isinstance(subscripts, str):
        raise TypeError(
            f"einsum takes the subscripts string first, as in einsum('ij,jk->ik', a, b); got "
            f"a {type(subscripts).__name__} (NumPy's form with integer lists is not supported)"
        )
    return _einsum_forward(subscripts, *operands)


def _stack(*arrays: Arr, dim: int) -> Arr:
    """``np.stack(arrays, axis=dim)``, taking the arrays as separate arguments."""
    try:
        return np.stack(arrays, axis=dim)
    except ValueError as error:
        raise ValueError(_join_error("stack", arrays, dim, error)) from None


def _concatenate(*arrays: Arr, dim: int) -> Arr:
    """``np.concatenate(arrays, axis=dim)``, taking the arrays as separate arguments."""
    try:
        return np.concatenate(arrays, axis=dim)
    except ValueError as error:
        raise ValueError(_join_error("concatenate", arrays, dim, error)) from None


def _join_error(name: str, arrays: Sequence[Arr], dim: int, error: ValueError) -> str:
    shapes = ", ".join(str(np.shape(array)) for array in arrays) or "no tensors"
    return f"cannot {name} tensors of shapes {shapes} along dim {dim}: {error}"


_stack_forward = wrap_forward_fn(_stack)
BACK_FUNCS.add_variadic_back_func(_stack, stack_back, reads_other_args=False)

_concatenate_forward = wrap_forward_fn(_concatenate)
BACK_FUNCS.add_variadic_back_func(_concatenate, concatenate_back, reads_other_args=False)


def stack(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """The tensors, all of one shape, stacked along a new dimension ``dim``.

    Each tensor is a separate argument of the recorded forward, so each is
    its own parent, and one variadic backward (``stack_back``) serves them all.
    Shapes: ``n`` tensors of shape ``s`` give ``s`` with ``n`` inserted at ``dim``.
    """
    return _stack_forward(*_tensor_sequence("stack", tensors), dim=dim)


def concatenate(tensors: Sequence[Tensor], dim: int = 0) -> Tensor:
    """The tensors joined along their existing dimension ``dim`` (also called ``cat``).

    Shapes: the tensors agree in every dimension but ``dim``; the result's
    size along ``dim`` is the sum of theirs.
    """
    return _concatenate_forward(*_tensor_sequence("concatenate", tensors), dim=dim)


cat = concatenate


def _tensor_sequence(name: str, tensors: Sequence[Tensor] | Tensor) -> Sequence[Tensor]:
    """``tensors``, checked to be a sequence (a Tensor would be iterated row by row)."""
    if isinstance(tensors, Tensor):
        raise TypeError(
            f"{name}() takes a sequence of tensors, got a single Tensor: write {name}([a, b, ...])"
        )
    return tensors


def _where(condition: Arr, x: Arr | float, y: Arr | float) -> Arr:
    """``np.where(condition, x, y)`` for a boolean ``condition``; anything else raises."""
    if np.asarray(condition).dtype != np.bool_:
        raise TypeError(
            f"where() needs a boolean condition, got dtype {np.asarray(condition).dtype}: "
            "compare first (x > 0), as in PyTorch"
        )
    return np.asarray(np.where(condition, x, y))


_where_forward = wrap_forward_fn(_where)
BACK_FUNCS.add_back_func(_where, 1, where_back1, reads=(0,))
BACK_FUNCS.add_back_func(_where, 2, where_back2, reads=(0,))


def where(condition: Tensor | Arr, x: Tensor | float, y: Tensor | float) -> Tensor:
    """``x`` where the boolean ``condition`` holds, ``y`` elsewhere; a gradient for ``x`` and ``y``.

    The condition gets none: it is boolean, so it never requires grad and is
    never a parent, whether a Tensor (``x > 0``) or an array. Shapes:
    ``condition``, ``x`` and ``y`` broadcast together; the result has the
    broadcast shape.
    """
    return _where_forward(condition, x, y)


# Non-differentiable: these accept tensors anywhere in a graph and never record a
# recipe, so no gradient flows through them (their derivative is 0 or undefined).


def _all(x: Arr, dim: int | tuple[int, ...] | None, keepdim: bool) -> Arr:
    """``np.all`` with PyTorch's argument names, positionally."""
    return np.asarray(np.all(x, axis=dim, keepdims=keepdim))


def _any(x: Arr, dim: int | tuple[int, ...] | None, keepdim: bool) -> Arr:
    """``np.any`` with PyTorch's argument names, positionally."""
    return np.asarray(np.any(x, axis=dim, keepdims=keepdim))


_all_forward = wrap_forward_fn(_all, is_differentiable=False)
_any_forward = wrap_forward_fn(_any, is_differentiable=False)


def all(x: Tensor, dim: int | tuple[int, ...] | None = None, keepdim: bool = False) -> Tensor:
    """True where every element along ``dim`` (every dimension for None) is nonzero; no gradient."""
    return _all_forward(x, dim, keepdim)


def any(x: Tensor, dim: int | tuple[int, ...] | None = None, keepdim: bool = False) -> Tensor:
    """True where some element along ``dim`` (every dimension for None) is nonzero; no gradient."""
    return _any_forward(x, dim, keepdim)


floor: Callable[[Tensor], Tensor] = wrap_forward_fn(np.floor, is_differentiable=False)
ceil: Callable[[Tensor], Tensor] = wrap_forward_fn(np.ceil, is_differentiable=False)
logical_not: Callable[[Tensor], Tensor] = wrap_forward_fn(np.logical_not, is_differentiable=False)

_Comparison: TypeAlias = Callable[[Tensor | float, Tensor | float], Tensor]
less: _Comparison = wrap_forward_fn(np.less, is_differentiable=False)
greater: _Comparison = wrap_forward_fn(np.greater, is_differentiable=False)
less_equal: _Comparison = wrap_forward_fn(np.less_equal, is_differentiable=False)
greater_equal: _Comparison = wrap_forward_fn(np.greater_equal, is_differentiable=False)


# --- step 11: convolution and pooling -----------------------------------------------------


def _pair(value: int | tuple[int, int], name: str = "size") -> Pair:
    """``3`` as ``(3, 3)``; a pair stays as it is (height first, then width).

    ``name`` names the argument in errors: anything but an int or a pair of ints
    raises ``TypeError``, a tuple or list of another length ``ValueError``.
    """
    if isinstance(value, tuple | list):
        if len(value) != 2:
            raise ValueError(
                f"{name} must be an int or a pair (height, width), got {value!r} of length "
                f"{len(value)}; for the same value in both directions pass one int"
            )
        height, width = (_index(item, name, value) for item in value)
        return height, width
    size = _index(value, name, value)
    return size, size


def _index(item: object, name: str, value: object) -> int:
    """``item`` as an int (a NumPy integer too; not a bool or a float), or ``TypeError``."""
    if isinstance(item, int | np.integer) and not isinstance(item, bool):
        return int(item)
    raise TypeError(f"{name} must be an int or a pair (height, width) of ints, got {value!r}")


def _check_images(name: str, x: Arr) -> None:
    if x.ndim != 4:
        raise ValueError(
            f"{name} needs a batch of images of shape (N, C, H, W), got shape {x.shape}; "
            "add the missing dimensions first (one image: x.reshape(1, C, H, W))"
        )


def _check_window(name: str, x: Arr, kernel_size: Pair, stride: Pair, padding: Pair) -> None:
    """Raise ``ValueError`` unless the kernel fits the padded image with positive sizes."""
    _check_images(name, x)
    if min(*kernel_size, *stride) < 1 or min(padding) < 0:
        raise ValueError(
            f"{name} needs kernel sizes and strides of at least 1 and padding of at least 0, "
            f"got kernel_size={kernel_size}, stride={stride}, padding={padding}"
        )
    padded = (x.shape[2] + 2 * padding[0], x.shape[3] + 2 * padding[1])
    if padded[0] < kernel_size[0] or padded[1] < kernel_size[1]:
        raise ValueError(
            f"{name}: the kernel {kernel_size} is larger than the padded image {padded} "
            f"(input of shape {x.shape} with padding {padding})"
        )


def _check_pool_window(name: str, x: Arr, kernel_size: Pair, stride: Pair, padding: Pair) -> None:
    """``_check_window``, and padding at most half the kernel, as PyTorch requires of pooling.

    So that no window lies entirely in the padding.
    """
    _check_window(name, x, kernel_size, stride, padding)
    if 2 * padding[0] > kernel_size[0] or 2 * padding[1] > kernel_size[1]:
        raise ValueError(
            f"{name}: padding {padding} must be at most half the kernel size {kernel_size}, "
            "so that no window lies entirely in the padding"
        )


def _pool_stride(kernel_size: Pair, stride: int | tuple[int, int] | None) -> Pair:
    """The stride of a pooling window: the kernel size unless given, as in PyTorch."""
    return kernel_size if stride is None else _pair(stride, "stride")


def _conv2d(x: Arr, weight: Arr, bias: Arr | None, stride: Pair, padding: Pair) -> Arr:
    """2-D convolution (cross-correlation, as in PyTorch) of ``x`` with ``weight``.

    ``out[n, o, h, w] = bias[o] + sum_{c, i, j} xp[n, c, h * sh + i, w * sw + j] *
    weight[o, c, i, j]``, where ``xp`` is ``x`` zero-padded by ``padding``. The
    windows are copied once into the rows of a matrix (``_im2col``), and one
    matrix product with the kernels, flattened to rows, computes every output
    (``_correlate``).
    Shapes: ``x`` (N, C, H, W), ``weight`` (O, C, kh, kw), ``bias`` (O,) or None;
    the result (N, O, OH, OW), ``OH = (H + 2 * ph - kh) // sh + 1``.
    """
    _check_images("conv2d", x)
    if weight.ndim != 4 or weight.shape[1] != x.shape[1]:
        raise ValueError(
            f"conv2d needs a weight of shape (out_channels, {x.shape[1]}, kh, kw) for an input "
            f"of shape {x.shape} (C = {x.shape[1]}), got weight shape {weight.shape}"
        )
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(
            f"conv2d needs a bias of shape ({weight.shape[0]},), one per output channel, "
            f"got shape {bias.shape}"
        )
    _check_window("conv2d", x, (weight.shape[2], weight.shape[3]), stride, padding)
    return _correlate(x, weight, bias, stride, padding)


_conv2d_forward = wrap_forward_fn(_conv2d)
BACK_FUNCS.add_back_func(_conv2d, 0, conv2d_back0, reads=(1,))
BACK_FUNCS.add_back_func(_conv2d, 1, conv2d_back1, reads=(0,))
BACK_FUNCS.add_back_func(_conv2d, 2, conv2d_back2, reads=())


def conv2d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
) -> Tensor:
    """2-D convolution, like ``torch.nn.functional.conv2d`` (one group, no dilation).

    Shapes: ``x`` (N, C, H, W), ``weight`` (O, C, kh, kw), ``bias`` (O,) or None; the
    result (N, O, OH, OW) with ``OH = (H + 2 * padding - kh) // stride + 1``. An int
    ``stride`` or ``padding`` applies to both height and width.
    """
    stride_pair, padding_pair = _pair(stride, "stride"), _pair(padding, "padding")
    return _conv2d_forward(x, weight, bias, stride_pair, padding_pair)


def _max_pool2d(x: Arr, kernel_size: Pair, stride: Pair, padding: Pair) -> Arr:
    """The largest value of each window; the padding counts as ``-inf``, so it never wins.

    Shapes: ``x`` (N, C, H, W); the result (N, C, OH, OW).
    """
    _check_pool_window("max_pool2d", x, kernel_size, stride, padding)
    return _window_reduce(_windows(x, kernel_size, stride, padding, pad_value=-np.inf), np.maximum)


_max_pool2d_forward = wrap_forward_fn(_max_pool2d)
BACK_FUNCS.add_back_func(_max_pool2d, 0, max_pool2d_back, reads=(0,))


def max_pool2d(
    x: Tensor,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
) -> Tensor:
    """Max pooling, like ``torch.nn.functional.max_pool2d``; ``stride`` defaults to the kernel.

    Shapes: ``x`` (N, C, H, W); the result (N, C, OH, OW).
    """
    kernel = _pair(kernel_size, "kernel_size")
    padding_pair = _pair(padding, "padding")
    return _max_pool2d_forward(x, kernel, _pool_stride(kernel, stride), padding_pair)


def _avg_pool2d(x: Arr, kernel_size: Pair, stride: Pair, padding: Pair) -> Arr:
    """The mean of each window, the zero padding included (``count_include_pad=True``).

    Shapes: ``x`` (N, C, H, W); the result (N, C, OH, OW).
    """
    _check_pool_window("avg_pool2d", x, kernel_size, stride, padding)
    total = _window_reduce(_windows(x, kernel_size, stride, padding), np.add)
    return total / (kernel_size[0] * kernel_size[1])


_avg_pool2d_forward = wrap_forward_fn(_avg_pool2d)
BACK_FUNCS.add_back_func(_avg_pool2d, 0, avg_pool2d_back, reads=())


def avg_pool2d(
    x: Tensor,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
) -> Tensor:
    """Average pooling, like ``torch.nn.functional.avg_pool2d``; ``stride`` defaults to the kernel.

    Shapes: ``x`` (N, C, H, W); the result (N, C, OH, OW).
    """
    kernel = _pair(kernel_size, "kernel_size")
    padding_pair = _pair(padding, "padding")
    return _avg_pool2d_forward(x, kernel, _pool_stride(kernel, stride), padding_pair)


def adaptive_avg_pool2d(x: Tensor, output_size: int | tuple[int, int]) -> Tensor:
    """Average pooling to a fixed output size, like ``torch.nn.functional.adaptive_avg_pool2d``.

    ``output_size`` must divide the image size evenly (PyTorch's uneven, overlapping
    blocks are not implemented); 1 gives the mean of each channel, shape (N, C, 1, 1),
    what a ResNet does before its last layer. Equal blocks of (H / OH, W / OW) pixels
    are exactly the windows of ``avg_pool2d`` with that kernel as its stride, so that
    is what runs, and its backward serves. Shapes: ``x`` (N, C, H, W); the result
    (N, C, OH, OW).
    """
    _check_images("adaptive_avg_pool2d", x.array)
    height, width = x.shape[2], x.shape[3]
    oh, ow = _pair(output_size, "output_size")
    if oh < 1 or ow < 1 or height % oh or width % ow:
        raise ValueError(
            f"adaptive_avg_pool2d: output size {(oh, ow)} must divide the image size "
            f"{(height, width)} evenly (uneven blocks are not supported); use 1 for the mean "
            "of each channel"
        )
    block = (height // oh, width // ow)
    return _avg_pool2d_forward(x, block, block, (0, 0))
