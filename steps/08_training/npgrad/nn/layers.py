"""The layers of the lesson's network: ``Linear``, ``ReLU`` and the ``MLP`` built from them."""

from __future__ import annotations

import math

import numpy as np

from npgrad.nn.module import Module, Parameter
from npgrad.ops import linear
from npgrad.tensor import Tensor


class Linear(Module):
    """A fully connected layer: ``y = x @ weight.T + bias``.

    ``weight`` has shape (out_features, in_features) and ``bias`` shape
    (out_features,), both float32, drawn uniformly from
    ``[-1/sqrt(in_features), 1/sqrt(in_features))`` as in PyTorch. Pass ``rng``
    for reproducible weights. ``bias=False`` sets ``bias`` to None.
    """

    weight: Parameter
    bias: Parameter | None

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ValueError(
                f"Linear needs at least one input and one output feature, "
                f"got in_features={in_features}, out_features={out_features}"
            )
        self.in_features = in_features
        self.out_features = out_features
        rng = np.random.default_rng() if rng is None else rng
        bound = 1 / math.sqrt(in_features)
        # Filled before it becomes a Parameter: initialising is not part of any graph.
        weight = Tensor(np.empty((out_features, in_features), dtype=np.float32))
        self.weight = Parameter(weight.uniform_(-bound, bound, rng=rng))
        if bias:
            values = Tensor(np.empty(out_features, dtype=np.float32))
            self.bias = Parameter(values.uniform_(-bound, bound, rng=rng))
        else:
            self.bias = None

    def forward(self, x: Tensor) -> Tensor:
        """``x @ weight.T + bias``: shape (*, in_features) to (*, out_features).

        Matrix multiplication is 2-D only at this step, so an input with other
        than two dimensions is flattened to (batch, in_features) and the result
        reshaped back. The product and the bias are one recorded operation,
        ``linear``, rather than the three of ``flat @ self.weight.T + self.bias``
        (the same numbers; step 08's README, "How this is made fast", says why).
        """
        if not isinstance(x, Tensor):
            raise TypeError(
                f"Linear takes a Tensor, got a {type(x).__name__}: wrap the data first, "
                "for example Tensor(np.array(data, dtype=np.float32))"
            )
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(
                f"Linear(in_features={self.in_features}) needs an input of shape "
                f"(*, {self.in_features}), got shape {x.shape}"
            )
        flat = x if x.ndim == 2 else x.reshape(-1, self.in_features)
        out = linear(flat, self.weight, self.bias)
        return out if x.ndim == 2 else out.reshape(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


class ReLU(Module):
    """``max(x, 0)`` elementwise; any shape.

    Built on ``maximum``, so the gradient at exactly 0 is 0.5 (``torch.relu``
    gives 0 there).
    """

    def forward(self, x: Tensor) -> Tensor:
        return x.relu()


class MLP(Module):
    """The network of the lesson: 784 -> 64 -> ReLU -> 64 -> ReLU -> 10.

    Takes a batch of flattened 28x28 images, shape (batch, 784), and returns
    one logit per class, shape (batch, 10). ``rng`` makes the weights
    reproducible.
    """

    def __init__(self, *, rng: np.random.Generator | None = None) -> None:
        super().__init__()
        self.linear1 = Linear(28 * 28, 64, rng=rng)
        self.relu1 = ReLU()
        self.linear2 = Linear(64, 64, rng=rng)
        self.relu2 = ReLU()
        self.linear3 = Linear(64, 10, rng=rng)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu1(self.linear1(x))
        x = self.relu2(self.linear2(x))
        return self.linear3(x)
