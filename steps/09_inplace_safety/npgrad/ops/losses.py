"""Losses as single operations: cross entropy with its own backward function."""

import numpy as np

from npgrad.arrays import Arr
from npgrad.forward import wrap_forward_fn
from npgrad.registry import BACK_FUNCS


def _cross_entropy(logits: Arr, labels: Arr, reduction: str) -> Arr:
    """Each row's cross entropy as one operation, reduced as ``reduction`` says.

    ``loss[i] = log(sum_j exp(logits[i, j])) - logits[i, labels[i]]``, with each
    row's maximum subtracted first (it cancels) so that ``exp`` cannot overflow:
    the same numbers as the six recorded operations step 07 builds it from,
    with one recipe and one backward function, ``cross_entropy_back`` (step
    08's README, "How this is made fast"). ``reduction`` is "none" (the rows),
    "mean" or "sum" (a 0-d result, one operation instead of three with
    ``.sum() / batch``). ``cross_entropy`` checks the arguments. Shapes:
    ``logits`` (batch, classes), ``labels`` integer class indices (batch,); the
    result (batch,), or 0-d when reduced.
    """
    shifted = logits - logits.max(axis=1, keepdims=True)
    loss: Arr = np.log(np.exp(shifted).sum(axis=1)) - shifted[np.arange(len(labels)), labels]
    if reduction == "none":
        return loss
    total = loss.sum()
    return np.asarray(total / len(labels) if reduction == "mean" else total)


cross_entropy_rows = wrap_forward_fn(_cross_entropy)


def cross_entropy_back(grad_out: Arr, out: Arr, logits: Arr, labels: Arr, reduction: str) -> Arr:
    """Gradient with respect to ``logits`` (argument 0) of ``out = _cross_entropy(logits, labels)``.

    Row ``i`` of the loss is ``log(sum_j exp(logits[i, j])) - logits[i, labels[i]]``,
    whose derivative with respect to ``logits[i, j]`` is ``softmax(logits)[i, j]``
    minus 1 for the true class: the softmax minus the one-hot label, times the
    row's gradient: ``grad_out[i]``, or for a reduced loss the 0-d ``grad_out``
    (divided by the batch size for "mean"). The softmax is recomputed from the
    logits, with each row's maximum subtracted first so that ``exp`` cannot
    overflow. Shapes: ``logits`` (batch, classes), ``labels`` (batch,),
    ``grad_out`` like ``out``; the result (batch, classes).
    """
    if reduction != "none":
        scale = grad_out / len(labels) if reduction == "mean" else grad_out
        grad_out = np.full(len(labels), scale, dtype=logits.dtype)
    grad: Arr = np.exp(logits - logits.max(axis=1, keepdims=True))
    grad *= (grad_out / grad.sum(axis=1))[:, None]  # normalised and scaled in one pass
    grad[np.arange(len(labels)), labels] -= grad_out
    return grad


BACK_FUNCS.add_back_func(_cross_entropy, 0, cross_entropy_back, reads=(0,))
