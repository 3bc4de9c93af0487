"""Step 09: version counters, in-place safety, relu(inplace=True) and gradcheck."""

from collections.abc import Callable

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from npgrad import (
    BACK_FUNCS,
    SGD,
    GradcheckError,
    InplaceError,
    Linear,
    Parameter,
    ReLU,
    Tensor,
    gradcheck,
    no_grad,
    relu,
    wrap_forward_fn,
)
from shared.testing.gradcheck_cases import in_package
from shared.testing.parity import assert_backward_matches_torch, require_torch, to_numpy
from shared.testing.tensors import grad_of, leaf

pytestmark = pytest.mark.step(9)


# --- the version counter --------------------------------------------------------------


def test_a_new_tensor_is_at_version_zero_and_in_place_operations_bump_it() -> None:
    x = leaf([1.0, -2.0], requires_grad=False)
    assert x._version == 0
    x.add_(1.0)
    assert x._version == 1
    relu(x, inplace=True)
    assert x._version == 2
    x.relu_()
    assert x._version == 3
    assert_array_equal(x.array, [2.0, 0.0])


def test_out_of_place_operations_leave_versions_alone() -> None:
    x = leaf([1.0, 2.0])
    y = (x * 2).exp() + x
    assert x._version == 0
    assert y._version == 0


def test_a_parameter_shares_its_tensors_version_counter() -> None:
    t = Tensor(np.array([1.0, 2.0]))
    p = Parameter(t)
    with no_grad():
        p.add_(1.0)
    assert t._version == 1
    assert_array_equal(t.array, [2.0, 3.0])


# --- the exercise's safe and unsafe examples ------------------------------------------


def test_the_exercises_unsafe_example_raises_naming_the_operation_and_versions() -> None:
    a = leaf([0.0, 1.0, 2.0, 3.0])
    b = leaf([2.0, 3.0, 4.0, 5.0])
    c = a * b
    with no_grad():  # the in-place change itself is allowed; using c's gradient is not
        a.add_(b)
    with pytest.raises(
        InplaceError, match=r"argument 0 of multiply.*at version 1, expected version 0"
    ):
        c.sum().backward()


def test_the_unsafe_example_as_written_raises_at_the_in_place_operation() -> None:
    a = leaf([0.0, 1.0, 2.0, 3.0])
    b = leaf([2.0, 3.0, 4.0, 5.0])
    _ = a * b
    with pytest.raises(RuntimeError, match=r"add_: a leaf tensor that requires grad"):
        a.add_(b)


def test_the_exercises_safe_example_gives_the_right_gradients() -> None:
    a = leaf([0.0, 1.0, 2.0, 3.0])
    b = leaf([2.0, 3.0, 4.0, 5.0])
    with no_grad():
        a.add_(b)
    c = a * b
    c.sum().backward()
    assert a.grad is not None
    assert b.grad is not None
    assert_allclose(a.grad.array, [2.0, 3.0, 4.0, 5.0], rtol=0, atol=0)
    assert_allclose(b.grad.array, [2.0, 4.0, 6.0, 8.0], rtol=0, atol=0)


def test_in_place_on_a_leaf_that_requires_grad_is_fine_without_tracking() -> None:
    a = leaf([1.0, 2.0])
    with no_grad():
        a.add_(1.0, alpha=2.0)
        relu(a, inplace=True)
    assert_array_equal(a.array, [3.0, 4.0])
    with pytest.raises(RuntimeError, match=r"relu\(inplace=True\): a leaf tensor"):
        relu(a, inplace=True)


# --- tracked in-place operations ------------------------------------------------------


def test_add_in_place_on_a_non_leaf_is_recorded() -> None:
    a = leaf([1.0, 2.0])
    b = leaf([10.0, 20.0])
    y = a * 2
    y.add_(b, alpha=3.0)
    assert_array_equal(y.array, [32.0, 64.0])
    (y * y).sum().backward()
    assert a.grad is not None
    assert b.grad is not None
    assert_allclose(a.grad.array, 2 * 2 * y.array, rtol=1e-12)
    assert_allclose(b.grad.array, 3 * 2 * y.array, rtol=1e-12)


def test_a_tensor_added_to_itself_in_place() -> None:
    a = leaf([1.0, 2.0])
    y = a * 3
    y.add_(y)  # y = 6a
    y.sum().backward()
    assert a.grad is not None
    assert_allclose(a.grad.array, [6.0, 6.0], rtol=1e-12)


def test_relu_in_place_on_a_non_leaf_matches_the_out_of_place_relu() -> None:
    x = leaf([[1.0, -2.0], [-0.5, 3.0]])
    w = leaf([[0.5, -1.0], [2.0, 1.5]])
    h = x @ w
    out = relu(h, inplace=True)
    assert out is h
    assert h._version == 1
    (h * h).sum().backward()
    assert x.grad is not None
    assert w.grad is not None
    x2 = leaf(x.array)
    w2 = leaf(w.array)
    h2 = relu(x2 @ w2)
    (h2 * h2).sum().backward()
    assert w2.grad is not None
    assert x2.grad is not None
    assert_allclose(w.grad.array, w2.grad.array, rtol=1e-12)
    assert_allclose(x.grad.array, x2.grad.array, rtol=1e-12)


def test_relu_in_place_gradient_at_zero_is_zero() -> None:
    x = leaf([0.0, 1.0])
    h = x * 1.0
    relu(h, inplace=True).sum().backward()
    assert x.grad is not None
    assert_array_equal(x.grad.array, [0.0, 1.0])


def test_changing_an_output_that_backward_reads_raises() -> None:
    x = leaf([-1.0, 0.5])
    y = x.exp()  # exp's backward reads its output, y
    with no_grad():
        y.add_(1.0)
    total = y.sum()  # recorded after the change: sum itself is fine
    with pytest.raises(InplaceError, match=r"the output of exp.*version 1, expected version 0"):
        total.backward()


def test_relu_in_place_after_exp_raises_like_pytorch() -> None:
    x = leaf([-1.0, 0.5])
    y = x.exp()
    relu(y, inplace=True)
    with pytest.raises(InplaceError, match=r"the output of exp"):
        y.sum().backward()


def test_an_input_saved_by_an_earlier_operation_raises_when_changed_in_place() -> None:
    x = leaf([1.0, 2.0])
    h = x * 1.0
    y = h * h
    relu(h, inplace=True)
    with pytest.raises(InplaceError, match=r"argument 0 of multiply.*at version 1"):
        y.sum().backward()


@pytest.mark.parity
def test_relu_in_place_matches_pytorch() -> None:
    torch = require_torch()
    rng = np.random.default_rng(0)
    x_values = rng.standard_normal((4, 3))
    w_values = rng.standard_normal((3, 5))
    x = leaf(x_values)
    w = leaf(w_values)
    h = relu(x @ w, inplace=True)
    tx = torch.tensor(x_values, requires_grad=True)
    tw = torch.tensor(w_values, requires_grad=True)
    th = torch.relu_(tx @ tw)
    assert_backward_matches_torch(
        (h * h).sum(), (th * th).sum(), [x, w], [tx, tw], np.ones(()), rtol=1e-10, atol=1e-12
    )
    assert_allclose(h.array, to_numpy(th), rtol=1e-12, atol=1e-12)


# --- modules --------------------------------------------------------------------------


def test_relu_module_in_place_and_its_repr() -> None:
    module = ReLU(inplace=True)
    assert repr(module) == "ReLU(inplace=True)"
    assert repr(ReLU()) == "ReLU()"
    x = leaf([-1.0, 2.0])
    h = x * 1.0
    assert module(h) is h
    assert_array_equal(h.array, [0.0, 2.0])


def test_one_relu_module_used_twice_gives_correct_gradients() -> None:
    shared_relu = ReLU()
    a = leaf([-1.0, 2.0, 3.0])
    b = leaf([4.0, -5.0, 6.0])
    out = shared_relu(a) * shared_relu(b)
    out.sum().backward()
    assert a.grad is not None
    assert b.grad is not None
    assert_array_equal(a.grad.array, [0.0, 0.0, 6.0])
    assert_array_equal(b.grad.array, [0.0, 0.0, 3.0])


def test_one_linear_module_used_twice_sums_both_paths_into_its_weight() -> None:
    layer = Linear(2, 2, bias=False)
    layer.weight.array[...] = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)
    x = Tensor(np.array([[1.0, 1.0]], dtype=np.float32))
    out = layer(layer(x))  # W (W x)
    out.sum().backward()
    w = layer.weight.array.astype(np.float64)
    # d/dW of 1^T W W x = (W^T 1) x^T + 1 (W x)^T
    ones = np.ones((2, 1))
    xs = np.ones((2, 1))
    expected = (w.T @ ones) @ xs.T + ones @ (w @ xs).T
    assert layer.weight.grad is not None
    assert_allclose(layer.weight.grad.array, expected, rtol=1e-6)


def test_sgd_step_bumps_versions_so_a_stale_graph_cannot_backpropagate() -> None:
    layer = Linear(3, 1)
    # x requires grad, so matmul's backward for x reads the weight (through W.T, a view
    # sharing the weight's counter); without that, nothing reads the weight's values.
    x = Tensor(np.ones((2, 3), dtype=np.float32), requires_grad=True)
    loss = layer(x).sum()
    loss.backward()
    initialised = layer.weight._version  # filling the weights in place counted too
    SGD(list(layer.parameters()), lr=0.1).step()
    assert layer.weight._version == initialised + 1
    with pytest.raises(
        InplaceError, match=rf"version {initialised + 1}, expected version {initialised}"
    ):
        loss.backward()


# --- gradcheck ------------------------------------------------------------------------


def test_gradcheck_returns_true_for_a_correct_gradient() -> None:
    a = leaf([[1.0, 2.0], [3.0, 4.0]])
    b = leaf([0.5, -1.0])
    assert gradcheck(lambda x, y: (x * y).exp(), [a, b]) is True
    assert a.grad is None


def test_gradcheck_names_the_input_index_and_both_values_of_a_wrong_gradient() -> None:
    def square(x: np.ndarray) -> np.ndarray:
        result: np.ndarray = x * x
        return result

    def wrong_square_back(grad_out: np.ndarray, out: np.ndarray, x: np.ndarray) -> np.ndarray:
        result: np.ndarray = grad_out * x  # should be 2 x
        return result

    BACK_FUNCS.add_back_func(square, 0, wrong_square_back)
    x = leaf([1.0, 3.0])
    with pytest.raises(
        GradcheckError,
        match=r"input 0 at index \(0,\).*backward gave 1\.0.*central differences gave 2\.0",
    ):
        gradcheck(wrap_forward_fn(square), [x])


def test_gradcheck_refuses_float32_and_inputs_without_requires_grad() -> None:
    with pytest.raises(ValueError, match=r"float64"):
        gradcheck(lambda x: x * 2, [Tensor(np.ones(2, dtype=np.float32), requires_grad=True)])
    with pytest.raises(ValueError, match=r"requires_grad"):
        gradcheck(lambda x: x * 2, [Tensor(np.ones(2))])


# --- views share their base's memory, and so its version counter ----------------------


@pytest.mark.parametrize(
    "make_view",
    [
        pytest.param(lambda x: x[0:2], id="slice"),
        pytest.param(lambda x: x.reshape(3, 1), id="reshape"),
        pytest.param(lambda x: x.reshape(1, 3).T, id="T"),
        pytest.param(lambda x: x.reshape(1, 3).permute(1, 0), id="permute"),
        pytest.param(lambda x: x.expand(2, 3), id="expand"),
    ],
)
def test_a_view_shares_its_bases_version_counter(make_view: Callable[[Tensor], Tensor]) -> None:
    x = leaf([1.0, 2.0, 3.0]) * 1.0
    view = make_view(x)
    assert np.shares_memory(view.array, x.array), "the operation should give a NumPy view"
    assert view._version_counter is x._version_counter, "a view must count its base's changes"
    copy = x[np.array([0, 1])]  # advanced indexing copies: its own counter
    assert copy._version_counter is not x._version_counter


def test_an_in_place_change_through_a_view_is_caught_by_a_saved_base() -> None:
    a = leaf([1.0, 2.0, 3.0])
    x = a * 1.0
    z = (x * x).sum()  # multiply saves x
    x[0:2].add_(Tensor(np.array([10.0, 10.0])))
    assert x._version == 1
    with pytest.raises(InplaceError, match=r"argument \d of multiply"):
        z.backward()


def test_relu_in_place_on_a_reshaped_view_is_caught_by_a_saved_base() -> None:
    a = leaf([1.0, -2.0, 3.0, -4.0])
    x = a * 1.0
    z = (x * x).sum()
    relu(x.reshape(2, 2), inplace=True)
    with pytest.raises(InplaceError, match=r"of multiply"):
        z.backward()


def test_a_change_through_a_view_is_part_of_the_bases_history() -> None:
    a = leaf([1.0, -2.0, 3.0])
    b = leaf([5.0, 7.0])
    x = a * 1.0
    x[0:2].add_(b)
    assert_array_equal(x.array, [6.0, 5.0, 3.0])
    (x * np.array([1.0, 2.0, 3.0])).sum().backward()
    assert_array_equal(grad_of(a), [1.0, 2.0, 3.0])
    assert_array_equal(grad_of(b), [1.0, 2.0])


def test_relu_in_place_on_a_view_masks_the_bases_gradient() -> None:
    a = leaf([1.0, -2.0, 3.0])
    x = a * 1.0
    relu(x[0:2], inplace=True)
    (x * 2.0).sum().backward()
    assert_array_equal(grad_of(a), [2.0, 0.0, 2.0])


def test_a_view_made_before_its_base_changed_sees_the_change_in_its_history() -> None:
    a = leaf([1.0, -2.0, 3.0])
    x = a * 1.0
    view = x[0:2]
    relu(x, inplace=True)
    assert_array_equal(view.array, [1.0, 0.0])
    (view * 3.0).sum().backward()
    assert_array_equal(grad_of(a), [3.0, 0.0, 0.0])


def test_in_place_on_a_view_of_a_leaf_that_requires_grad_raises() -> None:
    a = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"view of a leaf tensor that requires grad"):
        a[0:1].add_(1.0)
    with no_grad():
        a[0:1].add_(1.0)  # allowed without tracking, and counted
    assert a._version == 1


# --- in-place history never rewrites what earlier results recorded ---------------------


def test_an_in_place_change_after_use_does_not_reach_earlier_results() -> None:
    a, b, c = leaf([1.0, 2.0]), leaf([3.0, 4.0]), leaf([5.0, 6.0])
    x = a * 1.0
    y = b * 1.0
    y.add_(x)
    x.add_(c)  # after y used x: y's history must not include c
    y.sum().backward()
    assert_array_equal(grad_of(a), [1.0, 1.0])
    assert_array_equal(grad_of(b), [1.0, 1.0])
    assert c.grad is None, "c was added to x after y used x"


def test_relu_in_place_after_use_does_not_mask_earlier_results() -> None:
    a, b = leaf([1.0, -2.0]), leaf([3.0, 4.0])
    x = a * 1.0
    y = b * 1.0
    y.add_(x)
    relu(x, inplace=True)
    y.sum().backward()
    assert_array_equal(grad_of(a), [1.0, 1.0])


def test_in_place_adds_in_both_directions_are_not_a_cycle() -> None:
    a, b = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    x = a * 1.0
    y = b * 1.0
    y.add_(x)
    x.add_(y)
    (x + y).sum().backward()  # x = a + (b + a), y = b + a
    assert_array_equal(grad_of(a), [3.0, 3.0])
    assert_array_equal(grad_of(b), [2.0, 2.0])


# --- an error exactly when a backward function reads a changed value --------------------


def test_changing_an_input_whose_value_no_backward_reads_is_fine() -> None:
    a, c = leaf([1.0, -2.0]), leaf([3.0, 4.0])
    x = a * 1.0
    y = x + c  # addition's backward reads no values
    relu(x, inplace=True)
    y.sum().backward()
    assert_array_equal(grad_of(a), [1.0, 1.0])
    assert_array_equal(grad_of(c), [1.0, 1.0])


def test_a_division_whose_output_changed_in_place_still_has_the_right_gradient() -> None:
    x, y = leaf([1.0, 2.0]), leaf([4.0, 8.0])
    z = x / y  # the backward for y reads x and y, not z
    z.add_(Tensor(np.array([10.0, 10.0])))
    z.sum().backward()
    assert_allclose(grad_of(y), [-0.0625, -0.03125], rtol=1e-15, atol=0)
    assert_allclose(grad_of(x), [0.25, 0.125], rtol=1e-15, atol=0)


def test_only_the_arguments_a_needed_backward_reads_are_checked() -> None:
    x = leaf([1.0, 2.0])
    w = leaf([3.0, 4.0], requires_grad=False)
    h = x * 1.0
    y = h * w  # only h needs a gradient; its backward reads w, not h
    relu(h, inplace=True)
    y.sum().backward()
    assert_array_equal(grad_of(x), [3.0, 4.0])
    with no_grad():
        w.add_(1.0)
    y2 = h * w
    with no_grad():
        w.add_(1.0)
    with pytest.raises(InplaceError, match=r"argument 1 of multiply"):
        y2.sum().backward()


def test_every_registered_backward_function_declares_what_it_reads() -> None:
    undeclared = [
        f"{getattr(forward, '__name__', forward)} argument {position}"
        for forward, position in BACK_FUNCS.entries()
        if in_package(forward) and BACK_FUNCS.reads(forward, position).args is None
    ]
    assert not undeclared, f"declare reads=... when registering: {undeclared}"


# --- uniform_ is an in-place operation like the others ---------------------------------


def test_uniform_in_place_bumps_the_version_and_refuses_a_leaf_that_requires_grad() -> None:
    a = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match=r"uniform_: a leaf tensor that requires grad"):
        a.uniform_(rng=np.random.default_rng(0))
    with no_grad():
        a.uniform_(rng=np.random.default_rng(0))  # an initialisation, as Linear's
    assert a._version == 1


def test_uniform_in_place_on_a_result_cuts_the_gradient_and_is_caught_when_saved() -> None:
    a = leaf([1.0, 2.0])
    x = a * 1.0
    y = x * x  # multiply saves x
    x.uniform_(rng=np.random.default_rng(0))
    (x + a).sum().backward()  # the overwritten values no longer depend on a
    assert_array_equal(grad_of(a), [1.0, 1.0])
    with pytest.raises(InplaceError, match=r"of multiply"):
        y.sum().backward()


def test_relu_in_place_passes_the_gradient_at_a_nan_and_refuses_a_read_only_tensor() -> None:
    x = leaf([np.nan, 2.0, -1.0])
    h = x * 1.0
    relu(h, inplace=True).sum().backward()
    assert_array_equal(grad_of(x), [1.0, 1.0, 0.0])  # as PyTorch's relu_
    expanded = Tensor(np.array([1.0, -1.0])).expand(2, 2)
    with pytest.raises(ValueError, match=r"read-only"):
        relu(expanded, inplace=True)
