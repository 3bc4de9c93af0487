"""Step 07: Tensor.uniform_, the in-place random fill that Linear initialises with."""

import math

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from npgrad import MLP, Linear, NoGrad, Tensor, zeros

pytestmark = pytest.mark.step(7)


def test_uniform_fills_in_place_and_returns_the_tensor() -> None:
    t = zeros(200, 5, dtype=np.float32)
    array = t.array
    out = t.uniform_(-2.0, 3.0, rng=np.random.default_rng(0))
    assert out is t
    assert t.array is array  # the same memory, now filled
    assert t.array.dtype == np.float32
    assert t.array.min() >= -2.0
    assert t.array.max() < 3.0
    assert t.array.min() < -1.9
    assert t.array.max() > 2.9  # spread over the range (seeded: true for this draw)


def test_uniform_defaults_to_the_unit_interval() -> None:
    t = zeros(1000).uniform_(rng=np.random.default_rng(1))
    assert t.array.min() >= 0.0
    assert t.array.max() < 1.0
    assert t.array.mean() == pytest.approx(0.5, abs=0.05)


def test_uniform_draws_what_the_generator_draws_in_the_tensors_dtype() -> None:
    t = zeros(3, 4, dtype=np.float32).uniform_(-0.5, 0.5, rng=np.random.default_rng(7))
    expected = np.random.default_rng(7).uniform(-0.5, 0.5, size=(3, 4)).astype(np.float32)
    assert_array_equal(t.array, expected)


def test_uniform_with_the_same_seed_repeats_and_another_differs() -> None:
    first = zeros(5).uniform_(rng=np.random.default_rng(3))
    second = zeros(5).uniform_(rng=np.random.default_rng(3))
    third = zeros(5).uniform_(rng=np.random.default_rng(4))
    assert_array_equal(first.array, second.array)
    assert not np.array_equal(first.array, third.array)


def test_uniform_is_seen_through_a_shared_array_and_records_nothing() -> None:
    array = np.zeros(4)
    t = Tensor(array, requires_grad=True)
    with NoGrad():  # as PyTorch's initialisers do: a leaf that requires grad, changed in place
        t.uniform_(1.0, 2.0, rng=np.random.default_rng(0))
    assert np.all(array >= 1.0)
    assert t.recipe is None
    assert t.is_leaf


def test_uniform_of_a_0d_tensor_and_of_an_empty_range() -> None:
    t = Tensor(np.array(0.0)).uniform_(rng=np.random.default_rng(0))
    assert t.shape == ()
    assert 0.0 <= t.item() < 1.0
    assert_array_equal(zeros(3).uniform_(2.0, 2.0).array, [2.0, 2.0, 2.0])


def test_uniform_of_an_integer_tensor_raises() -> None:
    with pytest.raises(TypeError, match=r"uniform_ fills floating-point tensors.*int64"):
        Tensor(np.zeros(3, dtype=np.int64)).uniform_()


@pytest.mark.parametrize(("low", "high"), [(1.0, 0.0), (0.0, math.inf), (math.nan, 1.0)])
def test_uniform_of_a_bad_range_raises(low: float, high: float) -> None:
    with pytest.raises(ValueError, match=r"uniform_ needs a finite range with low <= high"):
        zeros(3).uniform_(low, high)


def test_uniform_of_a_read_only_array_raises() -> None:
    array = np.zeros(3)
    array.flags.writeable = False
    with pytest.raises(ValueError, match=r"uniform_ cannot write into this tensor"):
        Tensor(array).uniform_()


def test_linear_initialises_exactly_as_uniform_draws_of_its_rng() -> None:
    """``Linear`` fills its weights with ``uniform_``: the very numbers ``rng.uniform`` gives.

    Drawn in float64 and stored as float32, weight first, then bias, so a seeded MLP
    (and every training result) is the same as with the draws written out by hand.
    """
    layer = Linear(5, 3, rng=np.random.default_rng(11))
    rng = np.random.default_rng(11)
    bound = 1 / math.sqrt(5)
    assert layer.bias is not None
    assert_array_equal(layer.weight.array, rng.uniform(-bound, bound, (3, 5)).astype(np.float32))
    assert_array_equal(layer.bias.array, rng.uniform(-bound, bound, 3).astype(np.float32))

    mlp, rng = MLP(rng=np.random.default_rng(0)), np.random.default_rng(0)
    for (name, value), (fan_in, shape) in zip(
        mlp.state_dict().items(),
        [(784, (64, 784)), (784, (64,)), (64, (64, 64)), (64, (64,)), (64, (10, 64)), (64, (10,))],
        strict=True,
    ):
        bound = 1 / math.sqrt(fan_in)
        assert_array_equal(value, rng.uniform(-bound, bound, shape).astype(np.float32), name)
