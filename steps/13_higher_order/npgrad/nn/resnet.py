"""The residual ``BasicBlock`` and a small ``ResNet`` for 1x28x28 images built from it."""

from __future__ import annotations

import numpy as np

from npgrad.nn.conv import AdaptiveAvgPool2d, Conv2d, MaxPool2d
from npgrad.nn.layers import Flatten, Linear, ReLU, Sequential
from npgrad.nn.module import Module
from npgrad.nn.normalisation import BatchNorm2d
from npgrad.tensor import Tensor


class BasicBlock(Module):
    """The residual block of ResNet-18/34: two 3x3 convolutions plus a shortcut.

    ``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``. The first convolution
    has the block's ``stride``; when that stride is not 1 or the number of channels
    changes, ``x`` no longer has the output's shape, and the shortcut is a projection
    (a 1x1 convolution with the same stride, then batch normalisation); otherwise it
    is the identity, and ``shortcut`` is None. The convolutions have no bias: the
    batch normalisation after each would cancel it. The ReLU works in place, as in
    torchvision, on results nothing else has saved (the gradient at 0 is 0).
    Shapes: input (N, in_channels, H, W), output (N, out_channels, OH, OW) with
    ``OH = (H - 1) // stride + 1``.
    """

    shortcut: Sequential | None

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        *,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        self.conv1 = Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=False, rng=rng)
        self.bn1 = BatchNorm2d(out_channels)
        self.relu = ReLU(inplace=True)
        self.conv2 = Conv2d(out_channels, out_channels, 3, padding=1, bias=False, rng=rng)
        self.bn2 = BatchNorm2d(out_channels)
        if stride != 1 or in_channels != out_channels:
            self.shortcut = Sequential(
                Conv2d(in_channels, out_channels, 1, stride, bias=False, rng=rng),
                BatchNorm2d(out_channels),
            )
        else:
            self.shortcut = None

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.shortcut is None else self.shortcut(x)
        return self.relu(out + identity)


class ResNet(Module):
    """A small ResNet for 1x28x28 images (MNIST), with ``channels = (c1, c2, c3)``.

    - stem: 3x3 convolution 1 -> c1, batch norm, ReLU, 2x2 max pooling: 28x28 -> 14x14;
    - ``layer1``: a BasicBlock c1 -> c1 at 14x14;
    - ``layer2``: a BasicBlock c1 -> c2 with stride 2: 14x14 -> 7x7 (projection shortcut);
    - ``layer3``: a BasicBlock c2 -> c3 with stride 2: 7x7 -> 4x4 (projection shortcut);
    - head: adaptive average pooling to 1x1, flatten, ``Linear(c3, num_classes)``.

    Shapes: input (N, 1, 28, 28) float32, output (N, num_classes) logits. ``rng``
    makes the weights reproducible.
    """

    def __init__(
        self,
        channels: tuple[int, int, int] = (16, 32, 64),
        num_classes: int = 10,
        *,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        c1, c2, c3 = channels
        self.channels = channels
        self.conv1 = Conv2d(1, c1, 3, padding=1, bias=False, rng=rng)
        self.bn1 = BatchNorm2d(c1)
        self.relu = ReLU(inplace=True)
        self.maxpool = MaxPool2d(2)
        self.layer1 = BasicBlock(c1, c1, rng=rng)
        self.layer2 = BasicBlock(c1, c2, stride=2, rng=rng)
        self.layer3 = BasicBlock(c2, c3, stride=2, rng=rng)
        self.avgpool = AdaptiveAvgPool2d(1)
        self.flatten = Flatten()
        self.fc = Linear(c3, num_classes, rng=rng)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1:] != (1, 28, 28):
            raise ValueError(
                f"ResNet needs a batch of 1x28x28 images, shape (N, 1, 28, 28), got shape "
                f"{x.shape}; reshape flat images with x.reshape(-1, 1, 28, 28)"
            )
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(self.flatten(self.avgpool(x)))
