"""``Parameter`` and ``Module``, the base class of every layer and model.

A ``Module`` notices the ``Parameter``s and sub-``Module``s assigned to its
attributes, so ``model.parameters()`` finds every weight of a model however
deeply it is nested, always in the same order; it also keeps buffers (state
that is saved but not trained) and a training or evaluation mode.
``state_dict()`` and ``load_state_dict()`` save and restore the weights and
buffers by dotted name.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol, Self, TypeVar, overload

import numpy as np
import numpy.typing as npt

from npgrad.arrays import Arr
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
