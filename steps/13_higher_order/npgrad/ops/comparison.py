"""Comparisons: non-differentiable operations that give boolean tensors.

They accept tensors anywhere in a graph and never record a recipe, so no
gradient flows through them (their derivative is 0 or undefined).
"""

from collections.abc import Callable
from typing import TypeAlias

import numpy as np

from npgrad.forward import wrap_forward_fn
from npgrad.tensor import Tensor

eq: Callable[[Tensor | float, Tensor | float], Tensor] = wrap_forward_fn(
    np.equal, is_differentiable=False
)

_Comparison: TypeAlias = Callable[[Tensor | float, Tensor | float], Tensor]

less: _Comparison = wrap_forward_fn(np.less, is_differentiable=False)

greater: _Comparison = wrap_forward_fn(np.greater, is_differentiable=False)

less_equal: _Comparison = wrap_forward_fn(np.less_equal, is_differentiable=False)

greater_equal: _Comparison = wrap_forward_fn(np.greater_equal, is_differentiable=False)

logical_not: Callable[[Tensor], Tensor] = wrap_forward_fn(np.logical_not, is_differentiable=False)
