"""``BatchNorm2d``: batch normalisation of images per channel, with running statistics.

The running mean and variance are buffers, saved with the model but not trained.
"""

from __future__ import annotations

import numpy as np

from npgrad.nn.module import Module, Parameter
from npgrad.ops import (
    batch_norm,
)
from npgrad.tensor import Tensor


class BatchNorm2d(Module):
    """Batch normalisation of images, per channel, with running statistics.

    In training mode (``module.train()``, the default) each channel is standardised
    by the batch's own mean and variance, and the buffers ``running_mean`` and
    ``running_var`` move towards them: ``running = (1 - momentum) * running +
    momentum * batch`` (the unbiased variance for ``running_var``). In evaluation
    mode (``module.eval()``) the running statistics standardise instead and are not
    changed. Then ``* weight + bias`` per channel (ones and zeros at first; none
    with ``affine=False``). Everything is float32.
    Shapes: input and output (N, num_features, H, W).
    """

    weight: Parameter | None
    bias: Parameter | None
    running_mean: Tensor
    running_var: Tensor

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float = 0.1,
        affine: bool = True,
    ) -> None:
        super().__init__()
        if num_features < 1:
            raise ValueError(f"BatchNorm2d needs at least one feature, got {num_features}")
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        if affine:
            self.weight = Parameter(Tensor(np.ones(num_features, dtype=np.float32)))
            self.bias = Parameter(Tensor(np.zeros(num_features, dtype=np.float32)))
        else:
            self.weight = None
            self.bias = None
        self.register_buffer("running_mean", Tensor(np.zeros(num_features, dtype=np.float32)))
        self.register_buffer("running_var", Tensor(np.ones(num_features, dtype=np.float32)))

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 4 or x.shape[1] != self.num_features:
            raise ValueError(
                f"BatchNorm2d({self.num_features}) needs an input of shape "
                f"(N, {self.num_features}, H, W), got shape {x.shape}"
            )
        return batch_norm(
            x,
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            self.training,
            self.momentum,
            self.eps,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"
        )
