"""Max, average and adaptive average pooling over the windows of an image."""

import numpy as np

from npgrad.arrays import Arr
from npgrad.forward import wrap_forward_fn
from npgrad.ops.windows import (
    Pair,
    add_windows,
    as_pair,
    check_images,
    check_window,
    reduce_windows,
    window_view,
)
from npgrad.registry import BACK_FUNCS
from npgrad.tensor import Tensor


def _check_pool_window(name: str, x: Arr, kernel_size: Pair, stride: Pair, padding: Pair) -> None:
    """``check_window``, and padding at most half the kernel, as PyTorch requires of pooling.

    So that no window lies entirely in the padding.
    """
    check_window(name, x, kernel_size, stride, padding)
    if 2 * padding[0] > kernel_size[0] or 2 * padding[1] > kernel_size[1]:
        raise ValueError(
            f"{name}: padding {padding} must be at most half the kernel size {kernel_size}, "
            "so that no window lies entirely in the padding"
        )


def _pool_stride(kernel_size: Pair, stride: int | tuple[int, int] | None) -> Pair:
    """The stride of a pooling window: the kernel size unless given, as in PyTorch."""
    return kernel_size if stride is None else as_pair(stride, "stride")


def _max_pool2d(x: Arr, kernel_size: Pair, stride: Pair, padding: Pair) -> Arr:
    """The largest value of each window; the padding counts as ``-inf``, so it never wins.

    Shapes: ``x`` (N, C, H, W); the result (N, C, OH, OW).
    """
    _check_pool_window("max_pool2d", x, kernel_size, stride, padding)
    return reduce_windows(
        window_view(x, kernel_size, stride, padding, pad_value=-np.inf), np.maximum
    )


_max_pool2d_forward = wrap_forward_fn(_max_pool2d)


def max_pool2d(
    x: Tensor,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
) -> Tensor:
    """Max pooling, like ``torch.nn.functional.max_pool2d``; ``stride`` defaults to the kernel.

    Shapes: ``x`` (N, C, H, W); the result (N, C, OH, OW).
    """
    kernel = as_pair(kernel_size, "kernel_size")
    padding_pair = as_pair(padding, "padding")
    return _max_pool2d_forward(x, kernel, _pool_stride(kernel, stride), padding_pair)


def max_pool2d_back(
    grad_out: Arr, out: Arr, x: Arr, kernel_size: Pair, stride: Pair, padding: Pair
) -> Arr:
    """Gradient with respect to ``x`` of ``out = max_pool2d(x, kernel_size, stride, padding)``.

    Each window's maximum came from one element, which receives the whole gradient;
    the others receive 0. At a tie the first maximum in the window (row by row) takes
    it, as in PyTorch. The maxima are found again from ``x``; then, offset by offset
    in that order, an element equal to its window's maximum takes whatever gradient
    its window has left (all of it, or 0 once an earlier maximum took it), so only
    the first maximum receives it. ``add_windows`` sums where windows overlap.
    Shapes: ``x`` (N, C, H, W); ``grad_out`` (N, C, OH, OW), the result (N, C, H, W).
    """
    windows = window_view(x, kernel_size, stride, padding, pad_value=-np.inf)
    largest = reduce_windows(windows, np.maximum)
    kh, kw = kernel_size
    grad_windows = np.empty((kh, kw, *grad_out.shape), dtype=grad_out.dtype)
    left = grad_out.copy()
    for i in range(kh):
        for j in range(kw):
            np.multiply(left, windows[..., i, j] == largest, out=grad_windows[i, j])
            left -= grad_windows[i, j]
    return add_windows(grad_windows.transpose(2, 3, 4, 5, 0, 1), x.shape, stride, padding)


BACK_FUNCS.add_back_func(_max_pool2d, 0, max_pool2d_back, reads=(0,))


def _avg_pool2d(x: Arr, kernel_size: Pair, stride: Pair, padding: Pair) -> Arr:
    """The mean of each window, the zero padding included (``count_include_pad=True``).

    Shapes: ``x`` (N, C, H, W); the result (N, C, OH, OW).
    """
    _check_pool_window("avg_pool2d", x, kernel_size, stride, padding)
    total = reduce_windows(window_view(x, kernel_size, stride, padding), np.add)
    return total / (kernel_size[0] * kernel_size[1])


_avg_pool2d_forward = wrap_forward_fn(_avg_pool2d)


def avg_pool2d(
    x: Tensor,
    kernel_size: int | tuple[int, int],
    stride: int | tuple[int, int] | None = None,
    padding: int | tuple[int, int] = 0,
) -> Tensor:
    """Average pooling, like ``torch.nn.functional.avg_pool2d``; ``stride`` defaults to the kernel.

    Shapes: ``x`` (N, C, H, W); the result (N, C, OH, OW).
    """
    kernel = as_pair(kernel_size, "kernel_size")
    padding_pair = as_pair(padding, "padding")
    return _avg_pool2d_forward(x, kernel, _pool_stride(kernel, stride), padding_pair)


def avg_pool2d_back(
    grad_out: Arr, out: Arr, x: Arr, kernel_size: Pair, stride: Pair, padding: Pair
) -> Arr:
    """Gradient with respect to ``x`` of ``out = avg_pool2d(x, kernel_size, stride, padding)``.

    Each window's mean gives each of its kh * kw elements (padding included, which
    is PyTorch's ``count_include_pad=True``) an equal share of the gradient; the
    shares are summed back with ``add_windows``.
    Shapes: ``x`` (N, C, H, W); ``grad_out`` (N, C, OH, OW), the result (N, C, H, W).
    """
    kh, kw = kernel_size
    share = grad_out / (kh * kw)
    grad_windows = np.broadcast_to(share[..., None, None], (*share.shape, kh, kw))
    return add_windows(grad_windows, x.shape, stride, padding)


BACK_FUNCS.add_back_func(_avg_pool2d, 0, avg_pool2d_back, reads=())


def adaptive_avg_pool2d(x: Tensor, output_size: int | tuple[int, int]) -> Tensor:
    """Average pooling to a fixed output size, like ``torch.nn.functional.adaptive_avg_pool2d``.

    ``output_size`` must divide the image size evenly (PyTorch's uneven, overlapping
    blocks are not implemented); 1 gives the mean of each channel, shape (N, C, 1, 1),
    what a ResNet does before its last layer. Equal blocks of (H / OH, W / OW) pixels
    are exactly the windows of ``avg_pool2d`` with that kernel as its stride, so that
    is what runs, and its backward serves. Shapes: ``x`` (N, C, H, W); the result
    (N, C, OH, OW).
    """
    check_images("adaptive_avg_pool2d", x.array)
    height, width = x.shape[2], x.shape[3]
    oh, ow = as_pair(output_size, "output_size")
    if oh < 1 or ow < 1 or height % oh or width % ow:
        raise ValueError(
            f"adaptive_avg_pool2d: output size {(oh, ow)} must divide the image size "
            f"{(height, width)} evenly (uneven blocks are not supported); use 1 for the mean "
            "of each channel"
        )
    block = (height // oh, width // ow)
    return _avg_pool2d_forward(x, block, block, (0, 0))
