"""Step 12: batch normalisation, the operation and the BatchNorm2d module.

Training mode normalises by the batch's own statistics and backpropagates through
them; evaluation mode uses the running statistics, which only training updates. Each
is checked against PyTorch (values, every gradient, the running statistics after the
update) and against central differences of a plain NumPy reference (and by gradcheck in
``test_12_gradcheck.py``).
"""

from typing import Any

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from npgrad import BatchNorm2d, Parameter, Tensor, batch_norm, no_grad
from shared.testing.gradients import numeric_vjp
from shared.testing.parity import assert_backward_matches_torch, require_torch, to_numpy
from shared.testing.strategies import Arr

pytestmark = pytest.mark.step(12)


def reference_batch_norm_train(x: Arr, weight: Arr, bias: Arr, eps: float) -> Arr:
    axes = (0, *range(2, x.ndim))
    shape = (1, -1, *([1] * (x.ndim - 2)))
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    out: Arr = (x - mean) / np.sqrt(var + eps) * weight.reshape(shape) + bias.reshape(shape)
    return out


def reference_batch_norm_eval(
    x: Arr, mean: Arr, var: Arr, weight: Arr, bias: Arr, eps: float
) -> Arr:
    shape = (1, -1, *([1] * (x.ndim - 2)))
    normalised = (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps)
    return normalised * weight.reshape(shape) + bias.reshape(shape)


SHAPES = [(4, 3, 5, 2), (8, 2), (2, 3, 4), (3, 1, 2, 2)]


def bn_arrays(rng: np.random.Generator, shape: tuple[int, ...]) -> dict[str, Arr]:
    channels = shape[1]
    return {
        "x": rng.normal(size=shape) * 2.0 + 1.0,
        "weight": rng.normal(size=channels),
        "bias": rng.normal(size=channels),
        "running_mean": rng.normal(size=channels),
        "running_var": rng.uniform(0.5, 2.0, size=channels),
    }


# --- the operation against PyTorch ---------------------------------------------------------


@pytest.mark.parity
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_batch_norm_values_gradients_and_running_stats_match_pytorch(
    shape: tuple[int, ...], affine: bool, training: bool
) -> None:
    torch = require_torch()
    arrays = bn_arrays(np.random.default_rng(0), shape)
    names = ["x", "weight", "bias"] if affine else ["x"]
    ours = {name: Tensor(arrays[name], requires_grad=True) for name in names}
    theirs = {name: torch.tensor(arrays[name], requires_grad=True) for name in names}
    stats = {name: Tensor(arrays[name].copy()) for name in ("running_mean", "running_var")}
    torch_stats = {name: torch.tensor(arrays[name]) for name in ("running_mean", "running_var")}

    out = batch_norm(
        ours["x"],
        stats["running_mean"],
        stats["running_var"],
        ours.get("weight"),
        ours.get("bias"),
        training=training,
        momentum=0.3,
        eps=1e-3,
    )
    expected = torch.nn.functional.batch_norm(
        theirs["x"],
        torch_stats["running_mean"],
        torch_stats["running_var"],
        theirs.get("weight"),
        theirs.get("bias"),
        training=training,
        momentum=0.3,
        eps=1e-3,
    )
    assert_allclose(out.array, to_numpy(expected), rtol=1e-10, atol=1e-12)
    for name in ("running_mean", "running_var"):
        assert_allclose(stats[name].array, to_numpy(torch_stats[name]), rtol=1e-12, err_msg=name)
        if not training:
            assert_array_equal(stats[name].array, arrays[name])  # evaluation changes nothing

    grad_out = np.random.default_rng(1).normal(size=shape)
    assert_backward_matches_torch(
        out,
        expected,
        [ours[name] for name in names],
        [theirs[name] for name in names],
        grad_out,
        rtol=1e-9,
        atol=1e-12,
    )


# --- against central differences -------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_batch_norm_in_training_mode_matches_central_differences(shape: tuple[int, ...]) -> None:
    arrays = bn_arrays(np.random.default_rng(2), shape)
    inputs = [arrays["x"], arrays["weight"], arrays["bias"]]
    tensors = [Tensor(array, requires_grad=True) for array in inputs]
    out = batch_norm(tensors[0], None, None, tensors[1], tensors[2], training=True, eps=1e-3)

    def reference(x: Arr, weight: Arr, bias: Arr) -> Arr:
        return reference_batch_norm_train(x, weight, bias, 1e-3)

    assert_allclose(out.array, reference(*inputs), rtol=1e-12, atol=1e-12)
    grad_out = np.random.default_rng(3).normal(size=shape)
    out.backward(grad_out)
    for position, tensor in enumerate(tensors):
        assert tensor.grad is not None
        expected = numeric_vjp(reference, inputs, position, grad_out)
        assert_allclose(tensor.grad.array, expected, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_batch_norm_in_evaluation_mode_matches_central_differences(shape: tuple[int, ...]) -> None:
    arrays = bn_arrays(np.random.default_rng(4), shape)
    mean, var = arrays["running_mean"], arrays["running_var"]
    inputs = [arrays["x"], arrays["weight"], arrays["bias"]]
    tensors = [Tensor(array, requires_grad=True) for array in inputs]
    out = batch_norm(tensors[0], Tensor(mean), Tensor(var), tensors[1], tensors[2], eps=1e-3)

    def reference(x: Arr, weight: Arr, bias: Arr) -> Arr:
        return reference_batch_norm_eval(x, mean, var, weight, bias, 1e-3)

    assert_allclose(out.array, reference(*inputs), rtol=1e-12, atol=1e-12)
    grad_out = np.random.default_rng(5).normal(size=shape)
    out.backward(grad_out)
    for position, tensor in enumerate(tensors):
        assert tensor.grad is not None
        expected = numeric_vjp(reference, inputs, position, grad_out)
        assert_allclose(tensor.grad.array, expected, rtol=1e-6, atol=1e-7)


# --- behaviour --------------------------------------------------------------------------------


def test_training_mode_output_has_zero_mean_and_unit_variance_per_channel() -> None:
    x = Tensor(np.random.default_rng(0).normal(3.0, 5.0, size=(16, 3, 4, 4)))
    out = batch_norm(x, None, None, training=True, eps=0.0)
    assert_allclose(out.array.mean(axis=(0, 2, 3)), 0.0, atol=1e-12)
    assert_allclose(out.array.var(axis=(0, 2, 3)), 1.0, rtol=1e-12)


def test_the_running_variance_is_unbiased_and_the_mean_moves_by_momentum() -> None:
    # one channel, values 1 and 3: mean 2, biased variance 1, unbiased variance 2
    x = Tensor(np.array([[1.0], [3.0]]))
    running_mean, running_var = Tensor(np.array([0.0])), Tensor(np.array([1.0]))
    batch_norm(x, running_mean, running_var, training=True, momentum=0.25)
    assert_allclose(running_mean.array, [0.75 * 0.0 + 0.25 * 2.0], rtol=1e-15)
    assert_allclose(running_var.array, [0.75 * 1.0 + 0.25 * 2.0], rtol=1e-15)


def test_the_running_statistics_are_updated_in_place_without_a_recipe() -> None:
    x = Tensor(np.random.default_rng(0).normal(size=(4, 2, 3, 3)), requires_grad=True)
    running_mean = Tensor(np.zeros(2, dtype=np.float32))
    running_var = Tensor(np.ones(2, dtype=np.float32))
    mean_array, var_array = running_mean.array, running_var.array
    batch_norm(x, running_mean, running_var, training=True)
    assert running_mean.array is mean_array  # the same arrays, changed in place
    assert running_var.array is var_array
    assert running_mean.array.dtype == np.float32
    assert running_mean.recipe is None
    assert not running_mean.requires_grad
    assert not np.array_equal(running_mean.array, np.zeros(2))


def test_training_mode_without_running_statistics_updates_nothing() -> None:
    x = Tensor(np.random.default_rng(0).normal(size=(4, 2)))
    out = batch_norm(x, None, None, training=True)
    assert out.shape == (4, 2)


def test_training_mode_inside_no_grad_still_updates_the_running_statistics() -> None:
    x = Tensor(np.array([[1.0], [3.0]]), requires_grad=True)
    running_mean = Tensor(np.array([0.0]))
    with no_grad():
        out = batch_norm(x, running_mean, Tensor(np.array([1.0])), training=True, momentum=0.5)
    assert out.recipe is None
    assert_allclose(running_mean.array, [1.0], rtol=1e-15)


def test_batch_norm_keeps_float32() -> None:
    x = Tensor(np.random.default_rng(0).normal(size=(4, 3, 2, 2)).astype(np.float32), True)
    weight = Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    bias = Tensor(np.zeros(3, dtype=np.float32), requires_grad=True)
    for training in (True, False):
        stats = (Tensor(np.zeros(3, np.float32)), Tensor(np.ones(3, np.float32)))
        out = batch_norm(x, *stats, weight, bias, training=training)
        assert out.array.dtype == np.float32
        (out * out).sum().backward()
        for tensor in (x, weight, bias):
            assert tensor.grad is not None
            assert tensor.grad.array.dtype == np.float32
        assert stats[0].array.dtype == np.float32


@pytest.mark.parametrize(
    ("shape", "arguments", "error", "pattern"),
    [
        ((4,), {"training": True}, ValueError, r"shape \(N, C, \*\), got shape \(4,\)"),
        ((1, 3), {"training": True}, ValueError, r"more than one value per channel"),
        ((2, 3, 1, 1), {"training": False}, ValueError, r"needs running_mean and running_var"),
        (
            (2, 3),
            {"training": True, "weight": Tensor(np.ones(2))},
            ValueError,
            r"weight must have shape \(3,\).*got shape \(2,\)",
        ),
    ],
)
def test_batch_norm_misuse_raises(
    shape: tuple[int, ...], arguments: dict[str, Any], error: type[Exception], pattern: str
) -> None:
    with pytest.raises(error, match=pattern):
        batch_norm(Tensor(np.ones(shape)), None, None, **arguments)


# --- the BatchNorm2d module -----------------------------------------------------------------


def test_batchnorm2d_starts_as_pytorch_does() -> None:
    bn = BatchNorm2d(3)
    assert bn.training
    assert bn.weight is not None
    assert bn.bias is not None
    assert isinstance(bn.weight, Parameter)
    assert_array_equal(bn.weight.array, np.ones(3, dtype=np.float32))
    assert_array_equal(bn.bias.array, np.zeros(3, dtype=np.float32))
    assert_array_equal(bn.running_mean.array, np.zeros(3, dtype=np.float32))
    assert_array_equal(bn.running_var.array, np.ones(3, dtype=np.float32))
    for tensor in (bn.weight, bn.bias, bn.running_mean, bn.running_var):
        assert tensor.array.dtype == np.float32
    assert [id(p) for p in bn.parameters()] == [id(bn.weight), id(bn.bias)]  # no buffers
    assert [name for name, _ in bn.named_buffers()] == ["running_mean", "running_var"]
    assert list(bn.state_dict()) == ["weight", "bias", "running_mean", "running_var"]
    assert repr(bn) == "BatchNorm2d(3, eps=1e-05, momentum=0.1, affine=True)"


def test_batchnorm2d_without_affine_has_no_parameters() -> None:
    bn = BatchNorm2d(2, affine=False)
    assert bn.weight is None
    assert bn.bias is None
    assert list(bn.parameters()) == []
    assert list(bn.state_dict()) == ["running_mean", "running_var"]


@pytest.mark.parity
def test_batchnorm2d_over_several_batches_then_evaluation_matches_pytorch() -> None:
    torch = require_torch()
    rng = np.random.default_rng(0)
    ours = BatchNorm2d(3, eps=1e-4, momentum=0.2)
    theirs = torch.nn.BatchNorm2d(3, eps=1e-4, momentum=0.2)
    weight, bias = rng.normal(size=3).astype(np.float32), rng.normal(size=3).astype(np.float32)
    ours.load_state_dict({**ours.state_dict(), "weight": weight, "bias": bias})
    with torch.no_grad():
        theirs.weight.copy_(torch.from_numpy(weight))
        theirs.bias.copy_(torch.from_numpy(bias))
    for _ in range(3):
        batch = rng.normal(2.0, 3.0, size=(6, 3, 4, 5)).astype(np.float32)
        out, expected = ours(Tensor(batch)), theirs(torch.from_numpy(batch))
        assert_allclose(out.array, to_numpy(expected), rtol=1e-5, atol=1e-5)
    for name in ("running_mean", "running_var"):
        assert_allclose(ours.state_dict()[name], to_numpy(getattr(theirs, name)), rtol=1e-5)

    ours.eval()
    theirs.eval()
    before = ours.state_dict()
    batch = rng.normal(size=(2, 3, 4, 5)).astype(np.float32)
    x, tx = Tensor(batch, requires_grad=True), torch.from_numpy(batch).requires_grad_(True)
    out, expected = ours(x), theirs(tx)
    assert_allclose(out.array, to_numpy(expected), rtol=1e-5, atol=1e-5)
    grad_out = rng.normal(size=batch.shape).astype(np.float32)
    out.backward(grad_out)
    expected.backward(torch.from_numpy(grad_out))
    assert x.grad is not None
    assert ours.weight is not None
    assert ours.weight.grad is not None
    assert_allclose(x.grad.array, to_numpy(tx.grad), rtol=1e-5, atol=1e-5)
    assert_allclose(ours.weight.grad.array, to_numpy(theirs.weight.grad), rtol=1e-4, atol=1e-4)
    for name, value in ours.state_dict().items():  # evaluation updated nothing
        assert_array_equal(value, before[name], err_msg=name)


def test_batchnorm2d_follows_train_and_eval() -> None:
    bn = BatchNorm2d(1)
    x = Tensor(np.array([1.0, 3.0], dtype=np.float32).reshape(2, 1, 1, 1))
    bn.eval()
    out = bn(x)  # running mean 0 and variance 1: (x - 0) / sqrt(1 + eps)
    assert_allclose(out.array.ravel(), [1.0, 3.0], rtol=1e-4)
    assert_array_equal(bn.running_mean.array, [0.0])
    bn.train()
    out = bn(x)  # the batch's own statistics: -1 and 1
    assert_allclose(out.array.ravel(), [-1.0, 1.0], rtol=1e-4)
    assert_allclose(bn.running_mean.array, [0.2], rtol=1e-6)  # 0.9 * 0 + 0.1 * 2


@pytest.mark.parametrize("shape", [(2, 3, 4), (2, 4, 3, 3)], ids=str)
def test_batchnorm2d_of_the_wrong_shape_raises(shape: tuple[int, ...]) -> None:
    with pytest.raises(
        ValueError, match=r"BatchNorm2d\(3\) needs an input of shape \(N, 3, H, W\)"
    ):
        BatchNorm2d(3)(Tensor(np.ones(shape, dtype=np.float32)))


def test_batchnorm2d_of_no_features_raises() -> None:
    with pytest.raises(ValueError, match=r"at least one feature, got 0"):
        BatchNorm2d(0)
