"""Optimisers: what turns gradients into better parameters.

``SGD`` is stochastic gradient descent with PyTorch's update rule, including
momentum (heavy-ball or Nesterov), dampening and weight decay; with their
defaults of 0 it is plain ``p -= lr * p.grad``. A training step reads::

    optimizer.zero_grad()          # forget the last batch's gradients
    loss = cross_entropy(model(x), y).sum() / len(y)
    loss.backward()                # fills p.grad for every parameter
    optimizer.step()               # p -= lr * p.grad, in place
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable

from npgrad.arrays import Arr
from npgrad.grad_mode import NoGrad
from npgrad.tensor import Tensor


class SGD:
    """Stochastic gradient descent, with ``torch.optim.SGD``'s update rule.

    For each parameter ``p`` with a gradient, one ``step()`` does::

        g = p.grad + weight_decay * p                  # L2 penalty on the weights
        if momentum:
            buf = g  (first step)  or  momentum * buf + (1 - dampening) * g
            g = g + momentum * buf  if nesterov  else  buf
        p = p - lr * g

    ``buf`` is the momentum buffer, one per parameter, kept between steps: a
    running, decaying sum of past gradients, so steps keep going in a consistent
    direction. ``params`` is any iterable of tensors (usually
    ``model.parameters()``); it is read once, into a list, so a generator works
    (see ``unique_parameters``).
    Every number must be non-negative; Nesterov momentum needs a momentum and
    zero dampening, as in PyTorch. The defaults give plain SGD,
    ``p = p - lr * p.grad``.
    """

    def __init__(
        self,
        params: Iterable[Tensor],
        lr: float,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        self.params: list[Tensor] = unique_parameters(params)
        if not self.params:
            raise ValueError(
                "SGD got an empty parameter list: pass model.parameters() of a model "
                "that has parameters"
            )
        if not (math.isfinite(lr) and lr >= 0):
            raise ValueError(f"the learning rate must be a non-negative number, got lr={lr}")
        for name, value in (
            ("momentum", momentum),
            ("dampening", dampening),
            ("weight_decay", weight_decay),
        ):
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a non-negative number, got {name}={value}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError(
                "Nesterov momentum needs a momentum above 0 and zero dampening, got "
                f"momentum={momentum}, dampening={dampening}"
            )
        self.lr = lr
        self.momentum = momentum
        self.dampening = dampening
        self.weight_decay = weight_decay
        self.nesterov = nesterov
        # One buffer per parameter, created at its first step (None until then).
        self.momentum_buffers: list[Arr | None] = [None] * len(self.params)

    def zero_grad(self) -> None:
        """Set every parameter's ``.grad`` to None, as PyTorch does by default.

        Gradients accumulate across backward passes, so without this each
        step would use the sum of every batch's gradient so far. None (rather
        than zeros) costs no memory, and the next backward pass starts afresh.
        """
        for param in self.params:
            param.grad = None

    def step(self) -> None:
        """Move each parameter by ``-lr`` times its update (see the class), in place.

        Each parameter's array is updated in place (``add_`` with
        ``alpha=-lr``), so the model, which holds the same Parameter objects,
        sees the new values; a parameter whose ``.grad`` is None (it took no
        part in the last backward pass) is left alone, and so is its momentum
        buffer. The update runs with tracking off: it is not part of any
        computation to differentiate, and it records nothing, so each parameter
        stays a leaf. The arithmetic is NumPy on the arrays, in the parameters'
        dtype (a float32 parameter gets a float32 buffer).
        """
        with NoGrad():
            for index, param in enumerate(self.params):
                if param.grad is None:
                    continue
                update = param.grad.array
                if self.weight_decay != 0:
                    update = update + self.weight_decay * param.array
                if self.momentum != 0:
                    buffer = self.momentum_buffers[index]
                    if buffer is None:
                        buffer = self.momentum_buffers[index] = update.copy()
                    else:
                        buffer *= self.momentum
                        buffer += (1 - self.dampening) * update
                    update = update + self.momentum * buffer if self.nesterov else buffer
                param.add_(Tensor(update), alpha=-self.lr)

    def __repr__(self) -> str:
        settings = "".join(
            f", {name}={value}"
            for name, value, default in (
                ("momentum", self.momentum, 0.0),
                ("dampening", self.dampening, 0.0),
                ("weight_decay", self.weight_decay, 0.0),
                ("nesterov", self.nesterov, False),
            )
            if value != default
        )
        return f"SGD(lr={self.lr}{settings}, {len(self.params)} parameters)"


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
