"""Twins of the pooling backward functions.

Average pooling is linear: each window's gradient is shared equally among its
elements and added back. Max pooling sends each window's gradient to its first
maximum; which element that is depends on the values only through comparisons,
a constant 0/1 pattern (its derivative is 0 wherever it exists), computed in
NumPy. The recorded part is ``grad_out`` times that pattern, added back.
"""

import numpy as np

from npgrad.arrays import Arr
from npgrad.higher_order.registry import GRAPH_BACK_FUNCS
from npgrad.higher_order.windows import Pair, add_windows
from npgrad.ops import avg_pool2d_back, expand, max_pool2d_back, reshape
from npgrad.ops.windows import window_view
from npgrad.tensor import Tensor


def first_maximum_pattern(x: Arr, kernel_size: Pair, stride: Pair, padding: Pair) -> Arr:
    """1 at the first maximum of each window (row by row), 0 elsewhere: (N, C, OH, OW, kh, kw)."""
    windows = window_view(x, kernel_size, stride, padding, pad_value=-np.inf)
    n, c, oh, ow, kh, kw = windows.shape
    flat = windows.reshape(n, c, oh, ow, kh * kw)
    pattern = np.zeros(flat.shape, dtype=x.dtype)
    np.put_along_axis(pattern, np.argmax(flat, axis=-1)[..., None], 1.0, axis=-1)
    return pattern.reshape(n, c, oh, ow, kh, kw)


def max_pool2d_back_graph(
    grad_out: Tensor, out: Tensor, x: Tensor, kernel_size: Pair, stride: Pair, padding: Pair
) -> Tensor:
    """Each window's gradient to its first maximum, added back into the image."""
    pattern = first_maximum_pattern(x.array, kernel_size, stride, padding)
    grad_windows = reshape(grad_out, (*grad_out.shape, 1, 1)) * pattern
    return add_windows(grad_windows, x.shape, stride, padding)


def avg_pool2d_back_graph(
    grad_out: Tensor, out: Tensor, x: Tensor, kernel_size: Pair, stride: Pair, padding: Pair
) -> Tensor:
    """An equal share of each window's gradient to each of its elements, added back."""
    kh, kw = kernel_size
    share = reshape(grad_out / (kh * kw), (*grad_out.shape, 1, 1))
    grad_windows = expand(share, (*grad_out.shape, kh, kw))
    return add_windows(grad_windows, x.shape, stride, padding)


GRAPH_BACK_FUNCS.add_twin(max_pool2d_back, max_pool2d_back_graph)
GRAPH_BACK_FUNCS.add_twin(avg_pool2d_back, avg_pool2d_back_graph)
