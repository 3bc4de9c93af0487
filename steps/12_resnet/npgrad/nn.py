"""Neural-network building blocks: Parameter, Module, the layers, the models, cross_entropy.

A ``Module`` notices the ``Parameter``s and sub-``Module``s assigned to its
attributes, so ``model.parameters()`` finds every weight of a model however
deeply it is nested, always in the same order. ``cross_entropy`` is built from
the engine's operations, so it backpropagates like anything else.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol, Self, TypeVar, overload

import numpy as np
import numpy.typing as npt

from npgrad.arrays import Arr
from npgrad.backward_fns import Pair
from npgrad.ops import (
    _cross_entropy_forward,
    _pair,
    adaptive_avg_pool2d,
    avg_pool2d,
    batch_norm,
    conv2d,
    linear,
    max_pool2d,
)
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
        # One array, one count of in-place changes, whichever tensor made them.
        self._version_counter = tensor._version_counter

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
    Buffers (``register_buffer``) are tensors saved with the model but not
    trained, recorded in ``_buffers``. ``training`` says whether the module is
    in training mode (the default) or evaluation mode; ``train()`` and
    ``eval()`` set it for the module and every sub-module.
    """

    _parameters: dict[str, Parameter | None]
    _buffers: dict[str, Tensor | None]
    _modules: dict[str, Module | None]
    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)

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
            self._buffers.pop(name, None)
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._parameters.pop(name, None)
            self._buffers.pop(name, None)
            self._modules[name] = value
        elif name in self._buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(
                    f"cannot assign a {type(value).__name__} to {type(self).__name__}.{name}: "
                    "it is registered as a buffer; assign a Tensor or None"
                )
            self._buffers[name] = value
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
        self._buffers.pop(name, None)
        self._modules.pop(name, None)
        object.__delattr__(self, name)

    def register_buffer(self, name: str, tensor: Tensor | None) -> None:
        """Register ``tensor`` as the buffer ``name``: state that is not a trained weight.

        A buffer (BatchNorm2d's running statistics) is an attribute like any other,
        saved by ``state_dict()`` and restored by ``load_state_dict()``, but not listed
        by ``parameters()``, so no optimiser changes it. Assigning a Tensor (or None)
        to the name later replaces the buffer.
        """
        if "_buffers" not in self.__dict__:
            raise AttributeError(
                f"cannot register buffer {name!r} before Module.__init__() has run: call "
                f"super().__init__() first in {type(self).__name__}.__init__"
            )
        if isinstance(tensor, Parameter) or not isinstance(tensor, Tensor | None):
            raise TypeError(
                f"a buffer must be a plain Tensor or None, got a {type(tensor).__name__} for "
                f"{name!r} (a Parameter is registered by assigning it to an attribute)"
            )
        if name in self._parameters or name in self._modules:
            raise KeyError(
                f"cannot register buffer {name!r} of {type(self).__name__}: the name belongs "
                "to a Parameter or a Module already"
            )
        self._buffers[name] = tensor
        object.__setattr__(self, name, tensor)

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

    def named_buffers(self, recurse: bool = True) -> Iterator[tuple[str, Tensor]]:
        """``(dotted name, buffer)`` pairs: own buffers first, then each sub-module's."""
        # The saved state without the Parameters (a buffer is never a Parameter).
        for name, tensor in self._named_state("", recurse):
            if not isinstance(tensor, Parameter):
                yield name, tensor

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        """The buffers, in the order of ``named_buffers()``."""
        for _, buffer in self.named_buffers(recurse):
            yield buffer

    def _named_state(self, prefix: str, recurse: bool = True) -> Iterator[tuple[str, Tensor]]:
        # PyTorch's order: own Parameters, own buffers, then each sub-module's, recursively.
        for name, param in self._parameters.items():
            if param is not None:
                yield prefix + name, param
        for name, buffer in self._buffers.items():
            if buffer is not None:
                yield prefix + name, buffer
        if recurse:
            for name, module in self._modules.items():
                if module is not None:
                    yield from module._named_state(f"{prefix}{name}.")

    def state_dict(self) -> dict[str, Arr]:
        """A copy of every Parameter's and buffer's values, keyed by dotted name.

        Keys such as ``"linear1.weight"`` or ``"bn1.running_mean"``: each module's
        own Parameters, then its buffers, then its sub-modules', recursively. The
        arrays are copies, so later training does not change a saved state.
        """
        return {name: tensor.array.copy() for name, tensor in self._named_state("")}

    def load_state_dict(self, state: Mapping[str, npt.ArrayLike | Tensor]) -> None:
        """Copy ``state``'s values into the existing Parameters and buffers, in place, or none.

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
        targets = dict(self._named_state(""))
        problems = [f"missing key {name!r}" for name in targets if name not in state]
        problems += [f"unexpected key {name!r}" for name in state if name not in targets]
        converted: dict[str, Arr] = {}
        for name, target in targets.items():
            if name in state:
                value, value_problems = _checked_state_value(
                    name,
                    state[name],
                    target,
                    "parameter" if isinstance(target, Parameter) else "buffer",
                )
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

    def train(self, mode: bool = True) -> Self:
        """Put this module and every sub-module, recursively, in training mode (or not).

        Sets ``training`` to ``mode`` everywhere; modules that behave differently
        in training and evaluation (``BatchNorm2d``) read it in ``forward``.
        Returns the module itself, so ``model = Model().train()`` works.
        """
        self.training = mode
        for module in self.modules():
            module.train(mode)
        return self

    def eval(self) -> Self:
        """``train(False)``: evaluation mode for this module and all its sub-modules."""
        return self.train(False)

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


# --- steps 11 and 12: the layers of a small CNN and of a small ResNet ---------------------

IntOrPair = int | tuple[int, int]


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


class Conv2d(Module):
    """A 2-D convolution layer: ``conv2d(x, weight, bias, stride, padding)``.

    ``weight`` has shape (out_channels, in_channels, kh, kw) and ``bias`` shape
    (out_channels,), both float32, drawn uniformly from ``+-1/sqrt(fan_in)`` with
    ``fan_in = in_channels * kh * kw``, as PyTorch's default initialisation. One
    group, no dilation, zero padding. Pass ``rng`` for reproducible weights.
    Shapes: input (N, in_channels, H, W), output (N, out_channels, OH, OW).
    """

    weight: Parameter
    bias: Parameter | None

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntOrPair,
        stride: IntOrPair = 1,
        padding: IntOrPair = 0,
        bias: bool = True,
        *,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        self.kernel_size: Pair = _pair(kernel_size, "kernel_size")
        self.stride: Pair = _pair(stride, "stride")
        self.padding: Pair = _pair(padding, "padding")
        if min(in_channels, out_channels, *self.kernel_size, *self.stride) < 1:
            raise ValueError(
                "Conv2d needs at least one input and output channel, and kernel sizes and "
                f"strides of at least 1; got in_channels={in_channels}, "
                f"out_channels={out_channels}, kernel_size={kernel_size}, stride={stride}"
            )
        if min(self.padding) < 0:
            raise ValueError(f"Conv2d needs padding of at least 0, got {padding}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        rng = np.random.default_rng() if rng is None else rng
        bound = 1 / math.sqrt(in_channels * self.kernel_size[0] * self.kernel_size[1])
        shape = (out_channels, in_channels, *self.kernel_size)
        weight = Tensor(np.empty(shape, dtype=np.float32))
        self.weight = Parameter(weight.uniform_(-bound, bound, rng=rng))
        if bias:
            values = Tensor(np.empty(out_channels, dtype=np.float32))
            self.bias = Parameter(values.uniform_(-bound, bound, rng=rng))
        else:
            self.bias = None

    def forward(self, x: Tensor) -> Tensor:
        return conv2d(x, self.weight, self.bias, self.stride, self.padding)

    def extra_repr(self) -> str:
        text = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}"
        )
        if self.padding != (0, 0):
            text += f", padding={self.padding}"
        if self.bias is None:
            text += ", bias=False"
        return text


class BatchNorm2d(Module):
    """Batch normalisation of images, per channel, with running statistics.

    In training mode (``module.train()``, the default) each channel is standardised
    by the batch's own mean and variance, and the buffers ``running_mean`` and
    ``running_var`` move towards them: ``running = (1 - momentum) * running +
    momentum * batch`` (the unbiased variance for ``running_var``). In evaluation
    mode (``module.eval()``) the running statistics standardise instead and are not
    changed. Then ``* weight + bias`` per channel (ones and zeros at first; none
    with ``affine=False``). Everything is float32.
    Shapes: input and output (N, num_features, H, W).
    """

    weight: Parameter | None
    bias: Parameter | None
    running_mean: Tensor
    running_var: Tensor

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.1,
        affine: bool = True,
    ) -> None:
        super().__init__()
        if num_features < 1:
            raise ValueError(f"BatchNorm2d needs at least one feature, got {num_features}")
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        if affine:
            self.weight = Parameter(Tensor(np.ones(num_features, dtype=np.float32)))
            self.bias = Parameter(Tensor(np.zeros(num_features, dtype=np.float32)))
        else:
            self.weight = None
            self.bias = None
        self.register_buffer("running_mean", Tensor(np.zeros(num_features, dtype=np.float32)))
        self.register_buffer("running_var", Tensor(np.ones(num_features, dtype=np.float32)))

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.num_features:
            raise ValueError(
                f"BatchNorm2d({self.num_features}) needs an input of shape "
                f"(N, {self.num_features}, H, W), got shape {x.shape}"
            )
        return batch_norm(
            x,
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            self.training,
            self.momentum,
            self.eps,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"
        )


class _Pool2d(Module):
    """What ``MaxPool2d`` and ``AvgPool2d`` share: the window settings and their repr."""

    def __init__(
        self,
        kernel_size: IntOrPair,
        stride: IntOrPair | None = None,
        padding: IntOrPair = 0,
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride: IntOrPair = kernel_size if stride is None else stride
        self.padding = padding

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool2d):
    """``max_pool2d(x, kernel_size, stride, padding)``; ``stride`` defaults to the kernel size.

    Shapes: input (N, C, H, W), output (N, C, OH, OW).
    """

    def forward(self, x: Tensor) -> Tensor:
        return max_pool2d(x, self.kernel_size, self.stride, self.padding)


class AvgPool2d(_Pool2d):
    """``avg_pool2d(x, kernel_size, stride, padding)``; ``stride`` defaults to the kernel size.

    Shapes: input (N, C, H, W), output (N, C, OH, OW).
    """

    def forward(self, x: Tensor) -> Tensor:
        return avg_pool2d(x, self.kernel_size, self.stride, self.padding)


class AdaptiveAvgPool2d(Module):
    """``adaptive_avg_pool2d(x, output_size)``: 1 gives each channel's mean, shape (N, C, 1, 1)."""

    def __init__(self, output_size: IntOrPair) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, x: Tensor) -> Tensor:
        return adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


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


class CNN(Module):
    """A small convolutional network for 1x28x28 images (MNIST).

    Two rounds of 3x3 convolution (padding 1, so the size is kept), ReLU and 2x2 max
    pooling: 1 -> c1 channels at 28x28 -> 14x14, then c1 -> c2 at 14x14 -> 7x7; then
    flatten and ``Linear(c2 * 7 * 7, num_classes)``.
    Shapes: input (N, 1, 28, 28) float32, output (N, num_classes) logits. ``rng``
    makes the weights reproducible.
    """

    def __init__(
        self,
        channels: tuple[int, int] = (8, 16),
        num_classes: int = 10,
        *,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        c1, c2 = channels
        self.channels = channels
        self.features = Sequential(
            Conv2d(1, c1, 3, padding=1, rng=rng),
            ReLU(),
            MaxPool2d(2),
            Conv2d(c1, c2, 3, padding=1, rng=rng),
            ReLU(),
            MaxPool2d(2),
        )
        self.flatten = Flatten()
        self.fc = Linear(c2 * 7 * 7, num_classes, rng=rng)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1:] != (1, 28, 28):
            raise ValueError(
                f"CNN needs a batch of 1x28x28 images, shape (N, 1, 28, 28), got shape "
                f"{x.shape}; reshape flat images with x.reshape(-1, 1, 28, 28)"
            )
        return self.fc(self.flatten(self.features(x)))


class BasicBlock(Module):
    """The residual block of ResNet-18/34: two 3x3 convolutions plus a shortcut.

    ``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``. The first convolution
    has the block's ``stride``; when that stride is not 1 or the number of channels
    changes, ``x`` no longer has the output's shape, and the shortcut is a projection
    (a 1x1 convolution with the same stride, then batch normalisation); otherwise it
    is the identity, and ``shortcut`` is None. The convolutions have no bias: the
    batch normalisation after each would cancel it. The ReLU works in place, as in
    torchvision, on results nothing else has saved (the gradient at 0 is 0).
    Shapes: input (N, in_channels, H, W), output (N, out_channels, OH, OW) with
    ``OH = (H - 1) // stride + 1``.
    """

    shortcut: Sequential | None

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        *,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        self.conv1 = Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=False, rng=rng)
        self.bn1 = BatchNorm2d(out_channels)
        self.relu = ReLU(inplace=True)
        self.conv2 = Conv2d(out_channels, out_channels, 3, padding=1, bias=False, rng=rng)
        self.bn2 = BatchNorm2d(out_channels)
        if stride != 1 or in_channels != out_channels:
            self.shortcut = Sequential(
                Conv2d(in_channels, out_channels, 1, stride, bias=False, rng=rng),
                BatchNorm2d(out_channels),
            )
        else:
            self.shortcut = None

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.shortcut is None else self.shortcut(x)
        return self.relu(out + identity)


class ResNet(Module):
    """A small ResNet for 1x28x28 images (MNIST), with ``channels = (c1, c2, c3)``.

    - stem: 3x3 convolution 1 -> c1, batch norm, ReLU, 2x2 max pooling: 28x28 -> 14x14;
    - ``layer1``: a BasicBlock c1 -> c1 at 14x14;
    - ``layer2``: a BasicBlock c1 -> c2 with stride 2: 14x14 -> 7x7 (projection shortcut);
    - ``layer3``: a BasicBlock c2 -> c3 with stride 2: 7x7 -> 4x4 (projection shortcut);
    - head: adaptive average pooling to 1x1, flatten, ``Linear(c3, num_classes)``.

    Shapes: input (N, 1, 28, 28) float32, output (N, num_classes) logits. ``rng``
    makes the weights reproducible.
    """

    def __init__(
        self,
        channels: tuple[int, int, int] = (16, 32, 64),
        num_classes: int = 10,
        *,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        c1, c2, c3 = channels
        self.channels = channels
        self.conv1 = Conv2d(1, c1, 3, padding=1, bias=False, rng=rng)
        self.bn1 = BatchNorm2d(c1)
        self.relu = ReLU(inplace=True)
        self.maxpool = MaxPool2d(2)
        self.layer1 = BasicBlock(c1, c1, rng=rng)
        self.layer2 = BasicBlock(c1, c2, stride=2, rng=rng)
        self.layer3 = BasicBlock(c2, c3, stride=2, rng=rng)
        self.avgpool = AdaptiveAvgPool2d(1)
        self.flatten = Flatten()
        self.fc = Linear(c3, num_classes, rng=rng)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1:] != (1, 28, 28):
            raise ValueError(
                f"ResNet needs a batch of 1x28x28 images, shape (N, 1, 28, 28), got shape "
                f"{x.shape}; reshape flat images with x.reshape(-1, 1, 28, 28)"
            )
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(self.flatten(self.avgpool(x)))
