"""Step 12: SGD with momentum, dampening, Nesterov and weight decay, as torch.optim.SGD."""

from typing import Any

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from npgrad import SGD, Conv2d, Parameter, ResNet, Tensor, cross_entropy, is_grad_enabled
from shared.testing.parity import require_torch, to_numpy

pytestmark = pytest.mark.step(12)

SETTINGS = [
    {"momentum": 0.9},
    {"weight_decay": 0.1},
    {"momentum": 0.9, "weight_decay": 5e-4},
    {"momentum": 0.8, "dampening": 0.3, "weight_decay": 0.01},
    {"momentum": 0.9, "nesterov": True},
    {"momentum": 0.5, "nesterov": True, "weight_decay": 0.2},
    {},
]


def settings_id(settings: dict[str, Any]) -> str:
    return ",".join(f"{key}={value}" for key, value in settings.items()) or "plain"


def param(values: list[float], dtype: type = np.float64) -> Parameter:
    return Parameter(Tensor(np.array(values, dtype=dtype)))


def test_momentum_by_hand() -> None:
    p = param([1.0])
    optimizer = SGD([p], lr=0.1, momentum=0.5)
    for grad, expected in [(1.0, 0.9), (1.0, 0.75), (0.0, 0.675)]:
        # buffer: 1, then 0.5 * 1 + 1 = 1.5, then 0.5 * 1.5 + 0 = 0.75
        p.grad = Tensor(np.array([grad]))
        optimizer.step()
        assert_allclose(p.array, [expected], rtol=1e-15)


def test_weight_decay_by_hand() -> None:
    p = param([2.0, -4.0])
    p.grad = Tensor(np.array([1.0, 1.0]))
    SGD([p], lr=0.5, weight_decay=0.25).step()
    # g = grad + 0.25 * p = [1.5, 0]; p - 0.5 * g
    assert_allclose(p.array, [1.25, -4.0], rtol=1e-15)


def test_nesterov_by_hand() -> None:
    p = param([0.0])
    optimizer = SGD([p], lr=1.0, momentum=0.5, nesterov=True)
    p.grad = Tensor(np.array([1.0]))
    optimizer.step()  # buffer 1; update g + 0.5 * buffer = 1.5
    assert_allclose(p.array, [-1.5], rtol=1e-15)
    optimizer.step()  # buffer 0.5 + 1 = 1.5; update 1 + 0.75 = 1.75
    assert_allclose(p.array, [-3.25], rtol=1e-15)


@pytest.mark.parity
@pytest.mark.parametrize("settings", SETTINGS, ids=settings_id)
def test_sgd_matches_torch_step_for_step(settings: dict[str, Any]) -> None:
    torch = require_torch()
    rng = np.random.default_rng(0)
    shapes = [(3, 4), (4,), (2, 2, 2)]
    starts = [rng.normal(size=shape) for shape in shapes]
    ours = [Parameter(Tensor(start.copy())) for start in starts]
    theirs = [torch.tensor(start.copy(), requires_grad=True) for start in starts]
    optimizer = SGD(ours, lr=0.05, **settings)
    reference = torch.optim.SGD(theirs, lr=0.05, **settings)
    for step in range(6):
        for index, (mine, other) in enumerate(zip(ours, theirs, strict=True)):
            if step == 2 and index == 1:  # no gradient this step: both skip it
                mine.grad, other.grad = None, None
                continue
            grad = rng.normal(size=mine.shape)
            mine.grad, other.grad = Tensor(grad.copy()), torch.tensor(grad.copy())
        optimizer.step()
        reference.step()
        for index, (mine, other) in enumerate(zip(ours, theirs, strict=True)):
            assert_allclose(
                mine.array, to_numpy(other), rtol=1e-13, atol=1e-15, err_msg=f"{step}, {index}"
            )
            buffer = reference.state[other].get("momentum_buffer")
            ours_buffer = optimizer.momentum_buffers[index]
            if buffer is None:
                assert ours_buffer is None
            else:
                assert ours_buffer is not None
                assert_allclose(ours_buffer, to_numpy(buffer), rtol=1e-13, atol=1e-15)


@pytest.mark.parity
def test_training_a_convolutional_net_with_momentum_matches_torch() -> None:
    torch = require_torch()
    rng = np.random.default_rng(0)
    conv = Conv2d(1, 2, 3, rng=rng)
    for p in conv.parameters():
        p.array = p.array.astype(np.float64)
    weight = torch.tensor(conv.weight.array.copy(), requires_grad=True)
    assert conv.bias is not None
    bias = torch.tensor(conv.bias.array.copy(), requires_grad=True)
    optimizer = SGD(conv.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-2)
    reference = torch.optim.SGD([weight, bias], lr=0.1, momentum=0.9, weight_decay=1e-2)
    for _ in range(4):
        x = rng.normal(size=(3, 1, 5, 5))
        labels = rng.integers(0, 2, size=3)
        optimizer.zero_grad()
        reference.zero_grad()
        logits = conv(Tensor(x)).sum(dim=(2, 3))
        loss = cross_entropy(logits, labels).sum() / 3
        loss.backward()
        torch_logits = torch.nn.functional.conv2d(torch.tensor(x), weight, bias).sum(dim=(2, 3))
        torch_loss = torch.nn.functional.cross_entropy(torch_logits, torch.tensor(labels))
        torch_loss.backward()
        assert_allclose(loss.item(), torch_loss.item(), rtol=1e-12)
        optimizer.step()
        reference.step()
        assert_allclose(conv.weight.array, to_numpy(weight), rtol=1e-12, atol=1e-14)
        assert_allclose(conv.bias.array, to_numpy(bias), rtol=1e-12, atol=1e-14)


def test_a_step_keeps_float32_and_updates_in_place() -> None:
    p = param([1.0, 2.0], dtype=np.float32)
    before = p.array
    optimizer = SGD([p], lr=0.1, momentum=0.9, weight_decay=0.5)
    for _ in range(2):
        p.grad = Tensor(np.array([0.5, 0.5], dtype=np.float32))
        optimizer.step()
    assert p.array is before
    assert p.array.dtype == np.float32
    buffer = optimizer.momentum_buffers[0]
    assert buffer is not None
    assert buffer.dtype == np.float32


def test_the_buffer_is_a_copy_not_the_gradient() -> None:
    p = param([1.0])
    grad = Tensor(np.array([1.0]))
    p.grad = grad
    optimizer = SGD([p], lr=0.1, momentum=0.9)
    optimizer.step()
    optimizer.step()  # the buffer grows in place: the gradient must not
    assert_array_equal(grad.array, [1.0])


def test_a_parameter_without_gradient_keeps_its_value_and_buffer() -> None:
    a, b = param([1.0]), param([1.0])
    optimizer = SGD([a, b], lr=0.1, momentum=0.9, weight_decay=1.0)
    a.grad = Tensor(np.array([1.0]))
    optimizer.step()
    assert_array_equal(b.array, [1.0])  # weight decay alone does not move it
    assert optimizer.momentum_buffers[1] is None


def test_a_step_records_nothing() -> None:
    model = ResNet(channels=(2, 2, 2), rng=np.random.default_rng(0))
    x = Tensor(np.random.default_rng(1).normal(size=(2, 1, 28, 28)).astype(np.float32))
    cross_entropy(model(x), np.array([0, 1])).sum().backward()
    SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4).step()
    assert is_grad_enabled()
    for p in model.parameters():
        assert p.is_leaf
        assert p.requires_grad


@pytest.mark.parametrize(
    ("settings", "pattern"),
    [
        ({"momentum": -0.1}, r"momentum must be a non-negative number, got momentum=-0.1"),
        ({"weight_decay": float("nan")}, r"weight_decay must be a non-negative number"),
        ({"dampening": -1.0}, r"dampening must be a non-negative number"),
        ({"nesterov": True}, r"Nesterov momentum needs a momentum above 0 and zero dampening"),
        (
            {"nesterov": True, "momentum": 0.9, "dampening": 0.1},
            r"needs a momentum above 0 and zero dampening, got momentum=0.9, dampening=0.1",
        ),
    ],
)
def test_bad_settings_raise(settings: dict[str, Any], pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        SGD([param([1.0])], lr=0.1, **settings)


def test_repr_names_the_settings_that_are_not_defaults() -> None:
    params = [param([1.0]), param([2.0])]
    assert repr(SGD(params, lr=0.1)) == "SGD(lr=0.1, 2 parameters)"
    assert (
        repr(SGD(params, lr=0.1, momentum=0.9, weight_decay=5e-4))
        == "SGD(lr=0.1, momentum=0.9, weight_decay=0.0005, 2 parameters)"
    )
