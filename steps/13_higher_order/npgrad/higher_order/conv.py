"""Twins of ``conv2d``'s backward functions, as einsums over gathered windows.

``out[n, o, h, w] = sum_{c, i, j} window[n, c, h, w, i, j] * weight[o, c, i, j]``
(plus the bias), so with windows gathered by ``windows`` (a recorded
``getitem``) each gradient is one einsum: for the weight, ``grad_out`` against
the windows; for the input, ``grad_out`` against the weight, giving window
gradients that ``add_windows`` (a recorded ``scatter_add``) sums back into the
image. Every piece is an operation with a twin of its own, so the result can be
differentiated again.
"""

from npgrad.arrays import Arr
from npgrad.higher_order.broadcasting import as_tensor
from npgrad.higher_order.registry import GRAPH_BACK_FUNCS
from npgrad.higher_order.windows import Pair, add_windows, windows
from npgrad.ops import conv2d_back0, conv2d_back1, conv2d_back2, einsum, sum
from npgrad.tensor import Tensor


def conv2d_back0_graph(
    grad_out: Tensor,
    out: Tensor,
    x: Tensor,
    weight: Tensor | Arr,
    bias: Tensor | Arr | None,
    stride: Pair,
    padding: Pair,
) -> Tensor:
    """Window gradients ``grad_out * weight`` (summed over ``o``), added back into the image."""
    grad_windows = einsum("nohw,ocij->nchwij", grad_out, as_tensor(weight))
    return add_windows(grad_windows, x.shape, stride, padding)


def conv2d_back1_graph(
    grad_out: Tensor,
    out: Tensor,
    x: Tensor | Arr,
    weight: Tensor,
    bias: Tensor | Arr | None,
    stride: Pair,
    padding: Pair,
) -> Tensor:
    """``grad_out`` against every window of ``x``, summed over the batch and the positions."""
    kernel_size = (weight.shape[2], weight.shape[3])
    gathered = windows(as_tensor(x), kernel_size, stride, padding)
    return einsum("nohw,nchwij->ocij", grad_out, gathered)


def conv2d_back2_graph(
    grad_out: Tensor,
    out: Tensor,
    x: Tensor | Arr,
    weight: Tensor | Arr,
    bias: Tensor,
    stride: Pair,
    padding: Pair,
) -> Tensor:
    """``grad_out`` summed over the batch, height and width."""
    return sum(grad_out, (0, 2, 3))


GRAPH_BACK_FUNCS.add_twin(conv2d_back0, conv2d_back0_graph)
GRAPH_BACK_FUNCS.add_twin(conv2d_back1, conv2d_back1_graph)
GRAPH_BACK_FUNCS.add_twin(conv2d_back2, conv2d_back2_graph)
