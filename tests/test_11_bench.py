"""Step 11: the convolution benchmark's conv2d timing (shared.bench.conv) runs sensibly.

The ResNet's timing and the whole conv part need step 12 (tests/test_12_bench.py).

Tiny shapes and few repeats: these tests check the plumbing, not the speed.
"""

import pytest

import npgrad
from shared.bench import conv
from shared.testing.parity import require_torch

pytestmark = pytest.mark.step(11)

TINY = (conv.ConvShape(2, 2, 6, 3, 3, 1, 1), conv.ConvShape(2, 3, 5, 2, 1, 2, 0))


def test_time_conv2d_without_torch_times_npgrad_alone() -> None:
    timings = conv.time_conv2d(npgrad, None, TINY, repeats=1)
    assert [t.shape for t in timings] == [shape.label() for shape in TINY]
    assert all(t.npgrad_ms > 0 and t.torch_ms is None and t.ratio is None for t in timings)


@pytest.mark.parity
def test_time_conv2d_against_torch_gives_a_ratio() -> None:
    torch = require_torch()
    (timing,) = conv.time_conv2d(npgrad, torch, TINY[:1], repeats=2)
    assert timing.torch_ms is not None
    assert timing.torch_ms > 0
    assert timing.ratio == pytest.approx(timing.npgrad_ms / timing.torch_ms)
