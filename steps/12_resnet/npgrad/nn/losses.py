"""``cross_entropy``, the classification loss, built from the engine's operations.

So it backpropagates like anything else.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from npgrad.arrays import Arr
from npgrad.ops.losses import cross_entropy_rows
from npgrad.tensor import Tensor


def cross_entropy(
    logits: Tensor, true_labels: Tensor | Arr, reduction: Literal["none", "mean", "sum"] = "none"
) -> Tensor:
    """The cross-entropy loss of each example, or their mean or sum.

    ``loss[i] = log(sum_j exp(logits[i, j])) - logits[i, true_labels[i]]``:
    minus the log of the softmax probability of the true class. Shapes:
    ``logits`` (batch, classes), ``true_labels`` integer class indices (batch,),
    the result (batch,) for ``reduction="none"``, a 0-d Tensor for "mean" or
    "sum" (PyTorch's default is "mean"; here the rows stay the default, as at
    step 07). Stable for large logits: each row's maximum is
    subtracted first, so ``exp`` never sees a positive number. One recorded
    operation with its own backward function (softmax minus the one-hot
    label), rather than step 07's six: the same numbers, faster (step 08's
    README, "How this is made fast").
    """
    if not isinstance(logits, Tensor):
        raise TypeError(
            f"cross_entropy needs the logits as a Tensor (a model's output), got a "
            f"{type(logits).__name__}: wrap an array as Tensor(array) to differentiate it"
        )
    labels = true_labels.array if isinstance(true_labels, Tensor) else np.asarray(true_labels)
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(
            f'cross_entropy reduction must be "none", "mean" or "sum", got {reduction!r}'
        )
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
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        out_of_range = labels[(labels < 0) | (labels >= n_classes)]
        raise IndexError(
            f"true_labels must lie in [0, {n_classes}) for {n_classes} classes, "
            f"got {out_of_range.tolist()}"
        )
    return cross_entropy_rows(logits, labels, reduction)
