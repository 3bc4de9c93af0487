"""Step 13: second derivatives by central differences (``gradgradcheck``), and coverage.

``gradgradcheck`` runs ``gradcheck`` on the recorded first derivatives, so it
checks every twin against numbers computed without any twin. The coverage tests
check that every backward function the package registers has a twin, and (with
the cases of steps 09 to 12) that every registered backward function, the new
``scatter_add`` among them, is reached.
"""

from collections.abc import Callable

import numpy as np
import pytest

import npgrad
from npgrad import (
    BACK_FUNCS,
    GRAPH_BACK_FUNCS,
    GradcheckError,
    Tensor,
    exp_back,
    gradcheck,
    gradgradcheck,
    scatter_add,
)
from npgrad.higher_order.elementwise import cast
from shared.testing.gradcheck_cases import (
    Case,
    in_package,
    load_cases,
    unreached_backward_functions,
)

pytestmark = pytest.mark.step(13)


def normal(rng: np.random.Generator, *shape: int) -> Tensor:
    return Tensor(rng.normal(size=shape), requires_grad=True)


def away_from_zero(rng: np.random.Generator, *shape: int) -> Tensor:
    values = rng.normal(size=shape)
    return Tensor(np.where(values >= 0, values + 0.2, values - 0.2), requires_grad=True)


REPEATED = np.array([0, 2, 2, 1])

CASES = [
    Case(
        "scatter_add",
        lambda v: scatter_add(v * v, (REPEATED,), (3, 2)),
        lambda r: [normal(r, 4, 2)],
    ),
    Case("cast", lambda x: cast(x * x, np.dtype(np.float64)), lambda r: [normal(r, 3, 2)]),
]

# Small inputs: gradgradcheck's cost grows with the square of their size.
SECOND_ORDER_CASES = [
    Case(
        "multiply_divide",
        lambda x, y: x * y / (y * y + 1.0),
        lambda r: [normal(r, 3), normal(r, 3)],
    ),
    Case("exp_log", lambda x: (x * x + 1.0).log() * x.exp(), lambda r: [normal(r, 2, 2)]),
    Case("relu_maximum", lambda x: x.relu() * x, lambda r: [away_from_zero(r, 4)]),
    Case(
        "shape_ops",
        lambda x: (x.reshape(3, 2).T.expand(2, 2, 3) * x[np.array([1, 1, 0]), 0].reshape(1, 3)).sum(
            1
        ),
        lambda r: [normal(r, 2, 3)],
    ),
    Case("matmul", lambda x, y: (x @ y) * (x @ y), lambda r: [normal(r, 2, 3), normal(r, 3)]),
    Case(
        "einsum_stack_concatenate",
        lambda x, y: npgrad.concatenate(
            [npgrad.einsum("ij,jk->ik", x, y), npgrad.stack([x * x, x], dim=0).sum(0)], dim=1
        ),
        lambda r: [normal(r, 2, 2), normal(r, 2, 2)],
    ),
    Case(
        "where_cross_entropy",
        lambda x: npgrad.cross_entropy(npgrad.where(x > 0, x * 2.0, x), np.array([1, 0])),
        lambda r: [away_from_zero(r, 2, 3)],
    ),
    Case(
        "conv2d",
        lambda x, w, b: npgrad.conv2d(x, w, b, stride=2, padding=1),
        lambda r: [normal(r, 1, 1, 4, 4), normal(r, 2, 1, 2, 2), normal(r, 2)],
    ),
    Case(
        "pooling",
        lambda x: (
            npgrad.max_pool2d(x * x, 2, 1) + npgrad.avg_pool2d(x * x, 2, 1, 1)[:, :, 1:3, 1:3]
        ),
        lambda r: [Tensor(np.arange(9.0).reshape(1, 1, 3, 3) / 9 + 0.1, requires_grad=True)],
    ),
    Case(
        "batch_norm_train",
        lambda x, w, b: npgrad.batch_norm(x, None, None, w, b, training=True),
        lambda r: [normal(r, 3, 2, 2), normal(r, 2), normal(r, 2)],
    ),
    Case(
        "batch_norm_eval",
        lambda x, w: npgrad.batch_norm(x, Tensor([0.1, -0.2]), Tensor([1.5, 0.7]), w),
        lambda r: [normal(r, 3, 2), normal(r, 2)],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_gradcheck_passes_for_every_new_operation(case: Case) -> None:
    assert gradcheck(case.fn, case.inputs(np.random.default_rng(0))) is True


@pytest.mark.parametrize("case", CASES + SECOND_ORDER_CASES, ids=lambda case: case.name)
def test_gradgradcheck_passes(case: Case) -> None:
    assert gradgradcheck(case.fn, case.inputs(np.random.default_rng(0))) is True


def test_gradgradcheck_catches_a_wrong_twin(monkeypatch: pytest.MonkeyPatch) -> None:
    def wrong(grad_out: Tensor, out: Tensor, x: Tensor) -> Tensor:
        return grad_out * out.array  # right values, but the output enters as a constant

    monkeypatch.setitem(GRAPH_BACK_FUNCS._twins, exp_back, wrong)
    x = Tensor(np.array([0.3, -0.4]), requires_grad=True)
    assert gradcheck(lambda t: t.exp(), [x]) is True, "first derivatives do not see the twin"
    with pytest.raises(GradcheckError, match="gradcheck failed for input 0"):
        gradgradcheck(lambda t: t.exp(), [x])


def test_gradgradcheck_checks_its_vector_shape() -> None:
    x = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(ValueError, match=r"grad_outputs has shape \(2,\)"):
        gradgradcheck(lambda t: t * t, [x], grad_outputs=Tensor(np.ones(2)))


def test_every_registered_backward_function_has_a_twin() -> None:
    back_fns: list[Callable[..., object]] = [
        BACK_FUNCS.get_back_func(forward, key)
        for forward, key in BACK_FUNCS.entries()
        if in_package(forward)
    ]
    back_fns += [
        BACK_FUNCS.get_back_func(forward, 0)
        for forward in BACK_FUNCS.variadic_entries()
        if in_package(forward)
    ]
    missing = sorted(
        getattr(fn, "__name__", None) or repr(fn)
        for fn in back_fns
        if not GRAPH_BACK_FUNCS.has_twin(fn)
    )
    assert not missing, f"backward functions without a Tensor twin: {missing}"
    registered = {getattr(fn, "func", fn) for fn in back_fns}  # a variadic one is bound
    strays = [fn for fn in GRAPH_BACK_FUNCS.twinned() if fn not in registered]
    assert not strays, f"twins of functions no forward function uses: {strays}"


def test_with_earlier_cases_every_registered_backward_function_is_reached() -> None:
    missing, reached = unreached_backward_functions(
        [*load_cases(9), *load_cases(10), *load_cases(11), *load_cases(12), *CASES]
    )
    assert not missing, f"no gradcheck case reaches: {missing}"
    assert "_scatter_add" in reached
