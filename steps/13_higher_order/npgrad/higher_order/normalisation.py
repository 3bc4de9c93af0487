"""Twins of batch normalisation's backward functions.

In training mode the statistics are functions of ``x``, so the twin recomputes
them with Tensor operations (mean as a sum over the count, ``1 / sqrt`` as
``exp(-log(.) / 2)``) and writes the three-term formula of
``batch_norm_train_back0`` with them: its second derivative then includes the
paths through the mean and the variance. In evaluation mode the statistics are
constants and the map is affine per channel.
"""

from npgrad.arrays import Arr
from npgrad.higher_order.broadcasting import as_tensor
from npgrad.higher_order.registry import GRAPH_BACK_FUNCS
from npgrad.ops import (
    batch_norm_eval_back0,
    batch_norm_eval_back3,
    batch_norm_eval_back4,
    batch_norm_train_back0,
    batch_norm_train_back1,
    batch_norm_train_back2,
    exp,
    log,
    reshape,
    sum,
)
from npgrad.tensor import Tensor


def _channel_axes(ndim: int) -> tuple[int, ...]:
    return (0, *range(2, ndim))


def _per_channel(values: Tensor | Arr, ndim: int) -> Tensor:
    """A (C,) vector shaped (1, C, 1, ...) to broadcast against ``ndim`` dimensions."""
    return reshape(as_tensor(values), (1, -1, *([1] * (ndim - 2))))


def _mean(x: Tensor, axes: tuple[int, ...]) -> Tensor:
    count = 1
    for axis in axes:
        count *= x.shape[axis]
    return sum(x, axes, keepdim=True) / float(count)


def _inverse_sqrt(x: Tensor) -> Tensor:
    return exp(log(x) * -0.5)


def normalise_by_batch(x: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    """``(x_hat, inv_std)`` as in ``_normalise_by_batch``, recorded."""
    axes = _channel_axes(x.ndim)
    centred = x - _mean(x, axes)
    inv_std = _inverse_sqrt(_mean(centred * centred, axes) + eps)
    return centred * inv_std, inv_std


def batch_norm_train_back0_graph(
    grad_out: Tensor,
    out: Tensor,
    x: Tensor,
    weight: Tensor | Arr | None,
    bias: Tensor | Arr | None,
    eps: float,
) -> Tensor:
    """``inv_std * (g - mean(g) - x_hat * mean(g * x_hat))`` with ``g = grad_out * weight``."""
    axes = _channel_axes(x.ndim)
    x_hat, inv_std = normalise_by_batch(x, eps)
    g = grad_out if weight is None else grad_out * _per_channel(weight, x.ndim)
    return inv_std * (g - _mean(g, axes) - x_hat * _mean(g * x_hat, axes))


def batch_norm_train_back1_graph(
    grad_out: Tensor,
    out: Tensor,
    x: Tensor | Arr,
    weight: Tensor,
    bias: Tensor | Arr | None,
    eps: float,
) -> Tensor:
    """``grad_out * x_hat`` summed over all but the channel axis."""
    x_tensor = as_tensor(x)
    x_hat, _ = normalise_by_batch(x_tensor, eps)
    return sum(grad_out * x_hat, _channel_axes(x_tensor.ndim))


def batch_norm_train_back2_graph(
    grad_out: Tensor,
    out: Tensor,
    x: Tensor | Arr,
    weight: Tensor | Arr | None,
    bias: Tensor,
    eps: float,
) -> Tensor:
    """``grad_out`` summed over all but the channel axis."""
    return sum(grad_out, _channel_axes(grad_out.ndim))


def _eval_inv_std(running_var: Tensor | Arr, ndim: int, eps: float) -> Tensor:
    return _inverse_sqrt(_per_channel(running_var, ndim) + eps)


def batch_norm_eval_back0_graph(
    grad_out: Tensor,
    out: Tensor,
    x: Tensor,
    running_mean: Tensor | Arr,
    running_var: Tensor | Arr,
    weight: Tensor | Arr | None,
    bias: Tensor | Arr | None,
    eps: float,
) -> Tensor:
    """``grad_out * weight * inv_std``, the statistics constant."""
    scale = _eval_inv_std(running_var, x.ndim, eps)
    if weight is not None:
        scale = scale * _per_channel(weight, x.ndim)
    return grad_out * scale


def batch_norm_eval_back3_graph(
    grad_out: Tensor,
    out: Tensor,
    x: Tensor | Arr,
    running_mean: Tensor | Arr,
    running_var: Tensor | Arr,
    weight: Tensor,
    bias: Tensor | Arr | None,
    eps: float,
) -> Tensor:
    """``grad_out * x_hat`` summed over all but the channel axis, ``x_hat`` by running stats."""
    x_tensor = as_tensor(x)
    ndim = x_tensor.ndim
    x_hat = (x_tensor - _per_channel(running_mean, ndim)) * _eval_inv_std(running_var, ndim, eps)
    return sum(grad_out * x_hat, _channel_axes(ndim))


def batch_norm_eval_back4_graph(
    grad_out: Tensor,
    out: Tensor,
    x: Tensor | Arr,
    running_mean: Tensor | Arr,
    running_var: Tensor | Arr,
    weight: Tensor | Arr | None,
    bias: Tensor,
    eps: float,
) -> Tensor:
    """``grad_out`` summed over all but the channel axis."""
    return sum(grad_out, _channel_axes(grad_out.ndim))


GRAPH_BACK_FUNCS.add_twin(batch_norm_train_back0, batch_norm_train_back0_graph)
GRAPH_BACK_FUNCS.add_twin(batch_norm_train_back1, batch_norm_train_back1_graph)
GRAPH_BACK_FUNCS.add_twin(batch_norm_train_back2, batch_norm_train_back2_graph)
GRAPH_BACK_FUNCS.add_twin(batch_norm_eval_back0, batch_norm_eval_back0_graph)
GRAPH_BACK_FUNCS.add_twin(batch_norm_eval_back3, batch_norm_eval_back3_graph)
GRAPH_BACK_FUNCS.add_twin(batch_norm_eval_back4, batch_norm_eval_back4_graph)
