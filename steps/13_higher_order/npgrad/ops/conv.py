"""Two-dimensional convolution as one matrix product over unfolded windows (im2col)."""

from npgrad.arrays import Arr
from npgrad.forward import wrap_forward_fn
from npgrad.ops.windows import (
    Pair,
    add_windows,
    as_pair,
    check_images,
    check_window,
    conv_output_size,
    window_view,
)
from npgrad.registry import BACK_FUNCS
from npgrad.tensor import Tensor


def _im2col(x: Arr, kernel_size: Pair, stride: Pair, padding: Pair) -> Arr:
    """The windows of ``x`` as the columns of a matrix: im2col, for convolution by one product.

    Column ``(n, h, w)`` holds window ``(h, w)`` of image ``n``, flattened in the order
    of a kernel's weights (channel, row, column), so ``weight.reshape(O, -1) @ cols``
    is the convolution. This is the one copy of the windows (C * kh * kw values per
    output position); the channel-major order keeps NumPy's copy running along
    image rows.
    Shapes: ``x`` (N, C, H, W); the result (C * kh * kw, N * OH * OW).
    """
    windows = window_view(x, kernel_size, stride, padding)  # (N, C, OH, OW, kh, kw)
    n, c, oh, ow, kh, kw = windows.shape
    return windows.transpose(1, 4, 5, 0, 2, 3).reshape(c * kh * kw, n * oh * ow)


def _conv2d(x: Arr, weight: Arr, bias: Arr | None, stride: Pair, padding: Pair) -> Arr:
    """2-D convolution (cross-correlation, as in PyTorch) of ``x`` with ``weight``.

    ``out[n, o, h, w] = bias[o] + sum_{c, i, j} xp[n, c, h * sh + i, w * sw + j] *
    weight[o, c, i, j]``, where ``xp`` is ``x`` zero-padded by ``padding``. The
    windows are copied once into the columns of a matrix (``_im2col``), and one
    matrix product with the kernels, flattened to rows, computes every output.
    Shapes: ``x`` (N, C, H, W), ``weight`` (O, C, kh, kw), ``bias`` (O,) or None;
    the result (N, O, OH, OW), ``OH = (H + 2 * ph - kh) // sh + 1``.
    """
    check_images("conv2d", x)
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
    kernel_size = (weight.shape[2], weight.shape[3])
    check_window("conv2d", x, kernel_size, stride, padding)
    cols = _im2col(x, kernel_size, stride, padding)  # (C * kh * kw, N * OH * OW)
    out = weight.reshape(weight.shape[0], -1) @ cols  # (O, N * OH * OW)
    if bias is not None:
        out += bias[:, None]
    n, (oh, ow) = x.shape[0], conv_output_size(x, kernel_size, stride, padding)
    # Channel-major in memory; elementwise operations keep that order, so the
    # backward's transpose back to (O, N * OH * OW) is free.
    return out.reshape(weight.shape[0], n, oh, ow).transpose(1, 0, 2, 3)


_conv2d_forward = wrap_forward_fn(_conv2d)


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
    stride_pair, padding_pair = as_pair(stride, "stride"), as_pair(padding, "padding")
    return _conv2d_forward(x, weight, bias, stride_pair, padding_pair)


def _channels_first(grad_out: Arr) -> Arr:
    """(N, O, OH, OW) as the matrix (O, N * OH * OW) that the im2col products use."""
    n, o, oh, ow = grad_out.shape
    return grad_out.transpose(1, 0, 2, 3).reshape(o, n * oh * ow)


def conv2d_back0(
    grad_out: Arr,
    out: Arr,
    x: Arr,
    weight: Arr,
    bias: Arr | None,
    stride: Pair,
    padding: Pair,
) -> Arr:
    """Gradient with respect to ``x`` (argument 0) of ``out = conv2d(x, weight, bias, ...)``.

    ``out[n, o, h, w] = sum_{c, i, j} window[n, c, h, w, i, j] * weight[o, c, i, j]``,
    so the gradient of every window is ``grad_out`` times ``weight``, summed over the
    output channels ``o``: one matrix product giving im2col's shape. ``add_windows``
    then sums the windows back into the image (where they overlap, a pixel receives
    from each window it is in).
    Shapes: ``x`` (N, C, H, W), ``weight`` (O, C, kh, kw); ``grad_out`` (N, O, OH, OW),
    the result (N, C, H, W).
    """
    n, _, oh, ow = grad_out.shape
    o, c, kh, kw = weight.shape
    grad_cols = weight.reshape(o, c * kh * kw).T @ _channels_first(grad_out)
    grad_windows = grad_cols.reshape(c, kh, kw, n, oh, ow).transpose(3, 0, 4, 5, 1, 2)
    return add_windows(grad_windows, x.shape, stride, padding)


def conv2d_back1(
    grad_out: Arr,
    out: Arr,
    x: Arr,
    weight: Arr,
    bias: Arr | None,
    stride: Pair,
    padding: Pair,
) -> Arr:
    """Gradient with respect to ``weight`` (argument 1) of ``out = conv2d(x, weight, ...)``.

    Every weight meets every window: ``grad_out`` times the windows of ``x``, summed
    over the batch and the output positions, one matrix product with im2col's matrix
    (rebuilt from ``x``).
    Shapes: ``x`` (N, C, H, W), ``weight`` (O, C, kh, kw); ``grad_out`` (N, O, OH, OW),
    the result (O, C, kh, kw).
    """
    cols = _im2col(x, (weight.shape[2], weight.shape[3]), stride, padding)
    return (_channels_first(grad_out) @ cols.T).reshape(weight.shape)


def conv2d_back2(
    grad_out: Arr, out: Arr, x: Arr, weight: Arr, bias: Arr, stride: Pair, padding: Pair
) -> Arr:
    """Gradient with respect to ``bias`` (argument 2) of ``out = conv2d(x, weight, bias, ...)``.

    Bias ``o`` is added at every position of output channel ``o``: the sum of
    ``grad_out`` over the batch, height and width.
    Shapes: ``grad_out`` (N, O, OH, OW), the result (O,).
    """
    grad: Arr = grad_out.sum(axis=(0, 2, 3))
    return grad


BACK_FUNCS.add_back_func(_conv2d, 0, conv2d_back0, reads=(1,))
BACK_FUNCS.add_back_func(_conv2d, 1, conv2d_back1, reads=(0,))
BACK_FUNCS.add_back_func(_conv2d, 2, conv2d_back2, reads=())
