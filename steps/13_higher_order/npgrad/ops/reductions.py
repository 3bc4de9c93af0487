"""Reductions: operations that combine the elements along some dimensions.

Shapes: ``out`` and ``grad_out`` have the input's shape without the reduced
dimensions (or with them as size 1 when ``keepdim``); the backward spreads
``grad_out`` back over the input's shape.
"""

import numpy as np

from npgrad.arrays import Arr
from npgrad.forward import wrap_forward_fn
from npgrad.registry import BACK_FUNCS
from npgrad.tensor import Tensor


def _sum(x: Arr, dim: int | tuple[int, ...] | None, keepdim: bool) -> Arr:
    """``np.sum`` with PyTorch's argument names, positionally."""
    total: Arr = np.asarray(np.sum(x, axis=dim, keepdims=keepdim))
    return total


_sum_forward = wrap_forward_fn(_sum)


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


def sum_back(
    grad_out: Arr, out: Arr, x: Arr, dim: int | tuple[int, ...] | None, keepdim: bool
) -> Arr:
    """Gradient with respect to ``x`` of ``out = x.sum(dim, keepdim)``: ``grad_out`` spread out.

    Every summed element contributed once, so each receives the gradient of
    its sum: put back the reduced dimensions (when ``keepdim`` dropped them)
    and broadcast to ``x``'s shape. The result is a read-only broadcast view.
    Shapes: ``grad_out`` has ``out``'s shape (0-d for ``dim=None`` without
    ``keepdim``), the result ``x``'s shape.
    """
    if not keepdim and dim is not None:
        grad_out = np.expand_dims(grad_out, dim)
    return np.broadcast_to(grad_out, x.shape)


BACK_FUNCS.add_back_func(_sum, 0, sum_back, reads=())


def _argmax(x: Arr, dim: int | None, keepdim: bool) -> Arr:
    """``np.argmax`` with PyTorch's argument names, positionally."""
    indices: Arr = np.asarray(np.argmax(x, axis=dim, keepdims=keepdim))
    return indices


_argmax_forward = wrap_forward_fn(_argmax, is_differentiable=False)


def argmax(x: Tensor, dim: int | None = None, keepdim: bool = False) -> Tensor:
    """Index of the largest value along ``dim`` (of the flattened tensor for None); no gradient."""
    return _argmax_forward(x, dim, keepdim)


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
