"""Convolution and pooling layers around the operations of the same names, and a small CNN.

``Conv2d`` holds its weights as Parameters; ``MaxPool2d``, ``AvgPool2d`` and
``AdaptiveAvgPool2d`` hold only their settings. ``CNN`` classifies 1x28x28
images with two rounds of convolution and pooling.
"""

from __future__ import annotations

import math

import numpy as np

from npgrad.nn.layers import Flatten, Linear, ReLU, Sequential
from npgrad.nn.module import Module, Parameter
from npgrad.ops import (
    adaptive_avg_pool2d,
    avg_pool2d,
    conv2d,
    max_pool2d,
)
from npgrad.ops.windows import Pair, as_pair
from npgrad.tensor import Tensor

IntOrPair = int | tuple[int, int]


class Conv2d(Module):
    """A 2-D convolution layer: ``conv2d(x, weight, bias, stride, padding)``.

    ``weight`` has shape (out_channels, in_channels, kh, kw) and ``bias`` shape
    (out_channels,), both float32, drawn uniformly from ``+-1/sqrt(fan_in)`` with
    ``fan_in = in_channels * kh * kw``, as PyTorch's default initialisation. One
    group, no dilation, zero padding. Pass ``rng`` for reproducible weights.
    Shapes: input (N, in_channels, H, W), output (N, out_channels, OH, OW).
    """

    weight: Parameter
    bias: Parameter | None

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntOrPair,
        stride: IntOrPair = 1,
        padding: IntOrPair = 0,
        bias: bool = True,
        *,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        self.kernel_size: Pair = as_pair(kernel_size, "kernel_size")
        self.stride: Pair = as_pair(stride, "stride")
        self.padding: Pair = as_pair(padding, "padding")
        if min(in_channels, out_channels, *self.kernel_size, *self.stride) < 1:
            raise ValueError(
                "Conv2d needs at least one input and output channel, and kernel sizes and "
                f"strides of at least 1; got in_channels={in_channels}, "
                f"out_channels={out_channels}, kernel_size={kernel_size}, stride={stride}"
            )
        if min(self.padding) < 0:
            raise ValueError(f"Conv2d needs padding of at least 0, got {padding}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        rng = np.random.default_rng() if rng is None else rng
        bound = 1 / math.sqrt(in_channels * self.kernel_size[0] * self.kernel_size[1])
        shape = (out_channels, in_channels, *self.kernel_size)
        weight = Tensor(np.empty(shape, dtype=np.float32))
        self.weight = Parameter(weight.uniform_(-bound, bound, rng=rng))
        if bias:
            values = Tensor(np.empty(out_channels, dtype=np.float32))
            self.bias = Parameter(values.uniform_(-bound, bound, rng=rng))
        else:
            self.bias = None

    def forward(self, x: Tensor) -> Tensor:
        return conv2d(x, self.weight, self.bias, self.stride, self.padding)

    def extra_repr(self) -> str:
        text = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}"
        )
        if self.padding != (0, 0):
            text += f", padding={self.padding}"
        if self.bias is None:
            text += ", bias=False"
        return text


class _Pool2d(Module):
    """What ``MaxPool2d`` and ``AvgPool2d`` share: the window settings and their repr."""

    def __init__(
        self,
        kernel_size: IntOrPair,
        stride: IntOrPair | None = None,
        padding: IntOrPair = 0,
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride: IntOrPair = kernel_size if stride is None else stride
        self.padding = padding

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool2d):
    """``max_pool2d(x, kernel_size, stride, padding)``; ``stride`` defaults to the kernel size.

    Shapes: input (N, C, H, W), output (N, C, OH, OW).
    """

    def forward(self, x: Tensor) -> Tensor:
        return max_pool2d(x, self.kernel_size, self.stride, self.padding)


class AvgPool2d(_Pool2d):
    """``avg_pool2d(x, kernel_size, stride, padding)``; ``stride`` defaults to the kernel size.

    Shapes: input (N, C, H, W), output (N, C, OH, OW).
    """

    def forward(self, x: Tensor) -> Tensor:
        return avg_pool2d(x, self.kernel_size, self.stride, self.padding)


class AdaptiveAvgPool2d(Module):
    """``adaptive_avg_pool2d(x, output_size)``: 1 gives each channel's mean, shape (N, C, 1, 1)."""

    def __init__(self, output_size: IntOrPair) -> None:
        super().__init__()
        self.output_size = output_size

    def forward(self, x: Tensor) -> Tensor:
        return adaptive_avg_pool2d(x, self.output_size)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class CNN(Module):
    """A small convolutional network for 1x28x28 images (MNIST).

    Two rounds of 3x3 convolution (padding 1, so the size is kept), ReLU and 2x2 max
    pooling: 1 -> c1 channels at 28x28 -> 14x14, then c1 -> c2 at 14x14 -> 7x7; then
    flatten and ``Linear(c2 * 7 * 7, num_classes)``.
    Shapes: input (N, 1, 28, 28) float32, output (N, num_classes) logits. ``rng``
    makes the weights reproducible.
    """

    def __init__(
        self,
        channels: tuple[int, int] = (8, 16),
        num_classes: int = 10,
        *,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        c1, c2 = channels
        self.channels = channels
        self.features = Sequential(
            Conv2d(1, c1, 3, padding=1, rng=rng),
            ReLU(),
            MaxPool2d(2),
            Conv2d(c1, c2, 3, padding=1, rng=rng),
            ReLU(),
            MaxPool2d(2),
        )
        self.flatten = Flatten()
        self.fc = Linear(c2 * 7 * 7, num_classes, rng=rng)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1:] != (1, 28, 28):
            raise ValueError(
                f"CNN needs a batch of 1x28x28 images, shape (N, 1, 28, 28), got shape "
                f"{x.shape}; reshape flat images with x.reshape(-1, 1, 28, 28)"
            )
        return self.fc(self.flatten(self.features(x)))
