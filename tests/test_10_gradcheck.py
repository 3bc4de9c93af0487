"""Step 10: gradcheck over every differentiable operation this step adds.

One case per kind of input each new operation handles: einsum's repeated,
summed and broadcast letters, stack and concatenate of several tensors,
where with broadcasting, matmul of every shape rule, and a parent keyed by
its keyword name. The last test checks that, together with step 09's cases,
every backward function the package registers (fixed or variadic) is reached.
"""

import numpy as np
import pytest

import npgrad
from npgrad import BACK_FUNCS, Arr, Tensor, gradcheck, wrap_forward_fn
from shared.testing.gradcheck_cases import Case, load_cases, unreached_backward_functions

pytestmark = pytest.mark.step(10)


def signed(rng: np.random.Generator, *shape: int) -> Tensor:
    """Magnitudes in [0.2, 2] with random signs: away from 0 (where's condition below)."""
    values = rng.uniform(0.2, 2.0, size=shape) * rng.choice([-1.0, 1.0], size=shape)
    return Tensor(values, requires_grad=True)


def scaled_by_keyword(x: Arr, *, weight: Arr) -> Arr:
    """``x * weight`` with ``weight`` keyword-only: its gradient is registered by name."""
    return x * weight


BACK_FUNCS.add_back_func(
    scaled_by_keyword,
    0,
    lambda grad_out, out, x, *, weight: npgrad.unbroadcast(grad_out * weight, x),
)
BACK_FUNCS.add_back_func(
    scaled_by_keyword,
    "weight",
    lambda grad_out, out, x, *, weight: npgrad.unbroadcast(grad_out * x, weight),
)
scaled_forward = wrap_forward_fn(scaled_by_keyword)


def einsum_case(subscripts: str, *shapes: tuple[int, ...]) -> Case:
    return Case(
        f"einsum[{subscripts}]",
        lambda *operands: npgrad.einsum(subscripts, *operands),
        lambda r: [signed(r, *shape) for shape in shapes],
    )


CASES = [
    einsum_case("ij,jk->ik", (2, 3), (3, 2)),
    einsum_case("ii->i", (3, 3)),
    einsum_case("ii", (3, 3)),
    einsum_case("iij,j->ij", (2, 2, 3), (3,)),
    einsum_case("i,j->ij", (2,), (3,)),
    einsum_case("ij->", (2, 3)),
    einsum_case("bij,bjk,k", (2, 2, 3), (2, 3, 2), (2,)),
    einsum_case("...ij,...jk->...ik", (2, 1, 2, 3), (3, 3, 2)),
    einsum_case("...i->i", (2, 3)),
    einsum_case("ij,jk", (2, 1), (3, 2)),  # j broadcasts from size 1
    Case(
        "stack[1]",
        lambda a: npgrad.stack([a], dim=-1),
        lambda r: [signed(r, 2, 3)],
    ),
    Case(
        "stack[5]",
        lambda a, b, c, d, e: npgrad.stack([a, b, c, d, e], dim=1),
        lambda r: [signed(r, 2, 2) for _ in range(5)],
    ),
    Case(
        "stack[with_constant]",
        lambda a, b: npgrad.stack([a, Tensor(np.ones((2, 2))), b]),
        lambda r: [signed(r, 2, 2), signed(r, 2, 2)],
    ),
    Case(
        "concatenate[2]",
        lambda a, b: npgrad.concatenate([a, b], dim=1),
        lambda r: [signed(r, 2, 1), signed(r, 2, 3)],
    ),
    Case(
        "cat[5]",
        lambda a, b, c, d, e: npgrad.cat([a, b, c, d, e]),
        lambda r: [signed(r, size, 2) for size in (1, 2, 1, 3, 1)],
    ),
    Case(
        "where",
        lambda a, b: npgrad.where(a > 0.0, a * 2.0, b),
        lambda r: [signed(r, 2, 3), signed(r, 3)],
    ),
    Case(
        "where[scalar]",
        lambda a: npgrad.where(a < 0.0, 0.5, a.exp()),
        lambda r: [signed(r, 4)],
    ),
    Case("matmul[1-D@1-D]", lambda a, b: a @ b, lambda r: [signed(r, 3), signed(r, 3)]),
    Case("matmul[1-D@batch]", lambda a, b: a @ b, lambda r: [signed(r, 3), signed(r, 2, 3, 2)]),
    Case("matmul[batch@1-D]", lambda a, b: a @ b, lambda r: [signed(r, 2, 2, 3), signed(r, 3)]),
    Case(
        "matmul[broadcast]",
        lambda a, b: a @ b,
        lambda r: [signed(r, 2, 1, 2, 3), signed(r, 3, 3, 2)],
    ),
    Case(
        "keyword",
        lambda a, b: scaled_forward(a, weight=b),
        lambda r: [signed(r, 2, 3), signed(r, 3)],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_gradcheck_passes_for_every_new_operation(case: Case) -> None:
    inputs = case.inputs(np.random.default_rng(0))
    assert gradcheck(case.fn, inputs) is True


# Step 11 registers more backward functions; tests/test_11_gradcheck.py covers them.
@pytest.mark.step(10, last=10)
def test_with_step_09s_cases_every_registered_backward_function_is_reached() -> None:
    missing, reached = unreached_backward_functions([*load_cases(9), *CASES])
    assert not missing, f"no gradcheck case reaches: {missing}"
    new_forwards = {"_einsum", "_stack", "_concatenate", "_where", "_matmul"}
    assert new_forwards <= reached
