"""npgrad, step 05: backpropagation through the recorded graph."""

from npgrad.arrays import Arr
from npgrad.autograd import CycleError, backprop, sorted_computational_graph, topological_sort
from npgrad.backward_fns import (
    forward_and_back,
    log_back,
    multiply_back0,
    multiply_back1,
    unbroadcast,
)
from npgrad.grad_mode import is_grad_enabled, set_grad_enabled
from npgrad.ops import log, multiply, wrap_forward_fn
from npgrad.registry import BACK_FUNCS, BackwardFuncLookup, MissingBackwardFunctionError
from npgrad.tensor import Recipe, Tensor, arange, empty, tensor, zeros

__all__ = [
    "BACK_FUNCS",
    "Arr",
    "BackwardFuncLookup",
    "CycleError",
    "MissingBackwardFunctionError",
    "Recipe",
    "Tensor",
    "arange",
    "backprop",
    "empty",
    "forward_and_back",
    "is_grad_enabled",
    "log",
    "log_back",
    "multiply",
    "multiply_back0",
    "multiply_back1",
    "set_grad_enabled",
    "sorted_computational_graph",
    "tensor",
    "topological_sort",
    "unbroadcast",
    "wrap_forward_fn",
    "zeros",
]
