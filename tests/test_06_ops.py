"""Step 06: the operations an MLP needs, each with its backward function (worked examples)."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import npgrad
from npgrad import (
    BACK_FUNCS,
    Tensor,
    add,
    add_,
    argmax,
    eq,
    exp,
    exp_back,
    expand,
    getitem,
    matmul,
    maximum,
    negative,
    permute,
    permute_back,
    relu,
    reshape,
    subtract,
    sum_back,
    true_divide,
)
from shared.testing.tensors import grad_of, leaf

pytestmark = pytest.mark.step(6)


# --- unary operations -----------------------------------------------------------------


def test_negative() -> None:
    x = leaf([1.0, -2.0, 3.0])
    out = -x
    assert_array_equal(out.array, [-1.0, 2.0, -3.0])
    assert out.recipe is not None
    assert out.recipe.func is np.negative
    out.backward(end_grad=np.array([1.0, 2.0, 3.0]))
    assert_array_equal(grad_of(x), [-1.0, -2.0, -3.0])
    assert_array_equal(negative(Tensor(np.array([4.0]))).array, [-4.0])


def test_exp() -> None:
    x = leaf([0.0, 1.0, -1.0])
    out = x.exp()
    assert_allclose(out.array, np.exp(x.array), rtol=1e-15)
    out.backward(end_grad=np.array([1.0, 2.0, 3.0]))
    assert_allclose(grad_of(x), [1.0, 2 * np.e, 3 / np.e], rtol=1e-15)


def test_exp_of_exp() -> None:
    x = leaf([0.0, 0.5, -1.0])
    out = exp(exp(x))  # d/dx exp(exp(x)) = exp(exp(x)) * exp(x)
    out.backward(end_grad=np.ones(3))
    assert_allclose(grad_of(x), np.exp(np.exp(x.array)) * np.exp(x.array), rtol=1e-14)


def test_exp_back_uses_the_forward_output() -> None:
    x = np.array([0.0, 1.0, 2.0])
    fake_out = np.array([10.0, 20.0, 30.0])  # not exp(x): only a backward that reads out sees it
    grad = exp_back(np.array([1.0, 2.0, 3.0]), fake_out, x)
    assert_array_equal(grad, [10.0, 40.0, 90.0])
    assert BACK_FUNCS.get_back_func(np.exp, 0) is exp_back


# --- shape operations -----------------------------------------------------------------


def test_reshape() -> None:
    x = leaf(np.arange(6.0))
    out = x.reshape(2, 3)
    assert out.shape == (2, 3)
    assert_array_equal(out.array, [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]])
    out.backward(end_grad=np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))
    assert grad_of(x).shape == (6,)
    assert_array_equal(grad_of(x), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    assert reshape(x, (3, -1)).shape == (3, 2)


def test_permute_and_its_backward_applies_the_inverse_permutation() -> None:
    x = leaf(np.arange(24.0).reshape(2, 3, 4))
    out = x.permute(1, 2, 0)  # not its own inverse: the inverse is (2, 0, 1)
    assert out.shape == (3, 4, 2)
    assert_array_equal(out.array, np.transpose(x.array, (1, 2, 0)))
    end_grad = np.arange(24.0).reshape(3, 4, 2) * 10
    # the backward function alone first: applying dims again gives shape (4, 2, 3)
    inverse = (
        "permute's backward must apply the inverse permutation (np.argsort(dims)), not dims again"
    )
    grad = permute_back(end_grad, np.zeros((3, 4, 2)), x.array, (1, 2, 0))
    assert grad.shape == (2, 3, 4), inverse
    assert_array_equal(grad, np.transpose(end_grad, (2, 0, 1)), err_msg=inverse)
    out.backward(end_grad=end_grad)
    assert grad_of(x).shape == (2, 3, 4)
    assert_array_equal(grad_of(x), np.transpose(end_grad, (2, 0, 1)))
    assert permute(x, (-1, 0, 1)).shape == (4, 2, 3)


def test_transpose_property_t() -> None:
    x = leaf([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    out = x.T
    assert_array_equal(out.array, [[1.0, 4.0], [2.0, 5.0], [3.0, 6.0]])
    out.backward(end_grad=np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]))
    assert_array_equal(grad_of(x), [[1.0, 3.0, 5.0], [2.0, 4.0, 6.0]])
    assert Tensor(np.zeros((2, 3, 4))).T.shape == (4, 3, 2)


def test_expand() -> None:
    x = leaf([[1.0], [2.0]])
    out = x.expand(2, 3)
    assert_array_equal(out.array, [[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]])
    out.backward(end_grad=np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))
    assert_array_equal(grad_of(x), [[6.0], [15.0]])


def test_expand_with_minus_one_keeps_that_size_and_may_prepend_dimensions() -> None:
    x = leaf([[1.0, 2.0, 3.0]])  # (1, 3)
    out = expand(x, (4, 2, -1))  # a new leading 4, then 1 -> 2, and -1 keeps the 3
    assert out.shape == (4, 2, 3)
    out.backward(end_grad=np.ones((4, 2, 3)))
    assert_array_equal(grad_of(x), [[8.0, 8.0, 8.0]])
    assert x.expand(-1, -1).shape == (1, 3)


def test_expand_to_an_incompatible_shape_raises() -> None:
    x = Tensor(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"cannot expand a tensor of shape \(2, 3\) to \(4, 3\)"):
        x.expand(4, 3)
    with pytest.raises(ValueError, match=r"shape \(2, 3\) to \(3,\)"):
        x.expand(3)
    with pytest.raises(ValueError, match=r"shape \(2, 3\) to \(-1, 2, 3\)"):
        x.expand(-1, 2, 3)  # -1 is not allowed for a new dimension


# --- sum ------------------------------------------------------------------------------


def test_sum_over_everything_with_a_zero_d_incoming_gradient() -> None:
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    out = x.sum()
    assert out.shape == ()
    assert out.item() == 10.0
    out.backward(end_grad=np.array(3.0))
    assert_array_equal(grad_of(x), [[3.0, 3.0], [3.0, 3.0]])


def test_sum_over_one_dim_with_a_non_scalar_incoming_gradient() -> None:
    x = leaf(np.arange(6.0).reshape(2, 3))
    out = x.sum(dim=1)
    assert_array_equal(out.array, [3.0, 12.0])
    out.backward(end_grad=np.array([1.0, 10.0]))
    assert_array_equal(grad_of(x), [[1.0, 1.0, 1.0], [10.0, 10.0, 10.0]])


def test_sum_with_keepdim() -> None:
    x = leaf(np.arange(6.0).reshape(2, 3))
    out = x.sum(dim=0, keepdim=True)
    assert out.shape == (1, 3)
    assert_array_equal(out.array, [[3.0, 5.0, 7.0]])
    out.backward(end_grad=np.array([[1.0, 2.0, 3.0]]))
    assert_array_equal(grad_of(x), [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])


def test_sum_over_a_tuple_of_negative_dims_and_without_keepdim() -> None:
    x = leaf(np.arange(24.0).reshape(2, 3, 4))
    out = npgrad.sum(x, dim=(-1, 0))
    assert out.shape == (3,)
    assert_array_equal(out.array, x.array.sum(axis=(0, 2)))
    out.backward(end_grad=np.array([1.0, 2.0, 3.0]))
    assert_array_equal(grad_of(x), np.broadcast_to(np.array([1.0, 2.0, 3.0])[:, None], (2, 3, 4)))


def test_sum_with_dim_none_and_keepdim_true() -> None:
    x = leaf(np.ones((2, 3)))
    out = x.sum(keepdim=True)
    assert out.shape == (1, 1)
    out.backward(end_grad=np.array([[2.0]]))
    assert_array_equal(grad_of(x), np.full((2, 3), 2.0))


def test_sum_back_without_keepdim_puts_the_dimension_back_in_its_place() -> None:
    x = np.zeros((2, 3))
    grad = sum_back(np.array([1.0, 2.0]), np.zeros(2), x, 1, False)
    assert_array_equal(grad, [[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]])


# --- indexing -------------------------------------------------------------------------


def test_index_by_an_int() -> None:
    x = leaf([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    out = x[1]
    assert_array_equal(out.array, [3.0, 4.0])
    out.backward(end_grad=np.array([10.0, 20.0]))
    assert_array_equal(grad_of(x), [[0.0, 0.0], [10.0, 20.0], [0.0, 0.0]])


def test_index_by_a_tuple_of_ints_gives_a_zero_d_tensor() -> None:
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    out = x[1, 0]
    assert out.shape == ()
    assert out.item() == 3.0
    out.backward()
    assert_array_equal(grad_of(x), [[0.0, 0.0], [1.0, 0.0]])


def test_index_by_slices() -> None:
    x = leaf(np.arange(12.0).reshape(3, 4))
    out = x[1:, ::2]
    assert_array_equal(out.array, [[4.0, 6.0], [8.0, 10.0]])
    out.backward(end_grad=np.ones((2, 2)))
    assert_array_equal(grad_of(x), [[0, 0, 0, 0], [1, 0, 1, 0], [1, 0, 1, 0]])


def test_index_by_an_integer_array_with_repeated_coordinates_accumulates() -> None:
    x = leaf([10.0, 20.0, 30.0])
    out = x[np.array([0, 2, 0, 0])]
    assert_array_equal(out.array, [10.0, 30.0, 10.0, 10.0])
    out.backward(end_grad=np.array([1.0, 2.0, 3.0, 4.0]))
    assert_array_equal(
        grad_of(x),
        [8.0, 0.0, 2.0],  # 1 + 3 + 4 at index 0, not just 4
        err_msg="an element picked several times must receive the sum of its gradients: "
        "use np.add.at, not grad[index] += grad_out",
    )


def test_index_by_pairs_of_integer_tensors_with_repeats() -> None:
    x = leaf(np.arange(6.0).reshape(2, 3))
    rows = Tensor(np.array([0, 1, 1, 1]))
    cols = Tensor(np.array([2, 0, 0, 1]))
    out = x[rows, cols]
    assert_array_equal(out.array, [2.0, 3.0, 3.0, 4.0])
    assert out.recipe is not None
    assert out.recipe.parents == {0: x}  # the index tensors are never parents
    out.backward(end_grad=np.array([1.0, 2.0, 3.0, 4.0]))
    assert_array_equal(grad_of(x), [[0.0, 0.0, 1.0], [5.0, 4.0, 0.0]])


def test_an_integer_tensor_index_is_converted_to_its_array() -> None:
    x = leaf([1.0, 2.0, 3.0])
    index = Tensor(np.array([2, 2]))
    out = getitem(x, index)
    assert out.recipe is not None
    assert out.recipe.args[1] is index.array
    out.backward(end_grad=np.array([1.0, 1.0]))
    assert_array_equal(grad_of(x), [0.0, 0.0, 2.0])
    assert index.grad is None


def test_index_by_a_list_and_by_a_boolean_mask() -> None:
    x = leaf([1.0, 2.0, 3.0])
    by_list = x[[1, 1]]
    by_mask = x[x.array > 1.5]
    assert_array_equal(by_list.array, [2.0, 2.0])
    assert_array_equal(by_mask.array, [2.0, 3.0])
    (by_list.sum() + by_mask.sum()).backward()
    assert_array_equal(grad_of(x), [0.0, 3.0, 1.0])


# --- binary arithmetic with broadcasting ----------------------------------------------


def test_add_broadcasts_and_unbroadcasts_both_gradients() -> None:
    a = leaf([[1.0], [2.0]])  # (2, 1)
    b = leaf([10.0, 20.0, 30.0])  # (3,)
    out = a + b
    assert_array_equal(out.array, [[11.0, 21.0, 31.0], [12.0, 22.0, 32.0]])
    out.backward(end_grad=np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))
    assert_array_equal(grad_of(a), [[6.0], [15.0]])
    assert_array_equal(grad_of(b), [5.0, 7.0, 9.0])
    assert add(a, 1.0).recipe is not None


def test_subtract_broadcasts_and_negates_the_second_gradient() -> None:
    a = leaf([[1.0], [2.0]])
    b = leaf([10.0, 20.0, 30.0])
    out = a - b
    assert_array_equal(out.array, [[-9.0, -19.0, -29.0], [-8.0, -18.0, -28.0]])
    out.backward(end_grad=np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))
    assert_array_equal(grad_of(a), [[6.0], [15.0]])
    assert_array_equal(grad_of(b), [-5.0, -7.0, -9.0])
    assert subtract(a, 1.0).recipe is not None


def test_true_divide_both_gradients_with_broadcasting() -> None:
    a = leaf([[1.0], [2.0]])
    b = leaf([2.0, 4.0])
    out = a / b
    assert_array_equal(out.array, [[0.5, 0.25], [1.0, 0.5]])
    out.backward(end_grad=np.ones((2, 2)))
    assert_allclose(grad_of(a), [[0.75], [0.75]], rtol=1e-15)  # sum of 1 / b
    assert_allclose(grad_of(b), [-3.0 / 4.0, -3.0 / 16.0], rtol=1e-15)  # -sum(a) / b**2
    assert true_divide(a, 2.0).recipe is not None


def test_reflected_subtract_is_2_minus_t() -> None:
    t = leaf([1.0, 5.0])
    out = 2 - t
    assert_array_equal(
        out.array,
        [1.0, -3.0],
        err_msg="2 - t must compute 2 - t: __rsub__(self, other) is subtract(other, self)",
    )
    out.backward(end_grad=np.ones(2))
    assert_array_equal(grad_of(t), [-1.0, -1.0])


def test_reflected_divide_is_2_over_t() -> None:
    t = leaf([1.0, 4.0])
    out = 2 / t
    assert_array_equal(out.array, [2.0, 0.5])
    out.backward(end_grad=np.ones(2))
    assert_array_equal(grad_of(t), [-2.0, -0.125])  # -2 / t**2


def test_reflected_add_and_operators_record_their_numpy_functions() -> None:
    t = leaf([1.0, 2.0])
    cases = [(3 + t, np.add, {1: t}), (t + 3, np.add, {0: t}), (2 - t, np.subtract, {1: t})]
    cases.append((2 / t, np.true_divide, {1: t}))
    for out, func, parents in cases:
        assert out.recipe is not None
        assert out.recipe.func is func
        assert out.recipe.parents == parents
    assert_array_equal((3 + t).array, [4.0, 5.0])


def test_a_python_scalar_never_upcasts_float32_in_the_new_operations() -> None:
    a = Tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    outputs = [a + 1.5, 1.5 + a, a - 0.5, 2 - a, a / 3, 2 / a, -a, a.exp(), a.relu()]
    outputs += [a.maximum(1.5), a.sum(), a[0], a.expand(3, 2), a.reshape(2, 1), a.T]
    for out in outputs:
        assert out.array.dtype == np.float32
    total = (2 / a + a.relu() + a.maximum(1.0)).sum()
    total.backward()
    assert grad_of(a).dtype == np.float32


def test_integer_data_keeps_its_dtype() -> None:
    t = Tensor(np.array([1, 2, 3]))
    assert (t + 1).array.dtype == t.array.dtype
    assert (-t).array.dtype == t.array.dtype
    assert t.sum().array.dtype.kind == "i"
    assert t[1:].array.dtype == t.array.dtype


def test_only_inputs_that_need_a_gradient_become_parents() -> None:
    a = leaf([1.0, 2.0])
    constant = Tensor(np.array([3.0, 4.0]))
    out = constant / a
    assert out.recipe is not None
    assert out.recipe.parents == {1: a}
    (out.sum()).backward()
    assert constant.grad is None


# --- in place -------------------------------------------------------------------------


# From step 09 an in-place change to a leaf that requires grad raises while tracking.
@pytest.mark.step(6, last=8)
def test_add_in_place_modifies_the_array_and_records_nothing() -> None:
    array = np.array([1.0, 2.0])
    x = Tensor(array, requires_grad=True)
    result = x.add_(Tensor(np.array([10.0, 20.0])), alpha=0.5)
    assert result is x
    assert x.array is array  # the very same array, written in place
    assert_array_equal(array, [6.0, 12.0])
    assert x.recipe is None
    assert x.is_leaf
    assert add_(x, 1.0) is x
    assert_array_equal(array, [7.0, 13.0])
    add_(x, np.float64(2.0), alpha=-1.0)
    assert_array_equal(array, [5.0, 11.0])


def test_add_in_place_broadcasts_and_keeps_float32() -> None:
    x = Tensor(np.zeros((2, 2), dtype=np.float32))
    x.add_(Tensor(np.array([1.0, 2.0])), alpha=2.0)
    assert x.array.dtype == np.float32
    assert_array_equal(x.array, [[2.0, 4.0], [2.0, 4.0]])


# --- maximum and relu -----------------------------------------------------------------


def test_maximum_routes_the_gradient_to_the_larger_argument() -> None:
    a = leaf([1.0, 5.0, 3.0])
    b = leaf([2.0, 4.0, 0.0])
    out = maximum(a, b)
    assert_array_equal(out.array, [2.0, 5.0, 3.0])
    out.backward(end_grad=np.array([1.0, 2.0, 3.0]))
    assert_array_equal(grad_of(a), [0.0, 2.0, 3.0])
    assert_array_equal(grad_of(b), [1.0, 0.0, 0.0])


def test_maximum_with_broadcasting() -> None:
    a = leaf([[1.0], [4.0]])  # (2, 1)
    b = leaf([2.0, 3.0, 5.0])  # (3,)
    out = a.maximum(b)
    assert_array_equal(out.array, [[2.0, 3.0, 5.0], [4.0, 4.0, 5.0]])
    out.backward(end_grad=np.ones((2, 3)))
    assert_array_equal(grad_of(a), [[0.0], [2.0]])
    assert_array_equal(grad_of(b), [1.0, 1.0, 2.0])


def test_maximum_splits_the_gradient_evenly_at_a_tie() -> None:
    a = leaf([1.0, 2.0, 3.0])
    b = leaf([1.0, 0.0, 3.0])
    maximum(a, b).backward(end_grad=np.array([4.0, 4.0, 8.0]))
    assert_array_equal(grad_of(a), [2.0, 4.0, 4.0])
    assert_array_equal(grad_of(b), [2.0, 0.0, 4.0])


def test_maximum_of_a_tensor_with_itself_gives_the_whole_gradient() -> None:
    a = leaf([1.0, -2.0])
    maximum(a, a).backward(end_grad=np.ones(2))
    assert_array_equal(grad_of(a), [1.0, 1.0])  # two halves


def test_relu_at_minus_one_zero_and_one() -> None:
    x = leaf([-1.0, 0.0, 1.0])
    out = relu(x)
    assert_array_equal(out.array, [0.0, 0.0, 1.0])
    out.backward(end_grad=np.ones(3))
    assert_array_equal(grad_of(x), [0.0, 0.5, 1.0])  # 0.5 at exactly 0 (torch.relu gives 0)
    assert relu.__doc__ is not None
    assert "0.5" in relu.__doc__
    assert x.relu().recipe is not None


# --- matmul ---------------------------------------------------------------------------


def test_matmul_of_two_2d_tensors_both_gradients() -> None:
    a = leaf([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])  # (2, 3)
    b = leaf([[1.0, 0.0], [0.0, 1.0], [2.0, -1.0]])  # (3, 2)
    out = a @ b
    assert_array_equal(out.array, a.array @ b.array)
    end_grad = np.array([[1.0, 2.0], [3.0, 4.0]])
    out.backward(end_grad=end_grad)
    assert_array_equal(grad_of(a), end_grad @ b.array.T)
    assert_array_equal(grad_of(b), a.array.T @ end_grad)
    assert_array_equal(grad_of(a), [[1.0, 2.0, 0.0], [3.0, 4.0, 2.0]])


def test_matmul_of_incompatible_shapes_names_both_shapes() -> None:
    a = Tensor(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"got \(2, 3\) and \(2, 3\)"):
        a @ a


# Step 10 adds PyTorch's 1-D and batched matmul, where these shapes are valid.
@pytest.mark.step(6, last=9)
def test_matmul_takes_only_two_dimensional_tensors_until_step_10() -> None:
    a = Tensor(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"got \(2, 3\) and \(3,\)"):
        matmul(a, Tensor(np.zeros(3)))
    with pytest.raises(ValueError, match=r"got \(1, 2, 3\) and \(3, 2\)"):
        matmul(Tensor(np.zeros((1, 2, 3))), Tensor(np.zeros((3, 2))))


# --- non-differentiable operations ----------------------------------------------------


def test_argmax_never_records_a_recipe() -> None:
    x = leaf([[1.0, 5.0, 2.0], [7.0, 0.0, 3.0]])
    flat = x.argmax()
    assert flat.item() == 3
    assert flat.recipe is None
    assert not flat.requires_grad
    per_row = argmax(x, dim=1)
    assert_array_equal(per_row.array, [1, 0])
    assert per_row.array.dtype == np.int64
    assert per_row.recipe is None
    kept = x.argmax(dim=0, keepdim=True)
    assert kept.shape == (1, 3)
    assert_array_equal(kept.array, [[1, 0, 1]])
    assert x.argmax(keepdim=True).shape == (1, 1)


def test_eq_never_records_a_recipe_and_returns_a_boolean_tensor() -> None:
    a = leaf([1.0, 2.0, 3.0])
    b = leaf([1.0, 0.0, 3.0])
    same = a == b
    assert isinstance(same, Tensor)
    assert_array_equal(same.array, [True, False, True])
    assert same.recipe is None
    assert not same.requires_grad
    assert_array_equal(eq(a, 2.0).array, [False, True, False])
    predictions = a.argmax(dim=0)
    assert (predictions == 2).item() is True


def test_eq_keeps_hash_by_identity() -> None:
    a = Tensor(np.array([1.0]))
    b = Tensor(np.array([1.0]))
    assert hash(a) == hash(a)
    assert hash(a) != hash(b)
    assert len({a, b, a}) == 2
    assert {a: 1}[a] == 1
    assert b not in {a: 1}  # equal values, but a different node


# --- errors ---------------------------------------------------------------------------


def test_a_tensor_passed_by_keyword_still_raises() -> None:
    x = leaf([1.0])
    with pytest.raises(TypeError, match=r"add\(\) got a Tensor for keyword argument 'x2'"):
        add(x, x2=x)  # type: ignore[call-arg]  # the misuse under test
    with pytest.raises(TypeError, match=r"keyword argument 'x2'.*pass tensors positionally"):
        maximum(x, x2=x)  # type: ignore[call-arg]  # the misuse under test
    with pytest.raises(TypeError, match=r"pass tensors positionally"):
        npgrad.wrap_forward_fn(np.true_divide)(x, out=x)


def test_every_differentiable_operation_has_its_backward_registered() -> None:
    x = leaf(np.ones((2, 2)))
    outputs = [-x, x.exp(), x.reshape(4), x.permute(1, 0), x.T, x.expand(3, 2, 2), x.sum()]
    outputs += [x[0], x + x, x - x, x / x, x.maximum(x), x.relu(), x @ x]
    for out in outputs:
        assert out.recipe is not None
        for position in out.recipe.parents:
            BACK_FUNCS.get_back_func(out.recipe.func, position)  # raises if missing
