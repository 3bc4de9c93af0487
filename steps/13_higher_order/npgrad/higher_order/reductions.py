"""The twin of ``sum``'s backward: ``grad_out`` given back its summed dimensions, expanded."""

import numpy as np

from npgrad.higher_order.registry import GRAPH_BACK_FUNCS
from npgrad.ops import expand, reshape, sum_back
from npgrad.tensor import Tensor


def sum_back_graph(
    grad_out: Tensor, out: Tensor, x: Tensor, dim: int | tuple[int, ...] | None, keepdim: bool
) -> Tensor:
    """Every summed element receives its sum's gradient: size-1 dimensions back, then expand."""
    if not keepdim and dim is not None:
        kept = np.expand_dims(np.broadcast_to(0.0, grad_out.shape), dim).shape
        grad_out = reshape(grad_out, kept)
    return expand(grad_out, x.shape)


GRAPH_BACK_FUNCS.add_twin(sum_back, sum_back_graph)
