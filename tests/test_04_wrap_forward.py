"""Step 04: wrap_forward_fn turns NumPy functions into recording Tensor operations."""

import functools

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
    assert out.recipe.func is np.log, (
        "the recipe records the NumPy function, the key into BACK_FUNCS"
    )
    assert out.recipe.args[0] is x.array, (
        "the recipe stores the arrays the NumPy function received, not the Tensors"
    )
    assert out.recipe.kwargs == {}
    assert out.recipe.parents == {0: x}
    chained = log(out)
    assert chained.recipe is not None, "a result computed from a tensor with a recipe records one"
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
    assert left.recipe.parents == {1: a}, (
        "parents are keyed by argument position: in multiply(3, a), a is argument 1"
    )
    assert left.recipe.args[0] == 3, "a float argument stays in the recipe at its position"
    assert_array_equal(left.array, [3.0, 6.0])
    right = multiply(a, 0.5)
    assert right.recipe is not None
    assert right.recipe.parents == {0: a}


def test_only_inputs_that_need_a_gradient_become_parents() -> None:
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    constant = Tensor(np.array([3.0, 4.0]))
    out = multiply(constant, a)
    assert out.recipe is not None
    assert out.recipe.parents == {1: a}, (
        "a Tensor that neither requires grad nor has a recipe is not a parent"
    )
    plain = multiply(constant, constant)
    assert not plain.requires_grad, "a result computed from constants alone needs no gradient"
    assert plain.recipe is None, "a result without parents records no recipe"


@pytest.mark.usefixtures("grad_tracking_off")
def test_nothing_is_recorded_while_tracking_is_off() -> None:
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    out = multiply(a, a)
    assert not out.requires_grad, "while tracking is off, results do not require grad"
    assert out.recipe is None, "while tracking is off, no recipe is recorded"
    assert log(a).recipe is None, "while tracking is off, no recipe is recorded"


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
    # The facts the lesson names: a TypeError that names the keyword and says to
    # pass tensors by position; the exact wording is the learner's.
    with pytest.raises(TypeError, match=r"x2") as raised:
        wrap_forward_fn(np.multiply)(x, x2=x)
    assert "position" in str(raised.value).lower(), "the message says to pass tensors positionally"


def test_a_tensor_passed_by_keyword_to_a_nameless_function_still_raises_type_error() -> None:
    # a functools.partial has no __name__: the message must not fail on that
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    with pytest.raises(TypeError, match=r"x2"):
        wrap_forward_fn(functools.partial(np.multiply))(x, x2=x)


def test_a_non_differentiable_function_never_records_a_recipe() -> None:
    argmax = wrap_forward_fn(np.argmax, is_differentiable=False)
    x = Tensor(np.array([1.0, 3.0, 2.0]), requires_grad=True)
    out = argmax(x)
    assert out.item() == 1
    assert out.recipe is None, "a non-differentiable function never records a recipe"
    assert not out.requires_grad, "the result of a non-differentiable function needs no gradient"


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
