"""Step 12: buffers, train/eval, and the blocks and model of a small ResNet.

The PyTorch comparisons build the same model from ``torch.nn`` layers with the same
names (``ModuleDict`` for the blocks), load our ``state_dict()`` into it, so the keys
must be PyTorch's, and compare outputs, every gradient and the running statistics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from npgrad import (
    AdaptiveAvgPool2d,
    BasicBlock,
    BatchNorm2d,
    Conv2d,
    Flatten,
    Linear,
    MaxPool2d,
    Module,
    Parameter,
    ReLU,
    ResNet,
    Sequential,
    Tensor,
    cross_entropy,
)
from shared.testing.parity import require_torch, to_numpy
from shared.testing.strategies import Arr

pytestmark = pytest.mark.step(12)


def ids(items: Iterator[object] | list[object]) -> list[int]:
    return [id(item) for item in items]


def all_modules(module: Module) -> Iterator[Module]:
    yield module
    for child in module.modules():
        yield from all_modules(child)


def to_float64(model: Module) -> None:
    """Every Parameter and buffer of ``model`` as float64 (for exact parity tests)."""
    for tensor in [*model.parameters(), *model.buffers()]:
        tensor.array = tensor.array.astype(np.float64)


def images(seed: int, n: int = 4, dtype: type = np.float32) -> Arr:
    return np.random.default_rng(seed).normal(size=(n, 1, 28, 28)).astype(dtype)


# --- buffers --------------------------------------------------------------------------------


class Stats(Module):
    """A Parameter, a buffer and a child, to pin the order of state_dict."""

    count: Tensor

    def __init__(self) -> None:
        super().__init__()
        self.scale = Parameter(Tensor(np.ones(2)))
        self.register_buffer("count", Tensor(np.zeros(1)))
        self.child = BatchNorm2d(2)

    def forward(self, x: Tensor) -> Tensor:
        return self.child(x * self.scale.reshape(1, 2, 1, 1))


def test_a_buffer_is_an_attribute_saved_but_not_trained() -> None:
    module = Stats()
    assert isinstance(module.count, Tensor)
    assert ids(module.parameters()) == ids([module.scale, module.child.weight, module.child.bias])
    assert ids(module.buffers()) == ids(
        [module.count, module.child.running_mean, module.child.running_var]
    )
    assert [name for name, _ in module.named_buffers()] == [
        "count",
        "child.running_mean",
        "child.running_var",
    ]
    # own Parameters, own buffers, then each child's: PyTorch's order
    assert list(module.state_dict()) == [
        "scale",
        "count",
        "child.weight",
        "child.bias",
        "child.running_mean",
        "child.running_var",
    ]
    assert [name for name, _ in module.named_buffers(recurse=False)] == ["count"]


def test_assigning_a_tensor_to_a_buffer_name_replaces_the_buffer() -> None:
    module = Stats()
    replacement = Tensor(np.array([5.0]))
    module.count = replacement
    assert module.count is replacement
    assert_array_equal(module.state_dict()["count"], [5.0])
    module.count = None  # type: ignore[assignment]  # like a missing bias: kept, skipped
    assert "count" not in module.state_dict()
    module.count = replacement
    assert list(module.state_dict())[1] == "count"  # back in its place


def test_assigning_a_non_tensor_to_a_buffer_name_raises() -> None:
    module = Stats()
    with pytest.raises(TypeError, match=r"cannot assign a float to Stats.count.*a buffer"):
        module.count = 1.0  # type: ignore[assignment]  # the point of the test


def test_load_state_dict_checks_buffers_like_parameters_and_copies_nothing() -> None:
    module = Stats()
    before = module.state_dict()
    state = {name: value + 1 for name, value in before.items()}
    state["child.running_var"] = np.array([1.0, np.nan], dtype=np.float32)  # the last key
    state["count"] = np.array([3], dtype=np.int64)
    with pytest.raises(RuntimeError) as error:
        module.load_state_dict(state)
    message = str(error.value)
    assert "dtype mismatch for 'count': the state has dtype int64, the model's buffer" in message
    assert "non-finite values for 'child.running_var': 1 of 2" in message
    for name, value in module.state_dict().items():
        assert_array_equal(value, before[name], err_msg=name)


def test_deleting_a_buffer_unregisters_it() -> None:
    module = Stats()
    del module.count
    assert "count" not in module.state_dict()
    assert not hasattr(module, "count")


def test_register_buffer_misuse_raises() -> None:
    module = Stats()
    with pytest.raises(KeyError, match=r"'scale'.*belongs to a Parameter or a Module"):
        module.register_buffer("scale", Tensor(np.zeros(2)))
    with pytest.raises(TypeError, match=r"a plain Tensor or None, got a Parameter"):
        module.register_buffer("extra", Parameter(Tensor(np.zeros(2))))
    with pytest.raises(TypeError, match=r"got a list"):
        module.register_buffer("extra", [1.0])  # type: ignore[arg-type]  # the point

    class Early(Module):
        def __init__(self) -> None:
            self.register_buffer("count", Tensor(np.zeros(1)))
            super().__init__()

    with pytest.raises(AttributeError, match=r"call super\(\).__init__\(\) first in Early"):
        Early()


def test_load_state_dict_restores_buffers_in_place() -> None:
    source, target = Stats(), Stats()
    source.child.running_mean.array[:] = [1.0, 2.0]
    source.count.array[:] = 7.0
    running_mean = target.child.running_mean.array
    target.load_state_dict(source.state_dict())
    assert target.child.running_mean.array is running_mean
    assert_array_equal(running_mean, [1.0, 2.0])
    assert running_mean.dtype == np.float32
    assert_array_equal(target.count.array, [7.0])


def test_load_state_dict_names_a_missing_or_misshaped_buffer() -> None:
    model = Stats()
    state = model.state_dict()
    del state["child.running_var"]
    state["count"] = np.zeros(3)
    with pytest.raises(RuntimeError) as error:
        model.load_state_dict(state)
    message = str(error.value)
    assert "missing key 'child.running_var'" in message
    assert "shape mismatch for 'count': the state has shape (3,), the model's buffer" in message


# --- train() and eval() -----------------------------------------------------------------------


def test_modules_start_in_training_mode() -> None:
    assert all(module.training for module in all_modules(ResNet()))


def test_eval_and_train_reach_every_module_and_return_the_module() -> None:
    model = ResNet()
    modules = list(all_modules(model))
    assert len(modules) > 30  # the shortcuts' Sequentials and their children included
    assert model.eval() is model
    assert not any(module.training for module in modules)
    assert model.train() is model
    assert all(module.training for module in modules)
    assert model.train(False) is model
    assert not any(module.training for module in modules)


def test_eval_of_a_child_leaves_the_parent_alone() -> None:
    model = Sequential(Conv2d(1, 2, 3), BatchNorm2d(2))
    model[1].eval()
    assert model.training
    assert model[0].training
    assert not model[1].training


def test_the_training_flag_is_a_plain_attribute_not_a_registration() -> None:
    model = BatchNorm2d(2)
    model.eval()
    assert "training" not in model.state_dict()
    assert not model.training


# --- BasicBlock and ResNet ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("in_channels", "out_channels", "stride", "projection", "out_shape"),
    [
        (4, 4, 1, False, (2, 4, 7, 7)),
        (4, 8, 1, True, (2, 8, 7, 7)),
        (4, 4, 2, True, (2, 4, 4, 4)),
        (4, 8, 2, True, (2, 8, 4, 4)),
    ],
)
def test_basic_block_projects_the_shortcut_only_when_the_shape_changes(
    in_channels: int, out_channels: int, stride: int, projection: bool, out_shape: tuple[int, ...]
) -> None:
    block = BasicBlock(in_channels, out_channels, stride, rng=np.random.default_rng(0))
    assert (block.shortcut is not None) == projection
    names = list(block.state_dict())
    assert any(name.startswith("shortcut.0.weight") for name in names) == projection
    x = Tensor(np.random.default_rng(1).normal(size=(2, in_channels, 7, 7)).astype(np.float32))
    x.requires_grad = True
    out = block(x)
    assert out.shape == out_shape
    assert out.array.dtype == np.float32
    assert np.all(out.array >= 0)  # a ReLU comes last
    out.sum().backward()
    assert x.grad is not None
    assert x.grad.shape == x.shape


def test_the_identity_shortcut_adds_the_input_itself() -> None:
    # with the second batch norm's scale at 0, the residual branch gives only bn2's bias
    block = BasicBlock(2, 2, rng=np.random.default_rng(0))
    assert block.bn2.weight is not None
    block.bn2.weight.array[:] = 0.0
    x = Tensor(np.random.default_rng(1).normal(size=(3, 2, 4, 4)).astype(np.float32))
    assert_allclose(block(x).array, np.maximum(x.array, 0.0), rtol=1e-6)


def test_resnet_shapes_dtype_parameters_and_gradients() -> None:
    model = ResNet(rng=np.random.default_rng(0))
    x = Tensor(images(1, n=5))
    logits = model(x)
    assert logits.shape == (5, 10)
    assert logits.array.dtype == np.float32
    n_params = sum(param.array.size for param in model.parameters())
    assert n_params == 1 * 16 * 9 + 2 * 16 + (16 * 16 * 9 + 2 * 16) * 2 + (
        16 * 32 * 9 + 32 * 32 * 9 + 16 * 32 + 3 * 2 * 32
    ) + (32 * 64 * 9 + 64 * 64 * 9 + 32 * 64 + 3 * 2 * 64) + (64 * 10 + 10)
    loss = cross_entropy(logits, np.arange(5) % 10).sum()
    loss.backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, name
        assert param.grad.shape == param.shape, name
        assert param.grad.array.dtype == np.float32, name
        assert np.all(np.isfinite(param.grad.array)), name


def test_resnet_with_other_channels_and_classes() -> None:
    model = ResNet(channels=(4, 8, 12), num_classes=3, rng=np.random.default_rng(0))
    assert model(Tensor(images(0, n=2))).shape == (2, 3)
    assert model.fc.weight.shape == (3, 12)


def test_resnet_is_reproducible_with_an_rng() -> None:
    first = ResNet(rng=np.random.default_rng(3)).state_dict()
    second = ResNet(rng=np.random.default_rng(3)).state_dict()
    assert list(first) == list(second)
    for name, value in first.items():
        assert_array_equal(value, second[name], err_msg=name)


@pytest.mark.parametrize("shape", [(2, 784), (2, 28, 28), (2, 3, 28, 28), (2, 1, 32, 32)])
def test_resnet_of_the_wrong_input_shape_raises(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"shape \(N, 1, 28, 28\), got shape"):
        ResNet()(Tensor(np.zeros(shape, dtype=np.float32)))


def test_resnet_repr_nests_like_pytorch() -> None:
    text = repr(ResNet(channels=(4, 8, 16)))
    assert text.startswith(
        "ResNet(\n"
        "  (conv1): Conv2d(1, 4, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), bias=False)\n"
        "  (bn1): BatchNorm2d(4, eps=1e-05, momentum=0.1, affine=True)\n"
    )
    assert (
        "    (shortcut): Sequential(\n"
        "      (0): Conv2d(4, 8, kernel_size=(1, 1), stride=(2, 2), bias=False)\n"
    ) in text
    assert text.endswith("  (fc): Linear(in_features=16, out_features=10, bias=True)\n)")


# --- against the same model built from torch.nn -------------------------------------------


def torch_twin(torch: ModuleType, module: Module) -> Any:
    """``module`` rebuilt from torch.nn layers with the same names (float64)."""
    nn = torch.nn
    if isinstance(module, Conv2d):
        layer = nn.Conv2d(
            module.in_channels,
            module.out_channels,
            module.kernel_size,
            module.stride,
            module.padding,
            bias=module.bias is not None,
        )
    elif isinstance(module, BatchNorm2d):
        layer = nn.BatchNorm2d(module.num_features, module.eps, module.momentum, module.affine)
    elif isinstance(module, Linear):
        layer = nn.Linear(module.in_features, module.out_features, module.bias is not None)
    elif isinstance(module, ReLU):
        layer = nn.ReLU()
    elif isinstance(module, MaxPool2d):
        layer = nn.MaxPool2d(module.kernel_size, module.stride, module.padding)
    elif isinstance(module, AdaptiveAvgPool2d):
        layer = nn.AdaptiveAvgPool2d(module.output_size)
    elif isinstance(module, Flatten):
        layer = nn.Flatten(module.start_dim, module.end_dim)
    elif isinstance(module, Sequential):
        layer = nn.Sequential(*(torch_twin(torch, child) for child in module))
    else:  # BasicBlock, ResNet: the same children; forward below
        layer = nn.ModuleDict(
            {name: torch_twin(torch, child) for name, child in module._modules.items() if child}
        )
    return layer.double()


def torch_forward(block: Any, x: Any) -> Any:
    """The forward of our BasicBlock or ResNet, on their torch twins."""
    if "layer1" in block:
        x = block["maxpool"](block["relu"](block["bn1"](block["conv1"](x))))
        for name in ("layer1", "layer2", "layer3"):
            x = torch_forward(block[name], x)
        return block["fc"](block["flatten"](block["avgpool"](x)))
    out = block["relu"](block["bn1"](block["conv1"](x)))
    out = block["bn2"](block["conv2"](out))
    identity = block["shortcut"](x) if "shortcut" in block else x
    return block["relu"](out + identity)


def load_into_twin(torch: ModuleType, model: Module, twin: Any) -> None:
    state = {name: torch.from_numpy(value) for name, value in model.state_dict().items()}
    missing, unexpected = twin.load_state_dict(state, strict=False)
    assert unexpected == []
    assert all(name.endswith("num_batches_tracked") for name in missing), missing
    twin_keys = [name for name in twin.state_dict() if not name.endswith("num_batches_tracked")]
    assert twin_keys == list(model.state_dict())  # PyTorch's names, in PyTorch's order


def check_against_twin(
    model: Module, make_input: Callable[[], Arr], forward_twin: Callable[[Any, Any], Any]
) -> None:
    torch = require_torch()
    to_float64(model)
    twin = torch_twin(torch, model)
    load_into_twin(torch, model, twin)
    for mode in ("train", "eval", "train"):
        getattr(model, mode)()
        getattr(twin, mode)()
        array = make_input()
        x = Tensor(array, requires_grad=True)
        tx = torch.tensor(array, requires_grad=True)
        out, expected = model(x), forward_twin(twin, tx)
        assert_allclose(out.array, to_numpy(expected), rtol=1e-9, atol=1e-11, err_msg=mode)
        grad_out = np.random.default_rng(9).normal(size=out.shape)
        out.backward(grad_out)
        expected.backward(torch.tensor(grad_out))
        assert x.grad is not None
        assert_allclose(x.grad.array, to_numpy(tx.grad), rtol=1e-8, atol=1e-10, err_msg=mode)
        twin_params = dict(twin.named_parameters())
        for name, param in model.named_parameters():
            assert param.grad is not None, name
            reference = to_numpy(twin_params[name].grad)
            assert_allclose(param.grad.array, reference, rtol=1e-8, atol=1e-10, err_msg=name)
            param.grad = None
            twin_params[name].grad = None
        twin_state = twin.state_dict()
        for name, value in model.state_dict().items():  # running statistics included
            assert_allclose(value, to_numpy(twin_state[name]), rtol=1e-12, err_msg=name)


@pytest.mark.parity
@pytest.mark.parametrize(("in_channels", "out_channels", "stride"), [(3, 3, 1), (3, 5, 2)])
def test_basic_block_matches_pytorch_in_training_and_evaluation(
    in_channels: int, out_channels: int, stride: int
) -> None:
    rng = np.random.default_rng(0)
    block = BasicBlock(in_channels, out_channels, stride, rng=rng)
    check_against_twin(block, lambda: rng.normal(size=(4, in_channels, 6, 6)), torch_forward)


@pytest.mark.parity
def test_resnet_matches_pytorch_in_training_and_evaluation() -> None:
    rng = np.random.default_rng(0)
    model = ResNet(channels=(4, 6, 8), rng=rng)
    check_against_twin(model, lambda: images(int(rng.integers(1000)), 3, np.float64), torch_forward)


@pytest.mark.parity
def test_sequential_of_layers_matches_pytorch() -> None:
    rng = np.random.default_rng(0)
    model = Sequential(
        Conv2d(2, 3, 3, padding=1, rng=rng),
        BatchNorm2d(3),
        ReLU(),
        MaxPool2d(2),
        Conv2d(3, 4, 2, stride=2, rng=rng),
        AdaptiveAvgPool2d(1),
        Flatten(),
        Linear(4, 2, rng=rng),
    )
    check_against_twin(model, lambda: rng.normal(size=(3, 2, 8, 8)), lambda twin, x: twin(x))
