"""Batch normalisation: per-channel statistics of the batch in training, running ones in eval."""

import numpy as np

from npgrad.arrays import Arr
from npgrad.forward import wrap_forward_fn
from npgrad.grad_mode import NoGrad
from npgrad.registry import BACK_FUNCS
from npgrad.tensor import Tensor


def _channel_axes(x: Arr) -> tuple[int, ...]:
    """Every axis but the channel axis 1: what batch normalisation averages over."""
    return (0, *range(2, x.ndim))


def _per_channel(values: Arr, ndim: int) -> Arr:
    """A per-channel vector (C,) shaped (1, C, 1, ...) to broadcast against ``ndim`` dimensions."""
    return values.reshape(1, -1, *([1] * (ndim - 2)))


def _normalise_by_batch(x: Arr, eps: float) -> tuple[Arr, Arr]:
    """``(x_hat, inv_std)``: ``x`` standardised per channel by its own mean and variance.

    ``x_hat = (x - mean) * inv_std`` with ``inv_std = 1 / sqrt(var + eps)``, where the
    mean and the biased variance (divided by the count, not count - 1) are taken over
    every axis but the channels. Shapes: ``x`` (N, C, *); ``x_hat`` like ``x``,
    ``inv_std`` (1, C, 1, ...).
    """
    axes = _channel_axes(x)
    centred = x - x.mean(axis=axes, keepdims=True)
    inv_std = 1.0 / np.sqrt(np.mean(centred * centred, axis=axes, keepdims=True) + eps)
    return centred * inv_std, inv_std


def _batch_norm_train(x: Arr, weight: Arr | None, bias: Arr | None, eps: float) -> Arr:
    """Batch normalisation by this batch's statistics: ``x_hat * weight + bias``.

    ``x_hat = (x - mean) / sqrt(var + eps)`` per channel, with the mean and the biased
    variance over every axis but the channel axis 1. ``weight`` and ``bias`` may be
    None (no scale, no shift). Shapes: ``x`` (N, C, *), ``weight`` and ``bias`` (C,);
    the result like ``x``.
    """
    x_hat, _ = _normalise_by_batch(x, eps)
    return _scale_and_shift(x_hat, weight, bias)


def _scale_and_shift(x_hat: Arr, weight: Arr | None, bias: Arr | None) -> Arr:
    out = x_hat if weight is None else x_hat * _per_channel(weight, x_hat.ndim)
    return out if bias is None else out + _per_channel(bias, x_hat.ndim)


_batch_norm_train_forward = wrap_forward_fn(_batch_norm_train)


def batch_norm_train_back0(
    grad_out: Arr, out: Arr, x: Arr, weight: Arr | None, bias: Arr | None, eps: float
) -> Arr:
    """Gradient with respect to ``x`` (argument 0) of batch normalisation in training mode.

    ``out = x_hat * weight + bias`` with ``x_hat = (x - mean) * inv_std``, where the
    mean and variance are this batch's own, per channel: they depend on every element
    of the channel, so the gradient has three terms. With ``g = grad_out * weight``
    (the gradient with respect to ``x_hat``) and means over all but the channel axis::

        grad_x = inv_std * (g - mean(g) - x_hat * mean(g * x_hat))

    The middle term is the path through the mean, the last the path through the
    variance. ``x_hat`` and ``inv_std`` are recomputed from ``x``.
    Shapes: ``x`` (N, C, *), ``weight`` and ``bias`` (C,) or None; ``grad_out`` like
    ``x``, and so is the result.
    """
    axes = _channel_axes(x)
    x_hat, inv_std = _normalise_by_batch(x, eps)
    g = grad_out if weight is None else grad_out * _per_channel(weight, x.ndim)
    mean_g: Arr = g.mean(axis=axes, keepdims=True)
    mean_g_x_hat: Arr = (g * x_hat).mean(axis=axes, keepdims=True)
    grad: Arr = inv_std * (g - mean_g - x_hat * mean_g_x_hat)
    return grad


def batch_norm_train_back1(
    grad_out: Arr, out: Arr, x: Arr, weight: Arr, bias: Arr | None, eps: float
) -> Arr:
    """Gradient with respect to ``weight`` (argument 1) of batch normalisation, training mode.

    ``weight[c]`` scales every ``x_hat`` of channel ``c``: the sum of
    ``grad_out * x_hat`` over all but the channel axis.
    Shapes: ``x`` and ``grad_out`` (N, C, *); the result (C,).
    """
    x_hat, _ = _normalise_by_batch(x, eps)
    grad: Arr = (grad_out * x_hat).sum(axis=_channel_axes(x))
    return grad


def batch_norm_train_back2(
    grad_out: Arr, out: Arr, x: Arr, weight: Arr | None, bias: Arr, eps: float
) -> Arr:
    """Gradient with respect to ``bias`` (argument 2) of batch normalisation, training mode.

    ``bias[c]`` is added to every element of channel ``c``: the sum of ``grad_out``
    over all but the channel axis. Shapes: ``grad_out`` (N, C, *); the result (C,).
    """
    grad: Arr = grad_out.sum(axis=_channel_axes(x))
    return grad


BACK_FUNCS.add_back_func(_batch_norm_train, 0, batch_norm_train_back0, reads=(0, 1))
BACK_FUNCS.add_back_func(_batch_norm_train, 1, batch_norm_train_back1, reads=(0,))
BACK_FUNCS.add_back_func(_batch_norm_train, 2, batch_norm_train_back2, reads=())


def _normalise_by_running_stats(
    x: Arr, running_mean: Arr, running_var: Arr, eps: float
) -> tuple[Arr, Arr]:
    """``(x_hat, inv_std)`` for evaluation mode: standardised by the running statistics.

    Shapes: ``x`` (N, C, *), ``running_mean`` and ``running_var`` (C,); ``x_hat`` like
    ``x``, ``inv_std`` (1, C, 1, ...).
    """
    inv_std = 1.0 / np.sqrt(_per_channel(running_var, x.ndim) + eps)
    return (x - _per_channel(running_mean, x.ndim)) * inv_std, inv_std


def _batch_norm_eval(
    x: Arr,
    running_mean: Arr,
    running_var: Arr,
    weight: Arr | None,
    bias: Arr | None,
    eps: float,
) -> Arr:
    """Batch normalisation by the running statistics: ``x_hat * weight + bias``.

    ``x_hat = (x - running_mean) / sqrt(running_var + eps)`` per channel.
    Shapes: ``x`` (N, C, *), the other arrays (C,); the result like ``x``.
    """
    x_hat, _ = _normalise_by_running_stats(x, running_mean, running_var, eps)
    return _scale_and_shift(x_hat, weight, bias)


_batch_norm_eval_forward = wrap_forward_fn(_batch_norm_eval)


def batch_norm_eval_back0(
    grad_out: Arr,
    out: Arr,
    x: Arr,
    running_mean: Arr,
    running_var: Arr,
    weight: Arr | None,
    bias: Arr | None,
    eps: float,
) -> Arr:
    """Gradient with respect to ``x`` (argument 0) of batch normalisation in evaluation mode.

    The running statistics are constants here, so the normalisation is an affine map
    per channel: ``grad_out * weight * inv_std``.
    Shapes: ``x`` (N, C, *), the statistics, ``weight`` and ``bias`` (C,) (the last
    two may be None); ``grad_out`` like ``x``, and so is the result.
    """
    inv_std = 1.0 / np.sqrt(_per_channel(running_var, x.ndim) + eps)
    scale = inv_std if weight is None else inv_std * _per_channel(weight, x.ndim)
    return grad_out * scale


def batch_norm_eval_back3(
    grad_out: Arr,
    out: Arr,
    x: Arr,
    running_mean: Arr,
    running_var: Arr,
    weight: Arr,
    bias: Arr | None,
    eps: float,
) -> Arr:
    """Gradient with respect to ``weight`` (argument 3) of batch normalisation, evaluation mode.

    The sum of ``grad_out * x_hat`` over all but the channel axis, with ``x_hat``
    standardised by the running statistics.
    Shapes: ``x`` and ``grad_out`` (N, C, *); the result (C,).
    """
    x_hat, _ = _normalise_by_running_stats(x, running_mean, running_var, eps)
    grad: Arr = (grad_out * x_hat).sum(axis=_channel_axes(x))
    return grad


def batch_norm_eval_back4(
    grad_out: Arr,
    out: Arr,
    x: Arr,
    running_mean: Arr,
    running_var: Arr,
    weight: Arr | None,
    bias: Arr,
    eps: float,
) -> Arr:
    """Gradient with respect to ``bias`` (argument 4) of batch normalisation, evaluation mode.

    The sum of ``grad_out`` over all but the channel axis.
    Shapes: ``grad_out`` (N, C, *); the result (C,).
    """
    grad: Arr = grad_out.sum(axis=_channel_axes(x))
    return grad


BACK_FUNCS.add_back_func(_batch_norm_eval, 0, batch_norm_eval_back0, reads=(2, 3))
BACK_FUNCS.add_back_func(_batch_norm_eval, 3, batch_norm_eval_back3, reads=(0, 1, 2))
BACK_FUNCS.add_back_func(_batch_norm_eval, 4, batch_norm_eval_back4, reads=())


def batch_norm(
    x: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Batch normalisation, like ``torch.nn.functional.batch_norm``.

    In training mode, each channel is standardised by the mean and (biased)
    variance of this batch, and the gradient flows through those statistics too;
    the running statistics, when given, are then updated in place:
    ``running = (1 - momentum) * running + momentum * batch_statistic``, with the
    unbiased variance (divided by count - 1) for ``running_var``, as PyTorch does.
    In evaluation mode the running statistics standardise instead, and nothing is
    updated. Then ``* weight + bias`` per channel, when given.
    Shapes: ``x`` (N, C, *), every other tensor (C,); the result like ``x``.
    """
    if x.ndim < 2:
        raise ValueError(f"batch_norm needs an input of shape (N, C, *), got shape {x.shape}")
    channels = x.shape[1]
    for name, value in (
        ("running_mean", running_mean),
        ("running_var", running_var),
        ("weight", weight),
        ("bias", bias),
    ):
        if value is not None and value.shape != (channels,):
            raise ValueError(
                f"batch_norm: {name} must have shape ({channels},), one value per channel of "
                f"the input of shape {x.shape}; got shape {value.shape}"
            )
    if not training:
        if running_mean is None or running_var is None:
            raise ValueError(
                "batch_norm in evaluation mode (training=False) needs running_mean and "
                "running_var; pass training=True to normalise by the batch's own statistics"
            )
        return _batch_norm_eval_forward(x, running_mean, running_var, weight, bias, eps)
    count = x.array.size // channels
    if count < 2:
        raise ValueError(
            f"batch_norm in training mode needs more than one value per channel, got input "
            f"of shape {x.shape}: the variance of a single value is undefined"
        )
    out = _batch_norm_train_forward(x, weight, bias, eps)
    if running_mean is not None and running_var is not None:
        axes = _channel_axes(x.array)
        with NoGrad():  # bookkeeping, not part of the computation
            batch_mean = x.array.mean(axis=axes)
            batch_var = x.array.var(axis=axes, ddof=1)  # unbiased, as PyTorch keeps it
            running_mean.add_(Tensor(batch_mean - running_mean.array), alpha=momentum)
            running_var.add_(Tensor(batch_var - running_var.array), alpha=momentum)
    return out
