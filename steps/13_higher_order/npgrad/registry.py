"""The table that maps each forward function and argument to its backward function."""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Concatenate, Literal, TypeAlias

from npgrad.arrays import Arr

# (grad_out, out, *forward_args, **forward_kwargs) -> gradient for one argument
BackFunc = Callable[..., Arr]

# (position, grad_out, out, *forward_args, **forward_kwargs) -> gradient for the argument at
# ``position``: one backward serving every position of a function of any number of tensors.
VariadicBackFunc = Callable[Concatenate[int, ...], Arr]

# Which argument a gradient is for: its position, or the keyword it was passed by.
ArgKey: TypeAlias = int | str


@dataclass(frozen=True, slots=True)
class Reads:
    """Which forward values a backward function reads, beyond their shapes.

    ``args`` holds the positions (or keyword names) of the arguments whose
    values it reads (None: every argument, the safe assumption for a backward
    function that declared nothing); ``others`` adds every argument but the one
    the gradient is for (a variadic backward such as einsum's); ``output`` says
    whether it reads the forward output. Backprop raises when one of these was
    changed in place after the forward pass, and only then.
    """

    args: frozenset[ArgKey] | None
    output: bool
    others: bool = False


READS_EVERYTHING = Reads(None, True)


def display_name(func: object) -> str:
    """A function's name for messages: its ``__name__``, or its repr when it has none."""
    return str(getattr(func, "__name__", repr(func)))


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
        self._reads: dict[tuple[Callable[..., Arr], ArgKey], Reads] = {}
        self._variadic_reads: dict[Callable[..., Arr], Reads] = {}

    def add_back_func(
        self,
        forward_fn: Callable[..., Arr],
        arg_position: ArgKey,
        back_fn: BackFunc,
        reads: Iterable[ArgKey | Literal["out"]] | None = None,
    ) -> None:
        """Register ``back_fn`` as the gradient of ``forward_fn`` for one argument.

        ``arg_position`` is the argument's position, or (for a tensor passed by
        keyword that cannot be bound to a position) its keyword name. ``reads``
        lists what ``back_fn`` reads the values of: argument positions or names,
        and ``"out"`` for the forward output (``()`` when it needs only shapes).
        Left out, backprop assumes it reads everything: never a wrong gradient
        after an in-place change, but an error where none was needed.
        """
        self._back_funcs[(forward_fn, arg_position)] = back_fn
        if reads is not None:
            listed = set(reads)
            keys = frozenset(item for item in listed if item != "out")
            self._reads[(forward_fn, arg_position)] = Reads(keys, "out" in listed)

    def add_variadic_back_func(
        self,
        forward_fn: Callable[..., Arr],
        back_fn: VariadicBackFunc,
        reads_other_args: bool | None = None,
    ) -> None:
        """Register ``back_fn`` as the gradient of ``forward_fn`` for every positional argument.

        ``back_fn(position, grad_out, out, *args, **kwargs)`` returns the
        gradient for the argument at ``position``. An entry added with
        ``add_back_func`` for one position takes precedence over it.
        ``reads_other_args`` says whether it reads the values of the other
        arguments (True) or only shapes (False); left out, everything.
        """
        self._variadic_back_funcs[forward_fn] = back_fn
        if reads_other_args is not None:
            self._variadic_reads[forward_fn] = Reads(frozenset(), False, reads_other_args)

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
        name = display_name(forward_fn)
        raise MissingBackwardFunctionError(
            f"no backward function for {describe_arg(arg_position)} of {name}: register one "
            f"with BACK_FUNCS.add_back_func({name}, {arg_position!r}, <backward function>)"
        )

    def reads(self, forward_fn: Callable[..., Arr], arg_position: ArgKey) -> Reads:
        """What the backward function for ``forward_fn``'s argument ``arg_position`` reads."""
        reads = self._reads.get((forward_fn, arg_position))
        if reads is not None:
            return reads
        if (forward_fn, arg_position) not in self._back_funcs:
            return self._variadic_reads.get(forward_fn, READS_EVERYTHING)
        return READS_EVERYTHING

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
