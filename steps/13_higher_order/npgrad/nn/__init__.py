"""Neural-network building blocks, one module per kind, all re-exported here.

``module`` holds ``Parameter`` and ``Module``, the base class of layers and
models; ``layers`` the layers ``Linear``, ``ReLU``, ``Flatten`` and
``Sequential`` and the lesson's ``MLP``; ``losses`` the loss
``cross_entropy``; ``conv`` the convolution and pooling layers and the small
``CNN``; ``normalisation`` ``BatchNorm2d``; ``resnet`` the residual
``BasicBlock`` and the small ``ResNet``.
"""

from npgrad.nn.conv import CNN, AdaptiveAvgPool2d, AvgPool2d, Conv2d, IntOrPair, MaxPool2d
from npgrad.nn.layers import MLP, Flatten, Linear, ReLU, Sequential
from npgrad.nn.losses import cross_entropy
from npgrad.nn.module import Forward, Module, Parameter
from npgrad.nn.normalisation import BatchNorm2d
from npgrad.nn.resnet import BasicBlock, ResNet

__all__ = [
    "CNN",
    "MLP",
    "AdaptiveAvgPool2d",
    "AvgPool2d",
    "BasicBlock",
    "BatchNorm2d",
    "Conv2d",
    "Flatten",
    "Forward",
    "IntOrPair",
    "Linear",
    "MaxPool2d",
    "Module",
    "Parameter",
    "ReLU",
    "ResNet",
    "Sequential",
    "cross_entropy",
]
