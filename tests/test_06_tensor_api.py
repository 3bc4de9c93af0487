"""Step 06: the Tensor's calling conventions, its errors, and the decisions on edge cases.

Shape arguments as one tuple or as separate integers, iteration, the errors
that name the shape and the bad argument, and the documented choices: ``sum``
over an empty tuple of dims, mixed basic and advanced indexing, NaN through
``maximum`` and ``relu``.
"""

import re

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from npgrad import Tensor, maximum, relu
from shared.testing.tensors import grad_of, leaf

pytestmark = pytest.mark.step(6)


# --- shape arguments as one tuple -----------------------------------------------------


def test_reshape_takes_one_tuple_or_list_as_well_as_separate_sizes() -> None:
    x = leaf(np.arange(6.0))
    by_tuple = x.reshape((3, 2))
    assert by_tuple.shape == (3, 2)
    assert_array_equal(by_tuple.array, x.reshape(3, 2).array)
    assert x.reshape([2, -1]).shape == (2, 3)
    assert x.reshape((6,)).shape == (6,)
    by_tuple.backward(end_grad=np.arange(6.0).reshape(3, 2))
    assert_array_equal(grad_of(x), np.arange(6.0))


def test_permute_takes_one_tuple_as_well_as_separate_dims() -> None:
    x = leaf(np.arange(24.0).reshape(2, 3, 4))
    out = x.permute((2, 0, 1))
    assert out.shape == (4, 2, 3)
    assert_array_equal(out.array, x.permute(2, 0, 1).array)
    end_grad = np.arange(24.0).reshape(4, 2, 3)
    out.backward(end_grad=end_grad)
    assert_array_equal(grad_of(x), np.transpose(end_grad, (1, 2, 0)))


def test_expand_takes_one_tuple_as_well_as_separate_sizes() -> None:
    x = leaf(np.arange(6.0).reshape(2, 1, 3))
    out = x.expand((5, 1, 2, 4, 3))
    assert out.shape == (5, 1, 2, 4, 3)
    assert_array_equal(out.array, x.expand(5, 1, 2, 4, 3).array)
    out.backward(end_grad=np.ones((5, 1, 2, 4, 3)))
    assert_array_equal(grad_of(x), np.full((2, 1, 3), 20.0))
    y = leaf([[1.0, 2.0, 3.0, 4.0]])  # (1, 4)
    assert y.expand((3, 2, -1)).shape == (3, 2, 4)


def test_shape_arguments_that_are_not_integers_raise_type_error() -> None:
    x = Tensor(np.zeros(6))
    with pytest.raises(TypeError, match=r"reshape\(\) takes integers.*t\.reshape\(\(2, 3\)\)"):
        x.reshape((3, 2), 1)  # type: ignore[call-overload]  # the misuse under test
    with pytest.raises(TypeError, match=r"reshape\(\) takes integers, .* got \(2\.0, 3\)"):
        x.reshape(2.0, 3)  # type: ignore[call-overload]  # the misuse under test
    with pytest.raises(TypeError, match=r"expand\(\) takes integers"):
        x.expand("6")  # type: ignore[arg-type]  # the misuse under test


# --- errors that name the shape and the bad argument ----------------------------------


def test_reshape_to_a_wrong_number_of_elements_names_both_shapes() -> None:
    x = Tensor(np.zeros((2, 3)))
    with pytest.raises(
        ValueError, match=r"cannot reshape a tensor of shape \(2, 3\) \(6 elements\) to \(4,\)"
    ):
        x.reshape(4)
    with pytest.raises(ValueError, match=r"to \(-1, -1\).*at most one of them -1"):
        x.reshape(-1, -1)


@pytest.mark.parametrize(
    "dims",
    [(0, 1), (0, 1, 3), (0, 0, 1), (1, 2, 0, 3)],
    ids=["too few", "out of range", "repeated", "too many"],
)
def test_permute_by_bad_dims_names_the_shape_and_the_dims(dims: tuple[int, ...]) -> None:
    x = Tensor(np.zeros((2, 3, 4)))
    expected = rf"cannot permute a tensor of shape \(2, 3, 4\) by {re.escape(str(dims))}"
    with pytest.raises(ValueError, match=expected + r".*each of its 3 dimensions exactly once"):
        x.permute(*dims)


@pytest.mark.parametrize("dim", [2, -3, (0, 0)], ids=["too large", "too negative", "repeated"])
def test_sum_over_a_bad_dim_names_the_shape_and_the_dim(dim: int | tuple[int, ...]) -> None:
    x = Tensor(np.zeros((2, 3)))
    expected = rf"cannot sum a tensor of shape \(2, 3\) over dim={re.escape(repr(dim))}"
    with pytest.raises(ValueError, match=expected + r": a dim must be an integer from -2 to 1"):
        x.sum(dim)


def test_add_in_place_of_floats_into_an_integer_tensor_says_what_to_do() -> None:
    x = Tensor(np.array([1, 2, 3]))
    with pytest.raises(TypeError, match=r"cannot store float64 results in a tensor of dtype int64"):
        x.add_(0.5)
    with pytest.raises(TypeError, match=r"out-of-place form"):
        x.add_(Tensor(np.array([1, 1, 1])), alpha=0.5)
    assert_array_equal(x.array, [1, 2, 3])  # nothing was written
    x.add_(Tensor(np.array([1, 1, 1])), alpha=2)  # integers into integers are fine
    assert_array_equal(x.array, [3, 4, 5])


def test_add_in_place_into_an_expanded_tensor_says_it_is_read_only() -> None:
    x = Tensor(np.array([[1.0], [2.0]]))
    wide = x.expand(2, 3)
    with pytest.raises(ValueError, match=r"add_\(\) cannot write into this tensor: .*read-only"):
        wide.add_(1.0)
    assert_array_equal(x.array, [[1.0], [2.0]])


# --- iteration ------------------------------------------------------------------------


def test_iterating_a_0d_tensor_raises_like_pytorch() -> None:
    with pytest.raises(TypeError, match=r"iteration over a 0-d tensor"):
        list(Tensor(5.0))
    with pytest.raises(TypeError, match=r"iteration over a 0-d tensor"):
        iter(Tensor(np.array(5.0)))  # at once, not at the first next()


def test_iterating_a_tensor_yields_its_rows_recorded_like_indexing() -> None:
    x = leaf([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    rows = list(x)
    assert len(rows) == 3
    assert all(isinstance(row, Tensor) for row in rows)
    assert_array_equal(rows[1].array, [3.0, 4.0])
    first, second, third = x
    (first * 1.0 + second * 2.0 + third * 3.0).sum().backward()
    assert_array_equal(grad_of(x), [[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    assert_array_equal([row.item() for row in Tensor(np.array([7.0, 8.0]))], [7.0, 8.0])


# --- decisions ------------------------------------------------------------------------


def test_sum_over_an_empty_tuple_of_dims_sums_everything_like_pytorch() -> None:
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    out = x.sum(())
    assert out.shape == ()
    assert out.item() == 10.0
    out.backward()
    assert_array_equal(grad_of(x), np.ones((2, 2)))
    assert x.sum((), keepdim=True).shape == (1, 1)


def test_mixed_basic_and_advanced_indexing_follows_numpy() -> None:
    # An int and an index array separated by a slice: NumPy puts the advanced
    # dimension first, (2, 3); PyTorch would give (3, 2).
    x = leaf(np.arange(24.0).reshape(2, 3, 4))
    idx = np.array([0, 2])
    out = x[0, :, idx]
    assert out.shape == (2, 3)
    assert_array_equal(out.array, x.array[0, :, idx])
    end_grad = np.arange(6.0).reshape(2, 3) + 1.0
    out.backward(end_grad=end_grad)
    expected = np.zeros((2, 3, 4))
    expected[0, :, 0] = end_grad[0]
    expected[0, :, 2] = end_grad[1]
    assert_array_equal(grad_of(x), expected)


def test_nan_through_maximum_and_relu_passes_the_gradient_like_pytorch() -> None:
    # A comparison with NaN is False: a backward written with "x > y" would give the
    # NaN position a gradient of 0 and hide the NaN; PyTorch passes the gradient.
    a = leaf([np.nan, 1.0, 3.0, 2.0])
    b = leaf([0.0, np.nan, 2.0, 2.0])
    out = maximum(a, b)
    assert_array_equal(out.array, [np.nan, np.nan, 3.0, 2.0])
    out.backward(end_grad=np.ones(4))
    assert_array_equal(grad_of(a), [1.0, 1.0, 1.0, 0.5])
    assert_array_equal(grad_of(b), [1.0, 1.0, 0.0, 0.5])
    x = leaf([np.nan, 2.0, -1.0])
    activated = relu(x)
    assert_array_equal(activated.array, [np.nan, 2.0, 0.0])
    activated.backward(end_grad=np.ones(3))
    assert_array_equal(grad_of(x), [1.0, 1.0, 0.0])
