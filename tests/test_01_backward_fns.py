"""Step 01: backward functions of log and multiply, and a graph differentiated by hand."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from npgrad import forward_and_back, log_back, multiply_back0, multiply_back1
from shared.testing.gradients import numeric_vjp
from shared.testing.strategies import float_arrays, positive_arrays, shapes

pytestmark = pytest.mark.step(1)


def test_log_back_divides_the_incoming_gradient_by_the_input() -> None:
    x = np.array([1.0, np.e, np.e**np.e])
    grad_out = np.array([2.0, 2.0, 2.0])
    actual = log_back(grad_out, np.log(x), x)
    assert_allclose(
        actual,
        [2.0, 2.0 / np.e, 2.0 / np.e**np.e],
        rtol=1e-12,
        err_msg="log_back must return grad_out times the local derivative 1/x (the chain rule), "
        "not 1/x alone",
    )


def test_multiply_back_gives_each_argument_the_other() -> None:
    x = np.array([1.0, 2.0, 3.0])
    y = np.array([4.0, -5.0, 6.0])
    grad_out = np.array([1.0, 10.0, 100.0])
    out = x * y
    assert_allclose(
        multiply_back0(grad_out, out, x, y),
        [4.0, -50.0, 600.0],
        rtol=1e-12,
        err_msg="multiply_back0 must return grad_out * y: nudging x changes x * y by y per unit",
    )
    assert_allclose(
        multiply_back1(grad_out, out, x, y),
        [1.0, 20.0, 300.0],
        rtol=1e-12,
        err_msg="multiply_back1 must return grad_out * x: nudging y changes x * y by x per unit",
    )


def test_multiply_back_with_a_python_float_as_the_other_argument() -> None:
    x = np.array([1.0, 2.0, 3.0])
    grad_out = np.array([1.0, 1.0, 2.0])
    assert_allclose(multiply_back0(grad_out, x * 3.0, x, 3.0), [3.0, 3.0, 6.0], rtol=1e-12)
    assert_allclose(multiply_back1(grad_out, 3.0 * x, 3.0, x), [3.0, 3.0, 6.0], rtol=1e-12)


def test_forward_and_back_matches_the_analytic_gradients() -> None:
    # g = log(a * b * log(c)), so dg/da = 1/a, dg/db = 1/b, dg/dc = 1 / (c log c).
    a = np.array([1.0, 2.0, 3.0])
    b = np.array([2.0, 3.0, 1.0])
    c = np.array([10.0, 20.0, 30.0])
    dg_da, dg_db, dg_dc = forward_and_back(a, b, c)
    assert_allclose(
        dg_da, 1 / a, rtol=1e-12, err_msg="dg/da must chain g <- f <- d <- a: dg_dd * b"
    )
    assert_allclose(
        dg_db, 1 / b, rtol=1e-12, err_msg="dg/db must chain g <- f <- d <- b: dg_dd * a"
    )
    assert_allclose(
        dg_dc,
        1 / (c * np.log(c)),
        rtol=1e-12,
        err_msg="dg/dc must chain g <- f <- e <- c: log_back of dg_de (not dg_dd or dg_df)",
    )


@given(shapes.flatmap(lambda shape: st.tuples(positive_arrays(shape), float_arrays(shape))))
def test_log_back_matches_central_differences(x_and_grad: tuple[np.ndarray, np.ndarray]) -> None:
    x, grad_out = x_and_grad
    expected = numeric_vjp(np.log, [x], 0, grad_out)
    assert_allclose(log_back(grad_out, np.log(x), x), expected, rtol=1e-5, atol=1e-7)


@given(
    shapes.flatmap(
        lambda shape: st.tuples(float_arrays(shape), float_arrays(shape), float_arrays(shape))
    )
)
def test_multiply_backs_match_central_differences(
    arrays: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    x, y, grad_out = arrays
    out = x * y
    assert_allclose(
        multiply_back0(grad_out, out, x, y),
        numeric_vjp(np.multiply, [x, y], 0, grad_out),
        rtol=1e-5,
        atol=1e-6,
    )
    assert_allclose(
        multiply_back1(grad_out, out, x, y),
        numeric_vjp(np.multiply, [x, y], 1, grad_out),
        rtol=1e-5,
        atol=1e-6,
    )
