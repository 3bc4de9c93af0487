"""Step 06: a NumPy scalar or array on the left of an operator gives a Tensor with its graph.

``Tensor.__array_ufunc__ = None`` makes NumPy hand the operation to the
Tensor's reflected operator, so ``np.float64(0.5) * t`` is exactly
``Tensor(np.float64(0.5)) * t``: the same values, dtype, recipe and gradients.
"""

import operator
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from npgrad import Tensor
from shared.testing.tensors import grad_of, leaf

pytestmark = pytest.mark.step(6)

ELEMENTWISE = {
    "*": operator.mul,
    "+": operator.add,
    "-": operator.sub,
    "/": operator.truediv,
}

# A NumPy scalar (float64, from a NumPy function, float32), a 0-d array, and n-d arrays
# that broadcast against the (3,) tensor below (one of them integer).
LEFT_OPERANDS: dict[str, Any] = {
    "float64": np.float64(0.5),
    "sqrt": np.sqrt(2.0),
    "float32": np.float32(3.0),
    "0-d": np.array(0.25),
    "1-d": np.array([1.0, -2.0, 4.0]),
    "2-d": np.array([[1.0, 2.0, 3.0], [-4.0, 5.0, 6.0]]),
    "int 2-d": np.arange(6).reshape(2, 3),
}


@pytest.mark.parametrize("left_name", list(LEFT_OPERANDS))
@pytest.mark.parametrize("symbol", list(ELEMENTWISE))
def test_numpy_on_the_left_of_an_elementwise_operator(symbol: str, left_name: str) -> None:
    op: Callable[[Any, Any], Any] = ELEMENTWISE[symbol]
    left = LEFT_OPERANDS[left_name]
    t = leaf([1.0, 2.0, 4.0])
    out = op(left, t)
    assert isinstance(out, Tensor), f"{left_name} {symbol} t gave {type(out).__name__}"
    # The reference: the same operation with the NumPy operand wrapped in a Tensor.
    t_ref = leaf([1.0, 2.0, 4.0])
    ref = op(Tensor(np.asarray(left)), t_ref)
    assert_array_equal(out.array, ref.array)
    assert out.array.dtype == ref.array.dtype
    assert out.recipe is not None
    assert out.recipe.parents == {1: t}
    end_grad = np.linspace(1.0, 2.0, out.array.size).reshape(out.shape)
    out.backward(end_grad=end_grad)
    ref.backward(end_grad=end_grad)
    assert_array_equal(grad_of(t), grad_of(t_ref))


def test_numpy_on_the_left_gives_the_expected_gradients() -> None:
    # Worked by hand, so the comparison above does not only compare the engine with itself.
    t = leaf([1.0, 2.0])
    (np.float64(3.0) * t).backward(end_grad=np.ones(2))
    assert_array_equal(grad_of(t), [3.0, 3.0])
    t = leaf([1.0, 2.0])
    (np.ones((3, 2)) + t).backward(end_grad=np.ones((3, 2)))
    assert_array_equal(grad_of(t), [3.0, 3.0])
    t = leaf([1.0, 2.0])
    (np.array(5.0) - t).backward(end_grad=np.ones(2))
    assert_array_equal(grad_of(t), [-1.0, -1.0])
    t = leaf([1.0, 2.0])
    out = np.sqrt(4.0) / t
    assert_array_equal(out.array, [2.0, 1.0])
    out.backward(end_grad=np.ones(2))
    assert_allclose(grad_of(t), [-2.0, -0.5], rtol=1e-12)


def test_a_numpy_array_on_the_left_of_matmul() -> None:
    left = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    t = leaf([[1.0, 0.0], [0.0, 1.0], [2.0, -1.0]])
    out = left @ t
    assert isinstance(out, Tensor)
    assert_array_equal(out.array, left @ t.array)
    assert out.recipe is not None
    assert out.recipe.parents == {1: t}
    end_grad = np.array([[1.0, 2.0], [3.0, 4.0]])
    out.backward(end_grad=end_grad)
    assert_array_equal(grad_of(t), left.T @ end_grad)


def test_a_numpy_scalar_on_the_left_of_matmul_raises_type_error() -> None:
    t = leaf([[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(
        TypeError, match=r"matmul needs two tensors, got float64.*use \* instead of @"
    ):
        np.float64(2.0) @ t  # type: ignore[operator]  # the misuse under test


def test_a_0d_array_on_the_left_of_matmul_raises_naming_its_shape() -> None:
    t = leaf([[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(ValueError, match=r"got \(\) and \(2, 2\)"):
        np.array(2.0) @ t


def test_a_number_on_the_right_of_matmul_raises_type_error() -> None:
    t = leaf([[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(TypeError, match=r"matmul needs two tensors, got float 2\.0"):
        t @ 2.0  # type: ignore[operator]  # the misuse under test


def test_a_numpy_array_on_the_left_of_eq_gives_a_boolean_tensor() -> None:
    out = np.array([1.0, 5.0, 4.0]) == Tensor(np.array([1.0, 2.0, 4.0]))
    assert isinstance(out, Tensor)
    assert_array_equal(out.array, [True, False, True])


def test_a_numpy_function_called_on_a_tensor_raises_instead_of_losing_the_graph() -> None:
    # NumPy's own functions do not know about Tensors: the error says so at once.
    t = leaf([1.0, 2.0])
    with pytest.raises(TypeError, match=r"does not support ufuncs"):
        np.exp(t)  # type: ignore[call-overload]  # the misuse under test
