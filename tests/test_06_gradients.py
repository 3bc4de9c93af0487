"""Step 06: every differentiable operation, checked two independent ways on random inputs.

Each case below draws random float64 inputs of random (broadcastable) shapes
and applies one operation through the Tensor API. The same ``apply`` runs on
npgrad tensors and on torch tensors (both have ``.exp()``, ``.sum(dim=,
keepdim=)``, ``@``...), and ``reference`` is the operation in plain NumPy:

1. the forward value matches NumPy, and every input's gradient matches
   central differences of the NumPy reference (``numeric_vjp``);
2. the forward value and every input's gradient match PyTorch.

Inputs stay away from kinks: positive denominators, no ties for ``maximum``,
no zeros for ``relu`` (the kinks have their own tests in ``test_06_ops.py``).
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.testing import assert_allclose

from npgrad import Tensor
from shared.testing.gradients import numeric_vjp
from shared.testing.parity import assert_backward_matches_torch, require_torch, to_numpy
from shared.testing.strategies import (
    Arr,
    broadcast_to_shape_pairs,
    broadcastable_shape_pairs,
    float_arrays,
    grid_arrays,
    nonzero_arrays,
    positive_arrays,
    shapes,
)

pytestmark = pytest.mark.step(6)

Inputs = tuple[tuple[Arr, ...], Any]  # the differentiable input arrays, and fixed parameters


@dataclass(frozen=True)
class Case:
    """One operation: how to draw its inputs, apply it to tensors, and compute it in NumPy."""

    name: str
    inputs: st.SearchStrategy[Inputs]
    apply: Callable[..., Any]  # (params, *tensors) -> tensor, npgrad or torch alike
    reference: Callable[..., Arr]  # (params, *arrays) -> array


def one_input(arrays: st.SearchStrategy[Arr]) -> st.SearchStrategy[Inputs]:
    return arrays.map(lambda array: ((array,), None))


@st.composite
def two_broadcastable(
    draw: st.DrawFn,
    first: Callable[[tuple[int, ...]], st.SearchStrategy[Arr]] = float_arrays,
    second: Callable[[tuple[int, ...]], st.SearchStrategy[Arr]] = float_arrays,
) -> Inputs:
    shape_x, shape_y = draw(broadcastable_shape_pairs())
    return (draw(first(shape_x)), draw(second(shape_y))), None


@st.composite
def reshape_inputs(draw: st.DrawFn) -> Inputs:
    x = draw(float_arrays(shapes))
    # never (): torch's reshape(*shape) needs at least one size
    target = draw(st.sampled_from([(x.size,), (-1,), x.shape[::-1] or (1,), (1, *x.shape)]))
    return (x,), target


@st.composite
def permute_inputs(draw: st.DrawFn) -> Inputs:
    x = draw(float_arrays(hnp.array_shapes(min_dims=1, max_dims=4, min_side=1, max_side=3)))
    dims = draw(st.permutations(range(x.ndim)))
    dims = [dim - x.ndim if draw(st.booleans()) else dim for dim in dims]  # negative dims too
    return (x,), tuple(dims)


@st.composite
def expand_inputs(draw: st.DrawFn) -> Inputs:
    # never to (): torch's expand(*sizes) needs at least one size
    original, target = draw(broadcast_to_shape_pairs().filter(lambda pair: pair[1] != ()))
    n_new = len(target) - len(original)
    sizes = tuple(
        -1 if axis >= n_new and original[axis - n_new] == size and draw(st.booleans()) else size
        for axis, size in enumerate(target)
    )
    return (draw(float_arrays(original)),), (sizes, target)


@st.composite
def sum_inputs(draw: st.DrawFn) -> Inputs:
    x = draw(float_arrays(shapes))
    dim: int | tuple[int, ...] | None = None
    if x.ndim > 0:
        axes = st.integers(-x.ndim, x.ndim - 1)
        dim = draw(
            st.none()
            | axes
            | st.lists(axes, min_size=1, max_size=x.ndim, unique_by=lambda a: a % x.ndim).map(tuple)
        )
    return (x,), (dim, draw(st.booleans()))


@st.composite
def index_inputs(draw: st.DrawFn) -> Inputs:
    """An index of one kind: int, tuple of ints, slices, integer arrays (with repeats), mixes."""
    x = draw(float_arrays(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)))

    def an_int(size: int) -> st.SearchStrategy[int]:
        return st.integers(-size, size - 1)

    def a_slice(size: int) -> st.SearchStrategy[slice]:
        ends = st.none() | st.integers(-size, size)
        return st.builds(slice, ends, ends, st.none() | st.integers(1, 3))

    def an_int_array(size: int, length: int) -> st.SearchStrategy[Arr]:
        return hnp.arrays(np.int64, (length,), elements=an_int(size))

    first = x.shape[0]
    kinds: list[st.SearchStrategy[Any]] = [
        an_int(first),
        a_slice(first),
        an_int_array(first, draw(st.integers(1, 6))),
        st.tuples(*(an_int(size) for size in x.shape)),
        st.tuples(*(a_slice(size) for size in x.shape)),
    ]
    if x.ndim >= 2:
        length = draw(st.integers(1, 6))
        kinds.append(st.tuples(an_int_array(first, length), an_int_array(x.shape[1], length)))
        kinds.append(st.tuples(a_slice(first), an_int_array(x.shape[1], length)))
    index = draw(st.one_of(kinds))
    as_tensors = draw(st.booleans())  # npgrad receives integer Tensors instead of arrays
    return (x,), (index, as_tensors)


def convert_index(index: Any, as_tensors: bool, like: object) -> Any:
    """The index for the library of ``like``: torch tensors for torch, maybe Tensors for npgrad."""
    if isinstance(index, tuple):
        return tuple(convert_index(item, as_tensors, like) for item in index)
    if not isinstance(index, np.ndarray):
        return index
    if isinstance(like, Tensor):
        return Tensor(index) if as_tensors else index
    return require_torch().from_numpy(index)


@st.composite
def matmul_inputs(draw: st.DrawFn) -> Inputs:
    m, k, n = (draw(st.integers(1, 4)) for _ in range(3))
    return (draw(float_arrays((m, k))), draw(float_arrays((k, n)))), None


CASES = [
    Case("negative", one_input(float_arrays(shapes)), lambda p, x: -x, lambda p, x: -x),
    Case("exp", one_input(float_arrays(shapes)), lambda p, x: x.exp(), lambda p, x: np.exp(x)),
    Case(
        "exp_of_exp",
        one_input(float_arrays(shapes, min_value=-3.0, max_value=1.0)),
        lambda p, x: x.exp().exp(),
        lambda p, x: np.exp(np.exp(x)),
    ),
    Case("reshape", reshape_inputs(), lambda p, x: x.reshape(*p), lambda p, x: x.reshape(p)),
    Case(
        "permute",
        permute_inputs(),
        lambda p, x: x.permute(*p),
        lambda p, x: np.transpose(x, p),
    ),
    Case(
        "T",
        one_input(float_arrays(hnp.array_shapes(min_dims=2, max_dims=2, max_side=4))),
        lambda p, x: x.T,
        lambda p, x: x.T,
    ),
    Case(
        "expand",
        expand_inputs(),
        lambda p, x: x.expand(*p[0]),
        lambda p, x: np.broadcast_to(x, p[1]),
    ),
    Case(
        "sum",
        sum_inputs(),
        lambda p, x: x.sum(dim=p[0], keepdim=p[1]),
        lambda p, x: np.sum(x, axis=p[0], keepdims=p[1]),
    ),
    Case(
        "getitem",
        index_inputs(),
        lambda p, x: x[convert_index(p[0], p[1], x)],
        lambda p, x: x[p[0]],
    ),
    Case("add", two_broadcastable(), lambda p, x, y: x + y, lambda p, x, y: x + y),
    Case("subtract", two_broadcastable(), lambda p, x, y: x - y, lambda p, x, y: x - y),
    Case(
        "true_divide",
        two_broadcastable(second=positive_arrays),
        lambda p, x, y: x / y,
        lambda p, x, y: x / y,
    ),
    Case(
        "maximum",
        two_broadcastable(partial(grid_arrays, offset=0.0), partial(grid_arrays, offset=0.25)),
        lambda p, x, y: x.maximum(y),
        lambda p, x, y: np.maximum(x, y),
    ),
    Case("matmul", matmul_inputs(), lambda p, x, y: x @ y, lambda p, x, y: x @ y),
    Case(
        "relu",
        one_input(nonzero_arrays(shapes)),
        lambda p, x: x.relu(),
        lambda p, x: np.maximum(x, 0.0),
    ),
    # Python numbers on either side: the reflected operators
    Case(
        "scalar_plus_t", one_input(float_arrays(shapes)), lambda p, x: 2.5 + x, lambda p, x: 2.5 + x
    ),
    Case("t_minus_scalar", one_input(float_arrays(shapes)), lambda p, x: x - 2, lambda p, x: x - 2),
    Case("scalar_minus_t", one_input(float_arrays(shapes)), lambda p, x: 2 - x, lambda p, x: 2 - x),
    Case("t_over_scalar", one_input(float_arrays(shapes)), lambda p, x: x / 4, lambda p, x: x / 4),
    Case(
        "scalar_over_t", one_input(positive_arrays(shapes)), lambda p, x: 2 / x, lambda p, x: 2 / x
    ),
    Case(
        "maximum_with_scalar",
        one_input(grid_arrays(shapes, offset=0.25)),
        # torch's maximum takes tensors only; clamp_min is the same away from ties
        lambda p, x: x.maximum(0.5) if isinstance(x, Tensor) else x.clamp_min(0.5),
        lambda p, x: np.maximum(x, 0.5),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
@given(data=st.data())
def test_gradients_match_central_differences(case: Case, data: st.DataObject) -> None:
    arrays, params = data.draw(case.inputs, label="inputs")
    tensors = [Tensor(array, requires_grad=True) for array in arrays]
    out = case.apply(params, *tensors)
    assert isinstance(out, Tensor)
    assert_allclose(out.array, case.reference(params, *arrays), rtol=1e-13, atol=0)
    grad_out = data.draw(float_arrays(out.shape), label="grad_out")
    out.backward(end_grad=grad_out)
    for position, t in enumerate(tensors):
        assert t.grad is not None
        expected = numeric_vjp(partial(case.reference, params), arrays, position, grad_out)
        assert_allclose(t.grad.array, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parity
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
@given(data=st.data())
def test_values_and_gradients_match_pytorch(case: Case, data: st.DataObject) -> None:
    torch = require_torch()
    arrays, params = data.draw(case.inputs, label="inputs")
    tensors = [Tensor(array, requires_grad=True) for array in arrays]
    torch_tensors = [
        torch.tensor(array, dtype=torch.float64, requires_grad=True) for array in arrays
    ]
    out = case.apply(params, *tensors)
    torch_out = case.apply(params, *torch_tensors)
    assert out.shape == tuple(torch_out.shape)
    assert_allclose(out.array, to_numpy(torch_out), rtol=1e-12, atol=1e-14)
    grad_out = data.draw(float_arrays(out.shape), label="grad_out")
    assert_backward_matches_torch(
        out, torch_out, tensors, torch_tensors, grad_out, rtol=1e-12, atol=1e-14
    )
