"""Two-dimensional convolution as one matrix product over unfolded windows (im2col)."""

import numpy as np

from npgrad.arrays import Arr
from npgrad.forward import wrap_forward_fn
from npgrad.ops.windows import (
    Pair,
    as_pair,
    check_images,
    check_window,
    conv_output_size,
    window_view,
)
from npgrad.registry import BACK_FUNCS
from npgrad.tensor import Tensor


def _padded_channels_last(x: Arr, padding: Pair) -> Arr:
    """``x`` zero-padded by ``padding`` and copied channels-last: (N, H + 2 * ph, W + 2 * pw, C).

    Channels-last puts the ``kw * C`` values of one window row next to each other in
    memory, so the copy into im2col's rows moves long runs instead of single numbers.
    """
    n, c, height, width = x.shape
    ph, pw = padding
    padded = np.zeros((n, height + 2 * ph, width + 2 * pw, c), dtype=x.dtype)
    padded[:, ph : ph + height, pw : pw + width, :] = x.transpose(0, 2, 3, 1)
    return padded


def _windows_channels_last(x: Arr, kernel_size: Pair, stride: Pair, padding: Pair) -> Arr:
    """``window_view``'s windows of ``x`` padded by ``padding``, with the channel axis last.

    Element ``[n, h, w, i, j, c]`` is ``xp[n, c, h * sh + i, w * sw + j]``. The windows
    are a view of ``_padded_channels_last``'s copy (seen as (N, C, H, W) for
    ``window_view``), so a window row of every channel is one contiguous run.
    Shapes: ``x`` (N, C, H, W); the result (N, OH, OW, kh, kw, C), read-only.
    """
    padded = _padded_channels_last(x, padding).transpose(0, 3, 1, 2)
    return window_view(padded, kernel_size, stride, (0, 0)).transpose(0, 2, 3, 4, 5, 1)


def _kernel_rows(weight: Arr) -> Arr:
    """(O, C, kh, kw) as the matrix (O, kh * kw * C), in the column order of ``_im2col``."""
    return weight.transpose(0, 2, 3, 1).reshape(weight.shape[0], -1)


def _output_columns(grad_out: Arr) -> Arr:
    """(N, O, OH, OW) as the matrix (O, N * OH * OW) whose columns match ``_im2col``'s rows.

    Either memory layout makes it cheaply: the channels-last view that ``_correlate``
    returns gives it without a copy, and an ordinary (N, O, OH, OW) array is copied
    a whole channel plane (OH * OW numbers) at a time, several times faster than
    moving its channels last would be.
    """
    n, o, oh, ow = grad_out.shape
    if grad_out.strides[1] == grad_out.itemsize:  # channels-last in memory
        return grad_out.transpose(0, 2, 3, 1).reshape(n * oh * ow, o).T
    return grad_out.transpose(1, 0, 2, 3).reshape(o, n * oh * ow)


def _correlate(x: Arr, weight: Arr, bias: Arr | None, stride: Pair, padding: Pair) -> Arr:
    """The convolution of ``x`` with ``weight``, plus ``bias``: im2col and one matrix product.

    The product's rows are the output positions and its columns the output
    channels, so the result is channels-last in memory; it is returned as the
    (N, O, OH, OW) view of that, which elementwise operations keep, and which
    ``_output_columns`` turns back into a matrix without a copy.
    Shapes: ``x`` (N, C, H, W), ``weight`` (O, C, kh, kw), ``bias`` (O,) or None; the
    result (N, O, OH, OW).
    """
    kernel_size = (weight.shape[2], weight.shape[3])
    out = _im2col(x, kernel_size, stride, padding) @ _kernel_rows(weight).T  # (N * OH * OW, O)
    if bias is not None:
        out += bias
    oh, ow = conv_output_size(x, kernel_size, stride, padding)
    return out.reshape(x.shape[0], oh, ow, weight.shape[0]).transpose(0, 3, 1, 2)


def _add_windows_channels_last(
    grad_windows: Arr, x_shape: tuple[int, ...], stride: Pair, padding: Pair
) -> Arr:
    """``add_windows`` for channels-last windows, the adjoint of ``_windows_channels_last``.

    Shapes: ``grad_windows`` (N, OH, OW, kh, kw, C); ``x_shape`` (N, C, H, W), the
    shape of the result (a view of a channels-last array).
    """
    n, oh, ow, kh, kw, c = grad_windows.shape
    (sh, sw), (ph, pw) = stride, padding
    height, width = x_shape[2], x_shape[3]
    grad = np.zeros((n, height + 2 * ph, width + 2 * pw, c), dtype=grad_windows.dtype)
    for i in range(kh):
        for j in range(kw):
            grad[:, i : i + sh * oh : sh, j : j + sw * ow : sw, :] += grad_windows[:, :, :, i, j, :]
    return grad[:, ph : ph + height, pw : pw + width, :].transpose(0, 3, 1, 2)


def _im2col(x: Arr, kernel_size: Pair, stride: Pair, padding: Pair) -> Arr:
    """The windows of ``x`` as the rows of a matrix: im2col, for convolution by one product.

    Row ``(n, h, w)`` holds window ``(h, w)`` of image ``n``, flattened in the order
    (row, column, channel) of ``_kernel_rows``, so ``cols @ _kernel_rows(weight).T`` is
    the convolution. This is the one copy of the windows (C * kh * kw values per
    output position). The copy runs along whatever is longest in memory: a window
    row of every channel (``kw * C`` values) in general; with a single channel
    (an input image), that is only ``kw`` values, so the matrix is then copied
    transposed, along image rows, and returned as a transposed view (a matrix
    product reads either layout at the same speed).
    Shapes: ``x`` (N, C, H, W); the result (N * OH * OW, kh * kw * C).
    """
    windows = _windows_channels_last(x, kernel_size, stride, padding)
    n, oh, ow, kh, kw, c = windows.shape
    if c == 1:
        return windows.transpose(3, 4, 5, 0, 1, 2).reshape(kh * kw * c, n * oh * ow).T
    return windows.reshape(n * oh * ow, kh * kw * c)


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
    check_window("conv2d", x, (weight.shape[2], weight.shape[3]), stride, padding)
    return _correlate(x, weight, bias, stride, padding)


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

    ``out[n, o, h, w] = sum_{c, i, j} xp[n, c, h * sh + i, w * sw + j] * weight[o, c, i, j]``,
    so pixel ``xp[n, c, y, z]`` receives ``grad_out[n, o, h, w] * weight[o, c, i, j]``
    from every window ``(h, w)`` it lies in, at offset ``(i, j)``. Two ways to sum that:

    - with stride 1 this is itself a convolution, a *transposed* one: pad
      ``grad_out`` by ``kh - 1 - ph`` (and ``kw - 1 - pw``), then convolve it with the
      kernel flipped top to bottom and left to right, its in and out channels
      swapped. One im2col and one matrix product, as fast as the forward pass.
    - otherwise (a stride, or padding wider than the kernel, or a single input
      channel, where the product above would have one column): the gradient of
      every window is ``grad_out`` times ``weight``, summed over ``o``, a matrix
      product per image (no copy of ``grad_out``) in im2col's shape, and
      ``_add_windows_channels_last`` sums the windows back into the image (where
      they overlap, a pixel receives from each window it is in).

    Shapes: ``x`` (N, C, H, W), ``weight`` (O, C, kh, kw); ``grad_out`` (N, O, OH, OW),
    the result (N, C, H, W).
    """
    n, o, oh, ow = grad_out.shape
    _, c, kh, kw = weight.shape
    ph, pw = padding
    if stride == (1, 1) and c > 1 and ph < kh and pw < kw:
        flipped = weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)  # (C, O, kh, kw)
        return _correlate(grad_out, flipped, None, (1, 1), (kh - 1 - ph, kw - 1 - pw))
    per_image, kernel = grad_out.reshape(n, o, oh * ow), _kernel_rows(weight)  # a view
    if c == 1:  # the same memory order as _im2col's matrix, for the same reason
        grad_cols = (kernel.T @ per_image).reshape(n, kh, kw, c, oh, ow)
        grad_windows = grad_cols.transpose(0, 4, 5, 1, 2, 3)
    else:
        grad_windows = (per_image.transpose(0, 2, 1) @ kernel).reshape(n, oh, ow, kh, kw, c)
    return _add_windows_channels_last(grad_windows, x.shape, stride, padding)


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
    over the batch and the output positions: a matrix product with im2col's matrix
    (rebuilt from ``x``), made one image at a time and summed when an image has at
    least as many output positions as there are output channels (faster, and no copy
    of ``grad_out``), else over the whole batch at once.
    Shapes: ``x`` (N, C, H, W), ``weight`` (O, C, kh, kw); ``grad_out`` (N, O, OH, OW),
    the result (O, C, kh, kw).
    """
    n, o, oh, ow = grad_out.shape
    _, c, kh, kw = weight.shape
    cols = _im2col(x, (kh, kw), stride, padding)  # (N * OH * OW, kh * kw * C)
    if oh * ow >= o:  # an image has more positions than there are channels: a product per image
        per_image = grad_out.reshape(n, o, oh * ow) @ cols.reshape(n, oh * ow, kh * kw * c)
        grad: Arr = per_image.sum(axis=0)
    else:
        grad = _output_columns(grad_out) @ cols
    return grad.reshape(o, kh, kw, c).transpose(0, 3, 1, 2)


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
