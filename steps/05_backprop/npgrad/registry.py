"""The table that maps each forward function and argument to its backward function."""

from collections.abc import Callable

from npgrad.arrays import Arr

# (grad_out, out, *forward_args, **forward_kwargs) -> gradient for one argument
BackFunc = Callable[..., Arr]


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

    def add_back_func(
        self, forward_fn: Callable[..., Arr], arg_position: int, back_fn: BackFunc
    ) -> None:
        """Register ``back_fn`` as the gradient of ``forward_fn`` for argument ``arg_position``."""
        self._back_funcs[(forward_fn, arg_position)] = back_fn

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


BACK_FUNCS = BackwardFuncLookup()
