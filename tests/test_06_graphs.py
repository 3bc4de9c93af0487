"""Step 06: random graphs that chain several operations, against central differences and torch.

Hypothesis draws a small matrix and a sequence of operations; operations that
need a second operand draw a new leaf (a weight) of a matching shape, so the
graph mixes broadcasting, shape changes, reductions, indexing with repeated
rows, matmul and a tensor used twice. The same ``run`` applies the plan to
npgrad tensors and to torch tensors. Values stay bounded (sigmoid-like steps)
and relu and maximum inputs stay away from their kinks (the example is
discarded otherwise).
"""

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from numpy.testing import assert_allclose

from npgrad import Tensor
from shared.testing.gradients import numeric_vjp
from shared.testing.parity import assert_backward_matches_torch, require_torch, to_numpy
from shared.testing.strategies import Arr, float_arrays, nonzero_arrays, positive_arrays

pytestmark = pytest.mark.step(6)

Step = tuple[str, Any]  # an operation's name and its fixed parameter (or None)
Plan = tuple[list[Arr], list[Step]]  # the leaves (the first is the input) and the operations

OPS = (
    "negative",
    "sigmoid",
    "bump",
    "add_row",
    "rsub",
    "divide_by_column",
    "reciprocal",
    "relu",
    "maximum",
    "transpose",
    "matmul",
    "sum_expand",
    "reshape",
    "index_rows",
    "permute_3d",
)
KINK_GAP = 1e-3  # relu and maximum inputs at least this far from a tie


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    """A starting (m, n) matrix, then 1 to 6 operations with the leaves they need."""
    m, n = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    leaves = [draw(float_arrays((m, n)))]
    steps: list[Step] = []
    for name in draw(st.lists(st.sampled_from(OPS), min_size=1, max_size=6)):
        param: Any = None
        if name == "add_row":
            leaves.append(draw(float_arrays((n,))))  # broadcast over rows
        elif name == "divide_by_column":
            leaves.append(draw(positive_arrays((m, 1))))  # broadcast over columns
        elif name == "maximum":
            leaves.append(draw(nonzero_arrays((m, n))))
        elif name == "matmul":
            k = draw(st.integers(1, 3))
            leaves.append(draw(float_arrays((n, k), min_value=-1.0, max_value=1.0)))
            n = k
        elif name == "transpose":
            m, n = n, m
        elif name == "reshape":
            m, n = n, m  # same size, rows regrouped
        elif name == "index_rows":
            rows = draw(
                hnp.arrays(np.int64, (draw(st.integers(1, 4)),), elements=st.integers(0, m - 1))
            )
            param = rows
            m = len(rows)
        steps.append((name, param))
    return leaves, steps


def run(plan: Plan, tensors: list[Any], kink_gaps: list[float] | None = None) -> Any:
    """Apply the plan to npgrad or torch tensors; record kink distances when asked."""
    _, steps = plan
    h = tensors[0]
    weights = iter(tensors[1:])

    def gap(a: Any, b: Any) -> None:
        if kink_gaps is not None and isinstance(a, Tensor):
            difference = np.abs(a.array - (b.array if isinstance(b, Tensor) else b))
            kink_gaps.append(float(difference.min(initial=np.inf)))

    for name, param in steps:
        if name == "negative":
            h = -h
        elif name == "sigmoid":
            h = 1 / (1 + (-h).exp())
        elif name == "bump":
            h = (-(h * h)).exp()  # h used twice
        elif name == "add_row":
            h = h + next(weights)
        elif name == "rsub":
            h = 2 - h
        elif name == "divide_by_column":
            h = h / next(weights)
        elif name == "reciprocal":
            h = 1 / (1 + h * h)
        elif name == "relu":
            gap(h, 0.0)
            h = h.relu()
        elif name == "maximum":
            w = next(weights)
            gap(h, w)
            h = h.maximum(w)
        elif name == "transpose":
            h = h.T
        elif name == "matmul":
            h = h @ next(weights)
        elif name == "sum_expand":
            h = h.sum(dim=1, keepdim=True).expand(-1, h.shape[1]) - h.sum(0)
        elif name == "reshape":
            h = h.reshape(h.shape[1], h.shape[0])
        elif name == "index_rows":
            h = h[param if isinstance(h, Tensor) else require_torch().from_numpy(param)]
        elif name == "permute_3d":
            rows, cols = h.shape
            h = h.reshape(rows, 1, cols).permute(1, 2, 0).reshape(rows, cols)
    return h


def run_on_arrays(plan: Plan, *arrays: Arr) -> Arr:
    """The plan as a function of NumPy arrays, for central differences."""
    out = run(plan, [Tensor(array) for array in arrays])
    assert isinstance(out, Tensor)
    return out.array


def run_npgrad(plan: Plan) -> tuple[list[Tensor], Tensor]:
    leaves = [Tensor(array, requires_grad=True) for array in plan[0]]
    kink_gaps: list[float] = []
    out = run(plan, list(leaves), kink_gaps)
    assume(all(distance > KINK_GAP for distance in kink_gaps))
    assert isinstance(out, Tensor)
    return leaves, out


@given(plan=plans(), data=st.data())
def test_random_graphs_match_central_differences(plan: Plan, data: st.DataObject) -> None:
    leaves, out = run_npgrad(plan)
    grad_out = data.draw(float_arrays(out.shape), label="grad_out")
    out.backward(end_grad=grad_out)
    function: Callable[..., Arr] = partial(run_on_arrays, plan)
    for position, leaf in enumerate(leaves):
        assert leaf.grad is not None
        expected = numeric_vjp(function, plan[0], position, grad_out)
        assert_allclose(leaf.grad.array, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parity
@given(plan=plans(), data=st.data())
def test_random_graphs_match_pytorch(plan: Plan, data: st.DataObject) -> None:
    torch = require_torch()
    leaves, out = run_npgrad(plan)
    torch_leaves = [
        torch.tensor(array, dtype=torch.float64, requires_grad=True) for array in plan[0]
    ]
    torch_out = run(plan, torch_leaves)
    assert_allclose(out.array, to_numpy(torch_out), rtol=1e-12, atol=1e-14)
    grad_out = data.draw(float_arrays(out.shape), label="grad_out")
    assert_backward_matches_torch(
        out, torch_out, leaves, torch_leaves, grad_out, rtol=1e-10, atol=1e-12
    )
