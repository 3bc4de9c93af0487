"""Step 02: unbroadcast, and multiply backwards for broadcast shapes."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from npgrad import forward_and_back, multiply_back0, multiply_back1, unbroadcast
from shared.testing.gradients import numeric_vjp
from shared.testing.strategies import (
    broadcast_to_shape_pairs,
    broadcastable_shape_pairs,
    float_arrays,
    positive_arrays,
)

pytestmark = pytest.mark.step(2)

KEEP_SIZE_ONE = "unbroadcast must keep size-1 dimensions: sum them with keepdims=True"
FROM_THE_RIGHT = (
    "shapes line up from the right: sum away the dimensions NumPy prepended first, "
    "then the size-1 ones"
)


def unbroadcast_valid(broadcasted: np.ndarray, original: np.ndarray, rule: str) -> np.ndarray:
    """``unbroadcast`` on shapes that do broadcast, failing with ``rule`` if the shape is wrong.

    A ValueError here is the implementation's own shape check catching a wrong sum,
    so the failure names the rule that was broken rather than only the check.
    """
    try:
        result = unbroadcast(broadcasted, original)
    except ValueError as error:
        pytest.fail(f"{rule} (unbroadcast raised ValueError for shapes that broadcast: {error})")
    assert result.shape == original.shape, (
        f"{rule}: unbroadcast to {original.shape} returned shape {result.shape}"
    )
    return result


def test_unbroadcast_sums_prepended_dimensions() -> None:
    original = np.zeros((3,))
    broadcasted = np.arange(2 * 4 * 3.0).reshape(2, 4, 3)
    result = unbroadcast_valid(broadcasted, original, FROM_THE_RIGHT)
    assert_array_equal(result, broadcasted.sum(axis=(0, 1)))


def test_unbroadcast_sums_size_one_dimensions_keeping_them() -> None:
    original = np.zeros((2, 1))
    broadcasted = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    result = unbroadcast_valid(broadcasted, original, KEEP_SIZE_ONE)
    assert_array_equal(result, [[6.0], [15.0]], err_msg="each row's gradients add up")


def test_unbroadcast_with_several_size_one_dimensions_sums_by_axis() -> None:
    # Stretched axes 0 and 2 to sizes 3 and 3, beside an unstretched axis of size 3:
    # an implementation that sums wherever the size matches the stretched size
    # would also sum axis 1.
    original = np.zeros((1, 3, 1))
    broadcasted = np.arange(27.0).reshape(3, 3, 3)
    result = unbroadcast_valid(broadcasted, original, KEEP_SIZE_ONE)
    assert_array_equal(
        result,
        broadcasted.sum(axis=(0, 2), keepdims=True),
        err_msg="sum exactly the axes where the input has size 1 (here 0 and 2), "
        "chosen by position, not by comparing sizes",
    )


def test_unbroadcast_with_prepended_and_size_one_dimensions_together() -> None:
    original = np.zeros((1, 4))
    broadcasted = np.ones((5, 3, 4))
    result = unbroadcast_valid(broadcasted, original, FROM_THE_RIGHT)
    assert_array_equal(result, np.full((1, 4), 15.0), err_msg=FROM_THE_RIGHT)


def test_unbroadcast_returns_equal_shapes_unchanged() -> None:
    broadcasted = np.arange(6.0).reshape(2, 3)
    assert_array_equal(
        unbroadcast(broadcasted, np.zeros((2, 3))),
        broadcasted,
        err_msg="nothing was broadcast, so nothing is summed",
    )


def test_unbroadcast_to_an_incompatible_shape_raises() -> None:
    # The lesson's rule: a ValueError whose message names the input's shape.
    with pytest.raises(ValueError, match=r"\(2, 2\)"):
        unbroadcast(np.ones((2, 3)), np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        unbroadcast(np.ones((3,)), np.zeros((2, 3)))


def test_multiply_back_with_broadcasting() -> None:
    a = np.array([1.0, 2.0, 3.0])
    b = np.array([[2.0], [3.0]])
    grad_out = np.ones((2, 3))
    out = a * b
    grad_a = multiply_back0(grad_out, out, a, b)
    grad_b = multiply_back1(grad_out, out, a, b)
    assert grad_a.shape == a.shape, (
        f"multiply_back0 must return a gradient shaped like x, {a.shape}, not {grad_a.shape}: "
        "pass grad_out * y through unbroadcast"
    )
    assert grad_b.shape == b.shape, (
        f"multiply_back1 must return a gradient shaped like y, {b.shape}, not {grad_b.shape}: "
        "pass grad_out * x through unbroadcast"
    )
    assert_allclose(grad_a, [5.0, 5.0, 5.0], rtol=1e-12)
    assert_allclose(grad_b, [[6.0], [6.0]], rtol=1e-12)


def test_forward_and_back_with_broadcasting_returns_input_shapes() -> None:
    a = np.array([1.0, 2.0, 3.0])
    b = np.array([[2.0], [3.0]])
    c = np.array([[10.0, 20.0, 30.0]])
    dg_da, dg_db, dg_dc = forward_and_back(a, b, c)
    assert (dg_da.shape, dg_db.shape, dg_dc.shape) == (a.shape, b.shape, c.shape)
    # g = log(a * b * log c) summed over the broadcast (2, 3) grid.
    assert_allclose(dg_da, 2 / a, rtol=1e-12)
    assert_allclose(dg_db, 3 / b, rtol=1e-12)
    assert_allclose(dg_dc, 2 / (c * np.log(c)), rtol=1e-12)


@given(
    broadcast_to_shape_pairs().flatmap(
        lambda pair: st.tuples(st.just(pair[0]), float_arrays(pair[1]))
    )
)
def test_unbroadcast_matches_the_gradient_of_broadcast_to(
    case: tuple[tuple[int, ...], np.ndarray],
) -> None:
    original_shape, grad_out = case
    original = np.zeros(original_shape)
    expected = numeric_vjp(lambda x: np.broadcast_to(x, grad_out.shape), [original], 0, grad_out)
    result = unbroadcast(grad_out, original)
    assert result.shape == original_shape
    assert_allclose(result, expected, rtol=1e-6, atol=1e-6)


@given(
    broadcastable_shape_pairs().flatmap(
        lambda pair: st.tuples(
            float_arrays(pair[0]),
            float_arrays(pair[1]),
            float_arrays(np.broadcast_shapes(*pair)),
        )
    )
)
def test_multiply_backs_match_central_differences_when_broadcasting(
    arrays: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    x, y, grad_out = arrays
    out = x * y
    grad_x = multiply_back0(grad_out, out, x, y)
    grad_y = multiply_back1(grad_out, out, x, y)
    assert grad_x.shape == x.shape
    assert grad_y.shape == y.shape
    assert_allclose(grad_x, numeric_vjp(np.multiply, [x, y], 0, grad_out), rtol=1e-5, atol=1e-6)
    assert_allclose(grad_y, numeric_vjp(np.multiply, [x, y], 1, grad_out), rtol=1e-5, atol=1e-6)


@given(
    broadcastable_shape_pairs().flatmap(
        lambda pair: st.tuples(
            positive_arrays(pair[0]),
            positive_arrays(pair[1]),
            st.floats(2.0, 4.0).map(lambda scale: np.full(pair[1], scale)),
        )
    )
)
def test_forward_and_back_matches_central_differences(
    arrays: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    a, b, c = arrays  # c >= 2, so log(c) > 0 and g = log(a * b * log c) is defined

    def g(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
        result: np.ndarray = np.log(a * b * np.log(c))
        return result

    grad_out = np.ones(np.broadcast_shapes(a.shape, b.shape, c.shape))
    for position, actual in enumerate(forward_and_back(a, b, c)):
        expected = numeric_vjp(g, [a, b, c], position, grad_out)
        assert_allclose(actual, expected, rtol=1e-5, atol=1e-6)
