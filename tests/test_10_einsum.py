"""Step 10: einsum with a gradient for any subscripts, one variadic backward for every operand.

Worked examples pin each kind of subscript (a diagonal, a trace, a sum, an
outer product, ellipsis batches, the implicit output); random subscripts and
shapes drawn by hypothesis (repeated letters, summed letters, broadcast
ellipsis dimensions, explicit and implicit outputs) are checked against
central differences and against PyTorch.
"""

from functools import partial

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.testing import assert_allclose, assert_array_equal

from npgrad import BACK_FUNCS, Tensor, einsum, einsum_back
from shared.testing.gradients import numeric_vjp
from shared.testing.parity import assert_backward_matches_torch, require_torch, to_numpy
from shared.testing.strategies import Arr, float_arrays
from shared.testing.tensors import grad_of, leaf

pytestmark = pytest.mark.step(10)


# --- worked examples ------------------------------------------------------------------


def test_diagonal_ii_to_i_puts_the_gradient_on_the_diagonal() -> None:
    a = leaf(np.arange(9.0).reshape(3, 3))
    out = einsum("ii->i", a)
    assert_array_equal(out.array, [0.0, 4.0, 8.0])
    out.backward(end_grad=np.array([1.0, 2.0, 3.0]))
    assert_array_equal(grad_of(a), np.diag([1.0, 2.0, 3.0]))


def test_trace_ii_gives_the_identity_times_the_incoming_gradient() -> None:
    a = leaf(np.arange(9.0).reshape(3, 3))
    out = einsum("ii->", a)
    assert out.shape == ()
    assert out.item() == 12.0
    out.backward(end_grad=np.array(2.0))
    assert_array_equal(grad_of(a), 2.0 * np.eye(3))
    implicit = leaf(np.arange(4.0).reshape(2, 2))
    einsum("ii", implicit).backward()  # implicit mode: a repeated letter is summed
    assert_array_equal(grad_of(implicit), np.eye(2))


def test_a_letter_only_one_operand_has_is_summed_and_its_gradient_spread() -> None:
    a = leaf(np.arange(6.0).reshape(2, 3))
    out = einsum("ij->i", a)
    assert_array_equal(out.array, [3.0, 12.0])
    out.backward(end_grad=np.array([1.0, -1.0]))
    assert_array_equal(grad_of(a), [[1.0, 1.0, 1.0], [-1.0, -1.0, -1.0]])


def test_outer_product_both_gradients() -> None:
    a = leaf([1.0, 2.0])
    b = leaf([3.0, 4.0, 5.0])
    out = einsum("i,j->ij", a, b)
    assert_array_equal(out.array, np.outer(a.array, b.array))
    end_grad = np.arange(6.0).reshape(2, 3)
    out.backward(end_grad=end_grad)
    assert_array_equal(grad_of(a), end_grad @ b.array)
    assert_array_equal(grad_of(b), a.array @ end_grad)


def test_implicit_matrix_product_and_its_recipe() -> None:
    a = leaf(np.arange(6.0).reshape(2, 3))
    b = leaf(np.arange(12.0).reshape(3, 4))
    out = einsum("ij,jk", a, b)
    assert_array_equal(out.array, a.array @ b.array)
    assert out.recipe is not None
    assert out.recipe.args[0] == "ij,jk"
    assert out.recipe.args[1] is a.array
    assert out.recipe.parents == {1: a, 2: b}  # positions in einsum(subscripts, *operands)
    end_grad = np.ones((2, 4))
    out.backward(end_grad=end_grad)
    assert_array_equal(grad_of(a), end_grad @ b.array.T)
    assert_array_equal(grad_of(b), a.array.T @ end_grad)


def test_implicit_output_orders_letters_ascii_uppercase_first() -> None:
    a = Tensor(np.zeros((2, 3)))
    assert einsum("bA", a).shape == (3, 2)  # output "Ab"
    assert einsum("Ba,aC", a, Tensor(np.zeros((3, 4)))).shape == (2, 4)


def test_ellipsis_batches_broadcast_and_their_gradients_are_summed_back() -> None:
    a = leaf(np.arange(24.0).reshape(2, 1, 3, 4))  # batch (2, 1)
    b = leaf(np.arange(40.0).reshape(5, 4, 2) / 10)  # batch (5,): broadcasts to (2, 5)
    out = einsum("...ij,...jk->...ik", a, b)
    assert out.shape == (2, 5, 3, 2)
    assert_allclose(out.array, a.array @ b.array, rtol=1e-14, atol=0)
    end_grad = np.ones(out.shape)
    out.backward(end_grad=end_grad)
    assert grad_of(a).shape == (2, 1, 3, 4)
    assert grad_of(b).shape == (5, 4, 2)
    expected_a = (end_grad @ np.swapaxes(b.array, -1, -2)).sum(axis=1, keepdims=True)
    expected_b = (np.swapaxes(a.array, -1, -2) @ end_grad).sum(axis=0)
    assert_allclose(grad_of(a), expected_a, rtol=1e-14, atol=0)
    assert_allclose(grad_of(b), expected_b, rtol=1e-14, atol=0)


def test_an_output_without_ellipsis_sums_the_ellipsis_dimensions_as_in_pytorch() -> None:
    a = leaf(np.arange(6.0).reshape(2, 3))
    out = einsum("...i->i", a)
    assert_array_equal(out.array, [3.0, 5.0, 7.0])
    out.backward(end_grad=np.array([1.0, 2.0, 3.0]))
    assert_array_equal(grad_of(a), [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])


def test_a_size_one_dimension_broadcasts_and_gets_a_summed_gradient() -> None:
    a = leaf([[1.0], [2.0]])  # j has size 1 here, 3 in b
    b = leaf(np.arange(12.0).reshape(3, 4))
    out = einsum("ij,jk->ik", a, b)
    assert_array_equal(out.array, a.array * b.array.sum(axis=0))
    out.backward(end_grad=np.ones((2, 4)))
    assert grad_of(a).shape == (2, 1)
    assert_array_equal(grad_of(a), [[b.array.sum()], [b.array.sum()]])
    assert_array_equal(grad_of(b), np.full((3, 4), 3.0))


def test_a_letter_repeated_three_times_and_inside_a_product() -> None:
    a = leaf(np.arange(8.0).reshape(2, 2, 2))
    b = leaf([1.0, 10.0])
    out = einsum("iii,i->i", a, b)
    assert_array_equal(out.array, [0.0, 70.0])
    out.backward(end_grad=np.array([1.0, 1.0]))
    expected = np.zeros((2, 2, 2))
    expected[0, 0, 0], expected[1, 1, 1] = 1.0, 10.0
    assert_array_equal(grad_of(a), expected)
    assert_array_equal(grad_of(b), [0.0, 7.0])


def test_an_operand_without_grad_is_not_a_parent_and_float32_stays_float32() -> None:
    a = Tensor(np.ones((2, 3), dtype=np.float32), requires_grad=True)
    c = Tensor(np.ones(3, dtype=np.float32))
    out = einsum("ij,j->i", a, c)
    assert out.recipe is not None
    assert out.recipe.parents == {1: a}
    assert out.array.dtype == np.float32
    out.backward(end_grad=np.ones(2, dtype=np.float32))
    assert grad_of(a).dtype == np.float32
    assert c.grad is None


def test_one_variadic_backward_serves_every_operand() -> None:
    a = leaf(np.ones((2, 2)))
    recipe = einsum("ij,jk,kl->il", a, a, a).recipe
    assert recipe is not None
    for position in (1, 2, 3):
        back_fn = BACK_FUNCS.get_back_func(recipe.func, position)
        assert isinstance(back_fn, partial)
        assert back_fn.func is einsum_back
        assert back_fn.args == (position,)


def test_einsum_back_alone_for_a_chain_of_three() -> None:
    x, y, z = np.arange(6.0).reshape(2, 3), np.arange(12.0).reshape(3, 4), np.ones((4, 2))
    grad_out = np.arange(4.0).reshape(2, 2)
    out = x @ y @ z
    assert_allclose(einsum_back(2, grad_out, out, "ij,jk,kl", x, y, z), x.T @ grad_out @ z.T)


def test_a_tensor_used_as_two_operands_gets_both_gradients() -> None:
    a = leaf([[1.0, 2.0], [3.0, 4.0]])
    einsum("ij,ij->", a, a).backward()  # sum of squares
    assert_array_equal(grad_of(a), 2 * a.array)


@pytest.mark.parametrize(
    ("subscripts", "shapes", "message"),
    [
        ("ij,jk", [(2, 3)], r"name 2 operand\(s\) but 1 were given"),
        ("ijk", [(2, 3)], r"'ijk' names 3 dimension\(s\) but operand 0 has shape \(2, 3\)"),
        ("i", [(2, 3)], r"'i' names 1 dimension\(s\) but operand 0 has shape \(2, 3\)"),
        ("i1", [(2, 3)], r"'i1' is not a term"),
        ("i.j", [(2, 3)], r"'i\.j' is not a term"),
        ("ij->k", [(2, 3)], r"output letter 'k' must appear in an input"),
        ("ij->ii", [(2, 2)], r"output letter 'i' must appear .* only once"),
        ("ij,jk", [(2, 3), (4, 5)], r"letter 'j' has sizes \[3, 4\]"),
        ("ii", [(2, 3)], r"letter 'i' has sizes \[2, 3\]"),
    ],
)
def test_subscripts_that_do_not_fit_raise_a_value_error_saying_why(
    subscripts: str, shapes: list[tuple[int, ...]], message: str
) -> None:
    operands = [Tensor(np.zeros(shape)) for shape in shapes]
    with pytest.raises(ValueError, match=message):
        einsum(subscripts, *operands)


@pytest.mark.parametrize("first", [0, ["ij->i"], b"ij->i", None])
def test_subscripts_that_are_not_a_string_raise_a_type_error(first: object) -> None:
    a = Tensor(np.ones((2, 2)))
    with pytest.raises(TypeError, match=r"einsum takes the subscripts string first"):
        einsum(first, a)  # type: ignore[arg-type]  # not a string, on purpose


def test_operands_before_the_subscripts_raise_a_type_error_naming_the_tensor() -> None:
    a = Tensor(np.ones((2, 2)))
    with pytest.raises(TypeError, match=r"got a Tensor"):
        einsum(a, "ij->i")  # type: ignore[arg-type]  # the arguments swapped, on purpose


# --- random subscripts and shapes -----------------------------------------------------

ALPHABET = "abcdAB"  # uppercase too: the implicit output sorts it first


@st.composite
def einsum_cases(draw: st.DrawFn) -> tuple[str, list[Arr]]:
    """Subscripts and operands: repeats, summed letters, ellipsis batches, either output mode."""
    sizes = {letter: draw(st.integers(1, 3)) for letter in ALPHABET}
    batch = draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=3))
    with_ellipsis = draw(st.booleans())
    terms: list[str] = []
    shapes: list[tuple[int, ...]] = []
    for _ in range(draw(st.integers(1, 3))):
        letters = draw(st.lists(st.sampled_from(ALPHABET), max_size=3))  # repeats allowed
        term, shape = "".join(letters), [sizes[letter] for letter in letters]
        if with_ellipsis and draw(st.booleans()):
            n_batch = draw(st.integers(0, len(batch)))
            own = [1 if draw(st.booleans()) else side for side in batch[len(batch) - n_batch :]]
            at = draw(st.integers(0, len(letters)))
            term, shape = term[:at] + "..." + term[at:], shape[:at] + own + shape[at:]
        terms.append(term)
        shapes.append(tuple(shape))
    subscripts = ",".join(terms)
    if draw(st.booleans()):  # an explicit output
        used = sorted(set(subscripts) - {".", ","})
        output = "".join(draw(st.lists(st.sampled_from(used), unique=True))) if used else ""
        if "..." in subscripts and draw(st.booleans()):  # else the ellipsis dims are summed
            at = draw(st.integers(0, len(output)))
            output = output[:at] + "..." + output[at:]
        subscripts += "->" + output
    return subscripts, [draw(float_arrays(shape)) for shape in shapes]


def einsum_of_arrays(subscripts: str, *arrays: Arr) -> Arr:
    return einsum(subscripts, *(Tensor(array) for array in arrays)).array


@given(case=einsum_cases(), data=st.data())
def test_random_einsum_gradients_match_central_differences(
    case: tuple[str, list[Arr]], data: st.DataObject
) -> None:
    subscripts, arrays = case
    tensors = [Tensor(array, requires_grad=True) for array in arrays]
    out = einsum(subscripts, *tensors)
    if "..." not in subscripts:  # NumPy refuses an output that drops '...'; PyTorch sums it
        assert_allclose(out.array, np.einsum(subscripts, *arrays), rtol=1e-12, atol=1e-12)
    grad_out = data.draw(float_arrays(out.shape), label="grad_out")
    out.backward(end_grad=grad_out)
    for position, t in enumerate(tensors):
        expected = numeric_vjp(partial(einsum_of_arrays, subscripts), arrays, position, grad_out)
        assert_allclose(grad_of(t), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parity
@given(case=einsum_cases(), data=st.data())
def test_random_einsum_values_and_gradients_match_pytorch(
    case: tuple[str, list[Arr]], data: st.DataObject
) -> None:
    torch = require_torch()
    subscripts, arrays = case
    tensors = [Tensor(array, requires_grad=True) for array in arrays]
    torch_tensors = [
        torch.tensor(array, dtype=torch.float64, requires_grad=True) for array in arrays
    ]
    out = einsum(subscripts, *tensors)
    torch_out = torch.einsum(subscripts, *torch_tensors)
    assert out.shape == tuple(torch_out.shape)
    assert_allclose(out.array, to_numpy(torch_out), rtol=1e-12, atol=1e-12)
    grad_out = data.draw(float_arrays(out.shape), label="grad_out")
    assert_backward_matches_torch(
        out, torch_out, tensors, torch_tensors, grad_out, rtol=1e-10, atol=1e-12
    )
