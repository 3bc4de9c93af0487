"""Step 10: matmul with PyTorch's batching and broadcasting rules, and both gradients.

1-D @ 1-D is a dot product; a 1-D left operand is a row and a 1-D right
operand a column, whose added dimension is dropped again; beyond two
dimensions the leading ones are batch dimensions, which broadcast. Each case
is a worked example, and random shapes of every kind are checked against
central differences and PyTorch.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.testing import assert_allclose, assert_array_equal

from npgrad import Tensor, matmul, matmul_back0, matmul_back1
from shared.testing.gradients import numeric_vjp
from shared.testing.parity import assert_backward_matches_torch, require_torch, to_numpy
from shared.testing.strategies import float_arrays
from shared.testing.tensors import grad_of, leaf

pytestmark = pytest.mark.step(10)


# --- worked examples, one per shape rule ----------------------------------------------


def test_vector_at_vector_is_a_zero_d_dot_product() -> None:
    a, b = leaf([1.0, 2.0, 3.0]), leaf([4.0, 5.0, 6.0])
    out = a @ b
    assert out.shape == ()
    assert out.item() == 32.0
    out.backward(end_grad=np.array(2.0))
    assert_array_equal(grad_of(a), [8.0, 10.0, 12.0])
    assert_array_equal(grad_of(b), [2.0, 4.0, 6.0])


def test_vector_at_matrix_treats_the_vector_as_a_row() -> None:
    a = leaf([1.0, 2.0])  # (2,) as (1, 2)
    b = leaf([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])  # (2, 3)
    out = a @ b
    assert_array_equal(out.array, [9.0, 12.0, 15.0])
    end_grad = np.array([1.0, 0.0, -1.0])
    out.backward(end_grad=end_grad)
    assert_array_equal(grad_of(a), b.array @ end_grad)
    assert_array_equal(grad_of(b), np.outer(a.array, end_grad))


def test_matrix_at_vector_treats_the_vector_as_a_column() -> None:
    a = leaf([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])  # (3, 2)
    b = leaf([1.0, -1.0])  # (2,) as (2, 1)
    out = matmul(a, b)
    assert_array_equal(out.array, [-1.0, -1.0, -1.0])
    end_grad = np.array([1.0, 2.0, 3.0])
    out.backward(end_grad=end_grad)
    assert_array_equal(grad_of(a), np.outer(end_grad, b.array))
    assert_array_equal(grad_of(b), a.array.T @ end_grad)


def test_batched_at_batched_multiplies_matrix_by_matrix() -> None:
    a = leaf(np.arange(12.0).reshape(2, 2, 3))
    b = leaf(np.arange(12.0).reshape(2, 3, 2))
    out = a @ b
    assert out.shape == (2, 2, 2)
    assert_array_equal(out.array[1], a.array[1] @ b.array[1])
    end_grad = np.ones((2, 2, 2))
    out.backward(end_grad=end_grad)
    assert_array_equal(grad_of(a), end_grad @ np.swapaxes(b.array, 1, 2))
    assert_array_equal(grad_of(b), np.swapaxes(a.array, 1, 2) @ end_grad)


def test_broadcast_batch_dimensions_get_their_gradients_summed() -> None:
    a = leaf(np.arange(12.0).reshape(2, 1, 2, 3))  # batch (2, 1)
    b = leaf(np.arange(18.0).reshape(3, 3, 2))  # batch (3,): broadcasts to (2, 3)
    out = a @ b
    assert out.shape == (2, 3, 2, 2)
    end_grad = np.ones(out.shape)
    out.backward(end_grad=end_grad)
    assert grad_of(a).shape == (2, 1, 2, 3)
    assert grad_of(b).shape == (3, 3, 2)
    expected_a = (end_grad @ np.swapaxes(b.array, -1, -2)).sum(axis=1, keepdims=True)
    expected_b = (np.swapaxes(a.array, -1, -2) @ end_grad).sum(axis=0)
    assert_array_equal(grad_of(a), expected_a)
    assert_array_equal(grad_of(b), expected_b)


def test_a_matrix_shared_across_a_batch_receives_the_sum_over_the_batch() -> None:
    weight = leaf([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])  # (3, 2), like Linear's W.T
    x = leaf(np.arange(24.0).reshape(4, 2, 3))  # (4, 2, 3): a batch of four
    out = x @ weight
    assert out.shape == (4, 2, 2)
    out.sum().backward()
    assert_array_equal(grad_of(weight), x.array.sum(axis=(0, 1))[:, np.newaxis] * np.ones((3, 2)))


def test_vector_with_a_batch_on_either_side() -> None:
    v = leaf([1.0, 2.0])
    batch = leaf(np.arange(12.0).reshape(3, 2, 2))
    left = v @ batch  # (2,) @ (3, 2, 2) -> (3, 2)
    right = batch @ v  # (3, 2, 2) @ (2,) -> (3, 2)
    assert left.shape == (3, 2)
    assert right.shape == (3, 2)
    (left.sum() + right.sum()).backward()
    expected_v = batch.array.sum(axis=(0, 2)) + batch.array.sum(axis=(0, 1))
    assert_array_equal(grad_of(v), expected_v)


def test_backward_functions_alone_on_batched_shapes() -> None:
    x, y = np.ones((5, 1, 2, 3)), np.ones((4, 3, 6))
    grad_out = np.ones((5, 4, 2, 6))
    out = x @ y
    assert matmul_back0(grad_out, out, x, y).shape == (5, 1, 2, 3)
    assert matmul_back1(grad_out, out, x, y).shape == (4, 3, 6)
    assert matmul_back0(np.ones(()), np.ones(()), np.ones(3), np.ones(3)).shape == (3,)


def test_float32_stays_float32() -> None:
    a = Tensor(np.ones((2, 2, 3), dtype=np.float32), requires_grad=True)
    b = Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    out = a @ b
    assert out.array.dtype == np.float32
    out.backward(end_grad=np.ones((2, 2), dtype=np.float32))
    assert grad_of(a).dtype == np.float32
    assert grad_of(b).dtype == np.float32


@pytest.mark.parametrize(
    ("shape_a", "shape_b", "message"),
    [
        ((2, 3), (2, 3), r"got \(2, 3\) and \(2, 3\); the last size of the first \(3\) must "),
        ((3,), (4,), r"got \(3,\) and \(4,\); .* must equal the size of the second \(4\)"),
        ((2, 3), (4,), r"got \(2, 3\) and \(4,\)"),
        ((5, 2, 3), (4, 3, 2), r"got \(5, 2, 3\) and \(4, 3, 2\); the batch shapes \(5,\) and "),
        ((), (3,), r"got \(\) and \(3,\); both need at least one dimension"),
    ],
)
def test_incompatible_shapes_raise_naming_both(
    shape_a: tuple[int, ...], shape_b: tuple[int, ...], message: str
) -> None:
    a, b = Tensor(np.zeros(shape_a)), Tensor(np.zeros(shape_b))
    with pytest.raises(ValueError, match=message):
        a @ b


# --- random shapes of every kind ------------------------------------------------------

KINDS = [
    "vector@vector",
    "vector@matrix",
    "matrix@vector",
    "matrix@matrix",
    "vector@batch",
    "batch@vector",
    "batch@batch",
]


@st.composite
def matmul_shapes(draw: st.DrawFn) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Two shapes matmul accepts, of each kind, with broadcasting batch dimensions."""
    kind = draw(st.sampled_from(KINDS))
    m, k, n = (draw(st.integers(1, 3)) for _ in range(3))
    batches = draw(
        hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=1, max_dims=3, max_side=3)
    )
    batch_a, batch_b = batches.input_shapes
    left, right = kind.split("@")
    shape_a = {"vector": (k,), "matrix": (m, k), "batch": (*batch_a, m, k)}[left]
    shape_b = {"vector": (k,), "matrix": (k, n), "batch": (*batch_b, k, n)}[right]
    return shape_a, shape_b


@given(shapes=matmul_shapes(), data=st.data())
def test_random_matmuls_match_central_differences(
    shapes: tuple[tuple[int, ...], tuple[int, ...]], data: st.DataObject
) -> None:
    arrays = [
        data.draw(float_arrays(shape), label=f"operand {i}") for i, shape in enumerate(shapes)
    ]
    tensors = [Tensor(array, requires_grad=True) for array in arrays]
    out = tensors[0] @ tensors[1]
    assert_allclose(out.array, np.matmul(*arrays), rtol=1e-13, atol=1e-13)
    grad_out = data.draw(float_arrays(out.shape), label="grad_out")
    out.backward(end_grad=grad_out)
    for position, t in enumerate(tensors):
        expected = numeric_vjp(np.matmul, arrays, position, grad_out)
        assert_allclose(grad_of(t), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parity
@given(shapes=matmul_shapes(), data=st.data())
def test_random_matmuls_match_pytorch(
    shapes: tuple[tuple[int, ...], tuple[int, ...]], data: st.DataObject
) -> None:
    torch = require_torch()
    arrays = [
        data.draw(float_arrays(shape), label=f"operand {i}") for i, shape in enumerate(shapes)
    ]
    tensors = [Tensor(array, requires_grad=True) for array in arrays]
    torch_tensors = [torch.tensor(array, requires_grad=True) for array in arrays]
    out = tensors[0] @ tensors[1]
    torch_out = torch_tensors[0] @ torch_tensors[1]
    assert out.shape == tuple(torch_out.shape)
    assert_allclose(out.array, to_numpy(torch_out), rtol=1e-12, atol=1e-12)
    grad_out = data.draw(float_arrays(out.shape), label="grad_out")
    assert_backward_matches_torch(
        out, torch_out, tensors, torch_tensors, grad_out, rtol=1e-10, atol=1e-12
    )
