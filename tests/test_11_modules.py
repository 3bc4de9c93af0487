"""Step 11: the layers built on convolution and pooling, Sequential, and a small CNN.

The CNN's PyTorch comparison builds the same network from ``torch.nn`` layers with the
same names, loads our ``state_dict()`` into it, so the keys must be PyTorch's, and
compares the output and every gradient.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from npgrad import (
    CNN,
    AdaptiveAvgPool2d,
    AvgPool2d,
    Conv2d,
    Flatten,
    Linear,
    MaxPool2d,
    Parameter,
    ReLU,
    Sequential,
    Tensor,
    adaptive_avg_pool2d,
    avg_pool2d,
    conv2d,
    cross_entropy,
    max_pool2d,
)
from shared.testing.parity import require_torch, to_numpy
from shared.testing.strategies import Arr

pytestmark = pytest.mark.step(11)


def ids(items: Iterator[object] | list[object]) -> list[int]:
    return [id(item) for item in items]


def images(seed: int, n: int = 4, dtype: type = np.float32) -> Arr:
    return np.random.default_rng(seed).normal(size=(n, 1, 28, 28)).astype(dtype)


# --- Conv2d -------------------------------------------------------------------------------------


def test_conv2d_layer_shapes_dtype_and_init_bounds() -> None:
    layer = Conv2d(3, 8, 5, rng=np.random.default_rng(0))
    assert layer.weight.shape == (8, 3, 5, 5)
    assert layer.bias is not None
    assert layer.bias.shape == (8,)
    bound = 1 / math.sqrt(3 * 5 * 5)
    for param in (layer.weight, layer.bias):
        assert isinstance(param, Parameter)
        assert param.array.dtype == np.float32
        assert np.all(np.abs(param.array) <= bound)
        assert np.abs(param.array).max() > 0.8 * bound  # spread over the whole range
    assert layer.kernel_size == (5, 5)
    assert layer.stride == (1, 1)
    assert layer.padding == (0, 0)


def test_conv2d_layer_is_reproducible_with_an_rng() -> None:
    first = Conv2d(2, 3, 3, rng=np.random.default_rng(5))
    second = Conv2d(2, 3, 3, rng=np.random.default_rng(5))
    for name, value in first.state_dict().items():
        assert_array_equal(value, second.state_dict()[name])


def test_conv2d_layer_draws_its_weights_with_uniform_from_its_rng() -> None:
    layer = Conv2d(2, 3, (3, 2), rng=np.random.default_rng(5))
    rng, bound = np.random.default_rng(5), 1 / math.sqrt(2 * 3 * 2)
    assert layer.bias is not None
    expected = rng.uniform(-bound, bound, (3, 2, 3, 2)).astype(np.float32)
    assert_array_equal(layer.weight.array, expected)
    assert_array_equal(layer.bias.array, rng.uniform(-bound, bound, 3).astype(np.float32))


def test_conv2d_layer_forward_is_conv2d() -> None:
    layer = Conv2d(2, 3, (3, 2), stride=(2, 1), padding=(1, 0), rng=np.random.default_rng(0))
    x = Tensor(np.random.default_rng(1).normal(size=(2, 2, 7, 6)).astype(np.float32))
    expected = conv2d(x, layer.weight, layer.bias, (2, 1), (1, 0))
    assert_array_equal(layer(x).array, expected.array)
    assert layer(x).shape == (2, 3, 4, 5)


def test_conv2d_layer_without_bias() -> None:
    layer = Conv2d(1, 2, 3, bias=False)
    assert layer.bias is None
    assert list(layer.state_dict()) == ["weight"]


@pytest.mark.parity
@pytest.mark.parametrize(
    ("args", "options"),
    [
        ((1, 16, 3), {"padding": 1, "bias": False}),
        ((3, 4, (3, 2)), {"stride": 2}),
        ((2, 2, 1), {"stride": (1, 2), "padding": (0, 1)}),
    ],
)
def test_conv2d_layer_repr_is_pytorchs(args: tuple[Any, ...], options: dict[str, Any]) -> None:
    torch = require_torch()
    assert repr(Conv2d(*args, **options)) == repr(torch.nn.Conv2d(*args, **options))


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        ((0, 2, 3), r"in_channels=0"),
        ((1, 0, 3), r"out_channels=0"),
        ((1, 2, 0), r"kernel_size=0"),
        ((1, 2, 3, 0), r"stride=0"),
        ((1, 2, 3, 1, -1), r"padding of at least 0, got -1"),
    ],
)
def test_conv2d_layer_of_bad_settings_raises(args: tuple[Any, ...], pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        Conv2d(*args)


# --- the pooling layers and Flatten -------------------------------------------------------


def test_pooling_layers_are_their_functions() -> None:
    x = Tensor(np.random.default_rng(0).normal(size=(2, 3, 6, 6)))
    assert_array_equal(MaxPool2d(2)(x).array, max_pool2d(x, 2, 2).array)
    assert_array_equal(MaxPool2d(3, 1, 1)(x).array, max_pool2d(x, 3, 1, 1).array)
    assert_array_equal(AvgPool2d(3, 2, 1)(x).array, avg_pool2d(x, 3, 2, 1).array)
    assert_array_equal(AdaptiveAvgPool2d(1)(x).array, adaptive_avg_pool2d(x, 1).array)
    assert repr(MaxPool2d(2)) == "MaxPool2d(kernel_size=2, stride=2, padding=0)"
    assert repr(AvgPool2d(3, 1, 1)) == "AvgPool2d(kernel_size=3, stride=1, padding=1)"
    assert repr(AdaptiveAvgPool2d(1)) == "AdaptiveAvgPool2d(output_size=1)"
    assert list(MaxPool2d(2).parameters()) == []


@pytest.mark.parametrize(
    ("start", "end", "shape"),
    [
        (1, -1, (2, 60)),
        (0, -1, (120,)),
        (1, 2, (2, 12, 5)),
        (2, 3, (2, 3, 20)),
        (-2, -1, (2, 3, 20)),
    ],
)
def test_flatten_merges_the_dimensions_from_start_to_end(
    start: int, end: int, shape: tuple[int, ...]
) -> None:
    x = Tensor(np.arange(120.0).reshape(2, 3, 4, 5), requires_grad=True)
    out = Flatten(start, end)(x)
    assert out.shape == shape
    assert_array_equal(out.array.ravel(), np.arange(120.0))
    out.sum().backward()
    assert x.grad is not None
    assert x.grad.shape == (2, 3, 4, 5)
    assert repr(Flatten()) == "Flatten(start_dim=1, end_dim=-1)"


def test_flatten_with_start_after_end_raises() -> None:
    with pytest.raises(ValueError, match=r"the start comes after the end"):
        Flatten(2, 1)(Tensor(np.ones((2, 3, 4))))


@pytest.mark.parametrize(
    ("shape", "start", "end", "expected"),
    [((), 0, -1, (1,)), ((3,), 0, -1, (3,)), ((), -1, 0, (1,))],
)
def test_flatten_of_few_dimensions_is_pytorchs(
    shape: tuple[int, ...], start: int, end: int, expected: tuple[int, ...]
) -> None:
    assert Flatten(start, end)(Tensor(np.ones(shape))).shape == expected


@pytest.mark.parametrize(
    ("shape", "start", "end", "pattern"),
    [
        ((), 1, -1, r"Flatten\(start_dim=1, end_dim=-1\) does not fit .* shape \(\).*\[-1, 0\]"),
        ((3,), 1, -1, r"shape \(3,\): both must lie in \[-1, 0\]"),
        ((2, 3), -3, -1, r"shape \(2, 3\): both must lie in \[-2, 1\]"),
        ((2, 3), 0, 2, r"shape \(2, 3\): both must lie in \[-2, 1\]"),
    ],
)
def test_flatten_of_a_dimension_the_input_lacks_raises(
    shape: tuple[int, ...], start: int, end: int, pattern: str
) -> None:
    with pytest.raises(ValueError, match=pattern):
        Flatten(start, end)(Tensor(np.ones(shape)))


# --- Sequential --------------------------------------------------------------------------------


def test_sequential_applies_its_modules_in_order_and_names_them_by_position() -> None:
    conv, relu, flatten = Conv2d(1, 2, 3, rng=np.random.default_rng(0)), ReLU(), Flatten()
    model = Sequential(conv, relu, flatten)
    assert len(model) == 3
    assert model[0] is conv
    assert model[-1] is flatten
    assert ids(list(model)) == ids([conv, relu, flatten])
    assert list(model.state_dict()) == ["0.weight", "0.bias"]
    x = Tensor(np.random.default_rng(1).normal(size=(2, 1, 4, 4)).astype(np.float32))
    assert_array_equal(model(x).array, flatten(relu(conv(x))).array)
    assert repr(model) == (
        "Sequential(\n"
        "  (0): Conv2d(1, 2, kernel_size=(3, 3), stride=(1, 1))\n"
        "  (1): ReLU()\n"
        "  (2): Flatten(start_dim=1, end_dim=-1)\n"
        ")"
    )


def test_an_empty_sequential_returns_its_input() -> None:
    x = Tensor(np.ones(3))
    assert Sequential()(x) is x
    assert len(Sequential()) == 0


def triple(v: Tensor) -> Tensor:
    return v * 3


@pytest.mark.parametrize(
    ("extra", "pattern"),
    [
        (ReLU, r"argument 1 is the class ReLU: pass an instance, ReLU\(\)"),
        (lambda v: v * 100, r"argument 1 is the function <lambda>: a Module's forward can call"),
        (triple, r"argument 1 is the function triple"),
        (3, r"argument 1 is a int: pass Module instances"),
    ],
)
def test_sequential_of_something_other_than_a_module_raises_naming_it(
    extra: object, pattern: str
) -> None:
    with pytest.raises(TypeError, match=r"Sequential takes Modules, but " + pattern):
        Sequential(Linear(2, 2), extra, ReLU())  # type: ignore[arg-type]  # on purpose


def test_sequential_index_out_of_range_raises() -> None:
    with pytest.raises(IndexError):
        Sequential(ReLU())[1]


# --- CNN -----------------------------------------------------------------------------------------


def test_cnn_shapes_dtype_parameters_and_gradients() -> None:
    model = CNN(rng=np.random.default_rng(0))
    x = Tensor(images(1, n=5))
    logits = model(x)
    assert logits.shape == (5, 10)
    assert logits.array.dtype == np.float32
    n_params = sum(param.array.size for param in model.parameters())
    assert n_params == (1 * 8 * 9 + 8) + (8 * 16 * 9 + 16) + (16 * 7 * 7 * 10 + 10)
    assert list(model.state_dict()) == [
        "features.0.weight",
        "features.0.bias",
        "features.3.weight",
        "features.3.bias",
        "fc.weight",
        "fc.bias",
    ]
    loss = cross_entropy(logits, np.arange(5) % 10).sum()
    loss.backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert param.grad.shape == param.shape, name
        assert param.grad.array.dtype == np.float32, name
        assert np.all(np.isfinite(param.grad.array)), name


def test_cnn_with_other_channels_and_classes() -> None:
    model = CNN(channels=(2, 3), num_classes=4, rng=np.random.default_rng(0))
    assert model(Tensor(images(0, n=2))).shape == (2, 4)
    assert model.fc.weight.shape == (4, 3 * 7 * 7)


def test_cnn_is_reproducible_with_an_rng() -> None:
    first = CNN(rng=np.random.default_rng(3)).state_dict()
    second = CNN(rng=np.random.default_rng(3)).state_dict()
    assert list(first) == list(second)
    for name, value in first.items():
        assert_array_equal(value, second[name], err_msg=name)


@pytest.mark.parametrize("shape", [(2, 784), (2, 28, 28), (2, 3, 28, 28), (2, 1, 32, 32)])
def test_cnn_of_the_wrong_input_shape_raises(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"shape \(N, 1, 28, 28\), got shape"):
        CNN()(Tensor(np.zeros(shape, dtype=np.float32)))


@pytest.mark.parity
def test_cnn_matches_pytorch() -> None:
    torch = require_torch()
    nn = torch.nn
    rng = np.random.default_rng(0)
    model = CNN(channels=(3, 4), rng=rng)
    for param in model.parameters():
        param.array = param.array.astype(np.float64)
    twin = nn.ModuleDict(
        {
            "features": nn.Sequential(
                nn.Conv2d(1, 3, 3, padding=1),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Conv2d(3, 4, 3, padding=1),
                nn.ReLU(),
                nn.MaxPool2d(2),
            ),
            "flatten": nn.Flatten(),
            "fc": nn.Linear(4 * 7 * 7, 10),
        }
    ).double()
    state = {name: torch.from_numpy(value) for name, value in model.state_dict().items()}
    twin.load_state_dict(state)  # strict: PyTorch's names, every one
    array = images(7, 3, np.float64)
    x = Tensor(array, requires_grad=True)
    tx = torch.tensor(array, requires_grad=True)
    out = model(x)
    expected = twin["fc"](twin["flatten"](twin["features"](tx)))
    assert_allclose(out.array, to_numpy(expected), rtol=1e-9, atol=1e-11)
    grad_out = np.random.default_rng(9).normal(size=out.shape)
    out.backward(grad_out)
    expected.backward(torch.tensor(grad_out))
    assert x.grad is not None
    assert_allclose(x.grad.array, to_numpy(tx.grad), rtol=1e-8, atol=1e-10)
    twin_params = dict(twin.named_parameters())
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        reference = to_numpy(twin_params[name].grad)
        assert_allclose(param.grad.array, reference, rtol=1e-8, atol=1e-10, err_msg=name)
