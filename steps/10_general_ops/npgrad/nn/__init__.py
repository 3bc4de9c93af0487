"""Neural-network building blocks, one module per kind, all re-exported here.

``module`` holds ``Parameter`` and ``Module``, the base class of layers and
models; ``layers`` the layers ``Linear`` and ``ReLU`` and the lesson's ``MLP``;
``losses`` the loss ``cross_entropy``.
"""

from npgrad.nn.layers import MLP, Linear, ReLU
from npgrad.nn.losses import cross_entropy
from npgrad.nn.module import Forward, Module, Parameter

__all__ = [
    "MLP",
    "Forward",
    "Linear",
    "Module",
    "Parameter",
    "ReLU",
    "cross_entropy",
]
