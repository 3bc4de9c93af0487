"""Optimisers: what turns gradients into better parameters.

``SGD`` is plain stochastic gradient descent, as ``torch.optim.SGD`` with its
defaults (no momentum, no weight decay). A training step reads::

    optimizer.zero_grad()          # forget the last batch's gradients
    loss = cross_entropy(model(x), y).sum() / len(y)
    loss.backward()                # fills p.grad for every parameter
    optimizer.step()               # p -= lr * p.grad, in place
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable

from npgrad.grad_mode import NoGrad
from npgrad.tensor import Tensor


class SGD:
    """Stochastic gradient descent: ``p = p - lr * p.grad`` for every parameter.

    ``params`` is any iterable of tensors (usually ``model.parameters()``); it
    is read once, into a list, so a generator works (see
    ``unique_parameters``). ``lr`` is the learning rate, a non-negative number.
    """

    def __init__(self, params: Iterable[Tensor], lr: float) -> None:
        self.params = unique_parameters(params)
        if not self.params:
            raise ValueError(
                "SGD got an empty parameter list: pass model.parameters() of a model "
                "that has parameters"
            )
        if not (math.isfinite(lr) and lr >= 0):
            raise ValueError(f"the learning rate must be a non-negative number, got lr={lr}")
        self.lr = lr

    def zero_grad(self) -> None:
        """Set every parameter's ``.grad`` to None, as PyTorch does by default.

        Gradients accumulate across backward passes, so without this each
        step would use the sum of every batch's gradient so far. None (rather
        than zeros) costs no memory, and the next backward pass starts afresh.
        """
        for param in self.params:
            param.grad = None

    def step(self) -> None:
        """Move each parameter against its gradient by ``lr``, in place.

        Each parameter's array is updated in place (``add_`` with
        ``alpha=-lr``), so the model, which holds the same Parameter objects,
        sees the new values; a parameter whose ``.grad`` is None (it took no
        part in the last backward pass) is left alone. The update runs with
        tracking off: it is not part of any computation to differentiate, and
        it records nothing, so each parameter stays a leaf.
        """
        with NoGrad():
            for param in self.params:
                if param.grad is not None:
                    param.add_(param.grad, alpha=-self.lr)

    def __repr__(self) -> str:
        return f"SGD(lr={self.lr}, {len(self.params)} parameters)"


def unique_parameters(params: Iterable[Tensor]) -> list[Tensor]:
    """``params`` as a list of Tensors, each once, in their first order.

    A single Tensor is refused with ``TypeError``: it is iterable (over its
    rows), so it would be taken for a list of parameters that are never
    updated. So is anything in the list that is not a Tensor. A Tensor listed
    twice would be updated twice per step; as PyTorch does, it is kept once
    and a ``UserWarning`` says so.
    """
    if isinstance(params, Tensor):
        raise TypeError(
            "an optimiser takes an iterable of Tensors, got a single Tensor: pass "
            "model.parameters() or a list such as [p]"
        )
    unique: list[Tensor] = []
    seen: set[int] = set()
    given = 0
    for index, param in enumerate(params):
        given += 1
        if not isinstance(param, Tensor):
            raise TypeError(
                f"an optimiser's parameters must be Tensors, got a {type(param).__name__} at "
                f"position {index}: pass model.parameters() or a list of Tensors"
            )
        if id(param) not in seen:
            seen.add(id(param))
            unique.append(param)
    if len(unique) < given:
        warnings.warn(
            f"the optimiser got duplicate parameters ({given - len(unique)} repeated); "
            "each parameter is kept once and updated once per step",
            UserWarning,
            stacklevel=3,
        )
    return unique
