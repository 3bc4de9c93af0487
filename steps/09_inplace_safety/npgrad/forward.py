"""``wrap_forward_fn``: a NumPy function made into a Tensor operation that records a recipe."""

from collections.abc import Callable

from npgrad import history
from npgrad.arrays import Arr
from npgrad.grad_mode import is_grad_enabled
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
        for name, value in kwargs.items():
            if isinstance(value, Tensor):
                raise TypeError(
                    f"{numpy_func.__name__}() got a Tensor for keyword argument {name!r}: "
                    "pass tensors positionally, since gradients are tracked by argument position"
                )
        tracking = is_differentiable and is_grad_enabled()
        if tracking:
            for arg in args:
                if isinstance(arg, Tensor) and arg._view is not None:
                    history.refresh_view(arg)
        arg_values = tuple(arg.array if isinstance(arg, Tensor) else arg for arg in args)
        out = Tensor(numpy_func(*arg_values, **kwargs))
        history.note_view(out, numpy_func, args, arg_values, kwargs)
        if tracking:
            parents = {
                position: arg
                for position, arg in enumerate(args)
                if isinstance(arg, Tensor) and (arg.requires_grad or arg.recipe is not None)
            }
            if parents:
                out.requires_grad = True
                tensors = {
                    position: arg for position, arg in enumerate(args) if isinstance(arg, Tensor)
                }
                out.recipe = history.make_recipe(
                    numpy_func, arg_values, kwargs, parents, tensors, out
                )
        return out

    return tensor_func
