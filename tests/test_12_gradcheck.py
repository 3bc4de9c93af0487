"""Step 12: gradcheck over every differentiable operation this step adds.

Batch normalisation in both modes, with and without scale and shift, and a residual
block whose weights are inputs too. The last test checks that, with the cases of
steps 09, 10 and 11, every backward function the package registers is reached.
"""

import numpy as np
import pytest

import npgrad
from npgrad import Tensor, gradcheck
from shared.testing.gradcheck_cases import Case, load_cases, unreached_backward_functions

pytestmark = pytest.mark.step(12)


def normal(rng: np.random.Generator, *shape: int) -> Tensor:
    return Tensor(rng.normal(size=shape), requires_grad=True)


def positive(rng: np.random.Generator, *shape: int) -> Tensor:
    return Tensor(rng.uniform(0.5, 2.0, size=shape))  # running variances: no gradient


def block(x: Tensor, conv1: Tensor, conv2: Tensor, shortcut: Tensor, scale: Tensor) -> Tensor:
    """A residual block in training mode, every weight an input: conv, bn, relu, conv, bn."""
    out = npgrad.conv2d(x, conv1, None, 2, 1)
    out = npgrad.batch_norm(out, None, None, scale, None, training=True).relu()
    out = npgrad.batch_norm(npgrad.conv2d(out, conv2, None, 1, 1), None, None, None, None, True)
    return out + npgrad.conv2d(x, shortcut, None, 2, 0)


CASES = [
    Case(
        "batch_norm[train]",
        lambda x, w, b: npgrad.batch_norm(x, None, None, w, b, training=True),
        lambda r: [normal(r, 4, 2, 3, 2), normal(r, 2), normal(r, 2)],
    ),
    Case(
        "batch_norm[train_2d_plain]",
        lambda x: npgrad.batch_norm(x, None, None, training=True, eps=1e-3),
        lambda r: [normal(r, 5, 3)],
    ),
    Case(
        "batch_norm[eval]",
        lambda x, w, b, mean, var: npgrad.batch_norm(x, mean, var, w, b),
        lambda r: [
            normal(r, 3, 2, 2, 2),
            normal(r, 2),
            normal(r, 2),
            Tensor(r.normal(size=2)),
            positive(r, 2),
        ],
    ),
    Case(
        "residual_block",
        block,
        lambda r: [
            normal(r, 4, 2, 4, 4),
            normal(r, 3, 2, 3, 3),
            normal(r, 3, 3, 3, 3),
            normal(r, 3, 2, 1, 1),
            normal(r, 3),
        ],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_gradcheck_passes_for_every_new_operation(case: Case) -> None:
    inputs = case.inputs(np.random.default_rng(0))
    assert gradcheck(case.fn, inputs) is True


# Step 13 registers a new operation (scatter_add); its own test adds that step's cases.
@pytest.mark.step(12, last=12)
def test_with_earlier_cases_every_registered_backward_function_is_reached() -> None:
    missing, reached = unreached_backward_functions(
        [*load_cases(9), *load_cases(10), *load_cases(11), *CASES]
    )
    assert not missing, f"no gradcheck case reaches: {missing}"
    new_forwards = {"_batch_norm_train", "_batch_norm_eval"}
    assert new_forwards <= reached
