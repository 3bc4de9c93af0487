"""The twin of cross entropy's backward function: the softmax minus the one-hot label."""

import numpy as np

from npgrad.arrays import Arr
from npgrad.higher_order.registry import GRAPH_BACK_FUNCS
from npgrad.ops import cross_entropy_back, exp, reshape, sum
from npgrad.tensor import Tensor


def cross_entropy_back_graph(
    grad_out: Tensor, out: Tensor, logits: Tensor, labels: Tensor | Arr, reduction: str
) -> Tensor:
    """``(softmax(logits) - one_hot(labels)) * grad_out[:, None]``, written with Tensors.

    For a reduced loss ``grad_out`` is 0-d: every row gets it (divided by the
    batch size for "mean").
    Each row's maximum is subtracted as a constant (the softmax does not
    depend on it), so ``exp`` cannot overflow and no gradient flows through
    the maximum.
    """
    label_array = labels.array if isinstance(labels, Tensor) else np.asarray(labels)
    shifted = logits - Tensor(logits.array.max(axis=1, keepdims=True))
    exps = exp(shifted)
    softmax = exps / sum(exps, 1, keepdim=True)
    one_hot = np.zeros(logits.shape, dtype=logits.array.dtype)
    one_hot[np.arange(len(label_array)), label_array] = 1
    if reduction == "none":
        return (softmax - Tensor(one_hot)) * reshape(grad_out, (-1, 1))
    scale = grad_out / len(label_array) if reduction == "mean" else grad_out
    return (softmax - Tensor(one_hot)) * scale


GRAPH_BACK_FUNCS.add_twin(cross_entropy_back, cross_entropy_back_graph)
