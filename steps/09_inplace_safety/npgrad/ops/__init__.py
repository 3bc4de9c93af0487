"""The operations, one module per family.

Each family module holds, operation by operation, the forward function, its
backward functions (one per differentiable argument) and the lines that
register them, so a formula sits next to the forward it differentiates. A
backward function for argument ``x`` of ``out = f(x, ...)`` receives
``grad_out`` (shaped like ``out``), ``out`` and every forward argument, and
returns the gradient of the final value with respect to ``x``, shaped like
``x``: the chain rule for one link. The backward functions are public, like
the forwards: they are the derivatives table the lessons teach and test.
"""

from npgrad.ops.broadcasting import (
    unbroadcast,
)
from npgrad.ops.comparison import (
    eq,
)
from npgrad.ops.elementwise import (
    add,
    add_back0,
    add_back1,
    exp,
    exp_back,
    forward_and_back,
    log,
    log_back,
    maximum,
    maximum_back0,
    maximum_back1,
    multiply,
    multiply_back0,
    multiply_back1,
    negative,
    negative_back,
    relu,
    relu_inplace_back,
    subtract,
    subtract_back0,
    subtract_back1,
    true_divide,
    true_divide_back0,
    true_divide_back1,
)
from npgrad.ops.inplace import (
    add_,
    add_scaled_back0,
    add_scaled_back1,
    overwrite,
    overwrite_back,
)
from npgrad.ops.losses import cross_entropy_back, cross_entropy_rows
from npgrad.ops.products import (
    linear,
    linear_back0,
    linear_back1,
    linear_back2,
    matmul,
    matmul_back0,
    matmul_back1,
)
from npgrad.ops.reductions import (
    argmax,
    sum,
    sum_back,
)
from npgrad.ops.shape import (
    expand,
    expand_back,
    getitem,
    getitem_back,
    permute,
    permute_back,
    reshape,
    reshape_back,
)

__all__ = [
    "add",
    "add_",
    "add_back0",
    "add_back1",
    "add_scaled_back0",
    "add_scaled_back1",
    "argmax",
    "cross_entropy_back",
    "cross_entropy_rows",
    "eq",
    "exp",
    "exp_back",
    "expand",
    "expand_back",
    "forward_and_back",
    "getitem",
    "getitem_back",
    "linear",
    "linear_back0",
    "linear_back1",
    "linear_back2",
    "log",
    "log_back",
    "matmul",
    "matmul_back0",
    "matmul_back1",
    "maximum",
    "maximum_back0",
    "maximum_back1",
    "multiply",
    "multiply_back0",
    "multiply_back1",
    "negative",
    "negative_back",
    "overwrite",
    "overwrite_back",
    "permute",
    "permute_back",
    "relu",
    "relu_inplace_back",
    "reshape",
    "reshape_back",
    "subtract",
    "subtract_back0",
    "subtract_back1",
    "sum",
    "sum_back",
    "true_divide",
    "true_divide_back0",
    "true_divide_back1",
    "unbroadcast",
]
