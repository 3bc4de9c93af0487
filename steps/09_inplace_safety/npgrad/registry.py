"""The table that maps each forward function and argument to its backward function."""

from collections.abc import Callable

from npgrad.arrays import Arr

# (grad_out, out, *forward_args, **forward_kwargs) -> gradient for one argument
BackFunc = Callable[..., Arr]


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
        self._reads_output: set[Callable[..., Arr]] = set()

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
            name = getattr(forward_fn, "__name__", repr(forward_fn))
            raise MissingBackwardFunctionError(
                f"no backward function for argument {arg_position} of {name}: register one "
                f"with BACK_FUNCS.add_back_func({name}, {arg_position}, <backward function>)"
            ) from None

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

    def entries(self) -> list[tuple[Callable[..., Arr], int]]:
        """Every registered ``(forward function, argument position)``, in registration order."""
        return list(self._back_funcs)


BACK_FUNCS = BackwardFuncLookup()
