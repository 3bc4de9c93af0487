"""``cross_entropy``, the classification loss, built from the engine's operations.

So it backpropagates like anything else.
"""

from __future__ import annotations

import numpy as np

from npgrad.arrays import Arr
from npgrad.tensor import Tensor


def cross_entropy(logits: Tensor, true_labels: Tensor | Arr) -> Tensor:
    """The cross-entropy loss of each example, without reduction.

    ``loss[i] = log(sum_j exp(logits[i, j])) - logits[i, true_labels[i]]``:
    minus the log of the softmax probability of the true class. Shapes:
    ``logits`` (batch, classes), ``true_labels`` integer class indices (batch,),
    the result (batch,). Built from engine operations, so it backpropagates to
    ``logits``. Stable for large logits: each row's maximum is subtracted
    first, so ``exp`` never sees a positive number. The maximum is taken from
    the array, outside the graph: the loss does not depend on it, so it needs
    no gradient.
    """
    if not isinstance(logits, Tensor):
        raise TypeError(
            f"cross_entropy needs the logits as a Tensor (a model's output), got a "
            f"{type(logits).__name__}: wrap an array as Tensor(array) to differentiate it"
        )
    labels = true_labels.array if isinstance(true_labels, Tensor) else np.asarray(true_labels)
    if logits.ndim != 2:
        raise ValueError(
            f"cross_entropy needs logits of shape (batch, classes), got shape {logits.shape}"
        )
    batch, n_classes = logits.shape
    if labels.dtype.kind not in "iu":
        raise TypeError(f"true_labels must be integer class indices, got dtype {labels.dtype}")
    if labels.shape != (batch,):
        raise ValueError(
            f"true_labels must have shape ({batch},), one label per row of logits of shape "
            f"{logits.shape}; got shape {labels.shape}"
        )
    out_of_range = labels[(labels < 0) | (labels >= n_classes)]
    if out_of_range.size:
        raise IndexError(
            f"true_labels must lie in [0, {n_classes}) for {n_classes} classes, "
            f"got {out_of_range.tolist()}"
        )
    shifted = logits - Tensor(logits.array.max(axis=1, keepdims=True))
    log_sum_exp = shifted.exp().sum(dim=1).log()
    return log_sum_exp - shifted[np.arange(batch), labels]
