"""The table that maps each forward function and argument to its backward function."""

from collections.abc import Callable
from functools import partial
from typing import Concatenate, TypeAlias

from npgrad.arrays import Arr

# (grad_out, out, *forward_args, **forward_kwargs) -> gradient for one argument
BackFunc = Callable[..., Arr]

# (position, grad_out, out, *forward_args, **forward_kwargs) -> gradient for the argument at
# ``position``: one backward serving every position of a function of any number of tensors.
VariadicBackFunc = Callable[Concatenate[int, ...], Arr]

# Which argument a gradient is for: its position, or the keyword it was passed by.
ArgKey: TypeAlias = int | str


class MissingBackwardFunctionError(LookupError):
    """No backward function is registered for a forward function and argument position."""


class BackwardFuncLookup:
    """Backward functions keyed by ``(forward function, argument position or keyword name)``.

    Like PyTorch's ``derivatives.yaml``: one entry per differentiable argument
    of each forward function. The forward function is the NumPy function a
    recipe records (``np.log``), not the Tensor function that wraps it. A
    function of any number of tensors (``stack``, ``einsum``) has one variadic
    entry instead, whose backward receives the argument position first.
    """

    def __init__(self) -> None:
        self._back_funcs: dict[tuple[Callable[..., Arr], ArgKey], BackFunc] = {}
        self._variadic_back_funcs: dict[Callable[..., Arr], VariadicBackFunc] = {}
        self._reads_output: set[Callable[..., Arr]] = set()

    def add_back_func(
        self, forward_fn: Callable[..., Arr], arg_position: ArgKey, back_fn: BackFunc
    ) -> None:
        """Register ``back_fn`` as the gradient of ``forward_fn`` for one argument.

        ``arg_position`` is the argument's position, or (for a tensor passed by
        keyword that cannot be bound to a position) its keyword name.
        """
        self._back_funcs[(forward_fn, arg_position)] = back_fn

    def add_variadic_back_func(
        self, forward_fn: Callable[..., Arr], back_fn: VariadicBackFunc
    ) -> None:
        """Register ``back_fn`` as the gradient of ``forward_fn`` for every positional argument.

        ``back_fn(position, grad_out, out, *args, **kwargs)`` returns the
        gradient for the argument at ``position``. An entry added with
        ``add_back_func`` for one position takes precedence over it.
        """
        self._variadic_back_funcs[forward_fn] = back_fn

    def has_back_func(self, forward_fn: Callable[..., Arr], arg_position: ArgKey) -> bool:
        """True when ``get_back_func(forward_fn, arg_position)`` finds a backward function."""
        return (forward_fn, arg_position) in self._back_funcs or (
            isinstance(arg_position, int) and forward_fn in self._variadic_back_funcs
        )

    def get_back_func(self, forward_fn: Callable[..., Arr], arg_position: ArgKey) -> BackFunc:
        """The backward function for ``forward_fn``'s argument ``arg_position``.

        An entry for exactly that argument comes first; failing that, for a
        position, the function's variadic backward with the position bound as
        its first argument.
        """
        back_fn = self._back_funcs.get((forward_fn, arg_position))
        if back_fn is not None:
            return back_fn
        variadic = self._variadic_back_funcs.get(forward_fn)
        if variadic is not None and isinstance(arg_position, int):
            return partial(variadic, arg_position)
        name = getattr(forward_fn, "__name__", repr(forward_fn))
        raise MissingBackwardFunctionError(
            f"no backward function for {describe_arg(arg_position)} of {name}: register one "
            f"with BACK_FUNCS.add_back_func({name}, {arg_position!r}, <backward function>)"
        )

    def mark_reads_output(self, forward_fn: Callable[..., Arr]) -> None:
        """Declare that ``forward_fn``'s backward functions read ``out``.

        Backprop then checks that no in-place operation changed the output
        since the forward pass (most backward functions read only the inputs,
        and may run after their output was changed in place).
        """
        self._reads_output.add(forward_fn)

    def reads_output(self, forward_fn: Callable[..., Arr]) -> bool:
        """True when ``forward_fn``'s backward functions read the forward output."""
        return forward_fn in self._reads_output

    def entries(self) -> list[tuple[Callable[..., Arr], ArgKey]]:
        """Every registered ``(forward function, argument position or name)``, in order."""
        return list(self._back_funcs)

    def variadic_entries(self) -> list[Callable[..., Arr]]:
        """Every forward function with a variadic backward, in registration order."""
        return list(self._variadic_back_funcs)


def describe_arg(arg_position: ArgKey) -> str:
    """``argument 1`` for a position, ``keyword argument 'w'`` for a keyword name."""
    if isinstance(arg_position, str):
        return f"keyword argument {arg_position!r}"
    return f"argument {arg_position}"


BACK_FUNCS = BackwardFuncLookup()
