"""The table that maps each forward function and argument to its backward function."""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from npgrad.arrays import Arr

# (grad_out, out, *forward_args, **forward_kwargs) -> gradient for one argument
BackFunc = Callable[..., Arr]


@dataclass(frozen=True, slots=True)
class Reads:
    """Which forward values a backward function reads, beyond their shapes.

    ``args`` holds the positions of the arguments whose values it reads (None:
    every argument, the safe assumption for a backward function that declared
    nothing); ``output`` says whether it reads the forward output. Backprop
    raises when one of these was changed in place after the forward pass, and
    only then.
    """

    args: frozenset[int] | None
    output: bool


READS_EVERYTHING = Reads(None, True)


def display_name(func: object) -> str:
    """A function's name for messages: its ``__name__``, or its repr when it has none."""
    return str(getattr(func, "__name__", repr(func)))


class MissingBackwardFunctionError(LookupError):
    """No backward function is registered for a forward function and argument position."""


class BackwardFuncLookup:
    """Backward functions keyed by ``(forward function, argument position)``.

    Like PyTorch's ``derivatives.yaml``: one entry per differentiable argument
    of each forward function. The forward function is the NumPy function a
    recipe records (``np.log``), not the Tensor function that wraps it.
    """

    def __init__(self) -> None:
        self._back_funcs: dict[tuple[Callable[..., Arr], int], BackFunc] = {}
        self._reads: dict[tuple[Callable[..., Arr], int], Reads] = {}

    def add_back_func(
        self,
        forward_fn: Callable[..., Arr],
        arg_position: int,
        back_fn: BackFunc,
        reads: Iterable[int | Literal["out"]] | None = None,
    ) -> None:
        """Register ``back_fn`` as the gradient of ``forward_fn`` for argument ``arg_position``.

        ``reads`` lists what ``back_fn`` reads the values of: argument positions
        and ``"out"`` for the forward output (``()`` when it needs only shapes).
        Left out, backprop assumes it reads everything: never a wrong gradient
        after an in-place change, but an error where none was needed.
        """
        self._back_funcs[(forward_fn, arg_position)] = back_fn
        if reads is not None:
            listed = set(reads)
            positions = frozenset(item for item in listed if item != "out")
            self._reads[(forward_fn, arg_position)] = Reads(positions, "out" in listed)

    def get_back_func(self, forward_fn: Callable[..., Arr], arg_position: int) -> BackFunc:
        """The backward function for ``forward_fn``'s argument ``arg_position``."""
        try:
            return self._back_funcs[(forward_fn, arg_position)]
        except KeyError:
            name = display_name(forward_fn)
            raise MissingBackwardFunctionError(
                f"no backward function for argument {arg_position} of {name}: register one "
                f"with BACK_FUNCS.add_back_func({name}, {arg_position}, <backward function>)"
            ) from None

    def reads(self, forward_fn: Callable[..., Arr], arg_position: int) -> Reads:
        """What the backward function for ``forward_fn``'s argument ``arg_position`` reads."""
        return self._reads.get((forward_fn, arg_position), READS_EVERYTHING)

    def entries(self) -> list[tuple[Callable[..., Arr], int]]:
        """Every registered ``(forward function, argument position)``, in registration order."""
        return list(self._back_funcs)


BACK_FUNCS = BackwardFuncLookup()
