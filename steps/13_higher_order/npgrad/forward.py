"""``wrap_forward_fn``: a NumPy function made into a Tensor operation that records a recipe."""

import functools
import inspect
from collections.abc import Callable

from npgrad import history
from npgrad.arrays import Arr
from npgrad.grad_mode import is_grad_enabled
from npgrad.registry import BACK_FUNCS, ArgKey, display_name
from npgrad.tensor import Tensor


def wrap_forward_fn(
    numpy_func: Callable[..., Arr], is_differentiable: bool = True
) -> Callable[..., Tensor]:
    """Turn an array-to-array NumPy function into a Tensor-to-Tensor one.

    The returned function unboxes Tensor arguments to their arrays, calls
    ``numpy_func``, boxes the result in a Tensor and, when tracking is on and
    some Tensor argument needs a gradient (it requires grad or has a recipe),
    records a recipe whose parents are exactly those arguments. A
    non-differentiable function (``is_differentiable=False``) never records one.

    Parents are keyed by position, except under the keyword rule: a Tensor
    passed by keyword moves to its position when ``numpy_func``'s signature
    allows (``_bind_keywords``), so one backward serves both spellings;
    otherwise it stays a keyword, keyed by its name, and as a parent needs a
    backward function registered under that name, or the call raises
    ``TypeError`` (before computing anything). The recipe also records the
    versions of the arguments that the backward functions read, so backprop
    can tell when one was changed in place since; a result that is a view of
    an argument shares its memory's version counter (``npgrad.history``).
    """

    def tensor_func(*args: object, **kwargs: object) -> Tensor:
        if kwargs and any(isinstance(value, Tensor) for value in kwargs.values()):
            args, kwargs = _bind_keywords(numpy_func, args, kwargs)
        tracking = is_differentiable and is_grad_enabled()
        # One pass over the arguments: bring views up to date, unbox the Tensors, and
        # note those that need a gradient (this wrapper runs for every operation, so
        # it is kept lean).
        values: list[object] = []
        tensors: dict[ArgKey, Tensor] = {}
        parents: dict[ArgKey, Tensor] = {}
        for position, arg in enumerate(args):
            if isinstance(arg, Tensor):
                if tracking and arg._view is not None:
                    history.refresh_view(arg)
                values.append(arg.array)
                tensors[position] = arg
                if arg.requires_grad or arg.recipe is not None:
                    parents[position] = arg
            else:
                values.append(arg)
        arg_values = tuple(values)
        kwarg_values = kwargs
        if kwargs:  # the Tensors _bind_keywords could not move to a position
            kwarg_values = {}
            for name, value in kwargs.items():
                if isinstance(value, Tensor):
                    if tracking and value._view is not None:
                        history.refresh_view(value)
                    tensors[name] = value
                    if value.requires_grad or value.recipe is not None:
                        if tracking and not BACK_FUNCS.has_back_func(numpy_func, name):
                            raise TypeError(
                                _keyword_error(
                                    numpy_func, name, "no backward function is registered for it"
                                )
                                + ", or register one with BACK_FUNCS.add_back_func("
                                f"{display_name(numpy_func)}, {name!r}, <backward function>)"
                            )
                        parents[name] = value
                    value = value.array
                kwarg_values[name] = value
        out = Tensor(numpy_func(*arg_values, **kwarg_values))
        history.note_view(out, numpy_func, args, arg_values, kwarg_values)
        if tracking and parents:
            out.requires_grad = True
            out.recipe = history.make_recipe(
                numpy_func, arg_values, kwarg_values, parents, tensors, out
            )
        return out

    return tensor_func


def _keyword_error(func: Callable[..., Arr], keyword: str, reason: str) -> str:
    return (
        f"{display_name(func)}() got a Tensor for keyword argument {keyword!r}, but {reason}: "
        "pass tensors positionally"
    )


@functools.cache
def _signature(func: Callable[..., Arr]) -> inspect.Signature | None:
    """``func``'s Python signature, or None where it has none (some C functions)."""
    try:
        return inspect.signature(func)
    except (TypeError, ValueError):
        return None


_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def _bind_keywords(
    func: Callable[..., Arr], args: tuple[object, ...], kwargs: dict[str, object]
) -> tuple[tuple[object, ...], dict[str, object]]:
    """The keyword rule: the call's arguments with Tensor keywords moved where they can go.

    A Tensor keyword naming a parameter of ``func`` that may be passed
    positionally moves to that position (parameters skipped before it take
    their defaults), so it becomes exactly a positional argument. One naming
    a keyword-only parameter, or reaching ``**kwargs``, or passed to a
    ``func`` without an inspectable signature, stays a keyword. A
    positional-only parameter (every input of a NumPy ufunc), a name ``func``
    does not have, or a call that does not bind raises ``TypeError``.
    """
    signature = _signature(func)
    if signature is None:
        return args, kwargs
    parameters = signature.parameters
    positional = [param for param in parameters.values() if param.kind in _POSITIONAL]
    takes_any_keyword = any(
        param.kind is inspect.Parameter.VAR_KEYWORD for param in parameters.values()
    )
    moving: list[str] = []
    for name, value in kwargs.items():
        if not isinstance(value, Tensor):
            continue
        param = parameters.get(name)
        if param is None and not takes_any_keyword:
            raise TypeError(
                _keyword_error(func, name, f"{display_name(func)} has no such parameter")
            )
        if param is not None and param.kind is inspect.Parameter.POSITIONAL_ONLY:
            reason = f"{name!r} is a positional-only parameter of {display_name(func)}"
            raise TypeError(_keyword_error(func, name, reason))
        if param in positional:
            moving.append(name)
    if not moving:
        return args, kwargs
    try:
        signature.bind(*args, **kwargs)
    except TypeError as error:
        raise TypeError(_keyword_error(func, moving[0], str(error))) from None
    last = max(positional.index(parameters[name]) for name in moving)
    moved = positional[len(args) : last + 1]
    new_args = args + tuple(kwargs.get(param.name, param.default) for param in moved)
    moved_names = {param.name for param in moved}
    new_kwargs = {name: value for name, value in kwargs.items() if name not in moved_names}
    return new_args, new_kwargs
