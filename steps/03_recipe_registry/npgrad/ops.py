"""Operations on Tensors, each followed by the registration of its backward functions."""

import numpy as np

from npgrad.arrays import Arr
from npgrad.backward_fns import log_back, multiply_back0, multiply_back1
from npgrad.grad_mode import is_grad_enabled
from npgrad.registry import BACK_FUNCS
from npgrad.tensor import Recipe, Tensor


def log_forward(x: Tensor) -> Tensor:
    """Elementwise natural log, recording a recipe when the result needs a gradient."""
    out = Tensor(np.log(x.array))
    if is_grad_enabled() and (x.requires_grad or x.recipe is not None):
        out.requires_grad = True
        out.recipe = Recipe(np.log, (x.array,), {}, {0: x})
    return out


BACK_FUNCS.add_back_func(np.log, 0, log_back)


def multiply_forward(a: Tensor | Arr | float, b: Tensor | Arr | float) -> Tensor:
    """Elementwise ``a * b`` with broadcasting; either argument may be a Python number.

    The recipe's parents are the Tensor arguments that need a gradient, keyed
    by position: ``multiply_forward(3, t)`` has parents ``{1: t}``.
    """
    if not isinstance(a, Tensor) and not isinstance(b, Tensor):
        raise TypeError("multiply_forward needs at least one Tensor argument")
    a_value = a.array if isinstance(a, Tensor) else a
    b_value = b.array if isinstance(b, Tensor) else b
    out = Tensor(np.multiply(a_value, b_value))
    if is_grad_enabled():
        parents = {
            position: arg
            for position, arg in enumerate((a, b))
            if isinstance(arg, Tensor) and (arg.requires_grad or arg.recipe is not None)
        }
        if parents:
            out.requires_grad = True
            out.recipe = Recipe(np.multiply, (a_value, b_value), {}, parents)
    return out


BACK_FUNCS.add_back_func(np.multiply, 0, multiply_back0)
BACK_FUNCS.add_back_func(np.multiply, 1, multiply_back1)
