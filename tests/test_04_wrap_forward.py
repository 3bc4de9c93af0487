"""Step 04: wrap_forward_fn turns NumPy functions into recording Tensor operations."""

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from npgrad import Arr, Tensor, log, multiply, wrap_forward_fn

pytestmark = pytest.mark.step(4)


def test_wrapped_log_records_the_function_the_arrays_and_the_parent() -> None:
    x = Tensor(np.array([np.e, np.e**2]), requires_grad=True)
    out = log(x)
    assert_array_equal(out.array, [1.0, 2.0])
    assert out.requires_grad
    assert out.recipe is not None
    assert out.recipe.func is np.log
    assert out.recipe.args[0] is x.array
    assert out.recipe.kwargs == {}
    assert out.recipe.parents == {0: x}
    chained = log(out)
    assert chained.recipe is not None
    assert chained.recipe.parents == {0: out}


def test_wrapped_multiply_keys_parents_by_argument_position() -> None:
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    b = Tensor(np.array([3.0, 4.0]), requires_grad=True)
    both = multiply(a, b)
    assert both.recipe is not None
    assert both.recipe.parents == {0: a, 1: b}
    assert both.recipe.args[0] is a.array
    assert both.recipe.args[1] is b.array
    left = multiply(3, a)
    assert left.recipe is not None
    assert left.recipe.parents == {1: a}
    assert left.recipe.args[0] == 3
    assert_array_equal(left.array, [3.0, 6.0])
    right = multiply(a, 0.5)
    assert right.recipe is not None
    assert right.recipe.parents == {0: a}


def test_only_inputs_that_need_a_gradient_become_parents() -> None:
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    constant = Tensor(np.array([3.0, 4.0]))
    out = multiply(constant, a)
    assert out.recipe is not None
    assert out.recipe.parents == {1: a}
    plain = multiply(constant, constant)
    assert not plain.requires_grad
    assert plain.recipe is None


@pytest.mark.usefixtures("grad_tracking_off")
def test_nothing_is_recorded_while_tracking_is_off() -> None:
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    out = multiply(a, a)
    assert not out.requires_grad
    assert out.recipe is None
    assert log(a).recipe is None


def test_keyword_arguments_are_passed_on_and_recorded() -> None:
    def scale(x: Arr, factor: float = 1.0) -> Arr:
        return x * factor

    scaled = wrap_forward_fn(scale)
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    out = scaled(x, factor=3.0)
    assert_array_equal(out.array, [3.0, 6.0])
    assert out.recipe is not None
    assert out.recipe.func is scale
    assert out.recipe.kwargs == {"factor": 3.0}


def test_a_tensor_passed_by_keyword_raises_and_says_to_pass_it_positionally() -> None:
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    with pytest.raises(TypeError, match=r"keyword argument 'x2'.*pass tensors positionally"):
        wrap_forward_fn(np.multiply)(x, x2=x)


def test_a_non_differentiable_function_never_records_a_recipe() -> None:
    argmax = wrap_forward_fn(np.argmax, is_differentiable=False)
    x = Tensor(np.array([1.0, 3.0, 2.0]), requires_grad=True)
    out = argmax(x)
    assert out.item() == 1
    assert not out.requires_grad
    assert out.recipe is None


def test_the_result_keeps_numpys_dtype() -> None:
    a = Tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    assert multiply(a, 2.0).array.dtype == np.float32
    assert log(a).array.dtype == np.float32


def test_tensor_operators_call_the_wrapped_functions() -> None:
    a = Tensor(np.array([np.e, 1.0]), requires_grad=True)
    for out in (a * 2.0, 2.0 * a):
        assert out.recipe is not None
        assert out.recipe.func is np.multiply
        assert_array_equal(out.array, [2 * np.e, 2.0])
    logged = a.log()
    assert logged.recipe is not None
    assert logged.recipe.func is np.log
    assert_array_equal(logged.array, [1.0, 0.0])
