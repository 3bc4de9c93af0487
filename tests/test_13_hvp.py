"""Step 13: first gradients and Hessian-vector products of every operation, against PyTorch.

Each case applies one operation (or a short composition ending in it) to random
float64 inputs away from its kinks. Its scalar ``L = sum(w * out * out)`` (``w``
random) makes the second derivatives non-trivial even for linear operations:
the gradient of ``L`` is recorded (``create_graph=True``), checked against
``torch.autograd.grad``, then differentiated again in a random direction ``v``
(the gradient of ``sum(g . v)``, a Hessian-vector product) and checked again.
``python3 -m shared.tools.hvp_report`` prints the largest relative error of
each case.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

import npgrad
from npgrad import Tensor
from shared.testing.parity import require_torch, to_numpy

pytestmark = pytest.mark.step(13)

Arr = np.ndarray[Any, np.dtype[Any]]
LABELS = np.array([2, 0, 3, 1, 3])


@dataclass(frozen=True)
class HvpCase:
    """One operation: ours and PyTorch's, and its inputs (all differentiated unless ``wrt``)."""

    name: str
    ours: Callable[..., Tensor]
    theirs: Callable[..., Any]
    inputs: Callable[[np.random.Generator], list[Arr]]
    wrt: tuple[int, ...] | None = None
    third: bool = field(default=False)  # also checked to the third derivative
    # PyTorch's own op where its third derivative is right, else the op built from primitives
    theirs_third: Callable[..., Any] | None = None


def normal(*shape: int) -> Callable[[np.random.Generator], list[Arr]]:
    """One input of normal numbers of ``shape``."""
    return lambda rng: [rng.normal(size=shape)]


def away_from_zero(rng: np.random.Generator, *shape: int) -> Arr:
    """Normal numbers pushed at least 0.2 away from 0 (relu's and maximum's kink)."""
    values = rng.normal(size=shape)
    return np.where(values >= 0, values + 0.2, values - 0.2)


def positive(rng: np.random.Generator, *shape: int) -> Arr:
    return rng.uniform(0.5, 2.0, size=shape)


def distinct(rng: np.random.Generator, *shape: int) -> Arr:
    """Values with no ties inside small windows: a shuffled grid, spaced 0.1 apart."""
    count = int(np.prod(shape))
    return (rng.permutation(count) * 0.1 - count * 0.05).reshape(shape)


def torch_module() -> Any:
    return require_torch()


def tf() -> Any:
    return require_torch().nn.functional


INDEX = np.array([0, 2, 2, 1, 0])  # repeated rows
REVERSED = INDEX[::-1].copy()


def write_through_first_row(h: Any, y: Any) -> Any:
    """``h`` with ``y * y`` added in place to its first row, through a view, then squared."""
    h[0].add_(y * y)
    return h * h


def read_view_after_base_change(h: Any, y: Any) -> Any:
    """A view of ``h`` read after ``h`` changed in place: it sees the new values."""
    row = h[1]
    h.add_(y * y)
    return row * row


def overwritten(h: Any, fill: Callable[[Any], Any]) -> Any:
    fill(h)
    return h


CASES = [
    HvpCase(
        "add",
        lambda x, y: x + y,
        lambda x, y: x + y,
        lambda r: [r.normal(size=(3, 4)), r.normal(size=4)],
    ),
    HvpCase(
        "subtract",
        lambda x, y: x - y,
        lambda x, y: x - y,
        lambda r: [r.normal(size=(3, 4)), r.normal(size=(3, 1))],
    ),
    HvpCase(
        "multiply",
        lambda x, y: x * y,
        lambda x, y: x * y,
        lambda r: [r.normal(size=(3, 4)), r.normal(size=4)],
        third=True,
    ),
    HvpCase(
        "true_divide",
        lambda x, y: x / y,
        lambda x, y: x / y,
        lambda r: [r.normal(size=(3, 4)), positive(r, 4)],
        third=True,
    ),
    HvpCase("negative", lambda x: -x, lambda x: -x, normal(3, 4)),
    HvpCase("exp", lambda x: x.exp(), lambda x: x.exp(), normal(3, 4), third=True),
    HvpCase("log", lambda x: x.log(), lambda x: x.log(), lambda r: [positive(r, 3, 4)], third=True),
    HvpCase(
        "maximum",
        lambda x, y: npgrad.maximum(x, y),
        lambda x, y: torch_module().maximum(x, y),
        lambda r: [away_from_zero(r, 3, 4), np.zeros((3, 4))],
        wrt=(0,),
    ),
    HvpCase(
        "maximum_both",
        lambda x, y: npgrad.maximum(x * x, y),
        lambda x, y: torch_module().maximum(x * x, y),
        lambda r: [r.normal(size=(3, 4)), r.normal(size=(3, 4))],
    ),
    HvpCase("relu", lambda x: x.relu(), lambda x: x.relu(), lambda r: [away_from_zero(r, 3, 4)]),
    HvpCase(
        "relu_inplace",
        lambda x: (x * 2.0).relu_(),
        lambda x: (x * 2.0).relu_(),
        lambda r: [away_from_zero(r, 3, 4)],
    ),
    HvpCase(
        "add_inplace",
        lambda x, y: (x * 1.0).add_(y * y, alpha=0.5),
        lambda x, y: (x * 1.0).add_(y * y, alpha=0.5),
        lambda r: [r.normal(size=(3, 4)), r.normal(size=4)],
    ),
    HvpCase(
        "inplace_through_a_view",
        lambda x, y: write_through_first_row(x * 1.0, y),
        lambda x, y: write_through_first_row(x * 1.0, y),
        lambda r: [r.normal(size=(3, 4)), r.normal(size=4)],
    ),
    HvpCase(
        "view_of_a_changed_base",
        lambda x, y: read_view_after_base_change(x * 1.0, y),
        lambda x, y: read_view_after_base_change(x * 1.0, y),
        lambda r: [r.normal(size=(3, 4)), r.normal(size=(3, 4))],
    ),
    HvpCase(
        "overwrite",
        lambda x: overwritten(x * 1.0, lambda h: h.uniform_(rng=np.random.default_rng(5))) * x,
        lambda x: (
            overwritten(
                x * 1.0,
                lambda h: h.copy_(
                    torch_module().from_numpy(np.random.default_rng(5).uniform(size=h.shape))
                ),
            )
            * x
        ),
        normal(3, 4),
    ),
    HvpCase(
        "reshape",
        lambda x: x.reshape(4, 3) * x.reshape(4, 3).exp(),
        lambda x: x.reshape(4, 3) * x.reshape(4, 3).exp(),
        normal(3, 4),
    ),
    HvpCase(
        "permute",
        lambda x: x.permute(2, 0, 1) * x.permute(2, 0, 1),
        lambda x: x.permute(2, 0, 1) * x.permute(2, 0, 1),
        normal(2, 3, 4),
    ),
    HvpCase(
        "expand",
        lambda x: x.expand(2, 3, 4) * x.sum(),
        lambda x: x.expand(2, 3, 4) * x.sum(),
        normal(3, 1),
    ),
    HvpCase(
        "getitem_slice",
        lambda x: x[1:, ::2] * x[:2, 1::2],
        lambda x: x[1:, ::2] * x[:2, 1::2],
        normal(3, 4),
    ),
    HvpCase(
        "getitem_repeated",
        lambda x: x[INDEX] * x[REVERSED],
        lambda x: x[INDEX] * x[REVERSED],
        normal(3, 4),
    ),
    HvpCase(
        "sum_dim",
        lambda x: x.sum(dim=1) * x.sum(dim=(0, 1), keepdim=True).reshape(1),
        lambda x: x.sum(dim=1) * x.sum(dim=(0, 1), keepdim=True).reshape(1),
        normal(3, 4),
    ),
    HvpCase("sum_all", lambda x: x.sum() * x, lambda x: x.sum() * x, normal(3, 4)),
    HvpCase(
        "matmul",
        lambda x, y: x @ y,
        lambda x, y: x @ y,
        lambda r: [r.normal(size=(3, 4)), r.normal(size=(4, 2))],
        third=True,
    ),
    HvpCase(
        "matmul_batched",
        lambda x, y: x @ y,
        lambda x, y: x @ y,
        lambda r: [r.normal(size=(2, 1, 3, 4)), r.normal(size=(3, 4, 2))],
    ),
    HvpCase(
        "matmul_vector",
        lambda x, y: (x @ y) * (y @ x.T),
        lambda x, y: (x @ y) * (y @ x.T),
        lambda r: [r.normal(size=(3, 4)), r.normal(size=4)],
    ),
    HvpCase(
        "linear",
        lambda x, w, b: npgrad.linear(x, w, b),
        lambda x, w, b: tf().linear(x, w, b),
        lambda r: [r.normal(size=(5, 4)), r.normal(size=(3, 4)), r.normal(size=3)],
        third=True,
    ),
    HvpCase(
        "einsum",
        lambda x, y: npgrad.einsum("bij,jk->bik", x, y),
        lambda x, y: torch_module().einsum("bij,jk->bik", x, y),
        lambda r: [r.normal(size=(2, 3, 4)), r.normal(size=(4, 2))],
    ),
    HvpCase(
        "einsum_diagonal",
        lambda x, y: npgrad.einsum("ii,i->i", x, y),
        lambda x, y: torch_module().einsum("ii,i->i", x, y),
        lambda r: [r.normal(size=(3, 3)), r.normal(size=3)],
    ),
    HvpCase(
        "einsum_ellipsis",
        lambda x, y: npgrad.einsum("...i,...i->...", x, y),
        lambda x, y: torch_module().einsum("...i,...i->...", x, y),
        lambda r: [r.normal(size=(2, 3)), r.normal(size=(1, 3))],
    ),
    HvpCase(
        "stack",
        lambda x, y: npgrad.stack([x, y * x], dim=1),
        lambda x, y: torch_module().stack([x, y * x], dim=1),
        lambda r: [r.normal(size=(3, 4)), r.normal(size=(3, 4))],
    ),
    HvpCase(
        "concatenate",
        lambda x, y: npgrad.concatenate([x, y, x * y[:, :1]], dim=-1),
        lambda x, y: torch_module().cat([x, y, x * y[:, :1]], dim=-1),
        lambda r: [r.normal(size=(3, 4)), r.normal(size=(3, 2))],
    ),
    HvpCase(
        "where",
        lambda x, y: npgrad.where(x > 0, x * y, y),
        lambda x, y: torch_module().where(x > 0, x * y, y),
        lambda r: [away_from_zero(r, 3, 4), r.normal(size=4)],
    ),
    HvpCase(
        "cross_entropy",
        lambda x: npgrad.cross_entropy(x, LABELS),
        lambda x: tf().cross_entropy(x, torch_module().from_numpy(LABELS), reduction="none"),
        normal(5, 4),
        third=True,
    ),
    HvpCase(
        "cross_entropy_mean",
        lambda x: npgrad.cross_entropy(x * x, LABELS, reduction="mean"),
        lambda x: tf().cross_entropy(x * x, torch_module().from_numpy(LABELS), reduction="mean"),
        normal(5, 4),
    ),
    HvpCase(
        "conv2d",
        lambda x, w, b: npgrad.conv2d(x, w, b, stride=2, padding=1),
        lambda x, w, b: tf().conv2d(x, w, b, stride=2, padding=1),
        lambda r: [r.normal(size=(2, 2, 5, 5)), r.normal(size=(3, 2, 3, 3)), r.normal(size=3)],
        third=True,
    ),
    HvpCase(
        "conv2d_rect",
        lambda x, w: npgrad.conv2d(x, w, None, stride=(1, 2), padding=(0, 1)),
        lambda x, w: tf().conv2d(x, w, None, stride=(1, 2), padding=(0, 1)),
        lambda r: [r.normal(size=(1, 2, 4, 5)), r.normal(size=(2, 2, 2, 3))],
    ),
    HvpCase(
        "max_pool2d",
        lambda x: npgrad.max_pool2d(x * x, 3, stride=1, padding=1),
        lambda x: tf().max_pool2d(x * x, 3, stride=1, padding=1),
        lambda r: [distinct(r, 2, 2, 4, 4) + 0.05],
    ),
    HvpCase(
        "avg_pool2d",
        lambda x: npgrad.avg_pool2d(x * x, 2, stride=1, padding=1),
        lambda x: tf().avg_pool2d(x * x, 2, stride=1, padding=1),
        normal(2, 2, 4, 4),
    ),
    HvpCase(
        "adaptive_avg_pool2d",
        lambda x: npgrad.adaptive_avg_pool2d(x * x, 2),
        lambda x: tf().adaptive_avg_pool2d(x * x, 2),
        normal(2, 2, 4, 4),
    ),
    HvpCase(
        "batch_norm_train",
        lambda x, w, b: npgrad.batch_norm(x, None, None, w, b, training=True),
        lambda x, w, b: tf().batch_norm(x, None, None, w, b, training=True),
        lambda r: [r.normal(size=(4, 3, 2, 2)), r.normal(size=3), r.normal(size=3)],
        third=True,
        theirs_third=lambda x, w, b: torch_batch_norm_from_primitives(x, w, b),
    ),
    HvpCase(
        "batch_norm_eval",
        lambda x, w, b, mean, var: npgrad.batch_norm(x, mean, var, w, b),
        lambda x, w, b, mean, var: tf().batch_norm(x, mean, var, w, b, training=False),
        lambda r: [
            r.normal(size=(4, 3, 2)),
            r.normal(size=3),
            r.normal(size=3),
            r.normal(size=3),
            positive(r, 3),
        ],
        wrt=(0, 1, 2),
    ),
]


def torch_batch_norm_from_primitives(x: Any, weight: Any, bias: Any, eps: float = 1e-5) -> Any:
    """Training-mode batch norm from PyTorch primitives.

    PyTorch's fused batch norm gets derivatives of order 3 and up wrong in training
    mode (pytorch/pytorch#186256: its double backward treats the batch statistics as
    constants), so third derivatives are compared with this decomposition instead.
    """
    axes = (0, *range(2, x.ndim))
    shape = (1, -1, *([1] * (x.ndim - 2)))
    centred = x - x.mean(dim=axes, keepdim=True)
    variance = (centred * centred).mean(dim=axes, keepdim=True)
    return centred / (variance + eps).sqrt() * weight.reshape(shape) + bias.reshape(shape)


def relative_error(ours: Arr, theirs: Arr) -> float:
    """The largest absolute difference over the largest absolute reference value."""
    scale = float(np.max(np.abs(theirs), initial=0.0))
    difference = float(np.max(np.abs(ours - theirs), initial=0.0))
    return difference / scale if scale > 0 else difference


def hvp_errors(case: HvpCase, seed: int = 0) -> tuple[float, float]:
    """The largest relative errors of the first gradients and of the HVPs against PyTorch."""
    torch = require_torch()
    rng = np.random.default_rng(seed)
    arrays = case.inputs(rng)
    wrt = case.wrt if case.wrt is not None else tuple(range(len(arrays)))
    ours = [Tensor(a.copy(), requires_grad=i in wrt) for i, a in enumerate(arrays)]
    theirs = [torch.tensor(a, requires_grad=i in wrt) for i, a in enumerate(arrays)]
    out, torch_out = case.ours(*ours), case.theirs(*theirs)
    weights = rng.normal(size=out.shape)
    loss = (out * out * weights).sum()
    torch_loss = (torch_out * torch_out * torch.from_numpy(weights)).sum()
    leaves = [ours[i] for i in wrt]
    torch_leaves = [theirs[i] for i in wrt]
    grads = npgrad.grad(loss, leaves, create_graph=True)
    torch_grads = torch.autograd.grad(torch_loss, torch_leaves, create_graph=True)
    first = max(
        relative_error(g.array, to_numpy(t)) for g, t in zip(grads, torch_grads, strict=True)
    )
    vectors = [rng.normal(size=leaf.shape) for leaf in leaves]
    dot = sum(((g * v).sum() for g, v in zip(grads, vectors, strict=True)), Tensor(0.0))
    torch_dot = sum(
        (g * torch.from_numpy(v)).sum() for g, v in zip(torch_grads, vectors, strict=True)
    )
    products = npgrad.grad(dot, leaves, allow_unused=True)
    torch_products = torch.autograd.grad(
        torch_dot, torch_leaves, allow_unused=True, materialize_grads=True
    )
    second = max(
        relative_error(p.array, to_numpy(t)) for p, t in zip(products, torch_products, strict=True)
    )
    return first, second


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_first_gradients_and_hessian_vector_products_match_pytorch(case: HvpCase) -> None:
    first, second = hvp_errors(case)
    assert first < 1e-10, (
        f"{case.name}: the first gradients differ from PyTorch's (relative {first:.2e})"
    )
    assert second < 1e-9, (
        f"{case.name}: the Hessian-vector products differ from PyTorch's (relative {second:.2e})"
    )


def third_derivative(
    fn: Callable[..., Any],
    grad: Callable[..., Sequence[Any]],
    leaves: list[Any],
    vectors: list[Any],
) -> list[Any]:
    """The gradient of ``sum(d/dx (sum(d/dx L . v1)) . v2)``: a third derivative of ``L``."""
    loss = fn(*leaves)
    first = grad(loss, leaves, create_graph=True)
    dot = sum((g * v).sum() for g, v in zip(first, vectors[0], strict=True))
    second = grad(dot, leaves, create_graph=True)
    dot2 = sum((g * v).sum() for g, v in zip(second, vectors[1], strict=True))
    return list(grad(dot2, leaves, allow_unused=True))


@pytest.mark.parametrize("case", [case for case in CASES if case.third], ids=lambda case: case.name)
def test_third_derivatives_match_pytorch(case: HvpCase) -> None:
    torch = require_torch()
    rng = np.random.default_rng(1)
    arrays = case.inputs(rng)
    weights = rng.normal(size=case.ours(*[Tensor(a) for a in arrays]).shape)
    vectors = [[rng.normal(size=a.shape) for a in arrays] for _ in range(2)]

    def ours_loss(*xs: Tensor) -> Tensor:
        out = case.ours(*xs)
        return (out * out * out * weights).sum()

    reference = case.theirs_third or case.theirs

    def theirs_loss(*xs: Any) -> Any:
        out = reference(*xs)
        return (out * out * out * torch.from_numpy(weights)).sum()

    def torch_grad(*args: Any, **kwargs: Any) -> Any:
        if "allow_unused" in kwargs:
            kwargs["materialize_grads"] = True
        return torch.autograd.grad(*args, **kwargs)

    ours = third_derivative(
        ours_loss,
        npgrad.grad,
        [Tensor(a.copy(), requires_grad=True) for a in arrays],
        [[Tensor(v) for v in vs] for vs in vectors],
    )
    theirs = third_derivative(
        theirs_loss,
        torch_grad,
        [torch.tensor(a, requires_grad=True) for a in arrays],
        [[torch.from_numpy(v) for v in vs] for vs in vectors],
    )
    for mine, reference in zip(ours, theirs, strict=True):
        error = relative_error(mine.array, to_numpy(reference))
        assert error < 1e-9, f"{case.name}: third derivatives differ from PyTorch's ({error:.2e})"
