"""General layers: ``Linear``, ``ReLU``, the lesson's ``MLP``, ``Sequential`` and ``Flatten``.

``Sequential`` chains modules and ``Flatten`` turns images into feature
vectors, which convolutional networks need between their parts.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

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
    gives 0 there). ``ReLU(inplace=True)`` writes the result into its input
    and returns it (see ``relu``); that variant's gradient at 0 is 0.
    """

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, x: Tensor) -> Tensor:
        return x.relu_() if self.inplace else x.relu()

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


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


class Sequential(Module):
    """The given modules applied one after the other; they are registered as ``"0"``, ``"1"``...

    So ``state_dict()`` names them like PyTorch does (``"0.weight"``). ``len``,
    indexing and iteration reach the modules.
    """

    def __init__(self, *modules: Module) -> None:
        super().__init__()
        for index, module in enumerate(modules):
            if not isinstance(module, Module):
                raise TypeError(
                    f"Sequential takes Modules, but argument {index} is {_describe(module)}"
                )
            setattr(self, str(index), module)

    def forward(self, x: Tensor) -> Tensor:
        for module in self.modules():
            x = module(x)
        return x

    def __len__(self) -> int:
        return len(self._modules)

    def __getitem__(self, index: int) -> Module:
        module = list(self.modules())[index]
        return module

    def __iter__(self) -> Iterator[Module]:
        return self.modules()


def _describe(value: object) -> str:
    """What ``value`` is, and what to pass instead, for ``Sequential``'s error."""
    if isinstance(value, type) and issubclass(value, Module):
        return f"the class {value.__name__}: pass an instance, {value.__name__}()"
    if callable(value):
        name = getattr(value, "__name__", type(value).__name__)
        return (
            f"the function {name}: a Module's forward can call it (a plain function has "
            "no parameters to register)"
        )
    return f"a {type(value).__name__}: pass Module instances such as Linear(4, 2) or ReLU()"


class Flatten(Module):
    """Dimensions ``start_dim`` to ``end_dim`` (inclusive) merged into one, as a reshape.

    With the defaults, (N, C, H, W) becomes (N, C * H * W): images to feature vectors.
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, x: Tensor) -> Tensor:
        ndim = max(x.ndim, 1)  # as in PyTorch, a 0-d input counts as one dimension here
        if not (-ndim <= self.start_dim < ndim and -ndim <= self.end_dim < ndim):
            raise ValueError(
                f"Flatten(start_dim={self.start_dim}, end_dim={self.end_dim}) does not fit an "
                f"input of shape {x.shape}: both must lie in [{-ndim}, {ndim - 1}]; "
                "Flatten(0) flattens everything"
            )
        start = self.start_dim % ndim
        end = self.end_dim % ndim
        if start > end:
            raise ValueError(
                f"Flatten(start_dim={self.start_dim}, end_dim={self.end_dim}): the start comes "
                f"after the end for an input of shape {x.shape}"
            )
        return x.reshape(*x.shape[:start], -1, *x.shape[end + 1 :])

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
