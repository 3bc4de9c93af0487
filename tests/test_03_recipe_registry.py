"""Step 03: Tensor, Recipe, the backward-function table and hand-written forwards."""

import datetime
import re

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import npgrad
from npgrad import (
    BACK_FUNCS,
    Arr,
    BackwardFuncLookup,
    MissingBackwardFunctionError,
    Recipe,
    Tensor,
    arange,
    empty,
    is_grad_enabled,
    log_back,
    multiply_back0,
    multiply_back1,
    set_grad_enabled,
    tensor,
    zeros,
)

pytestmark = pytest.mark.step(3)


def assert_records_the_array(recorded: object, array: np.ndarray, where: str) -> None:
    """A recipe argument must be the very array the NumPy function received."""
    assert not isinstance(recorded, Tensor), (
        f"{where} must hold the array the NumPy function received, not the Tensor: "
        "backward functions are called with the recipe's args and compute with arrays"
    )
    assert recorded is array, (
        f"{where} must be the very array the NumPy function received, not a copy: "
        "copying every input of every operation would double the memory"
    )


# --- Tensor ---------------------------------------------------------------------------


def test_tensor_shares_the_array_it_is_given() -> None:
    array = np.array([1.0, 2.0])
    t = Tensor(array)
    assert t.array is array
    assert t.requires_grad is False
    assert t.grad is None
    assert t.recipe is None
    assert t.is_leaf


def test_tensor_keeps_its_arrays_dtype() -> None:
    assert Tensor(np.array([1.0, 2.0], dtype=np.float32)).array.dtype == np.float32
    assert Tensor([1, 2, 3]).array.dtype.kind == "i"
    assert Tensor(np.array([1.0], dtype=np.float32), requires_grad=True).array.dtype == np.float32


def test_integer_or_boolean_data_that_requires_grad_becomes_float64() -> None:
    t = Tensor([0, 1, 2, 3], requires_grad=True)
    assert t.array.dtype == np.float64, (
        f"integer data that requires grad must become float64 (got {t.array.dtype}): "
        "gradients exist only for floating point"
    )
    assert_array_equal(t.array, [0.0, 1.0, 2.0, 3.0])
    assert Tensor(np.array([True, False]), requires_grad=True).array.dtype == np.float64


def test_tensor_rejects_python_objects_such_as_another_tensor() -> None:
    with pytest.raises(TypeError, match=r"\.array"):
        Tensor(Tensor([1.0]))  # type: ignore[arg-type]  # the misuse under test


@pytest.mark.parametrize(
    "data",
    [
        "abc",
        ["a", "b"],
        b"abc",
        1 + 2j,
        np.array([1.0, 2.0], dtype=np.complex64),
        np.datetime64("2024-01-01"),
        np.array([1, 2], dtype="timedelta64[s]"),
    ],
    ids=["str", "list-of-str", "bytes", "complex", "complex64", "datetime64", "timedelta64"],
)
@pytest.mark.parametrize("requires_grad", [False, True])
def test_tensor_refuses_data_that_is_not_real_numbers(data: object, requires_grad: bool) -> None:
    dtype = re.escape(str(np.asarray(data).dtype))
    with pytest.raises(TypeError, match=rf"got dtype {dtype}.*convert the data to numbers"):
        Tensor(data, requires_grad=requires_grad)  # type: ignore[arg-type]  # the misuse under test


def test_tensor_refuses_python_dates_as_objects() -> None:
    with pytest.raises(TypeError, match=r"not Python objects \(dtype object\)"):
        Tensor([datetime.datetime(2024, 1, 1)])  # type: ignore[arg-type]  # the misuse under test


def test_tensor_repr() -> None:
    assert repr(Tensor(np.array([1.0, 2.0]), requires_grad=True)) == (
        "Tensor(array([1., 2.]), requires_grad=True)"
    )
    assert repr(Tensor(np.array(3))) == "Tensor(array(3), requires_grad=False)"


def test_shape_ndim_size_len() -> None:
    t = Tensor(np.zeros((2, 3, 4)))
    assert t.shape == (2, 3, 4)
    assert t.ndim == 3
    assert t.size() == (2, 3, 4)
    assert t.size(1) == 3
    assert t.size(-1) == 4
    assert len(t) == 2
    with pytest.raises(TypeError, match=r"0-d"):
        len(Tensor(np.array(1.0)))


def test_item_and_bool_of_one_element() -> None:
    assert Tensor(np.array([[2.5]])).item() == 2.5
    assert isinstance(Tensor(np.array(7)).item(), int)
    assert bool(Tensor(np.array([1.0]))) is True
    assert bool(Tensor(np.array(0.0))) is False


def test_item_of_many_elements_raises() -> None:
    # The lesson's rule: a RuntimeError that says how many elements there are.
    with pytest.raises(RuntimeError, match=r"\b3\b"):
        Tensor(np.array([1.0, 2.0, 3.0])).item()


def test_bool_of_many_elements_raises() -> None:
    with pytest.raises(RuntimeError, match=r"\b2\b"):
        bool(Tensor(np.array([1.0, 2.0])))


def test_hash_is_by_identity() -> None:
    a = Tensor(np.array([1.0]))
    b = Tensor(np.array([1.0]))
    assert hash(a) != hash(b)
    assert len({a, b, a}) == 2


# --- factories ------------------------------------------------------------------------


def test_factory_tensor_copies_its_data() -> None:
    array = np.array([1.0, 2.0])
    t = tensor(array, requires_grad=True)
    assert t.array is not array
    assert_array_equal(t.array, array)
    assert t.requires_grad
    assert tensor([1, 2], dtype=np.float32).array.dtype == np.float32


def test_factories_zeros_empty_arange() -> None:
    z = zeros(2, 3)
    assert z.shape == (2, 3)
    assert z.array.dtype == np.float64
    assert_array_equal(z.array, np.zeros((2, 3)))
    assert zeros(4, dtype=np.float32).array.dtype == np.float32
    assert zeros(2, requires_grad=True).requires_grad
    assert empty(3, 1).shape == (3, 1)
    assert_array_equal(arange(4).array, [0, 1, 2, 3])
    assert_array_equal(arange(1.0, 2.0, 0.5).array, [1.0, 1.5])


# --- grad tracking switch -------------------------------------------------------------


def test_grad_tracking_switch_is_read_through_a_function() -> None:
    assert is_grad_enabled()
    try:
        set_grad_enabled(False)
        assert not is_grad_enabled()
        assert not npgrad.is_grad_enabled()
    finally:
        set_grad_enabled(True)
    assert is_grad_enabled()


def test_set_grad_enabled_as_a_function_switches_for_the_whole_program() -> None:
    set_grad_enabled(False)
    assert not is_grad_enabled()
    set_grad_enabled(True)
    assert is_grad_enabled()


def test_set_grad_enabled_as_a_context_manager_restores_the_previous_state() -> None:
    with set_grad_enabled(False):
        assert not is_grad_enabled()
        with set_grad_enabled(True):
            assert is_grad_enabled()
        assert not is_grad_enabled()
        with set_grad_enabled(False):
            assert not is_grad_enabled()
        assert not is_grad_enabled()
    assert is_grad_enabled()


def test_set_grad_enabled_restores_after_an_exception_in_the_block() -> None:
    def fail_inside() -> None:
        with set_grad_enabled(False):
            assert not is_grad_enabled()
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        fail_inside()
    assert is_grad_enabled()


def test_set_grad_enabled_refuses_a_non_bool_and_leaves_the_switch_alone() -> None:
    with pytest.raises(TypeError, match=r"takes True or False, got 'no'"):
        set_grad_enabled("no")  # type: ignore[arg-type]  # the misuse under test
    assert is_grad_enabled()


def test_an_operation_under_set_grad_enabled_false_records_nothing() -> None:
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    with set_grad_enabled(False):
        inside = a * 2.0
    outside = a * 2.0
    assert inside.recipe is None
    assert outside.recipe is not None


# --- the backward-function table ------------------------------------------------------


def test_lookup_returns_what_was_added_per_function_and_position() -> None:
    lookup = BackwardFuncLookup()
    lookup.add_back_func(np.log, 0, log_back)
    lookup.add_back_func(np.multiply, 0, multiply_back0)
    lookup.add_back_func(np.multiply, 1, multiply_back1)
    assert lookup.get_back_func(np.log, 0) is log_back
    assert lookup.get_back_func(np.multiply, 0) is multiply_back0
    assert lookup.get_back_func(np.multiply, 1) is multiply_back1


def test_missing_backward_function_names_the_function_and_position() -> None:
    lookup = BackwardFuncLookup()
    lookup.add_back_func(np.multiply, 0, multiply_back0)
    # The lesson's rule: the message names the function and the argument position.
    with pytest.raises(MissingBackwardFunctionError, match=r"(?s)multiply.*1|1.*multiply"):
        lookup.get_back_func(np.multiply, 1)
    with pytest.raises(MissingBackwardFunctionError, match=r"(?s)exp.*0|0.*exp"):
        lookup.get_back_func(np.exp, 0)


def test_package_table_holds_log_and_multiply() -> None:
    assert BACK_FUNCS.get_back_func(np.log, 0) is log_back
    assert BACK_FUNCS.get_back_func(np.multiply, 0) is multiply_back0
    assert BACK_FUNCS.get_back_func(np.multiply, 1) is multiply_back1


def test_recipe_is_a_frozen_record() -> None:
    x = Tensor(np.array([1.0]), requires_grad=True)
    recipe = Recipe(np.log, (x.array,), {}, {0: x})
    with pytest.raises(AttributeError):
        recipe.func = np.exp  # type: ignore[misc]  # frozen: the assignment under test


# --- hand-written forwards (replaced by wrap_forward_fn at step 04) ------------------


@pytest.mark.step(3, last=3)
def test_log_forward_records_a_recipe_when_an_input_requires_grad() -> None:
    x = Tensor(np.array([np.e, np.e**2]), requires_grad=True)
    out = npgrad.log_forward(x)
    assert_array_equal(out.array, np.log(x.array))
    assert out.requires_grad
    assert out.recipe is not None
    assert out.recipe.func is np.log
    assert_records_the_array(out.recipe.args[0], x.array, "recipe.args[0] of log_forward(x)")
    assert out.recipe.kwargs == {}
    assert out.recipe.parents == {0: x}
    assert not out.is_leaf
    # an input with a recipe also makes the next result record one
    again = npgrad.log_forward(out)
    assert again.recipe is not None
    assert again.recipe.parents[0] is out


@pytest.mark.step(3, last=3)
def test_log_forward_records_nothing_without_requires_grad_or_tracking() -> None:
    plain = npgrad.log_forward(Tensor(np.array([1.0, 2.0])))
    assert not plain.requires_grad
    assert plain.recipe is None, "no input needs a gradient, so log_forward records no recipe"
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    try:
        set_grad_enabled(False)
        untracked = npgrad.log_forward(x)
    finally:
        set_grad_enabled(True)
    assert untracked.recipe is None, (
        "with grad tracking off, log_forward must record no recipe: "
        "read the switch by calling is_grad_enabled() at every operation"
    )
    assert not untracked.requires_grad


@pytest.mark.step(3, last=3)
def test_multiply_forward_records_parents_by_position() -> None:
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    b = Tensor(np.array([3.0, 4.0]), requires_grad=True)
    out = npgrad.multiply_forward(a, b)
    assert_array_equal(out.array, [3.0, 8.0])
    assert out.recipe is not None
    assert out.recipe.func is np.multiply
    assert_records_the_array(out.recipe.args[0], a.array, "recipe.args[0] of multiply_forward")
    assert_records_the_array(out.recipe.args[1], b.array, "recipe.args[1] of multiply_forward")
    assert out.recipe.parents == {0: a, 1: b}


@pytest.mark.step(3, last=3)
def test_multiply_forward_with_a_float_on_either_side() -> None:
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    left = npgrad.multiply_forward(3, a)
    assert left.recipe is not None
    assert left.recipe.parents == {1: a}, (
        "parents are keyed by argument position: in multiply_forward(3, a), a is argument 1, "
        "whose gradient multiply_back1 computes"
    )
    assert left.recipe.args[0] == 3
    right = npgrad.multiply_forward(a, 2.5)
    assert right.recipe is not None
    assert right.recipe.parents == {0: a}
    assert_array_equal(right.array, [2.5, 5.0])


@pytest.mark.step(3, last=3)
def test_multiply_forward_keeps_only_inputs_that_need_a_gradient_as_parents() -> None:
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    b = Tensor(np.array([3.0, 4.0]))
    out = npgrad.multiply_forward(a, b)
    assert out.recipe is not None
    assert out.recipe.parents == {0: a}
    with pytest.raises(TypeError, match=r"Tensor"):
        npgrad.multiply_forward(2.0, 3.0)


def test_tensor_operators_record_multiply_and_log() -> None:
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    product = a * 2
    reflected = 2 * a
    assert product.recipe is not None
    assert product.recipe.func is np.multiply
    assert product.recipe.parents == {0: a}
    assert reflected.recipe is not None
    assert reflected.recipe.parents == {1: a}
    assert_array_equal(reflected.array, [2.0, 4.0])
    logged = a.log()
    assert logged.recipe is not None
    assert logged.recipe.func is np.log


NUMPY_LEFT_OPERANDS = [np.float64(0.5), np.sqrt(2.0), np.float32(3.0), np.array(0.5)]


@pytest.mark.parametrize("left", NUMPY_LEFT_OPERANDS, ids=repr)
def test_a_numpy_scalar_or_0d_array_on_the_left_of_multiply_gives_a_tensor(left: Arr) -> None:
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    product = left * a
    assert isinstance(product, Tensor)
    assert_array_equal(product.array, np.asarray(left) * np.array([1.0, 2.0]))
    assert product.recipe is not None
    assert product.recipe.func is np.multiply
    assert product.recipe.parents == {1: a}


def test_a_numpy_array_on_the_left_of_multiply_gives_a_tensor() -> None:
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    product = np.array([[1.0, 2.0], [3.0, 4.0]]) * a
    assert isinstance(product, Tensor)
    assert_array_equal(product.array, [[1.0, 4.0], [3.0, 8.0]])
    assert product.recipe is not None
    assert product.recipe.parents == {1: a}


def test_a_python_scalar_never_upcasts_float32() -> None:
    a = Tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    assert (a * 2.5).array.dtype == np.float32
    assert (3 * a).array.dtype == np.float32
