"""Windows of an image as Tensor operations: padding, gathering windows, adding them back.

The lesson's ``_windows`` is a strided NumPy view, fast and invisible to
autograd. Here a window is gathered by indexing with two integer arrays (row
and column of every window element), so taking windows is ``getitem`` and
giving their gradients back is ``scatter_add``: both recorded, each the other's
backward. Slower than the views, which is why only recorded backward passes
use them.
"""

import numpy as np

from npgrad.arrays import Arr
from npgrad.higher_order.shape import scatter_add
from npgrad.ops import getitem
from npgrad.tensor import Tensor

Pair = tuple[int, int]


def window_index(
    image_shape: tuple[int, ...], kernel_size: Pair, stride: Pair
) -> tuple[slice, slice, Arr, Arr]:
    """The index that takes every window out of an (already padded) image: (N, C, OH, OW, kh, kw).

    Window ``(h, w)``, element ``(i, j)`` is pixel ``(h * sh + i, w * sw + j)``.
    """
    (kh, kw), (sh, sw) = kernel_size, stride
    oh = (image_shape[2] - kh) // sh + 1
    ow = (image_shape[3] - kw) // sw + 1
    rows = (np.arange(oh) * sh)[:, None] + np.arange(kh)[None, :]  # (OH, kh)
    cols = (np.arange(ow) * sw)[:, None] + np.arange(kw)[None, :]  # (OW, kw)
    return slice(None), slice(None), rows[:, None, :, None], cols[None, :, None, :]


def _inside(image_shape: tuple[int, ...], padding: Pair) -> tuple[slice, slice, slice, slice]:
    """Where the image lies inside its padded version."""
    (ph, pw), (height, width) = padding, image_shape[2:4]
    return slice(None), slice(None), slice(ph, ph + height), slice(pw, pw + width)


def _padded_shape(image_shape: tuple[int, ...], padding: Pair) -> tuple[int, ...]:
    n, c, height, width = image_shape
    return n, c, height + 2 * padding[0], width + 2 * padding[1]


def windows(x: Tensor, kernel_size: Pair, stride: Pair, padding: Pair) -> Tensor:
    """Every window of ``x`` zero-padded by ``padding``, gathered: (N, C, OH, OW, kh, kw)."""
    if padding != (0, 0):
        x = scatter_add(x, _inside(x.shape, padding), _padded_shape(x.shape, padding))
    return getitem(x, window_index(x.shape, kernel_size, stride))


def add_windows(
    grad_windows: Tensor, image_shape: tuple[int, ...], stride: Pair, padding: Pair
) -> Tensor:
    """Each window's gradient added back to the pixels it came from; the padding's dropped."""
    kernel_size = (grad_windows.shape[-2], grad_windows.shape[-1])
    padded_shape = _padded_shape(image_shape, padding)
    index = window_index(padded_shape, kernel_size, stride)
    grad = scatter_add(grad_windows, index, padded_shape)
    return grad if padding == (0, 0) else getitem(grad, _inside(image_shape, padding))
