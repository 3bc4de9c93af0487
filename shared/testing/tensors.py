"""Tensors for tests: a float64 leaf, and a gradient that must exist.

``npgrad`` is imported inside ``leaf``: this module belongs to no step, and the
test run puts the step under test on the path.
"""

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from npgrad import Tensor


def leaf(values: npt.ArrayLike, requires_grad: bool = True) -> "Tensor":
    """A float64 leaf tensor holding a copy of ``values``; it requires grad unless told."""
    from npgrad import Tensor

    return Tensor(np.array(values, dtype=np.float64), requires_grad=requires_grad)


def grad_of(tensor: "Tensor") -> npt.NDArray[np.float64]:
    """``tensor.grad.array``, failing the test if no gradient arrived."""
    assert tensor.grad is not None, "the tensor received no gradient"
    grad: npt.NDArray[np.float64] = tensor.grad.array
    return grad
