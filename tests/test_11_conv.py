"""Step 11: conv2d and the pooling operations, checked two independent ways.

1. against PyTorch (``torch.nn.functional``), values and every gradient, in float64,
   over listed cases and random shapes, strides and paddings;
2. against plain loop-over-every-pixel NumPy references written here, whose central
   differences (``numeric_vjp``) check the backward functions on small shapes.

``gradcheck`` checks them too, in ``test_11_gradcheck.py``.

Max pooling gets its own tests at ties, where the first maximum of a window takes the
whole gradient, as in PyTorch.
"""

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from npgrad import (
    BACK_FUNCS,
    Tensor,
    adaptive_avg_pool2d,
    avg_pool2d,
    conv2d,
    conv2d_back0,
    conv2d_back1,
    max_pool2d,
    no_grad,
)
from shared.testing.gradients import numeric_vjp
from shared.testing.parity import assert_backward_matches_torch, require_torch, to_numpy
from shared.testing.strategies import Arr

pytestmark = pytest.mark.step(11)

Pair = tuple[int, int]


# --- plain NumPy references: a loop over every output pixel, nothing clever ---------------


def padded(x: Arr, padding: Pair, value: float = 0.0) -> Arr:
    (ph, pw) = padding
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def reference_conv2d(x: Arr, weight: Arr, bias: Arr | None, stride: Pair, padding: Pair) -> Arr:
    xp = padded(x, padding)
    n, _, hp, wp = xp.shape
    o, _, kh, kw = weight.shape
    oh, ow = (hp - kh) // stride[0] + 1, (wp - kw) // stride[1] + 1
    out = np.zeros((n, o, oh, ow))
    for b in range(n):
        for k in range(o):
            for i in range(oh):
                for j in range(ow):
                    top, left = i * stride[0], j * stride[1]
                    window = xp[b, :, top : top + kh, left : left + kw]
                    out[b, k, i, j] = np.sum(window * weight[k]) + (
                        0.0 if bias is None else bias[k]
                    )
    return out


def reference_pool(
    reduce: Callable[[Arr], float], x: Arr, kernel: Pair, stride: Pair, padding: Pair, pad: float
) -> Arr:
    xp = padded(x, padding, pad)
    n, c, hp, wp = xp.shape
    oh, ow = (hp - kernel[0]) // stride[0] + 1, (wp - kernel[1]) // stride[1] + 1
    out = np.zeros((n, c, oh, ow))
    for b in range(n):
        for k in range(c):
            for i in range(oh):
                for j in range(ow):
                    top, left = i * stride[0], j * stride[1]
                    out[b, k, i, j] = reduce(
                        xp[b, k, top : top + kernel[0], left : left + kernel[1]]
                    )
    return out


def reference_max_pool2d(x: Arr, kernel: Pair, stride: Pair, padding: Pair) -> Arr:
    return reference_pool(np.max, x, kernel, stride, padding, -np.inf)


def reference_avg_pool2d(x: Arr, kernel: Pair, stride: Pair, padding: Pair) -> Arr:
    return reference_pool(np.mean, x, kernel, stride, padding, 0.0)


# --- conv2d ---------------------------------------------------------------------------------

# (x shape, weight shape, stride, padding, bias)
CONV_CASES = [
    ((2, 3, 7, 6), (4, 3, 3, 3), (1, 1), (1, 1), True),
    ((2, 3, 9, 8), (5, 3, 3, 3), (2, 2), (0, 0), True),
    ((1, 2, 5, 5), (3, 2, 2, 2), (3, 3), (2, 2), False),
    ((3, 1, 6, 7), (2, 1, 1, 1), (2, 2), (0, 0), True),
    ((2, 2, 8, 5), (3, 2, 3, 2), (2, 1), (1, 0), False),  # non-square kernel, stride, padding
    ((1, 4, 4, 4), (2, 4, 4, 4), (1, 1), (0, 0), True),  # the kernel covers the whole image
    ((2, 3, 6, 6), (2, 3, 3, 3), (2, 2), (0, 0), True),  # the last row and column are unused
    ((2, 2, 5, 6), (3, 2, 5, 3), (1, 2), (2, 1), True),  # large padding
]


def conv_id(case: tuple[Any, ...]) -> str:
    x_shape, w_shape, stride, padding, bias = case
    return f"x{x_shape}-w{w_shape}-s{stride}-p{padding}-{'bias' if bias else 'nobias'}"


def conv_arrays(
    rng: np.random.Generator, x_shape: tuple[int, ...], w_shape: tuple[int, ...], bias: bool
) -> list[Arr]:
    arrays = [rng.normal(size=x_shape), rng.normal(size=w_shape)]
    return [*arrays, rng.normal(size=w_shape[0])] if bias else arrays


def check_conv_against_torch(arrays: list[Arr], stride: Pair, padding: Pair, seed: int) -> None:
    torch = require_torch()
    ours = [Tensor(array, requires_grad=True) for array in arrays]
    theirs = [torch.tensor(array, requires_grad=True) for array in arrays]
    out = conv2d(ours[0], ours[1], ours[2] if len(ours) == 3 else None, stride, padding)
    expected = torch.nn.functional.conv2d(*theirs, stride=stride, padding=padding)
    assert out.shape == tuple(expected.shape)
    assert_allclose(out.array, to_numpy(expected), rtol=1e-10, atol=1e-12)
    grad_out = np.random.default_rng(seed).normal(size=out.shape)
    assert_backward_matches_torch(out, expected, ours, theirs, grad_out, rtol=1e-10, atol=1e-12)


@pytest.mark.parity
@pytest.mark.parametrize("case", CONV_CASES, ids=conv_id)
def test_conv2d_values_and_gradients_match_pytorch(case: tuple[Any, ...]) -> None:
    x_shape, w_shape, stride, padding, bias = case
    arrays = conv_arrays(np.random.default_rng(0), x_shape, w_shape, bias)
    check_conv_against_torch(arrays, stride, padding, seed=1)


@st.composite
def conv_settings(draw: st.DrawFn) -> tuple[tuple[int, ...], tuple[int, ...], Pair, Pair, bool]:
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    height = draw(st.integers(max(1, kh - 2 * ph), 8))
    width = draw(st.integers(max(1, kw - 2 * pw), 8))
    n, c, o = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    return (n, c, height, width), (o, c, kh, kw), stride, (ph, pw), draw(st.booleans())


@pytest.mark.parity
@settings(max_examples=60)
@given(case=conv_settings(), seed=st.integers(0, 2**16))
def test_conv2d_matches_pytorch_on_random_shapes_strides_and_paddings(
    case: tuple[tuple[int, ...], tuple[int, ...], Pair, Pair, bool], seed: int
) -> None:
    x_shape, w_shape, stride, padding, bias = case
    arrays = conv_arrays(np.random.default_rng(seed), x_shape, w_shape, bias)
    check_conv_against_torch(arrays, stride, padding, seed=seed + 1)


SMALL_CONV_CASES = [
    ((2, 2, 5, 4), (3, 2, 3, 3), (1, 1), (1, 1), True),
    ((1, 2, 6, 5), (2, 2, 2, 3), (2, 1), (0, 1), True),
    ((2, 1, 5, 5), (2, 1, 3, 3), (2, 2), (1, 1), False),
]


@pytest.mark.parametrize("case", SMALL_CONV_CASES, ids=conv_id)
def test_conv2d_matches_a_loop_reference_and_its_central_differences(
    case: tuple[Any, ...],
) -> None:
    x_shape, w_shape, stride, padding, bias = case
    arrays = conv_arrays(np.random.default_rng(2), x_shape, w_shape, bias)
    tensors = [Tensor(array, requires_grad=True) for array in arrays]
    out = conv2d(tensors[0], tensors[1], tensors[2] if bias else None, stride, padding)

    def reference(*args: Arr) -> Arr:
        return reference_conv2d(args[0], args[1], args[2] if bias else None, stride, padding)

    assert_allclose(out.array, reference(*arrays), rtol=1e-12, atol=1e-12)
    grad_out = np.random.default_rng(3).normal(size=out.shape)
    out.backward(grad_out)
    for position, tensor in enumerate(tensors):
        assert tensor.grad is not None
        expected = numeric_vjp(reference, arrays, position, grad_out)
        assert_allclose(tensor.grad.array, expected, rtol=1e-6, atol=1e-8)


def test_conv2d_by_hand_one_channel() -> None:
    x = Tensor(np.arange(16.0).reshape(1, 1, 4, 4), requires_grad=True)
    weight = Tensor(np.array([[[[1.0, 0.0], [0.0, -1.0]]]]), requires_grad=True)
    out = conv2d(x, weight, stride=2)
    # each 2x2 block: top-left minus bottom-right = -5 everywhere
    assert_array_equal(out.array, np.full((1, 1, 2, 2), -5.0))
    out.backward(np.ones((1, 1, 2, 2)))
    assert x.grad is not None
    assert weight.grad is not None
    expected = np.tile(np.array([[1.0, 0.0], [0.0, -1.0]]), (2, 2)).reshape(1, 1, 4, 4)
    assert_array_equal(x.grad.array, expected)
    # d/d weight[i, j] = sum of the pixels at offset (i, j) of the four windows
    assert_array_equal(
        weight.grad.array,
        [[[[0 + 2 + 8 + 10, 1 + 3 + 9 + 11], [4 + 6 + 12 + 14, 5 + 7 + 13 + 15]]]],
    )


def test_conv2d_overlapping_windows_sum_into_the_input_gradient() -> None:
    # stride 1, 3x3 kernel of ones: each pixel's gradient counts the windows it lies in
    x = Tensor(np.zeros((1, 1, 4, 4)), requires_grad=True)
    conv2d(x, Tensor(np.ones((1, 1, 3, 3)))).sum().backward()
    assert x.grad is not None
    counts = np.array([1, 2, 2, 1])
    assert_array_equal(x.grad.array[0, 0], np.outer(counts, counts))


def test_conv2d_with_padding_drops_the_gradient_of_the_padding() -> None:
    x = Tensor(np.ones((1, 1, 2, 2)), requires_grad=True)
    conv2d(x, Tensor(np.ones((1, 1, 3, 3))), padding=1).sum().backward()
    assert x.grad is not None
    assert x.grad.shape == (1, 1, 2, 2)
    assert_array_equal(x.grad.array, np.full((1, 1, 2, 2), 4.0))  # each pixel in all 4 windows


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "stride", "padding"),
    [
        ((2, 3, 6, 5), (4, 3, 3, 3), (1, 1), (1, 1)),  # the transposed convolution
        ((2, 1, 6, 5), (4, 1, 3, 3), (1, 1), (1, 1)),  # one input channel: the window adds
        ((2, 3, 7, 7), (4, 3, 3, 3), (2, 2), (1, 1)),  # a stride: the window adds
        ((2, 3, 3, 3), (8, 3, 3, 3), (1, 1), (0, 0)),  # fewer positions than channels
    ],
)
def test_conv2d_gradients_do_not_depend_on_how_grad_out_is_laid_out(
    x_shape: tuple[int, ...], w_shape: tuple[int, ...], stride: Pair, padding: Pair
) -> None:
    # the backward functions read grad_out through views chosen by its strides
    rng = np.random.default_rng(4)
    x, weight = rng.normal(size=x_shape), rng.normal(size=w_shape)
    out = reference_conv2d(x, weight, None, stride, padding)
    grad_out = rng.normal(size=out.shape)
    layouts = [
        np.ascontiguousarray(grad_out.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2),
        np.asfortranarray(grad_out),
        np.repeat(grad_out, 2, axis=3)[..., ::2],
    ]

    def reference(x: Arr, weight: Arr) -> Arr:
        return reference_conv2d(x, weight, None, stride, padding)

    expected_x = conv2d_back0(grad_out, out, x, weight, None, stride, padding)
    expected_weight = conv2d_back1(grad_out, out, x, weight, None, stride, padding)
    assert_allclose(expected_x, numeric_vjp(reference, [x, weight], 0, grad_out), atol=1e-6)
    assert_allclose(expected_weight, numeric_vjp(reference, [x, weight], 1, grad_out), atol=1e-6)
    for laid_out in layouts:
        assert_array_equal(laid_out, grad_out)
        grad_x = conv2d_back0(laid_out, out, x, weight, None, stride, padding)
        grad_weight = conv2d_back1(laid_out, out, x, weight, None, stride, padding)
        assert_allclose(grad_x, expected_x, rtol=1e-12, atol=1e-12)
        assert_allclose(grad_weight, expected_weight, rtol=1e-12, atol=1e-12)


def test_conv2d_of_an_empty_batch() -> None:
    x = Tensor(np.zeros((0, 2, 5, 5)), requires_grad=True)
    weight = Tensor(np.ones((3, 2, 3, 3)), requires_grad=True)
    out = conv2d(x, weight, padding=1)
    assert out.shape == (0, 3, 5, 5)
    out.sum().backward()
    assert x.grad is not None
    assert x.grad.shape == (0, 2, 5, 5)
    assert weight.grad is not None
    assert_array_equal(weight.grad.array, np.zeros((3, 2, 3, 3)))


def test_conv2d_takes_its_tensors_by_keyword_too() -> None:
    rng = np.random.default_rng(0)
    x = Tensor(rng.normal(size=(1, 2, 4, 4)), requires_grad=True)
    weight = Tensor(rng.normal(size=(3, 2, 3, 3)), requires_grad=True)
    bias = Tensor(rng.normal(size=3), requires_grad=True)
    by_keyword = conv2d(x, weight=weight, bias=bias, padding=1)
    by_position = conv2d(x, weight, bias, 1, 1)
    assert_array_equal(by_keyword.array, by_position.array)
    by_keyword.sum().backward()
    assert weight.grad is not None
    assert bias.grad is not None
    assert_array_equal(bias.grad.array, np.full(3, 16.0))


def test_conv2d_records_its_inputs_and_settings() -> None:
    x = Tensor(np.ones((1, 2, 4, 4)), requires_grad=True)
    weight = Tensor(np.ones((3, 2, 3, 3)), requires_grad=True)
    bias = Tensor(np.zeros(3))  # no gradient wanted: not a parent
    out = conv2d(x, weight, bias, stride=2, padding=1)
    assert out.recipe is not None
    assert out.recipe.parents == {0: x, 1: weight}
    assert out.recipe.args[0] is x.array
    assert out.recipe.args[1] is weight.array
    assert out.recipe.args[3:] == ((2, 2), (1, 1))  # ints become (height, width) pairs
    assert out.shape == (1, 3, 2, 2)


def test_conv2d_keeps_float32() -> None:
    rng = np.random.default_rng(0)
    x = Tensor(rng.normal(size=(2, 3, 5, 5)).astype(np.float32), requires_grad=True)
    weight = Tensor(rng.normal(size=(4, 3, 3, 3)).astype(np.float32), requires_grad=True)
    bias = Tensor(np.zeros(4, dtype=np.float32), requires_grad=True)
    out = conv2d(x, weight, bias, padding=1)
    assert out.array.dtype == np.float32
    (out * 2.0).sum().backward()
    for tensor in (x, weight, bias):
        assert tensor.grad is not None
        assert tensor.grad.array.dtype == np.float32


def test_conv2d_inside_no_grad_records_nothing() -> None:
    x = Tensor(np.ones((1, 1, 3, 3)), requires_grad=True)
    with no_grad():
        out = conv2d(x, Tensor(np.ones((1, 1, 2, 2)), requires_grad=True))
    assert out.recipe is None
    assert not out.requires_grad


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "bias_shape", "options", "pattern"),
    [
        ((3, 5, 5), (2, 3, 3, 3), None, {}, r"shape \(N, C, H, W\), got shape \(3, 5, 5\)"),
        ((1, 3, 5, 5), (2, 4, 3, 3), None, {}, r"weight of shape \(out_channels, 3, kh, kw\)"),
        ((1, 3, 5, 5), (2, 3, 3), None, {}, r"got weight shape \(2, 3, 3\)"),
        ((1, 3, 5, 5), (2, 3, 3, 3), (3,), {}, r"bias of shape \(2,\).*got shape \(3,\)"),
        ((1, 1, 2, 2), (1, 1, 3, 3), None, {}, r"kernel \(3, 3\) is larger than the padded image"),
        ((1, 1, 5, 5), (1, 1, 3, 3), None, {"stride": 0}, r"strides of at least 1"),
        ((1, 1, 5, 5), (1, 1, 3, 3), None, {"padding": -1}, r"padding of at least 0"),
    ],
)
def test_conv2d_of_bad_shapes_or_settings_raises(
    x_shape: tuple[int, ...],
    w_shape: tuple[int, ...],
    bias_shape: tuple[int, ...] | None,
    options: dict[str, int],
    pattern: str,
) -> None:
    bias = None if bias_shape is None else Tensor(np.zeros(bias_shape))
    with pytest.raises(ValueError, match=pattern):
        conv2d(Tensor(np.ones(x_shape)), Tensor(np.ones(w_shape)), bias, **options)


# --- max_pool2d and avg_pool2d ------------------------------------------------------------

POOL_CASES = [
    ((2, 3, 8, 8), (2, 2), (2, 2), (0, 0)),
    ((2, 3, 7, 8), (3, 3), (1, 1), (1, 1)),  # overlapping windows
    ((1, 2, 7, 7), (3, 3), (2, 2), (1, 1)),
    ((2, 1, 6, 9), (2, 3), (1, 2), (1, 0)),  # non-square kernel, stride, padding
    ((1, 2, 5, 5), (5, 5), (1, 1), (0, 0)),  # one window
    ((2, 2, 7, 6), (2, 2), (3, 3), (0, 0)),  # stride above the kernel: gaps
]
POOLS = [
    ("max_pool2d", max_pool2d, reference_max_pool2d),
    ("avg_pool2d", avg_pool2d, reference_avg_pool2d),
]


def pool_id(case: tuple[Any, ...]) -> str:
    shape, kernel, stride, padding = case
    return f"x{shape}-k{kernel}-s{stride}-p{padding}"


@pytest.mark.parity
@pytest.mark.parametrize("pool", POOLS, ids=lambda pool: pool[0])
@pytest.mark.parametrize("case", POOL_CASES, ids=pool_id)
def test_pooling_values_and_gradients_match_pytorch(
    pool: tuple[str, Callable[..., Tensor], Any], case: tuple[Any, ...]
) -> None:
    torch = require_torch()
    name, fn, _ = pool
    shape, kernel, stride, padding = case
    array = np.random.default_rng(0).normal(size=shape)
    x = Tensor(array, requires_grad=True)
    tx = torch.tensor(array, requires_grad=True)
    out = fn(x, kernel, stride, padding)
    expected = getattr(torch.nn.functional, name)(tx, kernel, stride, padding)
    assert_allclose(out.array, to_numpy(expected), rtol=1e-12, atol=1e-14)
    grad_out = np.random.default_rng(1).normal(size=out.shape)
    assert_backward_matches_torch(out, expected, [x], [tx], grad_out, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("pool", POOLS, ids=lambda pool: pool[0])
@pytest.mark.parametrize("case", POOL_CASES, ids=pool_id)
def test_pooling_matches_a_loop_reference_and_its_central_differences(
    pool: tuple[str, Callable[..., Tensor], Callable[..., Arr]], case: tuple[Any, ...]
) -> None:
    _, fn, reference = pool
    shape, kernel, stride, padding = case
    # distinct values, at least 0.01 apart: no ties, so the maximum is differentiable
    array = np.random.default_rng(5).permutation(np.prod(shape)).reshape(shape) / 100.0
    x = Tensor(array, requires_grad=True)
    out = fn(x, kernel, stride, padding)
    assert_allclose(out.array, reference(array, kernel, stride, padding), rtol=1e-12)
    grad_out = np.random.default_rng(6).normal(size=out.shape)
    out.backward(grad_out)
    assert x.grad is not None

    def ref(arg: Arr) -> Arr:
        return reference(arg, kernel, stride, padding)

    expected = numeric_vjp(ref, [array], 0, grad_out, eps=1e-4)
    assert_allclose(x.grad.array, expected, rtol=1e-6, atol=1e-8)


def test_max_pool2d_stride_defaults_to_the_kernel_size() -> None:
    x = Tensor(np.arange(16.0).reshape(1, 1, 4, 4))
    assert_array_equal(max_pool2d(x, 2).array, [[[[5.0, 7.0], [13.0, 15.0]]]])
    assert_array_equal(avg_pool2d(x, 2).array, [[[[2.5, 4.5], [10.5, 12.5]]]])


def test_max_pool2d_at_a_tie_gives_the_whole_gradient_to_the_first_maximum() -> None:
    x = Tensor(np.array([[[[1.0, 3.0], [3.0, 3.0]]]]), requires_grad=True)
    max_pool2d(x, 2).backward(np.array([[[[5.0]]]]))
    assert x.grad is not None
    assert_array_equal(x.grad.array, [[[[0.0, 5.0], [0.0, 0.0]]]])  # not split, not the last


def test_max_pool2d_of_a_constant_image_with_overlaps_sums_the_first_maxima() -> None:
    # Every window's first element (row by row) takes its gradient; with stride 1 and
    # padding, windows overlap, so a pixel first in several windows gets their sum.
    x = Tensor(np.zeros((1, 1, 3, 3)), requires_grad=True)
    max_pool2d(x, 3, stride=1, padding=1).backward(np.arange(1.0, 10.0).reshape(1, 1, 3, 3))
    assert x.grad is not None
    # window (i, j) covers rows i-1..i+1: its first in-image pixel is (max(i-1, 0), max(j-1, 0))
    expected = np.zeros((3, 3))
    for i in range(3):
        for j in range(3):
            expected[max(i - 1, 0), max(j - 1, 0)] += 3 * i + j + 1
    assert_array_equal(x.grad.array[0, 0], expected)


@pytest.mark.parity
@pytest.mark.parametrize("case", POOL_CASES, ids=pool_id)
def test_max_pool2d_ties_match_pytorch(case: tuple[Any, ...]) -> None:
    torch = require_torch()
    shape, kernel, stride, padding = case
    array = np.random.default_rng(8).integers(0, 3, size=shape).astype(np.float64)  # many ties
    x = Tensor(array, requires_grad=True)
    tx = torch.tensor(array, requires_grad=True)
    out = max_pool2d(x, kernel, stride, padding)
    expected = torch.nn.functional.max_pool2d(tx, kernel, stride, padding)
    grad_out = np.random.default_rng(9).normal(size=out.shape)
    assert_backward_matches_torch(out, expected, [x], [tx], grad_out, rtol=1e-12, atol=1e-14)


def test_max_pool2d_never_picks_the_padding() -> None:
    x = Tensor(np.full((1, 1, 2, 2), -5.0), requires_grad=True)
    out = max_pool2d(x, 2, stride=1, padding=1)
    assert_array_equal(out.array, np.full((1, 1, 3, 3), -5.0))  # not the padding's 0


def test_avg_pool2d_counts_the_padding() -> None:
    # count_include_pad=True, PyTorch's default: a corner window holds 1 pixel and 3 zeros
    x = Tensor(np.full((1, 1, 2, 2), 4.0), requires_grad=True)
    out = avg_pool2d(x, 2, stride=1, padding=1)
    assert_array_equal(out.array[0, 0], [[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]])
    out.sum().backward()
    assert x.grad is not None
    assert_array_equal(x.grad.array, np.ones((1, 1, 2, 2)))  # each pixel: 4 windows x 1/4


@pytest.mark.parametrize("fn", [max_pool2d, avg_pool2d])
def test_pooling_keeps_float32(fn: Callable[..., Tensor]) -> None:
    array = np.random.default_rng(0).normal(size=(2, 3, 6, 6)).astype(np.float32)
    x = Tensor(array, requires_grad=True)
    out = fn(x, 3, 2, 1)
    assert out.array.dtype == np.float32
    out.sum().backward()
    assert x.grad is not None
    assert x.grad.array.dtype == np.float32


@pytest.mark.parametrize("fn", [max_pool2d, avg_pool2d])
@pytest.mark.parametrize(
    ("shape", "options", "pattern"),
    [
        ((4, 4), {"kernel_size": 2}, r"shape \(N, C, H, W\), got shape \(4, 4\)"),
        ((1, 1, 4, 4), {"kernel_size": 2, "padding": 2}, r"at most half the kernel size"),
        ((1, 1, 2, 2), {"kernel_size": 3}, r"larger than the padded image"),
        ((1, 1, 4, 4), {"kernel_size": 0}, r"kernel sizes and strides of at least 1"),
    ],
)
def test_pooling_of_bad_shapes_or_settings_raises(
    fn: Callable[..., Tensor], shape: tuple[int, ...], options: dict[str, int], pattern: str
) -> None:
    with pytest.raises(ValueError, match=pattern):
        fn(Tensor(np.ones(shape)), **options)


# Untyped aliases: the tests below pass what the annotations forbid, on purpose.
untyped_conv2d: Callable[..., Tensor] = conv2d
untyped_max_pool2d: Callable[..., Tensor] = max_pool2d
untyped_avg_pool2d: Callable[..., Tensor] = avg_pool2d
untyped_adaptive_avg_pool2d: Callable[..., Tensor] = adaptive_avg_pool2d


@pytest.mark.parametrize(
    ("call", "pattern"),
    [
        (
            lambda x, w: untyped_conv2d(x, w, stride=(1,)),
            r"stride must be .* got \(1,\) of length 1",
        ),
        (lambda x, w: untyped_conv2d(x, w, padding=(1, 1, 1)), r"padding must be .* of length 3"),
        (
            lambda x, w: untyped_max_pool2d(x, (2,)),
            r"kernel_size must be .* got \(2,\) of length 1",
        ),
        (lambda x, w: untyped_avg_pool2d(x, 2, stride=[1, 1, 1]), r"stride must be .* of length 3"),
        (lambda x, w: untyped_avg_pool2d(x, 2, padding=()), r"padding must be .* of length 0"),
        (lambda x, w: untyped_adaptive_avg_pool2d(x, (1,)), r"output_size must be .* of length 1"),
    ],
)
def test_a_size_tuple_of_the_wrong_length_raises_naming_it(
    call: Callable[[Tensor, Tensor], Tensor], pattern: str
) -> None:
    x, w = Tensor(np.ones((1, 1, 4, 4))), Tensor(np.ones((1, 1, 2, 2)))
    with pytest.raises(ValueError, match=pattern):
        call(x, w)


@pytest.mark.parametrize(
    ("call", "pattern"),
    [
        (
            lambda x, w: untyped_conv2d(x, w, stride=1.5),
            r"stride must be an int or a pair .* got 1\.5",
        ),
        (lambda x, w: untyped_conv2d(x, w, padding=(1, "1")), r"padding must be .* got \(1, '1'\)"),
        (lambda x, w: untyped_max_pool2d(x, None), r"kernel_size must be .* got None"),
    ],
)
def test_a_size_that_is_not_an_int_raises_type_error(
    call: Callable[[Tensor, Tensor], Tensor], pattern: str
) -> None:
    x, w = Tensor(np.ones((1, 1, 4, 4))), Tensor(np.ones((1, 1, 2, 2)))
    with pytest.raises(TypeError, match=pattern):
        call(x, w)


def test_sizes_may_be_numpy_integers_or_lists() -> None:
    x, w = Tensor(np.ones((1, 1, 4, 4))), Tensor(np.ones((1, 1, 2, 2)))
    expected = conv2d(x, w, stride=2, padding=1).array
    stride, padding = np.int64(2), [np.int32(1), 1]
    assert_array_equal(untyped_conv2d(x, w, stride=stride, padding=padding).array, expected)


# --- adaptive_avg_pool2d --------------------------------------------------------------------


def test_adaptive_avg_pool2d_to_one_is_the_mean_of_each_channel() -> None:
    array = np.random.default_rng(0).normal(size=(2, 3, 4, 5))
    x = Tensor(array, requires_grad=True)
    out = adaptive_avg_pool2d(x, 1)
    assert out.shape == (2, 3, 1, 1)
    assert_allclose(out.array, array.mean(axis=(2, 3), keepdims=True), rtol=1e-14)
    grad_out = np.random.default_rng(1).normal(size=(2, 3, 1, 1))
    out.backward(grad_out)
    assert x.grad is not None
    assert_allclose(x.grad.array, np.broadcast_to(grad_out / 20, (2, 3, 4, 5)), rtol=1e-14)


@pytest.mark.parity
@pytest.mark.parametrize(
    ("shape", "output_size"), [((2, 3, 4, 6), 1), ((2, 3, 4, 6), (2, 3)), ((1, 2, 6, 6), (6, 2))]
)
def test_adaptive_avg_pool2d_matches_pytorch(
    shape: tuple[int, ...], output_size: int | Pair
) -> None:
    torch = require_torch()
    array = np.random.default_rng(0).normal(size=shape)
    x = Tensor(array, requires_grad=True)
    tx = torch.tensor(array, requires_grad=True)
    out = adaptive_avg_pool2d(x, output_size)
    expected = torch.nn.functional.adaptive_avg_pool2d(tx, output_size)
    assert_allclose(out.array, to_numpy(expected), rtol=1e-12)
    grad_out = np.random.default_rng(1).normal(size=out.shape)
    assert_backward_matches_torch(out, expected, [x], [tx], grad_out, rtol=1e-12, atol=0)


def test_adaptive_avg_pool2d_to_an_uneven_size_raises() -> None:
    with pytest.raises(ValueError, match=r"output size \(3, 3\) must divide the image size"):
        adaptive_avg_pool2d(Tensor(np.ones((1, 1, 4, 4))), 3)


# --- every new operation has its backward functions --------------------------------------


def test_every_new_operation_has_its_backward_registered() -> None:
    x = Tensor(np.ones((1, 2, 4, 4)), requires_grad=True)
    weight = Tensor(np.ones((3, 2, 3, 3)), requires_grad=True)
    bias = Tensor(np.ones(3), requires_grad=True)
    outputs = [
        conv2d(x, weight, bias, padding=1),
        max_pool2d(x, 2),
        avg_pool2d(x, 2),
        adaptive_avg_pool2d(x, 1),
    ]
    expected_parents = [{0, 1, 2}, {0}, {0}, {0}]
    for out, parents in zip(outputs, expected_parents, strict=True):
        assert out.recipe is not None
        assert set(out.recipe.parents) == parents
        for position in out.recipe.parents:
            BACK_FUNCS.get_back_func(out.recipe.func, position)  # raises if missing
