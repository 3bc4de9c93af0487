"""Operations that move elements without changing them: reshape, permute, expand, indexing.

Their backward functions move the gradient back the same way: each returns
an array shaped like its input, built from ``grad_out`` (shaped like ``out``).
"""

from collections.abc import Callable, Sequence

import numpy as np

from npgrad.arrays import Arr
from npgrad.forward import wrap_forward_fn
from npgrad.ops.broadcasting import unbroadcast
from npgrad.registry import BACK_FUNCS
from npgrad.tensor import ArrayIndex, Index, Tensor

_reshape_forward = wrap_forward_fn(np.reshape)


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


def reshape_back(grad_out: Arr, out: Arr, x: Arr, shape: tuple[int, ...]) -> Arr:
    """Gradient with respect to ``x`` of ``out = reshape(x, shape)``: ``grad_out`` reshaped back.

    Reshaping moves no value, so each element's gradient just moves back.
    """
    return grad_out.reshape(x.shape)


BACK_FUNCS.add_back_func(np.reshape, 0, reshape_back, reads=())

_permute_forward = wrap_forward_fn(np.transpose)


def permute(x: Tensor, dims: tuple[int, ...]) -> Tensor:
    """``x`` with its dimensions reordered: result dimension ``i`` is ``x``'s ``dims[i]``."""
    try:
        return _permute_forward(x, dims)
    except (ValueError, TypeError):
        raise ValueError(
            f"cannot permute a tensor of shape {x.shape} by {dims}: list each of its "
            f"{x.ndim} dimensions exactly once (negative numbers count from the end)"
        ) from None


def permute_back(grad_out: Arr, out: Arr, x: Arr, dims: tuple[int, ...]) -> Arr:
    """Gradient with respect to ``x`` of ``out = transpose(x, dims)``: the inverse permutation.

    Output dimension ``i`` is input dimension ``dims[i]``, so the gradient's
    dimension ``i`` goes back to position ``dims[i]`` (the inverse is ``dims``
    itself only when the permutation is its own inverse, as a 2-D transpose is).
    """
    inverse = [0] * len(dims)
    for position, dim in enumerate(dims):
        inverse[dim % x.ndim] = position
    return grad_out.transpose(inverse)


BACK_FUNCS.add_back_func(np.transpose, 0, permute_back, reads=())


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


def expand_back(grad_out: Arr, out: Arr, x: Arr, sizes: tuple[int, ...]) -> Arr:
    """Gradient with respect to ``x`` of ``out = expand(x, sizes)``: ``unbroadcast``.

    Expanding is broadcasting by request: each input element was copied along
    the stretched dimensions, so its gradient is the sum over them.
    """
    return unbroadcast(grad_out, x)


BACK_FUNCS.add_back_func(_expand, 0, expand_back, reads=())


def _getitem(x: Arr, index: ArrayIndex) -> Arr:
    """``x[index]``, as a function the table can key on (always an array, never a scalar)."""
    return np.asarray(x[index])


_getitem_forward = wrap_forward_fn(_getitem)


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


def getitem_back(grad_out: Arr, out: Arr, x: Arr, index: object) -> Arr:
    """Gradient with respect to ``x`` of ``out = x[index]``: ``grad_out`` added into zeros.

    An element picked several times (an integer array with repeated
    coordinates) receives the sum of its gradients: ``np.add.at`` accumulates,
    where ``grad[index] += grad_out`` would keep only one of them.
    """
    grad = np.zeros(x.shape, dtype=grad_out.dtype)
    np.add.at(grad, index, grad_out)  # type: ignore[arg-type]  # any valid NumPy index
    return grad


BACK_FUNCS.add_back_func(_getitem, 0, getitem_back, reads=())


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

_concatenate_forward = wrap_forward_fn(_concatenate)


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


def stack_back(position: int, grad_out: Arr, out: Arr, *arrays: Arr, dim: int) -> Arr:
    """Gradient of ``out = stack(arrays, dim)`` for the array at ``position``.

    Registered as the variadic backward of stack: array ``position`` became
    the slice ``position`` of ``out`` along the new dimension ``dim``, so its
    gradient is that slice of ``grad_out``.
    Shapes: every array has one shape ``s``; ``out`` and ``grad_out`` have ``s``
    with ``len(arrays)`` inserted at ``dim``; the result has shape ``s``.
    """
    return np.asarray(np.take(grad_out, position, axis=dim))


def concatenate_back(position: int, grad_out: Arr, out: Arr, *arrays: Arr, dim: int) -> Arr:
    """Gradient of ``out = concatenate(arrays, dim)`` for the array at ``position``.

    Registered as the variadic backward of concatenate: array ``position``
    fills a run of ``out`` along ``dim`` that starts after the arrays before
    it, so its gradient is that run of ``grad_out``.
    Shapes: the arrays agree except along ``dim``; ``grad_out`` has ``out``'s
    shape; the result has the shape of ``arrays[position]``.
    """
    axis = dim % out.ndim
    start = sum(array.shape[axis] for array in arrays[:position])
    run = slice(start, start + arrays[position].shape[axis])
    return grad_out[(slice(None),) * axis + (run,)]


BACK_FUNCS.add_variadic_back_func(_stack, stack_back, reads_other_args=False)
BACK_FUNCS.add_variadic_back_func(_concatenate, concatenate_back, reads_other_args=False)
