"""Neural-network building blocks: Parameter, Module, Linear, ReLU, MLP and cross_entropy.

A ``Module`` notices the ``Parameter``s and sub-``Module``s assigned to its
attributes, so ``model.parameters()`` finds every weight of a model however
deeply it is nested, always in the same order. ``cross_entropy`` is built from
the engine's operations, so it backpropagates like anything else.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol, TypeVar, overload

import numpy as np
import numpy.typing as npt

from npgrad.arrays import Arr
from npgrad.ops import _cross_entropy_forward, linear
from npgrad.tensor import Tensor


class Parameter(Tensor):
    """A Tensor that a Module registers as one of its weights.

    It shares ``tensor``'s array rather than copying it: an in-place change to
    one shows in the other. It requires grad unless told otherwise, and is a
    leaf. Integer or boolean data cannot both be shared and require grad (a
    Tensor that requires grad converts such data to float64, a new array), so
    that combination raises ``TypeError``.
    """

    __slots__ = ()

    def __init__(self, tensor: Tensor, requires_grad: bool = True) -> None:
        if not isinstance(tensor, Tensor):
            raise TypeError(
                f"Parameter wraps a Tensor, got a {type(tensor).__name__}: write "
                "Parameter(Tensor(array)) (the Parameter then shares that array)"
            )
        if requires_grad and tensor.array.dtype.kind in "biu":
            raise TypeError(
                f"cannot make a Parameter that requires grad from {tensor.array.dtype} data: "
                "gradients exist only for floating point, and converting the data would "
                "stop the Parameter sharing the tensor's array; make the tensor floating "
                "point first (for example Tensor(array.astype(np.float32)))"
            )
        super().__init__(tensor.array, requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


Forward = TypeVar("Forward", bound=Callable[..., Tensor], covariant=True)


class _HasForward(Protocol[Forward]):
    """Anything with a ``forward`` method; ``Forward`` is its exact signature."""

    @property
    def forward(self) -> Forward: ...


class _CallsForward:
    """``Module.__call__``: ``module(*args, **kwargs)`` is ``module.forward(*args, **kwargs)``.

    A descriptor rather than a method, for the type checker: reading
    ``module.__call__`` gives the bound ``module.forward`` itself, so mypy checks
    ``model(x, mask=m)`` against the subclass's own ``forward`` signature, where a
    ``def __call__(self, *args: Any, **kwargs: Any)`` would accept anything. At
    run time Python looks ``__call__`` up on the class and calls ``__get__``
    just the same.
    """

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> _CallsForward: ...
    @overload
    def __get__(self, instance: _HasForward[Forward], owner: type[Any]) -> Forward: ...
    def __get__(
        self, instance: _HasForward[Forward] | None, owner: type[Any]
    ) -> Forward | _CallsForward:
        """``instance.forward``, bound; the descriptor itself when read from the class."""
        return self if instance is None else instance.forward


class Module:
    """The base class of layers and models.

    A subclass calls ``super().__init__()`` first, assigns its Parameters and
    sub-Modules as attributes and defines ``forward``; calling the module
    calls ``forward`` with the same arguments (``model(x, mask=m)``). Each
    assignment of a Parameter or Module is also recorded, in order, in
    ``_parameters`` or ``_modules``; the attribute itself is an ordinary one.
    Assigning None to a registered name (``self.bias = None``) keeps the name
    registered with no value; assigning anything else to it is a
    ``TypeError``, since it would silently drop a weight from training.
    """

    _parameters: dict[str, Parameter | None]
    _modules: dict[str, Module | None]

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_modules", {})

    def __setattr__(self, name: str, value: object) -> None:
        if "_modules" in self.__dict__:
            self._register(name, value)
        elif isinstance(value, Parameter | Module):
            raise AttributeError(
                f"cannot assign {name!r} before Module.__init__() has run: call "
                f"super().__init__() first in {type(self).__name__}.__init__"
            )
        object.__setattr__(self, name, value)

    def _register(self, name: str, value: object) -> None:
        if isinstance(value, Parameter):
            self._modules.pop(name, None)
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._parameters.pop(name, None)
            self._modules[name] = value
        elif name in self._parameters or name in self._modules:
            kind = "Parameter" if name in self._parameters else "Module"
            if value is not None:
                hint = " (wrap a Tensor as Parameter(tensor))" if kind == "Parameter" else ""
                raise TypeError(
                    f"cannot assign a {type(value).__name__} to {type(self).__name__}.{name}: "
                    f"it is registered as a {kind}; assign a {kind} or None{hint}"
                )
            if kind == "Parameter":
                self._parameters[name] = None
            else:
                self._modules[name] = None

    def __delattr__(self, name: str) -> None:
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        object.__delattr__(self, name)

    __call__ = _CallsForward()

    def forward(self, *args: Any, **kwargs: Any) -> Tensor:
        """The module's computation; every subclass defines its own.

        Any positional and keyword arguments (``forward(self, x)``,
        ``forward(self, x, mask=None)``), returning one Tensor. Calling the module
        calls it with the same arguments.
        """
        raise NotImplementedError(f"{type(self).__name__} must define forward(self, x)")

    def modules(self) -> Iterator[Module]:
        """The direct sub-modules, in assignment order (not their own sub-modules)."""
        for module in self._modules.values():
            if module is not None:
                yield module

    def named_parameters(self, recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        """``(dotted name, Parameter)`` pairs in the order of ``parameters()``."""
        seen: set[int] = set()
        for name, param in self._all_named_parameters("", recurse):
            if id(param) not in seen:  # a Parameter shared by two modules comes once
                seen.add(id(param))
                yield name, param

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """Own Parameters first, then each sub-module's (recursively), in assignment order.

        With ``recurse=False``, own Parameters only. Each Parameter comes once,
        even when it is registered under two names.
        """
        for _, param in self.named_parameters(recurse):
            yield param

    def _all_named_parameters(self, prefix: str, recurse: bool) -> Iterator[tuple[str, Parameter]]:
        for name, param in self._parameters.items():
            if param is not None:
                yield prefix + name, param
        if recurse:
            for name, module in self._modules.items():
                if module is not None:
                    yield from module._all_named_parameters(f"{prefix}{name}.", recurse)

    def state_dict(self) -> dict[str, Arr]:
        """A copy of every Parameter's values, keyed by dotted name (``"linear1.weight"``).

        Ordered like ``parameters()``; the arrays are copies, so later training
        does not change a saved state.
        """
        return {name: param.array.copy() for name, param in self._all_named_parameters("", True)}

    def load_state_dict(self, state: Mapping[str, npt.ArrayLike | Tensor]) -> None:
        """Copy ``state``'s values into the existing Parameters, in place, or none at all.

        The Parameters stay the same objects with the same arrays, so anything
        holding them (an optimiser) sees the new values. ``state`` needs exactly
        the keys of ``state_dict()``, with the same shapes, floating-point values
        and no NaN or infinity (also none after conversion to the Parameter's
        dtype). Every value is checked before any is copied: otherwise nothing is
        copied and a ``RuntimeError`` names every missing, unexpected, mis-shaped,
        mistyped and non-finite key. A ``state`` that is not a mapping is a
        ``TypeError``.
        """
        if not isinstance(state, Mapping):
            raise TypeError(
                f"load_state_dict needs a mapping from names to arrays, such as "
                f"model.state_dict() or a loaded .npz archive; got a {type(state).__name__}"
            )
        targets = dict(self._all_named_parameters("", True))
        problems = [f"missing key {name!r}" for name in targets if name not in state]
        problems += [f"unexpected key {name!r}" for name in state if name not in targets]
        converted: dict[str, Arr] = {}
        for name, target in targets.items():
            if name in state:
                value, value_problems = _checked_state_value(name, state[name], target, "parameter")
                problems += value_problems
                if value is not None:
                    converted[name] = value
        if problems:
            raise RuntimeError(
                f"cannot load the state into {type(self).__name__}:\n  "
                + "\n  ".join(problems)
                + "\nthe state must have exactly the keys and shapes of model.state_dict(), "
                "with finite floating-point values; nothing was loaded"
            )
        for name, target in targets.items():
            np.copyto(target.array, converted[name])

    def extra_repr(self) -> str:
        """The settings shown inside the parentheses of ``repr``; none by default."""
        return ""

    def __repr__(self) -> str:
        # PyTorch's layout: settings, then one indented line per sub-module.
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [
            f"({name}): " + repr(module).replace("\n", "\n  ")
            for name, module in self._modules.items()
        ]
        name = type(self).__name__
        if not child_lines and len(extra_lines) <= 1:
            return f"{name}({extra})"
        return f"{name}(\n  " + "\n  ".join(extra_lines + child_lines) + "\n)"


def _checked_state_value(
    name: str, value: object, target: Tensor, kind: str
) -> tuple[Arr | None, list[str]]:
    """``value`` as an array of ``target``'s dtype, or None and what is wrong with it.

    ``kind`` names the target in messages ("parameter"). A floating-point target
    takes floating-point values only: an integer, boolean, complex, string, date
    or object array is not a saved state of it, and casting one would load
    nonsense (or fail half-way). The converted values must be finite.
    """
    try:
        array = value.array if isinstance(value, Tensor) else np.asarray(value)
    except (TypeError, ValueError) as exc:  # a ragged list, for one
        return None, [f"cannot read {name!r} as an array: {exc}"]
    dtype = target.array.dtype
    problems = []
    if (dtype.kind == "f" and array.dtype.kind != "f") or not np.can_cast(
        array.dtype, dtype, "same_kind"
    ):
        problems.append(
            f"dtype mismatch for {name!r}: the state has dtype {array.dtype}, the model's "
            f"{kind} has dtype {dtype}; give floating-point values"
        )
    if array.shape != target.shape:
        problems.append(
            f"shape mismatch for {name!r}: the state has shape {array.shape}, "
            f"the model's {kind} has shape {target.shape}"
        )
    if problems:
        return None, problems
    with np.errstate(over="ignore"):  # a float64 beyond float32's range becomes inf: refused
        converted = array.astype(dtype)
    if dtype.kind == "f":
        bad = int(np.count_nonzero(~np.isfinite(converted)))
        if bad:
            return None, [
                f"non-finite values for {name!r}: {bad} of {converted.size} entries are NaN "
                f"or infinite as {dtype}; a model's state must be finite"
            ]
    return converted, []


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


def cross_entropy(logits: Tensor, true_labels: Tensor | Arr) -> Tensor:
    """The cross-entropy loss of each example, without reduction.

    ``loss[i] = log(sum_j exp(logits[i, j])) - logits[i, true_labels[i]]``:
    minus the log of the softmax probability of the true class. Shapes:
    ``logits`` (batch, classes), ``true_labels`` integer class indices (batch,),
    the result (batch,). Stable for large logits: each row's maximum is
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
    return _cross_entropy_forward(logits, labels)
