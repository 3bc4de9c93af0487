"""Backward functions: the local gradient of each operation, written in NumPy.

For an operation ``out = f(x, y, ...)``, the backward function for argument
``x`` receives ``grad_out`` (the gradient of the final value with respect to
``out``, shaped like ``out``), the forward output ``out`` and every forward
input, and returns the gradient of the final value with respect to ``x``. That
is the chain rule for one link: local derivative times the gradient from above.
"""

import numpy as np

from npgrad.arrays import Arr


def log_back(grad_out: Arr, out: Arr, x: Arr) -> Arr:
    """Gradient with respect to ``x`` of ``out = log(x)``: ``grad_out / x``.

    Shapes: ``grad_out``, ``out`` and ``x`` all share ``x``'s shape.
    """
    return grad_out / x


def multiply_back0(grad_out: Arr, out: Arr, x: Arr, y: Arr | float) -> Arr:
    """Gradient with respect to ``x`` (argument 0) of ``out = x * y``: ``grad_out * y``.

    Shapes: ``x`` and ``y`` have equal shapes, or ``y`` is a Python float.
    """
    return grad_out * y


def multiply_back1(grad_out: Arr, out: Arr, x: Arr | float, y: Arr) -> Arr:
    """Gradient with respect to ``y`` (argument 1) of ``out = x * y``: ``grad_out * x``.

    Shapes: ``x`` and ``y`` have equal shapes, or ``x`` is a Python float.
    """
    return grad_out * x


def forward_and_back(a: Arr, b: Arr, c: Arr) -> tuple[Arr, Arr, Arr]:
    """Gradients of ``g`` with respect to ``a``, ``b`` and ``c``, by hand.

    The graph is ``d = a * b; e = log(c); f = d * e; g = log(f)``. Backward
    starts from dg/dg = 1 and visits each node after every node that uses it,
    so each backward function receives a finished gradient.
    """
    d = a * b
    e = np.log(c)
    f = d * e
    g = np.log(f)

    dg_dg = np.ones_like(g)
    dg_df = log_back(dg_dg, g, f)
    dg_dd = multiply_back0(dg_df, f, d, e)
    dg_de = multiply_back1(dg_df, f, d, e)
    dg_da = multiply_back0(dg_dd, d, a, b)
    dg_db = multiply_back1(dg_dd, d, a, b)
    dg_dc = log_back(dg_de, e, c)
    return dg_da, dg_db, dg_dc
