"""Step 08: what a leaf's ``.grad`` holds after ``backward``: its own array, laid out like it."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

import npgrad.autograd
from npgrad import Tensor
from shared.testing.strategies import Arr

pytestmark = pytest.mark.step(8)


def test_a_copied_gradient_is_laid_out_like_its_leaf() -> None:
    # multiply's gradient of w.T arrives transposed back: a column-major view of w's shape
    rng = np.random.default_rng(0)
    w = Tensor(rng.normal(size=(4, 3)), requires_grad=True)
    scale = rng.normal(size=(3, 4))
    (w.T * Tensor(scale)).sum().backward()
    assert w.grad is not None
    assert_allclose(w.grad.array, scale.T)
    assert w.grad.array.flags.c_contiguous, "the optimiser reads .grad along the leaf's memory"


def test_a_float64_gradient_into_a_float32_leaf_is_copied_as_float32() -> None:
    w = Tensor(np.ones((2, 3), dtype=np.float32), requires_grad=True)
    (w.T * Tensor(np.full((3, 2), 0.5))).sum().backward()
    assert w.grad is not None
    assert w.grad.array.dtype == np.float32
    assert_allclose(w.grad.array, np.full((2, 3), 0.5))


def test_a_fresh_matmul_gradient_is_kept_without_a_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    copies: dict[int, bool] = {}
    accumulate = npgrad.autograd._accumulate_into_leaf

    def spy(leaf: Tensor, grad: Arr, copy: bool = True) -> None:
        copies[id(leaf)] = copy
        accumulate(leaf, grad, copy)

    monkeypatch.setattr(npgrad.autograd, "_accumulate_into_leaf", spy)
    rng = np.random.default_rng(1)
    x = Tensor(rng.normal(size=(5, 4)))
    w = Tensor(rng.normal(size=(4, 3)), requires_grad=True)
    (x @ w).sum().backward()
    assert copies == {id(w): False}, "x.T @ grad_out is a new array nobody else holds"
    assert w.grad is not None
    assert_allclose(w.grad.array, np.tile(x.array.sum(axis=0)[:, None], (1, 3)))
