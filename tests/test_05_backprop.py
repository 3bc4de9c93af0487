"""Step 05: topological sort and backpropagation through the recorded graph."""

from __future__ import annotations

import re

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from npgrad import (
    BACK_FUNCS,
    CycleError,
    MissingBackwardFunctionError,
    Tensor,
    backprop,
    log,
    multiply,
    sorted_computational_graph,
    topological_sort,
    wrap_forward_fn,
)

pytestmark = pytest.mark.step(5)


class Node:
    """A bare graph node for the topological sort."""

    def __init__(self, name: str, *children: Node) -> None:
        self.name = name
        self.children = list(children)

    def __repr__(self) -> str:
        return f"Node({self.name})"


def get_children(node: Node) -> list[Node]:
    return node.children


def assert_topological(order: list[Node], expected_nodes: set[Node]) -> None:
    """Every reachable node exactly once, each after all of its children.

    A property, not one answer: any valid topological order passes.
    """
    assert set(order) == expected_nodes, (
        f"every node reachable from the start is listed, and nothing else: got {order}"
    )
    assert len(order) == len(expected_nodes), (
        f"a node reached by two paths is listed once: got {order}"
    )
    position = {node: index for index, node in enumerate(order)}
    for node in order:
        for child in node.children:
            assert position[child] < position[node], (
                f"each node is listed after all of its children: {child} must come before {node}"
            )


# --- topological sort -----------------------------------------------------------------


def test_topological_sort_of_a_linked_list() -> None:
    a = Node("a")
    b = Node("b", a)
    c = Node("c", b)
    d = Node("d", c)
    assert topological_sort(d, get_children) == [a, b, c, d], (
        "a chain has one valid order: the furthest node first, the start node last"
    )


def test_topological_sort_of_a_branching_graph() -> None:
    a = Node("a")
    b = Node("b")
    c = Node("c", a, b)
    d = Node("d", c)
    e = Node("e")
    f = Node("f", d, e)
    order = topological_sort(f, get_children)
    assert_topological(order, {a, b, c, d, e, f})
    assert order[-1] is f, "the start node comes last"


def test_topological_sort_of_a_rejoining_graph() -> None:
    a = Node("a")
    b = Node("b", a)
    c = Node("c", b)
    d = Node("d", a)
    e = Node("e", c, d)
    f = Node("f", e)
    order = topological_sort(f, get_children)
    assert_topological(order, {a, b, c, d, e, f})


def test_a_node_reached_by_two_paths_is_listed_once() -> None:
    # shared has children of its own, and both top and its child right reach it
    leaf = Node("leaf")
    shared = Node("shared", leaf)
    left = Node("left", shared)
    right = Node("right", shared)
    top = Node("top", left, right, shared)
    order = topological_sort(top, get_children)
    assert order.count(shared) == 1, f"a node reached by two paths is listed once: got {order}"
    assert order.count(leaf) == 1, f"a node reached by two paths is listed once: got {order}"
    assert_topological(order, {leaf, shared, left, right, top})


def test_topological_sort_of_a_single_node() -> None:
    a = Node("a")
    assert topological_sort(a, get_children) == [a], "a node without children is its own order"


def test_a_cycle_raises_the_dedicated_error() -> None:
    a = Node("a")
    b = Node("b", a)
    c = Node("c", b)
    a.children = [c]
    # the message names a node on the cycle (by its repr); which one is the learner's choice
    with pytest.raises(CycleError, match=r"Node\([abc]\)"):
        topological_sort(c, get_children)


def test_a_self_loop_is_a_cycle() -> None:
    a = Node("a")
    a.children = [a]
    with pytest.raises(CycleError, match=r"Node\(a\)"):
        topological_sort(a, get_children)


def test_a_deep_linked_list_needs_no_recursion() -> None:
    nodes = [Node("0")]
    for i in range(1, 100_000):
        nodes.append(Node(str(i), nodes[-1]))
    assert topological_sort(nodes[-1], get_children) == nodes, (
        "a chain has one valid order: the furthest node first, the start node last"
    )


def test_sorted_computational_graph_starts_at_the_output() -> None:
    a = Tensor(np.array([1.0]), requires_grad=True)
    b = Tensor(np.array([2.0]), requires_grad=True)
    c = a * b
    d = log(c)
    e = d * a
    order = sorted_computational_graph(e)
    assert order[0] is e, "the output comes first: reverse the topological order"
    assert set(order) == {a, b, c, d, e}, "every tensor the output was computed from is listed"
    assert len(order) == 5, "a tensor reached by two paths is listed once"
    position = {node: index for index, node in enumerate(order)}
    assert position[e] < position[d] < position[c] < position[a], (
        "each tensor comes before the tensors it was computed from"
    )
    assert position[c] < position[b], "each tensor comes before the tensors it was computed from"


# --- backprop -------------------------------------------------------------------------


def test_backprop_through_a_chain() -> None:
    a = Tensor(np.array([2.0, 3.0, 4.0]), requires_grad=True)
    b = log(a)
    c = log(b)  # dc/da = 1 / (a log a)
    unrelated = Tensor(np.array([1.0]), requires_grad=True)
    c.backward(end_grad=np.ones(3))
    assert a.grad is not None
    assert_allclose(a.grad.array, 1 / (a.array * np.log(a.array)), rtol=1e-12)
    assert b.grad is None, "a non-leaf tensor keeps .grad None: only leaves store gradients"
    assert unrelated.grad is None, "a tensor outside the output's graph gets no gradient"


def test_backprop_through_a_branch_and_a_float_argument() -> None:
    a = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    b = Tensor(np.array([4.0, 5.0, 6.0]), requires_grad=True)
    c = multiply(a, b) * 2.0
    c.backward(end_grad=np.array([1.0, 1.0, 1.0]))
    assert a.grad is not None
    assert b.grad is not None
    assert_allclose(a.grad.array, 2 * b.array, rtol=1e-12)
    assert_allclose(b.grad.array, 2 * a.array, rtol=1e-12)


def test_an_input_without_requires_grad_gets_no_grad() -> None:
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    constant = Tensor(np.array([3.0, 4.0]))
    (a * constant).backward(end_grad=np.ones(2))
    assert a.grad is not None
    assert_array_equal(a.grad.array, [3.0, 4.0])
    assert constant.grad is None, "a tensor that does not require grad gets no .grad"


def test_a_parent_used_twice_gets_the_sum_of_both_paths() -> None:
    b = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    out = (2 * b) * (3 * b)  # 6 b^2
    out.backward(end_grad=np.ones(2))
    assert b.grad is not None
    assert_allclose(
        b.grad.array,
        12 * b.array,
        rtol=1e-12,
        err_msg="a tensor used twice gets the sum of the gradients of both paths",
    )
    c = Tensor(np.array([3.0]), requires_grad=True)
    (c * c).backward()  # both arguments of one multiply: c^2
    assert c.grad is not None
    assert_array_equal(
        c.grad.array,
        [6.0],
        err_msg="a tensor passed as both arguments gets the sum of both gradients",
    )


def test_a_non_leaf_node_used_by_two_paths_gets_the_sum_of_both_paths() -> None:
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    h = a * 2  # not a leaf, and used twice below
    out = (h * 3) * (h * 4)  # 12 h^2 = 48 a^2, so d out / d a = 96 a
    out.backward(end_grad=np.ones(2))
    assert a.grad is not None
    assert_allclose(
        a.grad.array,
        [96.0, 192.0],
        rtol=1e-12,
        err_msg="a non-leaf tensor used by two paths gets the sum of both before it passes "
        "its gradient on",
    )


def test_gradients_accumulate_over_two_backward_passes() -> None:
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (a * 3).backward(end_grad=np.ones(2))
    first = a.grad
    (a * 5).backward(end_grad=np.ones(2))
    assert a.grad is not None
    assert_array_equal(
        a.grad.array,
        [8.0, 8.0],
        err_msg="a second backward pass adds to .grad instead of replacing it",
    )
    assert first is not None
    assert_array_equal(
        first.array,
        [3.0, 3.0],
        err_msg=".grad is replaced by a new Tensor holding the sum, not changed in place: "
        "the earlier gradient keeps its values",
    )


def test_non_leaf_tensors_keep_grad_none_and_leaf_grads_are_tensors() -> None:
    a = Tensor(np.array([2.0]), requires_grad=True)
    b = a * 3
    c = log(b)
    c.backward()
    assert isinstance(a.grad, Tensor), "a leaf's .grad is a Tensor, not a bare array"
    assert_allclose(a.grad.array, [0.5], rtol=1e-12)
    assert b.grad is None, "a non-leaf tensor keeps .grad None: only leaves store gradients"
    assert c.grad is None, "a non-leaf tensor keeps .grad None: only leaves store gradients"


def test_a_subclass_of_tensor_receives_its_gradient() -> None:
    class Weight(Tensor):
        __slots__ = ()

    w = Weight(np.array([2.0, 3.0]), requires_grad=True)
    (w * w).backward(end_grad=np.ones(2))
    assert w.grad is not None
    assert_array_equal(w.grad.array, [4.0, 6.0])


def test_end_grad_defaults_to_one_for_a_one_element_output() -> None:
    a = Tensor(np.array([[3.0]]), requires_grad=True)
    (a * a).backward()
    assert a.grad is not None
    assert_array_equal(a.grad.array, [[6.0]])


def test_end_grad_may_be_a_tensor_or_a_zero_d_array() -> None:
    a = Tensor(np.array(3.0), requires_grad=True)
    (a * a).backward(end_grad=np.array(2.0))
    assert a.grad is not None
    assert a.grad.array.shape == ()
    assert a.grad.item() == 12.0
    b = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    backprop(b * 2, Tensor(np.array([1.0, 10.0])))
    assert b.grad is not None
    assert_array_equal(b.grad.array, [2.0, 20.0])


def test_leaf_gradients_are_fresh_arrays() -> None:
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    end_grad = np.array([1.0, 1.0])
    a.backward(end_grad=end_grad)  # a leaf is its own output
    assert a.grad is not None
    assert a.grad.array is not end_grad, (
        "`.grad` must be a fresh array, not the caller's `end_grad`"
    )
    a.grad.array[0] = 99.0
    assert end_grad[0] == 1.0, "`.grad` must be a fresh array, not the caller's `end_grad`"


def test_the_exercise_integer_example_trains() -> None:
    a = Tensor([0, 1, 2, 3], requires_grad=True)
    (a * 2).backward(end_grad=np.ones(4))
    assert a.grad is not None
    assert a.grad.array.dtype == np.float64
    assert_array_equal(a.grad.array, [2.0, 2.0, 2.0, 2.0])


def test_float32_stays_float32_through_backward() -> None:
    a = Tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    (log(a * 2.0)).backward(end_grad=np.ones(2, dtype=np.float32))
    assert a.grad is not None
    assert a.grad.array.dtype == np.float32


def test_a_float32_leaf_gets_a_float32_gradient_from_float64_values() -> None:
    a = Tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    b = Tensor(np.array([3.0, 4.0]), requires_grad=True)  # float64
    product = a * b
    assert product.array.dtype == np.float64
    product.backward(end_grad=np.ones(2))
    assert a.grad is not None
    assert b.grad is not None
    assert a.grad.array.dtype == np.float32
    assert b.grad.array.dtype == np.float64
    assert_array_equal(a.grad.array, [3.0, 4.0])
    (a * b).backward(end_grad=np.ones(2))  # accumulating keeps the leaf's dtype too
    assert a.grad.array.dtype == np.float32
    assert_array_equal(a.grad.array, [6.0, 8.0])


def test_a_float32_leaf_as_its_own_output_gets_a_float32_gradient() -> None:
    a = Tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    a.backward(end_grad=np.ones(2))  # float64 starting gradient
    assert a.grad is not None
    assert a.grad.array.dtype == np.float32


def test_backward_twice_on_the_same_graph_accumulates_again() -> None:
    # The graph is kept after backward (like PyTorch's retain_graph=True), so a
    # second backward() adds the same gradients once more.
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    out = (a * a) * 3.0
    out.backward(end_grad=np.ones(2))
    out.backward(end_grad=np.ones(2))
    assert a.grad is not None
    assert_array_equal(a.grad.array, [12.0, 24.0])
    assert out.recipe is not None  # nothing was freed


def test_a_200_000_op_chain_backpropagates_without_recursion() -> None:
    x = Tensor(np.array([1.5]), requires_grad=True)
    y = x
    for _ in range(200_000):
        y = y * 1.0
    y.backward()
    assert x.grad is not None
    assert_array_equal(x.grad.array, [1.0])


# --- errors ---------------------------------------------------------------------------


def test_backward_on_many_elements_without_a_gradient_raises() -> None:
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    # the facts the lesson names: a RuntimeError giving the output's shape and naming end_grad
    with pytest.raises(RuntimeError, match=r"\(2,\)") as raised:
        (a * 2).backward()
    assert "end_grad" in str(raised.value), "the message says to pass end_grad"


def test_backward_on_a_tensor_that_does_not_require_grad_raises() -> None:
    with pytest.raises(RuntimeError, match=r"(?i)requires?[ _]grad"):
        (Tensor(np.array([1.0])) * 2).backward()


def test_a_gradient_of_the_wrong_shape_raises() -> None:
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    # the facts the lesson names: a ValueError giving both shapes, in the learner's words
    with pytest.raises(ValueError, match=r"\(3,\)") as raised:
        (a * 2).backward(end_grad=np.ones(3))
    assert "(2,)" in str(raised.value), "the message gives the output's shape too"


@pytest.mark.parametrize("wrong_shape", [(3,), (1,), (2, 2)])
def test_a_grad_of_the_wrong_shape_set_by_hand_raises_naming_both_shapes(
    wrong_shape: tuple[int, ...],
) -> None:
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    a.grad = Tensor(np.zeros(wrong_shape))
    with pytest.raises(
        RuntimeError,
        match=rf"leaf of shape \(2,\) has shape {re.escape(str(wrong_shape))}.*set \.grad = None",
    ):
        (a * 2.0).backward(end_grad=np.ones(2))


def test_a_missing_backward_function_raises_naming_it() -> None:
    def cube(x: np.ndarray) -> np.ndarray:
        return x**3  # never registered in BACK_FUNCS

    a = Tensor(np.array([1.0]), requires_grad=True)
    with pytest.raises(MissingBackwardFunctionError, match=r"argument 0 of cube"):
        wrap_forward_fn(cube)(a).backward()


def test_a_backward_function_returning_the_wrong_shape_raises() -> None:
    def total(x: np.ndarray) -> np.ndarray:
        return np.asarray(x.sum())

    def bad_total_back(grad_out: np.ndarray, out: np.ndarray, x: np.ndarray) -> np.ndarray:
        return grad_out  # forgot to broadcast back to x's shape

    BACK_FUNCS.add_back_func(total, 0, bad_total_back)
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    # the facts the lesson names: a RuntimeError naming the forward function and both shapes
    with pytest.raises(RuntimeError, match=r"total") as raised:
        wrap_forward_fn(total)(a).backward()
    message = str(raised.value)
    assert "()" in message, "the message gives the shape the backward function returned"
    assert "(2,)" in message, "the message gives the input's shape"


def test_a_cycle_in_a_tensor_graph_raises_cycle_error() -> None:
    a = Tensor(np.array([1.0]), requires_grad=True)
    b = a * 2
    c = b * 3
    assert b.recipe is not None
    b.recipe.parents[0] = c  # tamper: b now depends on c, which depends on b
    with pytest.raises(CycleError):
        c.backward()
