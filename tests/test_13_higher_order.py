"""Step 13: recorded backward passes (``create_graph``), ``grad``, ``hvp`` and ``jvp``.

What PyTorch users rely on: ``grad`` returns gradients and leaves ``.grad`` alone;
with ``create_graph=True`` the gradients are recorded and can be differentiated
again, any number of times; ``backward(create_graph=True)`` accumulates into
``.grad`` as PyTorch does; the functional helpers match
``torch.autograd.functional``; an in-place change to a value the recorded
backward graph reads still raises; and without ``create_graph`` nothing is
recorded.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import npgrad
from npgrad import (
    GRAPH_BACK_FUNCS,
    InplaceError,
    MissingGraphBackwardError,
    Tensor,
    grad,
    hvp,
    jvp,
)
from npgrad.higher_order.broadcasting import unbroadcast_to
from shared.testing.parity import require_torch, to_numpy
from shared.testing.tensors import grad_of, leaf

pytestmark = pytest.mark.step(13)


# --- grad ------------------------------------------------------------------------------


def test_grad_returns_the_gradients_and_leaves_dot_grad_alone() -> None:
    x = leaf([1.0, 2.0, 3.0])
    y = leaf([0.5, -1.0, 2.0])
    (gx, gy) = grad((x * y).sum(), [x, y])
    assert_array_equal(gx.array, [0.5, -1.0, 2.0])
    assert_array_equal(gy.array, [1.0, 2.0, 3.0])
    assert x.grad is None, "grad() must not write into .grad"
    assert y.grad is None, "grad() must not write into .grad"
    assert gx.recipe is None, "without create_graph the gradient is a constant"


def test_grad_takes_a_single_tensor_and_a_starting_gradient() -> None:
    x = leaf([1.0, 2.0])
    (gx,) = grad(x * x, x, grad_outputs=np.array([3.0, -1.0]))
    assert_array_equal(gx.array, [6.0, -4.0])


def test_grad_with_respect_to_an_intermediate_tensor() -> None:
    x = leaf([1.0, 2.0])
    hidden = x * 3.0
    (g_hidden, g_x) = grad((hidden * hidden).sum(), [hidden, x])
    assert_array_equal(g_hidden.array, [6.0, 12.0])
    assert_array_equal(g_x.array, [18.0, 36.0])


def test_grad_sums_over_several_outputs() -> None:
    x = leaf([1.0, 2.0])
    (g,) = grad([x.sum(), (x * x).sum()], x)
    assert_array_equal(g.array, [3.0, 5.0])


def test_an_unused_input_raises_unless_allowed() -> None:
    x, unused = leaf([1.0]), leaf([[2.0, 3.0]])
    with pytest.raises(ValueError, match="do not depend on input 1"):
        grad(x.sum(), [x, unused])
    _, g_unused = grad(x.sum(), [x, unused], allow_unused=True)
    assert_array_equal(g_unused.array, [[0.0, 0.0]])


def test_an_input_that_does_not_require_grad_raises() -> None:
    x = leaf([1.0])
    with pytest.raises(ValueError, match="input 1 does not require grad"):
        grad(x.sum(), [x, Tensor([1.0])])


def test_a_starting_gradient_of_the_wrong_shape_raises() -> None:
    x = leaf([1.0, 2.0])
    with pytest.raises(ValueError, match=r"shape \(3,\) but the output has shape \(2,\)"):
        grad(x * 2.0, x, grad_outputs=np.ones(3))


# --- create_graph ----------------------------------------------------------------------


def test_gradients_of_gradients_to_any_order() -> None:
    x = leaf([1.0, 2.0, 3.0])
    current = (x * x * x * x * x).sum()  # derivatives: 5x^4, 20x^3, 60x^2, 120x, 120
    expected = [5 * x.array**4, 20 * x.array**3, 60 * x.array**2, 120 * x.array]
    for order, values in enumerate(expected, start=1):
        (g,) = grad(current, x, create_graph=True)
        assert_allclose(g.array, values, rtol=1e-12, atol=0)
        assert g.requires_grad, f"the derivative of order {order} must be recorded"
        current = g.sum()
    (fifth,) = grad(current, x, create_graph=True)
    assert_array_equal(fifth.array, np.full(3, 120.0))
    assert not fifth.requires_grad, "a constant derivative is a constant, as in PyTorch"


def test_a_starting_gradient_that_requires_grad_takes_part() -> None:
    x = leaf([1.0, 2.0])
    u = leaf([3.0, 5.0])
    (g,) = grad(x * x, x, grad_outputs=u, create_graph=True)  # 2 x u
    (g_u,) = grad(g.sum(), u)
    assert_array_equal(g_u.array, [2.0, 4.0])


@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True:UserWarning")
def test_backward_with_create_graph_accumulates_into_grad_like_pytorch() -> None:
    torch = require_torch()
    values = np.array([1.0, -2.0, 0.5])
    x = leaf(values)
    t = torch.tensor(values, requires_grad=True)
    (x * x * x).sum().backward(create_graph=True)
    (t * t * t).sum().backward(create_graph=True)
    assert x.grad is not None
    assert x.grad.requires_grad, "with create_graph .grad is a recorded tensor"
    assert_allclose(grad_of(x), to_numpy(t.grad), rtol=1e-15, atol=0)
    x.grad.sum().backward()  # 3x^2 + 6x: differentiating .grad adds to it
    t.grad.sum().backward()
    assert_allclose(grad_of(x), to_numpy(t.grad), rtol=1e-15, atol=0)
    assert_allclose(grad_of(x), 3 * values**2 + 6 * values, rtol=1e-15, atol=0)


def test_backward_with_create_graph_twice_adds_recorded_gradients() -> None:
    x = leaf([2.0])
    (x * x).sum().backward(create_graph=True)
    (x * x * x).sum().backward(create_graph=True)  # .grad = 2x + 3x^2, still recorded
    assert x.grad is not None
    assert_array_equal(grad_of(x), [16.0])
    (g2,) = grad(x.grad.sum(), x)
    assert_array_equal(g2.array, [2.0 + 12.0])


def test_recorded_gradients_take_their_inputs_dtype_like_backward() -> None:
    # float32 weights meeting a float64 constant: backward() stores float32, so must the others
    scale = Tensor(np.array([0.5, 1.5, 2.5]))

    def weights() -> Tensor:
        return Tensor(np.array([1.0, 2.0, 3.0], dtype=np.float32), requires_grad=True)

    def loss(w: Tensor) -> Tensor:
        return (w * w * scale).sum()

    w = weights()
    loss(w).backward()
    plain = grad_of(w)
    assert plain.dtype == np.float32
    w = weights()
    loss(w).backward(create_graph=True)
    assert w.grad is not None
    assert w.grad.array.dtype == np.float32
    assert_allclose(w.grad.array, plain)
    (second,) = npgrad.grad(w.grad.sum(), [w])  # through the recorded cast
    assert second.array.dtype == np.float32
    assert_allclose(second.array, 2 * scale.array, rtol=1e-6)
    for create_graph in (False, True):
        (first,) = npgrad.grad(loss(w), [w], create_graph=create_graph)
        assert first.array.dtype == np.float32
        assert_allclose(first.array, plain)


def test_backward_with_create_graph_into_a_grad_of_the_wrong_shape_raises() -> None:
    w = leaf([[1.0, 2.0], [3.0, 4.0]])
    w.grad = Tensor(np.zeros((1, 2)))  # would broadcast silently against (2, 2)
    with pytest.raises(RuntimeError, match=r"shape \(2, 2\) has shape \(1, 2\)"):
        (w * w).sum().backward(create_graph=True)


@pytest.mark.parametrize(("grad_shape", "shape"), [((4, 1, 3), (2, 1, 1)), ((3,), (2, 3))])
def test_unbroadcast_to_a_shape_that_does_not_broadcast_raises_like_unbroadcast(
    grad_shape: tuple[int, ...], shape: tuple[int, ...]
) -> None:
    with pytest.raises(ValueError, match=r"cannot unbroadcast"):
        unbroadcast_to(Tensor(np.ones(grad_shape)), shape)
    with pytest.raises(ValueError, match=r"cannot unbroadcast"):
        npgrad.unbroadcast(np.ones(grad_shape), np.ones(shape))


def test_without_create_graph_nothing_is_recorded() -> None:
    x = leaf([1.0, 2.0])
    (x * x).sum().backward()
    assert x.grad is not None
    assert x.grad.recipe is None
    assert not x.grad.requires_grad


def test_the_first_order_path_never_calls_a_twin(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(back_fn: object) -> object:
        raise AssertionError("the first-order path looked up a Tensor twin")

    monkeypatch.setattr(GRAPH_BACK_FUNCS, "get_twin", refuse)
    x = leaf(np.ones((2, 3)))
    npgrad.cross_entropy(x * 2.0, np.array([0, 2])).sum().backward()
    grad(x.exp().sum(), x)
    assert x.grad is not None


def test_a_backward_function_without_a_twin_names_itself() -> None:
    def cube(x: np.ndarray) -> np.ndarray:
        return np.asarray(x**3)

    def cube_back(grad_out: np.ndarray, out: np.ndarray, x: np.ndarray) -> np.ndarray:
        return np.asarray(grad_out * 3 * x**2)

    npgrad.BACK_FUNCS.add_back_func(cube, 0, cube_back, reads=(0,))
    x = leaf([2.0])
    out = npgrad.wrap_forward_fn(cube)(x).sum()
    (first,) = grad(out, x)  # the first order needs no twin
    assert_array_equal(first.array, [12.0])
    with pytest.raises(MissingGraphBackwardError, match="cube_back has no twin"):
        grad(out, x, create_graph=True)


# --- in-place safety -------------------------------------------------------------------


def test_an_inplace_change_to_a_value_the_recorded_gradient_reads_raises() -> None:
    x = leaf([1.0, 2.0])
    hidden = x * 1.0
    out = hidden.exp()
    (g,) = grad(out.sum(), x, create_graph=True)  # reads exp's output
    with npgrad.no_grad():
        out.add_(1.0)
    with pytest.raises(InplaceError, match="modified by an in-place operation"):
        grad(g.sum(), x)


def test_an_inplace_change_before_the_recorded_backward_raises() -> None:
    x = leaf([1.0, 2.0])
    hidden = x * 1.0
    out = (hidden * hidden).sum()
    hidden.add_(1.0)
    with pytest.raises(InplaceError, match="modified by an in-place operation"):
        grad(out, x, create_graph=True)


def test_recorded_inplace_operations_differentiate_twice() -> None:
    torch = require_torch()
    values = np.array([0.5, -1.0, 2.0])
    x, t = leaf(values), torch.tensor(values, requires_grad=True)
    ours = ((x * x).add_(x * 3.0, alpha=0.5) * 1.0).relu_()
    theirs = ((t * t).add_(t * 3.0, alpha=0.5) * 1.0).relu_()
    (g,) = grad((ours * ours).sum(), x, create_graph=True)
    (tg,) = torch.autograd.grad((theirs * theirs).sum(), t, create_graph=True)
    (h,) = grad(g.sum(), x)
    (th,) = torch.autograd.grad(tg.sum(), t)
    assert_allclose(h.array, to_numpy(th), rtol=1e-13, atol=0)


# --- hvp and jvp -----------------------------------------------------------------------


def rosenbrock(x: Tensor, y: Tensor) -> Tensor:
    a = x[1:] - x[:-1] * x[:-1]
    return (a * a * 100.0 + (1.0 - x[:-1]) * (1.0 - x[:-1])).sum() + (y * y * x[:2]).sum()


def test_hvp_matches_pytorch() -> None:
    torch = require_torch()
    rng = np.random.default_rng(0)
    xs = [rng.normal(size=4), rng.normal(size=2)]
    vs = [rng.normal(size=4), rng.normal(size=2)]
    value, products = hvp(rosenbrock, [Tensor(a) for a in xs], [Tensor(v) for v in vs])
    t_value, t_products = torch.autograd.functional.hvp(
        rosenbrock, tuple(torch.from_numpy(a) for a in xs), tuple(torch.from_numpy(v) for v in vs)
    )
    assert_allclose(value.array, to_numpy(t_value), rtol=1e-14, atol=0)
    for ours, theirs in zip(products, t_products, strict=True):
        assert_allclose(ours.array, to_numpy(theirs), rtol=1e-12, atol=1e-12)


def test_hvp_of_a_single_tensor_returns_a_single_tensor() -> None:
    x = Tensor(np.array([1.0, 2.0]))
    value, product = hvp(lambda t: (t * t * t).sum(), x, Tensor(np.array([1.0, 1.0])))
    assert isinstance(product, Tensor)
    assert_array_equal(product.array, [6.0, 12.0])
    assert_array_equal(value.array, 9.0)
    assert not x.requires_grad, "hvp differentiates copies: the input is left alone"


def test_hvp_of_a_linear_function_is_zero() -> None:
    _, product = hvp(lambda t: (t * 2.0).sum(), Tensor(np.ones(3)), Tensor(np.ones(3)))
    assert isinstance(product, Tensor)
    assert_array_equal(product.array, np.zeros(3))


def test_jvp_matches_pytorch() -> None:
    torch = require_torch()
    rng = np.random.default_rng(1)
    x, w, v_x, v_w = (rng.normal(size=s) for s in [(2, 2, 5, 5), (3, 2, 3, 3)] * 2)

    def ours(a: Tensor, b: Tensor) -> Tensor:
        return npgrad.max_pool2d(npgrad.conv2d(a, b, None, 1, 1).exp(), 2)

    def theirs(a: object, b: object) -> object:
        functional = torch.nn.functional
        return functional.max_pool2d(functional.conv2d(a, b, None, 1, 1).exp(), 2)

    value, product = jvp(ours, [Tensor(x), Tensor(w)], [Tensor(v_x), Tensor(v_w)])
    t_value, t_product = torch.autograd.functional.jvp(
        theirs,
        (torch.from_numpy(x), torch.from_numpy(w)),
        (torch.from_numpy(v_x), torch.from_numpy(v_w)),
    )
    assert_allclose(value.array, to_numpy(t_value), rtol=1e-13, atol=0)
    assert_allclose(product.array, to_numpy(t_product), rtol=1e-11, atol=1e-11)


def test_jvp_of_a_float32_function_is_float32() -> None:
    x = Tensor(np.array([0.5, 1.0, 2.0], dtype=np.float32))
    out, product = jvp(lambda t: (t * t).exp(), x, Tensor(np.ones(3, dtype=np.float32)))
    assert out.array.dtype == product.array.dtype == np.float32
    assert_allclose(product.array, 2 * x.array * np.exp(x.array * x.array), rtol=1e-6)


def test_hvp_and_jvp_check_their_vectors() -> None:
    x = Tensor(np.ones(3))
    with pytest.raises(ValueError, match=r"v\[0\] has shape \(2,\) but input 0 has shape \(3,\)"):
        hvp(lambda t: t.sum(), x, Tensor(np.ones(2)))
    with pytest.raises(ValueError, match="one-element output"):
        hvp(lambda t: t * 2.0, x, Tensor(np.ones(3)))
    with pytest.raises(ValueError, match="2 input"):
        jvp(lambda a, b: a + b, [x, x], [x])
