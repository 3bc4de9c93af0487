"""npgrad, step 03: tensors that record recipes, and the table of backward functions."""

from npgrad.arrays import Arr
from npgrad.backward_fns import (
    forward_and_back,
    log_back,
    multiply_back0,
    multiply_back1,
    unbroadcast,
)
from npgrad.grad_mode import is_grad_enabled, set_grad_enabled
from npgrad.ops import log_forward, multiply_forward
from npgrad.registry import BACK_FUNCS, BackwardFuncLookup, MissingBackwardFunctionError
from npgrad.tensor import Recipe, Tensor, arange, empty, tensor, zeros

__all__ = [
    "BACK_FUNCS",
    "Arr",
    "BackwardFuncLookup",
    "MissingBackwardFunctionError",
    "Recipe",
    "Tensor",
    "arange",
    "empty",
    "forward_and_back",
    "is_grad_enabled",
    "log_back",
    "log_forward",
    "multiply_back0",
    "multiply_back1",
    "multiply_forward",
    "set_grad_enabled",
    "tensor",
    "unbroadcast",
    "zeros",
]
