"""Step 10: non-differentiable functions inside graphs, and ``where`` (differentiable in x and y).

``all``, ``any``, ``floor``, ``ceil``, the comparisons and ``logical_not``
accept tensors that are part of a graph (non-leaf tensors, tensors that
require grad) and never record a recipe: no gradient flows through them.
Graphs that use their results as masks or conditions still get correct
gradients, checked against central differences and PyTorch.
"""

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

import npgrad
from npgrad import (
    Arr,
    InplaceError,
    Tensor,
    all,
    any,
    ceil,
    floor,
    greater,
    greater_equal,
    less,
    less_equal,
    logical_not,
    where,
    where_back1,
    where_back2,
)
from shared.testing.gradients import numeric_vjp
from shared.testing.parity import assert_backward_matches_torch, require_torch, to_numpy
from shared.testing.strategies import broadcastable_shape_pairs, float_arrays, nonzero_arrays
from shared.testing.tensors import grad_of, leaf

pytestmark = pytest.mark.step(10)


# --- every non-differentiable function, inside a graph ---------------------------------

X = np.array([[-1.5, 0.0, 2.25], [3.0, -0.5, 0.0]])
Y = np.array([[-1.5, 1.0, 2.0], [0.0, -0.5, 4.0]])

# name -> (npgrad call on the graph tensors x and y, the NumPy reference on their arrays)
NON_DIFFERENTIABLE: dict[str, tuple[Callable[[Tensor, Tensor], Tensor], Callable[..., Any]]] = {
    "all": (lambda x, y: all(x), lambda x, y: np.all(x)),
    "all_dim": (lambda x, y: all(x, dim=1, keepdim=True), lambda x, y: np.all(x, 1, keepdims=True)),
    "any": (lambda x, y: any(x), lambda x, y: np.any(x)),
    "any_dim": (lambda x, y: any(x, dim=(0, 1)), lambda x, y: np.any(x, (0, 1))),
    "floor": (lambda x, y: floor(x), lambda x, y: np.floor(x)),
    "ceil": (lambda x, y: ceil(x), lambda x, y: np.ceil(x)),
    "less": (lambda x, y: less(x, y), lambda x, y: x < y),
    "greater": (lambda x, y: greater(x, y), lambda x, y: x > y),
    "less_equal": (lambda x, y: less_equal(x, y), lambda x, y: x <= y),
    "greater_equal": (lambda x, y: greater_equal(x, y), lambda x, y: x >= y),
    "logical_not": (lambda x, y: logical_not(x), lambda x, y: np.logical_not(x)),
    "lt": (lambda x, y: x < y, lambda x, y: x < y),
    "gt": (lambda x, y: x > 0.0, lambda x, y: x > 0.0),
    "le": (lambda x, y: x <= 1.0, lambda x, y: x <= 1.0),
    "ge": (lambda x, y: x >= y, lambda x, y: x >= y),
    "method_all": (lambda x, y: x.all(dim=0), lambda x, y: np.all(x, 0)),
    "method_any": (lambda x, y: x.any(), lambda x, y: np.any(x)),
    "method_floor": (lambda x, y: x.floor(), lambda x, y: np.floor(x)),
    "method_ceil": (lambda x, y: x.ceil(), lambda x, y: np.ceil(x)),
    "method_less": (lambda x, y: x.less(y), lambda x, y: x < y),
    "method_greater": (lambda x, y: x.greater(2.0), lambda x, y: x > 2.0),
    "method_less_equal": (lambda x, y: x.less_equal(y), lambda x, y: x <= y),
    "method_greater_equal": (lambda x, y: x.greater_equal(y), lambda x, y: x >= y),
    "method_logical_not": (lambda x, y: (x > 0).logical_not(), lambda x, y: ~(x > 0)),
}


@pytest.mark.parametrize("name", list(NON_DIFFERENTIABLE))
def test_accepts_tensors_inside_a_graph_and_never_records_a_recipe(name: str) -> None:
    apply, reference = NON_DIFFERENTIABLE[name]
    x_leaf, y_leaf = leaf(X / 2), leaf(Y)
    x = x_leaf * 2.0  # a non-leaf with a recipe, computed from a leaf that requires grad
    assert x.recipe is not None
    out = apply(x, y_leaf)
    assert isinstance(out, Tensor)
    assert_array_equal(out.array, reference(X, Y))
    assert out.recipe is None
    assert not out.requires_grad
    with pytest.raises(RuntimeError, match=r"does not require grad"):
        out.backward(end_grad=np.ones(out.shape))


def test_comparisons_and_reductions_return_booleans_and_floor_keeps_the_dtype() -> None:
    x = leaf([0.5, 1.5])
    assert (x > 1.0).array.dtype == np.bool_
    assert all(x > 0.0).array.dtype == np.bool_
    assert (x > 1.0).array.shape == (2,)
    assert floor(Tensor(np.array([1.5], dtype=np.float32))).array.dtype == np.float32
    assert_array_equal(npgrad.floor(Tensor(np.array([-1.5, 2.5]))).array, [-2.0, 2.0])


def test_a_mask_from_a_comparison_in_a_product_gives_the_relu_gradient() -> None:
    x = leaf([-2.0, -0.5, 0.5, 3.0])
    out = (x * (x > 0.0)).sum()  # the mask is a boolean constant, not a parent
    assert out.recipe is not None
    out.backward()
    assert_array_equal(grad_of(x), [0.0, 0.0, 1.0, 1.0])


def test_floor_inside_a_product_contributes_no_gradient() -> None:
    x = leaf([0.25, 1.75, -1.5])
    (x * x.floor()).sum().backward()  # d/dx (x * floor(x)) = floor(x) away from integers
    assert_array_equal(grad_of(x), [0.0, 1.0, -2.0])


# --- where ----------------------------------------------------------------------------


def test_where_routes_the_gradient_by_the_condition() -> None:
    x = leaf([1.0, -2.0, 3.0])
    y = leaf([10.0, 20.0, 30.0])
    condition = x > 0.0
    out = where(condition, x, y)
    assert_array_equal(out.array, [1.0, 20.0, 3.0])
    assert out.recipe is not None
    assert out.recipe.parents == {1: x, 2: y}  # the condition is never a parent
    out.backward(end_grad=np.array([1.0, 2.0, 3.0]))
    assert_array_equal(grad_of(x), [1.0, 0.0, 3.0])
    assert_array_equal(grad_of(y), [0.0, 2.0, 0.0])
    assert condition.grad is None


def test_where_with_a_scalar_branch_and_the_tensor_method() -> None:
    x = leaf([[-1.0, 2.0], [3.0, -4.0]])
    out = where(x > 0.0, x, 0.0)
    assert_array_equal(out.array, [[0.0, 2.0], [3.0, 0.0]])
    out.sum().backward()
    assert_array_equal(grad_of(x), [[0.0, 1.0], [1.0, 0.0]])
    method = x.where(x < 0.0, -1.0)  # as torch.Tensor.where: self where condition, else other
    assert_array_equal(method.array, [[-1.0, -1.0], [-1.0, -4.0]])


def test_where_broadcasts_and_unbroadcasts_both_gradients() -> None:
    x = leaf([[1.0], [2.0]])  # (2, 1)
    y = leaf([5.0, 6.0, 7.0])  # (3,)
    condition = Tensor(np.array([True, False, True]))  # (3,)
    out = where(condition, x, y)
    assert out.shape == (2, 3)
    out.backward(end_grad=np.ones((2, 3)))
    assert_array_equal(grad_of(x), [[2.0], [2.0]])
    assert_array_equal(grad_of(y), [0.0, 2.0, 0.0])


def test_where_backward_functions_alone() -> None:
    condition = np.array([True, False])
    grad_out = np.array([3.0, 4.0])
    x, y = np.array([1.0, 2.0]), np.array([5.0, 6.0])
    out = np.where(condition, x, y)
    assert_array_equal(where_back1(grad_out, out, condition, x, y), [3.0, 0.0])
    assert_array_equal(where_back2(grad_out, out, condition, x, y), [0.0, 4.0])
    float32 = where_back1(grad_out.astype(np.float32), out, condition, x.astype(np.float32), 2.0)
    assert float32.dtype == np.float32


def test_the_condition_is_saved_so_changing_it_in_place_raises() -> None:
    x = leaf([1.0, -2.0])
    condition = Tensor(np.array([True, False]))
    out = where(condition, x, 0.0)
    condition.add_(Tensor(np.array([False, True])))  # boolean add: a logical or, in place
    with pytest.raises(InplaceError, match=r"argument 0 of _where, saved for backward"):
        out.backward(end_grad=np.ones(2))


def test_where_needs_a_boolean_condition() -> None:
    x = leaf([1.0, -2.0])
    with pytest.raises(TypeError, match=r"where\(\) needs a boolean condition, got dtype float64"):
        where(x, x, 0.0)


@pytest.mark.parity
def test_abs_written_with_where_matches_pytorch_in_a_larger_graph() -> None:
    torch = require_torch()
    values = np.array([[-1.5, 0.5], [2.0, -3.0]])
    x = leaf(values)
    torch_x = torch.tensor(values, requires_grad=True)
    out = (where(x > 0.0, x, -x) * x.exp()).sum()
    torch_out = (torch.where(torch_x > 0.0, torch_x, -torch_x) * torch_x.exp()).sum()
    assert_allclose(out.item(), torch_out.item(), rtol=1e-14, atol=0)
    out.backward()
    torch_out.backward()
    assert_allclose(grad_of(x), to_numpy(torch_x.grad), rtol=1e-14, atol=0)


# --- random graphs with conditions, against central differences and PyTorch -----------


@st.composite
def where_cases(draw: st.DrawFn) -> tuple[Arr, Arr, float]:
    """x and y of broadcastable shapes, away from the threshold the condition tests."""
    shape_x, shape_y = draw(broadcastable_shape_pairs())
    x = draw(nonzero_arrays(shape_x, min_magnitude=0.1))
    threshold = draw(st.sampled_from([0.0, 0.05, -0.05]))
    return x, draw(float_arrays(shape_y)), threshold


def masked_graph(x: Any, y: Any, threshold: float) -> Any:
    """``where(x > t, x * y, y.exp()) + (x <= t) * x``: conditions, masks and both branches.

    The same code runs on npgrad and on torch tensors (both have ``where``
    as a method, comparisons and ``exp``).
    """
    chosen = (x * y).where(x > threshold, y.exp())
    return chosen + (x <= threshold) * x


def masked_graph_numpy(x: Arr, y: Arr, threshold: float) -> Arr:
    result: Arr = np.where(x > threshold, x * y, np.exp(y)) + (x <= threshold) * x
    return result


@given(case=where_cases(), data=st.data())
def test_random_graphs_with_conditions_match_central_differences(
    case: tuple[Arr, Arr, float], data: st.DataObject
) -> None:
    x_array, y_array, threshold = case
    x, y = Tensor(x_array, requires_grad=True), Tensor(y_array, requires_grad=True)
    out = masked_graph(x, y, threshold)
    assert_allclose(out.array, masked_graph_numpy(x_array, y_array, threshold), rtol=1e-14, atol=0)
    grad_out = data.draw(float_arrays(out.shape), label="grad_out")
    out.backward(end_grad=grad_out)
    for position, t in enumerate((x, y)):
        expected = numeric_vjp(
            lambda a, b: masked_graph_numpy(a, b, threshold), [x_array, y_array], position, grad_out
        )
        assert_allclose(grad_of(t), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parity
@given(case=where_cases(), data=st.data())
def test_random_graphs_with_conditions_match_pytorch(
    case: tuple[Arr, Arr, float], data: st.DataObject
) -> None:
    torch = require_torch()
    x_array, y_array, threshold = case
    x, y = Tensor(x_array, requires_grad=True), Tensor(y_array, requires_grad=True)
    torch_x = torch.tensor(x_array, requires_grad=True)
    torch_y = torch.tensor(y_array, requires_grad=True)
    out = masked_graph(x, y, threshold)
    torch_out = masked_graph(torch_x, torch_y, threshold)
    assert_allclose(out.array, to_numpy(torch_out), rtol=1e-14, atol=0)
    grad_out = data.draw(float_arrays(out.shape), label="grad_out")
    assert_backward_matches_torch(
        out, torch_out, [x, y], [torch_x, torch_y], grad_out, rtol=1e-12, atol=1e-14
    )
