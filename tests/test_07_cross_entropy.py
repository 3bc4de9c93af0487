"""Step 07: cross_entropy, the per-example loss built from engine operations."""

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from npgrad import NoGrad, Tensor, cross_entropy
from shared.testing.gradients import numeric_vjp
from shared.testing.parity import assert_backward_matches_torch, require_torch, to_numpy
from shared.testing.strategies import float_arrays

pytestmark = pytest.mark.step(7)


Arr = npt.NDArray[Any]


def reference_loss(logits: Arr, labels: Arr) -> Arr:
    """Per-example cross-entropy in plain NumPy (float64, stable)."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss: Arr = -log_probs[np.arange(len(labels)), labels]
    return loss


def loss_of(logits: Arr, labels: Arr) -> float:
    return cross_entropy(Tensor(np.array([logits])), np.array([labels])).item()


# --- values -----------------------------------------------------------------------------


def test_a_dominant_correct_logit_gives_a_near_zero_loss() -> None:
    loss = loss_of(np.array([20.0, 0.0, 0.0, 0.0]), np.array(0))
    assert 0.0 <= loss < 1e-8


def test_four_equal_logits_give_log_4() -> None:
    for label in range(4):
        assert loss_of(np.array([2.5, 2.5, 2.5, 2.5]), np.array(label)) == pytest.approx(
            math.log(4), rel=1e-12
        )


def test_one_logit_far_below_the_rest_gives_log_3() -> None:
    loss = loss_of(np.array([0.0, 0.0, -1000.0, 0.0]), np.array(1))
    assert loss == pytest.approx(math.log(3), rel=1e-12)


def test_a_dominant_wrong_logit_gives_a_large_loss() -> None:
    loss = loss_of(np.array([0.0, 30.0, 0.0]), np.array(0))
    assert loss == pytest.approx(30.0, rel=1e-9)


def test_a_logit_of_1000_gives_a_finite_loss_and_gradient() -> None:
    logits = Tensor(np.array([[1000.0, 0.0, 0.0], [0.0, 1000.0, -1000.0]]), requires_grad=True)
    overflow = (
        "cross_entropy overflowed at a logit of 1000: subtract each row's maximum from the "
        "logits before exp"
    )
    try:
        with np.errstate(over="raise", invalid="raise"):
            loss = cross_entropy(logits, np.array([1, 1]))
            loss.backward(end_grad=np.ones(2))
    except FloatingPointError as error:
        pytest.fail(f"{overflow} ({error})")
    assert np.all(np.isfinite(loss.array)), overflow
    assert_allclose(loss.array, [1000.0, 0.0], atol=1e-9)
    assert logits.grad is not None
    assert np.all(np.isfinite(logits.grad.array)), overflow
    # softmax minus the one-hot label
    assert_allclose(logits.grad.array, [[1.0, -1.0, 0.0], [0.0, 0.0, 0.0]], atol=1e-12)


def test_a_batch_matches_numpy_row_by_row() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(6, 5)) * 3
    labels = rng.integers(0, 5, size=6)
    loss = cross_entropy(Tensor(logits), labels)
    assert loss.shape == (6,)
    assert_allclose(loss.array, reference_loss(logits, labels), rtol=1e-12)


def test_labels_may_be_a_tensor_or_an_array_of_any_integer_dtype() -> None:
    logits = Tensor(np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]]))
    expected = reference_loss(logits.array, np.array([2, 0]))
    for labels in (
        Tensor(np.array([2, 0])),
        np.array([2, 0], dtype=np.int32),
        np.array([2, 0], dtype=np.uint8),
    ):
        assert_allclose(cross_entropy(logits, labels).array, expected, rtol=1e-12)


def test_float32_logits_give_a_float32_loss() -> None:
    logits = Tensor(np.array([[1.0, 2.0], [0.5, -0.5]], dtype=np.float32), requires_grad=True)
    loss = cross_entropy(logits, np.array([0, 1]))
    assert loss.array.dtype == np.float32
    loss.backward(end_grad=np.ones(2, dtype=np.float32))
    assert logits.grad is not None
    assert logits.grad.array.dtype == np.float32


def test_inside_no_grad_the_loss_records_nothing() -> None:
    logits = Tensor(np.array([[1.0, 2.0]]), requires_grad=True)
    with NoGrad():
        loss = cross_entropy(logits, np.array([0]))
    assert loss.recipe is None
    assert not loss.requires_grad


# --- gradients --------------------------------------------------------------------------


@st.composite
def loss_cases(draw: st.DrawFn) -> tuple[Arr, Arr, Arr]:
    """``(logits, labels, grad_out)`` for a small random batch."""
    batch = draw(st.integers(1, 4))
    n_classes = draw(st.integers(2, 5))
    logits = draw(float_arrays((batch, n_classes), min_value=-5.0, max_value=5.0))
    labels = np.array(draw(st.lists(st.integers(0, n_classes - 1), min_size=batch, max_size=batch)))
    grad_out = draw(float_arrays((batch,), min_value=-2.0, max_value=2.0))
    return logits, labels, grad_out


@given(loss_cases())
def test_gradient_matches_central_differences(case: tuple[Arr, Arr, Arr]) -> None:
    logits_array, labels, grad_out = case
    logits = Tensor(logits_array, requires_grad=True)
    cross_entropy(logits, labels).backward(end_grad=grad_out)
    assert logits.grad is not None

    def forward(x: Arr) -> Arr:
        return cross_entropy(Tensor(x), labels).array

    expected = numeric_vjp(forward, [logits_array], 0, grad_out)
    assert_allclose(logits.grad.array, expected, rtol=1e-5, atol=1e-7)


def test_gradient_is_softmax_minus_one_hot() -> None:
    rng = np.random.default_rng(1)
    logits = Tensor(rng.normal(size=(4, 3)), requires_grad=True)
    labels = np.array([0, 2, 1, 2])
    cross_entropy(logits, labels).backward(end_grad=np.ones(4))
    softmax = np.exp(logits.array) / np.exp(logits.array).sum(axis=1, keepdims=True)
    assert logits.grad is not None
    assert_allclose(logits.grad.array, softmax - np.eye(3)[labels], rtol=1e-10, atol=1e-12)


@pytest.mark.parity
def test_values_and_gradients_match_pytorch() -> None:
    torch = require_torch()
    rng = np.random.default_rng(2)
    logits_array = rng.normal(size=(7, 10)) * 4
    logits_array[0, 3] = 1000.0
    labels = rng.integers(0, 10, size=7)
    grad_out = rng.normal(size=7)

    logits = Tensor(logits_array, requires_grad=True)
    loss = cross_entropy(logits, labels)
    torch_logits = torch.tensor(logits_array, dtype=torch.float64, requires_grad=True)
    torch_loss = torch.nn.functional.cross_entropy(
        torch_logits, torch.tensor(labels), reduction="none"
    )

    assert_allclose(loss.array, to_numpy(torch_loss), rtol=1e-12, atol=1e-12)
    assert_backward_matches_torch(
        loss, torch_loss, [logits], [torch_logits], grad_out, rtol=1e-10, atol=1e-12
    )


# --- errors -----------------------------------------------------------------------------


def test_labels_of_the_wrong_shape_raise() -> None:
    logits = Tensor(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"true_labels must have shape \(3,\).*got shape \(3, 1\)"):
        cross_entropy(logits, np.zeros((3, 1), dtype=np.int64))


def test_float_labels_raise() -> None:
    with pytest.raises(TypeError, match=r"integer class indices, got dtype float64"):
        cross_entropy(Tensor(np.zeros((2, 4))), np.array([0.0, 1.0]))


def test_labels_out_of_range_raise_naming_them() -> None:
    logits = Tensor(np.zeros((3, 4)))
    with pytest.raises(IndexError, match=r"\[0, 4\) for 4 classes, got \[4, -1\]"):
        cross_entropy(logits, np.array([4, 0, -1]))


def test_logits_that_are_not_a_tensor_raise() -> None:
    with pytest.raises(TypeError, match=r"needs the logits as a Tensor .* got a ndarray"):
        cross_entropy(np.zeros((2, 3)), np.array([0, 1]))  # type: ignore[arg-type]  # on purpose


def test_logits_that_are_not_two_dimensional_raise() -> None:
    with pytest.raises(ValueError, match=r"logits of shape \(batch, classes\), got shape \(4,\)"):
        cross_entropy(Tensor(np.zeros(4)), np.array([0]))
