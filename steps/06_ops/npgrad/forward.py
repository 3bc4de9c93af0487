"""``wrap_forward_fn``: a NumPy function made into a Tensor operation that records a recipe."""

from collections.abc import Callable

from npgrad.arrays import Arr
from npgrad.grad_mode import is_grad_enabled
from npgrad.registry import display_name
from npgrad.tensor import Recipe, Tensor


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
    argument position.
    """

    def tensor_func(*args: object, **kwargs: object) -> Tensor:
        for name, value in kwargs.items():
            if isinstance(value, Tensor):
                raise TypeError(
                    f"{display_name(numpy_func)}() got a Tensor for keyword argument {name!r}: "
                    "pass tensors positionally, since gradients are tracked by argument position"
                )
        arg_values = tuple(arg.array if isinstance(arg, Tensor) else arg for arg in args)
        out = Tensor(numpy_func(*arg_values, **kwargs))
        if is_differentiable and is_grad_enabled():
            parents = {
                position: arg
                for position, arg in enumerate(args)
                if isinstance(arg, Tensor) and (arg.requires_grad or arg.recipe is not None)
            }
            if parents:
                out.requires_grad = True
                out.recipe = Recipe(numpy_func, arg_values, kwargs, parents)
        return out

    return tensor_func
