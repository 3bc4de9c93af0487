"""``wrap_forward_fn``: a NumPy function made into a Tensor operation that records a recipe."""

from collections.abc import Callable

from npgrad import history
from npgrad.arrays import Arr
from npgrad.grad_mode import is_grad_enabled
from npgrad.registry import display_name
from npgrad.tensor import Tensor


def wrap_forward_fn(
    numpy_func: Callable[..., Arr], is_differentiable: bool = True
) -> Callable[..., Tensor]:
    """Turn an array-to-array NumPy function into a Tensor-to-Tensor one.

    The returned function unboxes Tensor arguments to their arrays, calls
    ``numpy_func``, boxes the result in a Tensor and, when tracking is on and
    some Tensor argument needs a gradient (it requires grad or has a recipe),
    records a recipe whose parents are exactly those arguments, by position.
    A non-differentiable function (``is_differentiable=False``) never records
    one. Tensors must be passed positionally: a recipe keys its parents by
    argument position. The recipe also records the versions of the arguments
    that the backward functions read, so backprop can tell when one was changed
    in place since; a result that is a view of an argument shares its memory's
    version counter (``npgrad.history``).
    """

    def tensor_func(*args: object, **kwargs: object) -> Tensor:
        for name, value in kwargs.items() if kwargs else ():
            if isinstance(value, Tensor):
                raise TypeError(
                    f"{display_name(numpy_func)}() got a Tensor for keyword argument {name!r}: "
                    "pass tensors positionally, since gradients are tracked by argument position"
                )
        tracking = is_differentiable and is_grad_enabled()
        # One pass over the arguments: bring views up to date, unbox the Tensors, and
        # note those that need a gradient (this wrapper runs for every operation, so
        # it is kept lean).
        values: list[object] = []
        tensors: dict[int, Tensor] = {}
        parents: dict[int, Tensor] = {}
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
        out = Tensor(numpy_func(*arg_values, **kwargs))
        history.note_view(out, numpy_func, args, arg_values, kwargs)
        if tracking and parents:
            out.requires_grad = True
            out.recipe = history.make_recipe(numpy_func, arg_values, kwargs, parents, tensors, out)
        return out

    return tensor_func
