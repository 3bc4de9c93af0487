"""The lower bound: the benchmark's MLP written directly in NumPy, with no autograd.

The model is the step-08 MLP, 784 -> 64 -> ReLU -> 64 -> ReLU -> 10, trained with the mean
of a numerically stable log-softmax cross entropy and plain SGD. Every gradient is written
out by hand below, so this is the least work any engine built on NumPy can do for one
training step: the same matrix products, with no graph, no recipes and no Python objects
per operation. The input gradient of the first layer is not computed (nothing needs it,
and an autograd engine skips it too, since the input does not require grad).

Layout as in PyTorch and npgrad: a layer's weight has shape (out, in), its bias (out,), and
the layer computes ``x @ W.T + b``. Shapes below: ``B`` is the batch size.

This module imports NumPy only; never ``npgrad``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Final

import numpy as np
import numpy.typing as npt

__all__ = ["LAYER_SIZES", "NumpyMLP", "cross_entropy_mean", "init_params"]

Arr = npt.NDArray[Any]

# 784 -> 64 -> 64 -> 10, as the step-08 MLP.
LAYER_SIZES: Final = (784, 64, 64, 10)


def init_params(
    rng: np.random.Generator,
    sizes: Sequence[int] = LAYER_SIZES,
    dtype: npt.DTypeLike = np.float32,
) -> list[Arr]:
    """``[W1, b1, W2, b2, ...]``, each uniform in +-1/sqrt(fan_in), as ``nn.Linear``'s default.

    ``W_k`` has shape ``(sizes[k+1], sizes[k])`` and ``b_k`` shape ``(sizes[k+1],)``.
    """
    params: list[Arr] = []
    for fan_in, fan_out in pairwise(sizes):
        bound = 1.0 / np.sqrt(fan_in)
        params.append(rng.uniform(-bound, bound, size=(fan_out, fan_in)).astype(dtype))
        params.append(rng.uniform(-bound, bound, size=(fan_out,)).astype(dtype))
    return params


def cross_entropy_mean(logits: Arr, labels: Arr) -> tuple[float, Arr]:
    """Mean cross entropy of ``logits`` (B, C) against integer ``labels`` (B,), and its gradient.

    Stable for large logits: ``log_softmax = z - max(z) - log(sum(exp(z - max(z))))``.
    Returns ``(loss, d loss / d logits)``; the gradient is ``(softmax(z) - onehot(y)) / B``,
    shaped (B, C).
    """
    batch = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(batch)
    loss = -float(log_probs[rows, labels].mean())
    grad = np.exp(log_probs)
    grad[rows, labels] -= 1.0
    grad /= batch
    return loss, grad


@dataclass(eq=False)
class NumpyMLP:
    """A ReLU MLP with hand-written forward and backward passes and in-place SGD.

    ``params`` is ``[W1, b1, W2, b2, W3, b3]`` (see :func:`init_params`); the arrays are
    updated in place by :meth:`train_step`.
    """

    params: list[Arr]

    @classmethod
    def create(cls, rng: np.random.Generator, sizes: Sequence[int] = LAYER_SIZES) -> NumpyMLP:
        """A fresh float32 model, initialised as :func:`init_params` says."""
        return cls(init_params(rng, sizes))

    @classmethod
    def from_arrays(cls, arrays: Sequence[Arr]) -> NumpyMLP:
        """A model holding copies of ``arrays`` (e.g. another implementation's initial weights)."""
        return cls([np.array(array, copy=True) for array in arrays])

    def forward(self, x: Arr) -> Arr:
        """Logits (B, 10) for inputs ``x`` (B, 784)."""
        hidden = x
        last = len(self.params) // 2 - 1
        for layer in range(last + 1):
            weight, bias = self.params[2 * layer], self.params[2 * layer + 1]
            hidden = hidden @ weight.T + bias
            if layer < last:
                hidden = np.maximum(hidden, 0)
        return hidden

    def loss_and_grads(self, x: Arr, labels: Arr) -> tuple[float, list[Arr]]:
        """Mean cross-entropy loss on one batch and the gradient of every parameter.

        Forward, keeping each layer's input and pre-activation; then backward from
        ``d loss / d logits``: for ``h = a @ W.T + b``, ``dW = dh.T @ a``, ``db = dh.sum(0)``,
        ``da = dh @ W``; through ReLU, ``dh = da * (h > 0)``. The gradients are returned in
        the order of ``params``.
        """
        n_layers = len(self.params) // 2
        inputs: list[Arr] = []  # the input of each layer (after the previous ReLU)
        pre: list[Arr] = []  # each hidden layer's pre-activation, for the ReLU mask
        hidden = x
        for layer in range(n_layers):
            weight, bias = self.params[2 * layer], self.params[2 * layer + 1]
            inputs.append(hidden)
            hidden = hidden @ weight.T + bias
            if layer < n_layers - 1:
                pre.append(hidden)
                hidden = np.maximum(hidden, 0)
        loss, grad = cross_entropy_mean(hidden, labels)

        grads: list[Arr] = [np.empty(0)] * len(self.params)
        for layer in reversed(range(n_layers)):
            weight = self.params[2 * layer]
            grads[2 * layer] = grad.T @ inputs[layer]
            grads[2 * layer + 1] = grad.sum(axis=0)
            if layer > 0:  # the first layer's input is data: no gradient needed
                grad = (grad @ weight) * (pre[layer - 1] > 0)
        return loss, grads

    def sgd_step(self, grads: Sequence[Arr], lr: float) -> None:
        """``p -= lr * g`` for every parameter, in place (a Python float keeps float32)."""
        for param, grad in zip(self.params, grads, strict=True):
            param -= lr * grad

    def train_step(self, x: Arr, labels: Arr, lr: float) -> float:
        """One SGD step on one batch; returns the batch's mean loss before the step."""
        loss, grads = self.loss_and_grads(x, labels)
        self.sgd_step(grads, lr)
        return loss

    def predict(self, x: Arr) -> Arr:
        """Predicted class of each row of ``x``: the argmax of the logits."""
        labels: Arr = self.forward(x).argmax(axis=1)
        return labels
