"""Comparisons: non-differentiable operations that give boolean tensors.

They accept tensors anywhere in a graph and never record a recipe, so no
gradient flows through them (their derivative is 0 or undefined).
"""

from collections.abc import Callable

import numpy as np

from npgrad.forward import wrap_forward_fn
from npgrad.tensor import Tensor

eq: Callable[[Tensor | float, Tensor | float], Tensor] = wrap_forward_fn(
    np.equal, is_differentiable=False
)
