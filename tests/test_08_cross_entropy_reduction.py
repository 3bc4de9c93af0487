"""Step 08: ``cross_entropy(..., reduction=...)``, the mean or sum as one recorded operation."""

from typing import Literal

import numpy as np
import pytest
from numpy.testing import assert_allclose

from npgrad import Tensor, cross_entropy
from shared.testing.parity import assert_backward_matches_torch, require_torch, to_numpy

pytestmark = pytest.mark.step(8)

Reduction = Literal["none", "mean", "sum"]


def _batch(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(6, 5)) * 3
    logits[1, 2] = 500.0  # a large logit: the shift keeps exp finite
    return logits, rng.integers(0, 5, size=6)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_a_reduced_loss_is_the_mean_or_sum_of_the_rows_and_so_is_its_gradient(
    reduction: Reduction,
) -> None:
    logits_array, labels = _batch(0)
    reduced = Tensor(logits_array, requires_grad=True)
    rows = Tensor(logits_array, requires_grad=True)
    loss = cross_entropy(reduced, labels, reduction=reduction)
    expected = cross_entropy(rows, labels).sum()
    if reduction == "mean":
        expected = expected / len(labels)
    assert loss.shape == ()
    assert_allclose(loss.array, expected.array, rtol=1e-14)
    loss.backward()
    expected.backward()
    assert reduced.grad is not None
    assert rows.grad is not None
    assert_allclose(reduced.grad.array, rows.grad.array, rtol=1e-13, atol=1e-16)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_reduced_values_and_gradients_match_pytorch(reduction: Reduction) -> None:
    torch = require_torch()
    logits_array, labels = _batch(1)
    logits = Tensor(logits_array, requires_grad=True)
    loss = cross_entropy(logits, labels, reduction=reduction)
    torch_logits = torch.tensor(logits_array, dtype=torch.float64, requires_grad=True)
    torch_loss = torch.nn.functional.cross_entropy(
        torch_logits, torch.tensor(labels), reduction=reduction
    )
    assert_allclose(loss.array, to_numpy(torch_loss), rtol=1e-12, atol=1e-12)
    grad_out = np.random.default_rng(2).normal(size=loss.shape)
    assert_backward_matches_torch(
        loss, torch_loss, [logits], [torch_logits], grad_out, rtol=1e-10, atol=1e-12
    )


def test_a_reduced_loss_is_one_operation_on_the_logits() -> None:
    logits_array, labels = _batch(3)
    logits = Tensor(logits_array, requires_grad=True)
    loss = cross_entropy(logits, labels, reduction="mean")
    assert loss.recipe is not None
    assert list(loss.recipe.parents.values()) == [logits]


def test_float32_logits_give_a_float32_mean_and_gradient() -> None:
    logits_array, labels = _batch(4)
    logits = Tensor(logits_array.astype(np.float32), requires_grad=True)
    loss = cross_entropy(logits, labels, reduction="mean")
    loss.backward()
    assert loss.array.dtype == np.float32
    assert logits.grad is not None
    assert logits.grad.array.dtype == np.float32


def test_an_unknown_reduction_raises_naming_the_choices() -> None:
    logits_array, labels = _batch(5)
    with pytest.raises(ValueError, match=r'"none", "mean" or "sum", got \'average\''):
        cross_entropy(Tensor(logits_array), labels, reduction="average")  # type: ignore[arg-type]
