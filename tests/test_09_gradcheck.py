"""Step 09: gradcheck over every differentiable operation the package registers."""

import numpy as np
import pytest

import npgrad
from npgrad import Tensor, gradcheck
from shared.testing.gradcheck_cases import Case, unreached_backward_functions

pytestmark = pytest.mark.step(9)


def uniform(rng: np.random.Generator, shape: tuple[int, ...], low: float, high: float) -> Tensor:
    return Tensor(rng.uniform(low, high, size=shape), requires_grad=True)


def signed(rng: np.random.Generator, shape: tuple[int, ...]) -> Tensor:
    """Magnitudes in [0.2, 2] with random signs: away from 0 (relu's kink)."""
    values = rng.uniform(0.2, 2.0, size=shape) * rng.choice([-1.0, 1.0], size=shape)
    return Tensor(values, requires_grad=True)


def untied_pair(rng: np.random.Generator) -> list[Tensor]:
    """Two inputs 0.5 apart elementwise, each side larger somewhere: no ties."""
    first = rng.uniform(0.0, 1.0, size=(2, 3))
    second = first + rng.choice([-0.5, 0.5], size=(2, 3))
    return [Tensor(first, requires_grad=True), Tensor(second, requires_grad=True)]


def add_in_place(a: Tensor, b: Tensor) -> Tensor:
    y = a * 1.0
    y.add_(b, alpha=2.0)
    return y


def relu_in_place(a: Tensor) -> Tensor:
    return npgrad.relu(a * 1.0, inplace=True)


def uniform_over_a_result(a: Tensor) -> Tensor:
    x = a * 1.0
    x.uniform_(rng=np.random.default_rng(0))  # the same numbers at every call
    return x * a


def add_through_a_view(a: Tensor, b: Tensor) -> Tensor:
    x = a * 1.0
    x[0:2].add_(b)  # the base's history gains write_through_view
    return x * x


def view_made_before_its_base_changed(a: Tensor, b: Tensor) -> Tensor:
    x = a * 1.0
    view = x[1:].T
    x.add_(b)
    return view * view  # the view's history is renewed as view_of(x)


CASES = [
    Case("log", lambda a: a.log(), lambda r: [uniform(r, (2, 3), 0.5, 2.0)]),
    Case("multiply", lambda a, b: a * b, lambda r: [signed(r, (2, 3)), signed(r, (3,))]),
    Case("negative", lambda a: -a, lambda r: [signed(r, (3,))]),
    Case("exp", lambda a: a.exp(), lambda r: [signed(r, (2, 2))]),
    Case("reshape", lambda a: a.reshape(3, 2), lambda r: [signed(r, (2, 3))]),
    Case("permute", lambda a: a.permute(2, 0, 1), lambda r: [signed(r, (2, 3, 2))]),
    Case("expand", lambda a: a.expand(2, 3, -1), lambda r: [signed(r, (1, 2))]),
    Case("sum", lambda a: a.sum(dim=(0, 2), keepdim=True), lambda r: [signed(r, (2, 3, 2))]),
    Case("getitem", lambda a: a[np.array([0, 2, 0])], lambda r: [signed(r, (3, 2))]),
    Case("add", lambda a, b: a + b, lambda r: [signed(r, (2, 1)), signed(r, (3,))]),
    Case("subtract", lambda a, b: a - b, lambda r: [signed(r, (2, 3)), signed(r, (2, 1))]),
    Case(
        "true_divide",
        lambda a, b: a / b,
        lambda r: [signed(r, (2, 3)), uniform(r, (3,), 0.5, 2.0)],
    ),
    Case("maximum", lambda a, b: npgrad.maximum(a, b), untied_pair),
    Case("matmul", lambda a, b: a @ b, lambda r: [signed(r, (2, 3)), signed(r, (3, 4))]),
    Case(
        "linear",
        lambda a, w, b: npgrad.linear(a, w, b),
        lambda r: [signed(r, (2, 3)), signed(r, (4, 3)), signed(r, (4,))],
    ),
    Case(
        "cross_entropy",
        lambda a: npgrad.cross_entropy(a, np.array([0, 2, 1])),
        lambda r: [signed(r, (3, 4))],
    ),
    Case("add_", add_in_place, lambda r: [signed(r, (2, 3)), signed(r, (3,))]),
    Case("relu(inplace=True)", relu_in_place, lambda r: [signed(r, (2, 3))]),
    Case("relu", lambda a: npgrad.relu(a), lambda r: [signed(r, (2, 3))]),
    Case("uniform_", uniform_over_a_result, lambda r: [signed(r, (2, 3))]),
    Case("add_ through a view", add_through_a_view, lambda r: [signed(r, (3, 2)), signed(r, (2,))]),
    Case(
        "a view read after its base changed",
        view_made_before_its_base_changed,
        lambda r: [signed(r, (3, 2)), signed(r, (2,))],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_gradcheck_passes_for_every_differentiable_operation(case: Case) -> None:
    inputs = case.inputs(np.random.default_rng(0))
    assert gradcheck(case.fn, inputs) is True


# Step 10 registers more backward functions; tests/test_10_gradcheck.py covers them all.
@pytest.mark.step(9, last=9)
def test_the_cases_cover_every_registered_backward_function() -> None:
    missing, _ = unreached_backward_functions(CASES)
    assert not missing, f"no gradcheck case reaches: {missing}"


def test_gradcheck_of_an_input_without_elements_passes_and_checks_the_others() -> None:
    empty = Tensor(np.zeros((0, 3)), requires_grad=True)
    full = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    assert gradcheck(lambda e: e * 2.0, [empty]) is True
    assert gradcheck(lambda e, f: e.sum() + (f * f).sum(), [empty, full]) is True
    assert empty.grad is None
    assert full.grad is None

    def cube(x: np.ndarray) -> np.ndarray:
        result: np.ndarray = x**3
        return result

    def wrong_cube_back(grad_out: np.ndarray, out: np.ndarray, x: np.ndarray) -> np.ndarray:
        result: np.ndarray = grad_out * x  # should be 3 x**2
        return result

    npgrad.BACK_FUNCS.add_back_func(cube, 0, wrong_cube_back)
    with pytest.raises(npgrad.GradcheckError, match=r"input 1 at index \(0,\)"):
        gradcheck(lambda e, f: e.sum() + npgrad.wrap_forward_fn(cube)(f), [empty, full])


def test_gradcheck_of_an_output_without_elements_passes() -> None:
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    assert gradcheck(lambda v: v[np.array([], dtype=np.int64)], [x]) is True
