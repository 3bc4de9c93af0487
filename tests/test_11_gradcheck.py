"""Step 11: gradcheck over every differentiable operation this step adds.

Each operation in several settings (strides, paddings, overlapping windows). The last
test checks that, with the cases of steps 09 and 10, every backward function the
package registers is reached.
"""

import numpy as np
import pytest

import npgrad
from npgrad import Tensor, gradcheck
from shared.testing.gradcheck_cases import Case, load_cases, unreached_backward_functions

pytestmark = pytest.mark.step(11)


def normal(rng: np.random.Generator, *shape: int) -> Tensor:
    return Tensor(rng.normal(size=shape), requires_grad=True)


def distinct(rng: np.random.Generator, *shape: int) -> Tensor:
    """Values at least 0.1 apart: no ties, so every window's maximum is differentiable."""
    values = rng.permutation(int(np.prod(shape))).reshape(shape) / 10.0
    return Tensor(values, requires_grad=True)


CASES = [
    Case(
        "conv2d[bias]",
        lambda x, w, b: npgrad.conv2d(x, w, b, 1, 1),
        lambda r: [normal(r, 2, 2, 4, 4), normal(r, 3, 2, 3, 3), normal(r, 3)],
    ),
    Case(
        "conv2d[stride_padding]",
        lambda x, w: npgrad.conv2d(x, w, None, (2, 1), (1, 0)),
        lambda r: [normal(r, 1, 2, 5, 4), normal(r, 2, 2, 3, 2)],
    ),
    Case(
        "conv2d[1x1_stride_3]",
        lambda x, w, b: npgrad.conv2d(x, w, b, 3),
        lambda r: [normal(r, 2, 3, 5, 5), normal(r, 2, 3, 1, 1), normal(r, 2)],
    ),
    Case(
        "max_pool2d",
        lambda x: npgrad.max_pool2d(x, 2),
        lambda r: [distinct(r, 2, 2, 4, 4)],
    ),
    Case(
        "max_pool2d[overlapping_padded]",
        lambda x: npgrad.max_pool2d(x, 3, 1, 1),
        lambda r: [distinct(r, 1, 2, 4, 5)],
    ),
    Case(
        "avg_pool2d",
        lambda x: npgrad.avg_pool2d(x, 2),
        lambda r: [normal(r, 2, 2, 4, 4)],
    ),
    Case(
        "avg_pool2d[overlapping_padded]",
        lambda x: npgrad.avg_pool2d(x, (3, 2), (2, 1), (1, 1)),
        lambda r: [normal(r, 1, 2, 5, 4)],
    ),
    Case(
        "adaptive_avg_pool2d[1]",
        lambda x: npgrad.adaptive_avg_pool2d(x, 1),
        lambda r: [normal(r, 2, 3, 3, 4)],
    ),
    Case(
        "adaptive_avg_pool2d[2x1]",
        lambda x: npgrad.adaptive_avg_pool2d(x, (2, 1)),
        lambda r: [normal(r, 1, 2, 4, 3)],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_gradcheck_passes_for_every_new_operation(case: Case) -> None:
    inputs = case.inputs(np.random.default_rng(0))
    assert gradcheck(case.fn, inputs) is True


# Step 12 registers more backward functions; tests/test_12_gradcheck.py covers them all.
@pytest.mark.step(11, last=11)
def test_with_earlier_cases_every_registered_backward_function_is_reached() -> None:
    missing, reached = unreached_backward_functions([*load_cases(9), *load_cases(10), *CASES])
    assert not missing, f"no gradcheck case reaches: {missing}"
    new_forwards = {"_conv2d", "_max_pool2d", "_avg_pool2d"}
    assert new_forwards <= reached
