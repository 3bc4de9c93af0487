"""Gradients of gradients: a second table of backward functions, written with Tensor operations.

One module per family of operations (``elementwise``, ``shape``,
``reductions``, ``products``, ``losses``, ``conv``, ``pooling``, ``normalisation``), each
registering the Tensor twin of every NumPy backward function of its family in
``GRAPH_BACK_FUNCS``; ``engine`` runs a backward pass with them
(``create_graph=True``) and holds ``grad``. Importing this package registers
every twin.
"""

from npgrad.higher_order import (
    conv,
    elementwise,
    losses,
    normalisation,
    pooling,
    products,
    reductions,
    shape,
)
from npgrad.higher_order.engine import backward_with_graph, grad
from npgrad.higher_order.registry import (
    GRAPH_BACK_FUNCS,
    GraphBackFunc,
    GraphBackFuncLookup,
    MissingGraphBackwardError,
)
from npgrad.higher_order.shape import scatter_add

__all__ = [
    "GRAPH_BACK_FUNCS",
    "GraphBackFunc",
    "GraphBackFuncLookup",
    "MissingGraphBackwardError",
    "backward_with_graph",
    "conv",
    "elementwise",
    "grad",
    "losses",
    "normalisation",
    "pooling",
    "products",
    "reductions",
    "scatter_add",
    "shape",
]
