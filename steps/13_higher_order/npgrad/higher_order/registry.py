"""The second table: each NumPy backward function's twin, written with Tensor operations.

The first table (``BACK_FUNCS``) maps a forward function and an argument to a
backward function on arrays: fast, and invisible to autograd. When a backward
pass must itself be recorded (``create_graph=True``), backprop looks up the
backward function there as always, then asks this table for its twin: the same
formula written with Tensor operations, so every gradient it returns carries a
recipe and can be differentiated again. Keying the twins by the backward
function, not the forward one, keeps the two tables in step: whatever the first
table resolves (a variadic entry, a keyword entry) has exactly one twin here.

A twin takes the arguments of the backward function it stands for, except that
``grad_out`` and ``out`` are Tensors, and every forward argument that needs a
gradient (a parent of the recipe) is its Tensor; other arguments are passed as
the recipe recorded them (arrays, numbers, shapes, indices).
"""

from collections.abc import Callable
from functools import partial

from npgrad.registry import BackFunc, display_name
from npgrad.tensor import Tensor

# (grad_out, out, *forward_args, **forward_kwargs) -> gradient, as a recorded Tensor
GraphBackFunc = Callable[..., Tensor]


class MissingGraphBackwardError(LookupError):
    """A backward function has no twin written with Tensor operations (no ``create_graph``)."""


class GraphBackFuncLookup:
    """Tensor-operation twins keyed by the NumPy backward function they stand for."""

    def __init__(self) -> None:
        self._twins: dict[Callable[..., object], GraphBackFunc] = {}

    def add_twin(self, back_fn: Callable[..., object], twin: GraphBackFunc) -> None:
        """Register ``twin`` as ``back_fn`` written with Tensor operations.

        For a variadic backward function (``einsum_back``), the twin takes the
        argument position first, as the backward function does.
        """
        self._twins[back_fn] = twin

    def has_twin(self, back_fn: Callable[..., object]) -> bool:
        """True when ``back_fn`` (or the variadic function it binds) has a twin."""
        if isinstance(back_fn, partial):
            back_fn = back_fn.func
        return back_fn in self._twins

    def get_twin(self, back_fn: BackFunc) -> GraphBackFunc:
        """The twin of ``back_fn``; a variadic backward bound to a position stays bound."""
        if isinstance(back_fn, partial):
            twin = self._twins.get(back_fn.func)
            if twin is not None:
                return partial(twin, *back_fn.args, **back_fn.keywords)
        else:
            twin = self._twins.get(back_fn)
            if twin is not None:
                return twin
        name = display_name(back_fn.func if isinstance(back_fn, partial) else back_fn)
        raise MissingGraphBackwardError(
            f"{name} has no twin written with Tensor operations, so a gradient through it "
            "cannot be recorded (create_graph=True); register one with "
            f"GRAPH_BACK_FUNCS.add_twin({name}, <function of Tensors>), or differentiate "
            "without create_graph"
        )

    def twinned(self) -> list[Callable[..., object]]:
        """Every backward function that has a twin, in registration order."""
        return list(self._twins)


GRAPH_BACK_FUNCS = GraphBackFuncLookup()
