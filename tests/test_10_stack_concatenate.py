"""Step 10: stack and concatenate of any number of tensors, through a variadic registry entry.

The registry gains ``add_variadic_back_func``: one backward function serving
every position of a forward that takes any number of tensors, receiving the
position first. ``stack`` and ``concatenate`` pass each tensor as its own
argument, so each is its own parent; backprop itself is unchanged.
"""

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.testing import assert_allclose, assert_array_equal

from npgrad import (
    BACK_FUNCS,
    Arr,
    BackwardFuncLookup,
    InplaceError,
    MissingBackwardFunctionError,
    Tensor,
    cat,
    concatenate,
    concatenate_back,
    einsum,
    multiply_back0,
    no_grad,
    stack,
    stack_back,
)
from shared.testing.gradients import numeric_vjp
from shared.testing.parity import assert_backward_matches_torch, require_torch, to_numpy
from shared.testing.strategies import float_arrays
from shared.testing.tensors import grad_of, leaf

pytestmark = pytest.mark.step(10)


# --- the registry's variadic entries --------------------------------------------------


def concat_all(*arrays: Arr) -> Arr:
    return np.concatenate(arrays)


def test_a_variadic_backward_serves_every_position_and_receives_it_first() -> None:
    received: list[int] = []

    def back(position: int, grad_out: Arr, out: Arr, *arrays: Arr) -> Arr:
        received.append(position)
        return np.full(arrays[position].shape, float(position))

    lookup = BackwardFuncLookup()
    lookup.add_variadic_back_func(concat_all, back)
    for position in (0, 1, 7):
        back_fn = lookup.get_back_func(concat_all, position)
        result = back_fn(np.zeros(9), np.zeros(9), *[np.zeros(1)] * 9)
        assert_array_equal(result, [float(position)])
    assert received == [0, 1, 7]
    assert lookup.has_back_func(concat_all, 5)


def test_an_entry_for_one_position_takes_precedence_over_the_variadic_one() -> None:
    lookup = BackwardFuncLookup()
    lookup.add_variadic_back_func(concat_all, stack_back)
    lookup.add_back_func(concat_all, 0, multiply_back0)
    assert lookup.get_back_func(concat_all, 0) is multiply_back0
    back_fn = lookup.get_back_func(concat_all, 1)
    assert isinstance(back_fn, partial)
    assert back_fn.func is stack_back
    assert back_fn.args == (1,)


def test_a_variadic_entry_does_not_serve_keyword_names() -> None:
    lookup = BackwardFuncLookup()
    lookup.add_variadic_back_func(concat_all, stack_back)
    assert not lookup.has_back_func(concat_all, "dim")
    with pytest.raises(MissingBackwardFunctionError, match=r"keyword argument 'dim' of concat_all"):
        lookup.get_back_func(concat_all, "dim")


def test_the_package_registers_stack_and_concatenate_as_variadic() -> None:
    recipe = stack([leaf([1.0]), leaf([2.0])]).recipe
    assert recipe is not None
    back_fn = BACK_FUNCS.get_back_func(recipe.func, 1)
    assert isinstance(back_fn, partial)
    assert back_fn.func is stack_back
    recipe = concatenate([leaf([1.0]), leaf([2.0])]).recipe
    assert recipe is not None
    back_fn = BACK_FUNCS.get_back_func(recipe.func, 1)
    assert isinstance(back_fn, partial)
    assert back_fn.func is concatenate_back


# --- stack ----------------------------------------------------------------------------


def test_stack_of_two_along_a_new_last_dimension() -> None:
    a = leaf([1.0, 2.0])
    b = leaf([3.0, 4.0])
    out = stack([a, b], dim=-1)
    assert_array_equal(out.array, [[1.0, 3.0], [2.0, 4.0]])
    assert out.recipe is not None
    assert out.recipe.parents == {0: a, 1: b}
    assert out.recipe.kwargs == {"dim": -1}
    out.backward(end_grad=np.array([[1.0, 2.0], [3.0, 4.0]]))
    assert_array_equal(grad_of(a), [1.0, 3.0])
    assert_array_equal(grad_of(b), [2.0, 4.0])


def test_stack_of_one_tensor_adds_a_dimension() -> None:
    a = leaf([[1.0, 2.0]])
    out = stack([a])
    assert out.shape == (1, 1, 2)
    out.backward(end_grad=np.array([[[5.0, 6.0]]]))
    assert_array_equal(grad_of(a), [[5.0, 6.0]])


def test_stack_of_five_where_some_do_not_require_grad() -> None:
    tensors = [Tensor(np.full((2,), float(k)), requires_grad=k % 2 == 0) for k in range(5)]
    out = stack(tensors, dim=1)
    assert out.shape == (2, 5)
    assert out.recipe is not None
    assert list(out.recipe.parents) == [0, 2, 4]
    end_grad = np.arange(10.0).reshape(2, 5)
    out.backward(end_grad=end_grad)
    for k, t in enumerate(tensors):
        if k % 2 == 0:
            assert_array_equal(grad_of(t), end_grad[:, k])
        else:
            assert t.grad is None


def test_a_tensor_stacked_twice_gets_both_slices() -> None:
    a = leaf([1.0, 2.0])
    stack([a, a * 3.0, a]).backward(end_grad=np.array([[1.0, 1.0], [1.0, 1.0], [2.0, 2.0]]))
    assert_array_equal(grad_of(a), [6.0, 6.0])


def test_stack_of_tensors_of_different_shapes_names_them() -> None:
    with pytest.raises(
        ValueError, match=r"cannot stack tensors of shapes \(2,\), \(3,\) along dim"
    ):
        stack([leaf([1.0, 2.0]), leaf([1.0, 2.0, 3.0])])
    with pytest.raises(ValueError, match=r"cannot stack tensors of shapes no tensors"):
        stack([])


def test_stack_of_a_single_tensor_instead_of_a_sequence_raises() -> None:
    with pytest.raises(TypeError, match=r"stack\(\) takes a sequence of tensors.*stack\(\[a, b"):
        stack(leaf([[1.0], [2.0]]))  # type: ignore[arg-type]  # the misuse under test
    with pytest.raises(TypeError, match=r"concatenate\(\) takes a sequence of tensors"):
        cat(leaf([[1.0], [2.0]]))  # type: ignore[arg-type]  # the misuse under test


# --- concatenate ----------------------------------------------------------------------


def test_concatenate_sends_each_run_of_the_gradient_back() -> None:
    a = leaf([[1.0], [2.0]])
    b = leaf([[3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
    out = concatenate([a, b], dim=1)
    assert_array_equal(out.array, [[1.0, 3.0, 4.0, 5.0], [2.0, 6.0, 7.0, 8.0]])
    end_grad = np.arange(8.0).reshape(2, 4)
    out.backward(end_grad=end_grad)
    assert_array_equal(grad_of(a), [[0.0], [4.0]])
    assert_array_equal(grad_of(b), [[1.0, 2.0, 3.0], [5.0, 6.0, 7.0]])


def test_cat_is_concatenate() -> None:
    assert cat is concatenate


def test_concatenate_of_five_with_a_negative_dim_and_constants() -> None:
    widths = [1, 2, 1, 3, 2]
    tensors = [
        Tensor(np.full((2, width), float(k)), requires_grad=k in (1, 3, 4))
        for k, width in enumerate(widths)
    ]
    out = concatenate(tensors, dim=-1)
    assert out.shape == (2, 9)
    end_grad = np.arange(18.0).reshape(2, 9)
    out.backward(end_grad=end_grad)
    starts = np.cumsum([0, *widths])
    for k, t in enumerate(tensors):
        if k in (1, 3, 4):
            assert_array_equal(grad_of(t), end_grad[:, starts[k] : starts[k + 1]])
        else:
            assert t.grad is None


def test_concatenate_of_mismatched_shapes_names_them() -> None:
    with pytest.raises(ValueError, match=r"concatenate tensors of shapes \(2, 1\), \(3, 2\)"):
        concatenate([leaf([[1.0], [2.0]]), leaf(np.zeros((3, 2)))], dim=1)


# --- random checks: 1, 2 and 5 tensors, some without grad, against torch and differences


@st.composite
def join_cases(draw: st.DrawFn, kind: str) -> tuple[list[Arr], list[bool], int]:
    """1, 2 or 5 arrays to stack (one shape) or concatenate (sizes differ along dim)."""
    count = draw(st.sampled_from([1, 2, 5]))
    min_dims = 0 if kind == "stack" else 1
    shape = draw(hnp.array_shapes(min_dims=min_dims, max_dims=3, min_side=1, max_side=3))
    if kind == "stack":
        ndim_out = len(shape) + 1
        dim = draw(st.integers(-ndim_out, ndim_out - 1))
        shapes = [shape] * count
    else:
        dim = draw(st.integers(-len(shape), len(shape) - 1))
        axis = dim % len(shape)
        sizes = draw(st.lists(st.integers(1, 3), min_size=count, max_size=count))
        shapes = [(*shape[:axis], size, *shape[axis + 1 :]) for size in sizes]
    arrays = [draw(float_arrays(each)) for each in shapes]
    needs_grad = draw(st.lists(st.booleans(), min_size=count, max_size=count))
    needs_grad[draw(st.integers(0, count - 1))] = True  # at least one, so backward applies
    return arrays, needs_grad, dim


JOINS: dict[str, tuple[Callable[..., Tensor], Callable[..., Arr]]] = {
    "stack": (stack, np.stack),
    "concatenate": (concatenate, np.concatenate),
}


@pytest.mark.parametrize("kind", ["stack", "concatenate"])
@given(data=st.data())
def test_random_joins_match_central_differences(kind: str, data: st.DataObject) -> None:
    join, numpy_join = JOINS[kind]
    arrays, needs_grad, dim = data.draw(join_cases(kind), label="case")
    tensors = [
        Tensor(array, requires_grad=flag) for array, flag in zip(arrays, needs_grad, strict=True)
    ]
    out = join(tensors, dim=dim)
    assert_array_equal(out.array, numpy_join(arrays, axis=dim))
    grad_out = data.draw(float_arrays(out.shape), label="grad_out")
    out.backward(end_grad=grad_out)

    def reference(*args: Arr) -> Arr:
        result: Arr = numpy_join(args, axis=dim)
        return result

    for position, (t, flag) in enumerate(zip(tensors, needs_grad, strict=True)):
        if not flag:
            assert t.grad is None
            continue
        expected = numeric_vjp(reference, arrays, position, grad_out)
        assert_allclose(grad_of(t), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parity
@pytest.mark.parametrize("kind", ["stack", "concatenate"])
@given(data=st.data())
def test_random_joins_match_pytorch(kind: str, data: st.DataObject) -> None:
    torch = require_torch()
    join = JOINS[kind][0]
    torch_join: Any = torch.stack if kind == "stack" else torch.cat
    arrays, needs_grad, dim = data.draw(join_cases(kind), label="case")
    tensors = [
        Tensor(array, requires_grad=flag) for array, flag in zip(arrays, needs_grad, strict=True)
    ]
    torch_tensors = [
        torch.tensor(array, dtype=torch.float64, requires_grad=flag)
        for array, flag in zip(arrays, needs_grad, strict=True)
    ]
    out = join(tensors, dim=dim)
    torch_out = torch_join(torch_tensors, dim=dim)
    assert_array_equal(out.array, to_numpy(torch_out))
    grad_out = data.draw(float_arrays(out.shape), label="grad_out")
    wanted = [k for k, flag in enumerate(needs_grad) if flag]
    assert_backward_matches_torch(  # rtol=0 and atol=0: the gradients must be equal
        out,
        torch_out,
        [tensors[k] for k in wanted],
        [torch_tensors[k] for k in wanted],
        grad_out,
        rtol=0,
        atol=0,
    )
    for t, torch_t, flag in zip(tensors, torch_tensors, needs_grad, strict=True):
        if not flag:
            assert torch_t.grad is None
            assert t.grad is None


# --- with step 09's version counters --------------------------------------------------


def test_changing_one_of_five_einsum_operands_in_place_raises_naming_its_position() -> None:
    tensors = [leaf([float(k + 1)]) for k in range(5)]
    out = einsum("i,i,i,i,i->i", *tensors)  # each operand's gradient reads the others
    assert out.recipe is not None
    # the subscripts string is argument 0, the operands 1 to 5
    assert [key for key, _, _ in out.recipe.saved_versions] == [1, 2, 3, 4, 5]
    with no_grad():
        tensors[3].add_(1.0)
    with pytest.raises(InplaceError, match=r"argument 4 of _einsum, saved for backward"):
        out.backward(end_grad=np.ones(1))


def test_stack_and_concatenate_read_no_values_so_later_changes_are_fine() -> None:
    a, constant = leaf([1.0]), Tensor(np.array([2.0, 3.0]))
    out = concatenate([a, constant])
    stacked = stack([a, a * 2.0])
    assert out.recipe is not None
    assert out.recipe.saved_versions == ()
    constant.add_(1.0)
    out.backward(end_grad=np.ones(3))
    stacked.backward(end_grad=np.ones((2, 1)))
    assert_array_equal(grad_of(a), [4.0])
