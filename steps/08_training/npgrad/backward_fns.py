"""Backward functions: the local gradient of each operation, written in NumPy.

For an operation ``out = f(x, y, ...)``, the backward function for argument
``x`` receives ``grad_out`` (the gradient of the final value with respect to
``out``, shaped like ``out``), the forward output ``out`` and every forward
input, and returns the gradient of the final value with respect to ``x``. That
is the chain rule for one link: local derivative times the gradient from above.
"""

import numpy as np

from npgrad.arrays import Arr


def unbroadcast(broadcasted: Arr, original: Arr) -> Arr:
    """Sum ``broadcasted`` back down to the shape of ``original``.

    Broadcasting copies an input along the dimensions it was stretched over, so
    the gradient of that input is the sum over those dimensions: first the
    dimensions NumPy prepended, then (keeping them) each dimension where
    ``original`` has size 1 and ``broadcasted`` does not.
    Shapes: ``original`` must broadcast to ``broadcasted.shape``; the result has
    ``original.shape``.
    """
    if broadcasted.shape == original.shape:
        return broadcasted  # nothing was broadcast, the usual case: skip the search
    n_prepended = broadcasted.ndim - original.ndim
    if n_prepended < 0:
        raise ValueError(
            f"cannot unbroadcast shape {broadcasted.shape} to {original.shape}: "
            "the gradient has fewer dimensions than the input it belongs to"
        )
    if n_prepended > 0:
        broadcasted = broadcasted.sum(axis=tuple(range(n_prepended)))
    stretched = tuple(
        axis
        for axis, (before, after) in enumerate(zip(original.shape, broadcasted.shape, strict=True))
        if before == 1 and after != 1
    )
    if stretched:
        broadcasted = broadcasted.sum(axis=stretched, keepdims=True)
    if broadcasted.shape != original.shape:
        raise ValueError(
            f"cannot unbroadcast to shape {original.shape}: "
            f"shape {original.shape} does not broadcast to the gradient's shape"
        )
    return broadcasted


def log_back(grad_out: Arr, out: Arr, x: Arr) -> Arr:
    """Gradient with respect to ``x`` of ``out = log(x)``: ``grad_out / x``.

    Shapes: ``grad_out``, ``out`` and ``x`` all share ``x``'s shape.
    """
    return grad_out / x


def multiply_back0(grad_out: Arr, out: Arr, x: Arr, y: Arr | float) -> Arr:
    """Gradient with respect to ``x`` (argument 0) of ``out = x * y``: ``grad_out * y``.

    Shapes: ``x`` and ``y`` broadcast together (``y`` may be a Python float);
    ``grad_out`` has the broadcast shape, the result ``x``'s shape.
    """
    return unbroadcast(grad_out * y, x)


def multiply_back1(grad_out: Arr, out: Arr, x: Arr | float, y: Arr) -> Arr:
    """Gradient with respect to ``y`` (argument 1) of ``out = x * y``: ``grad_out * x``.

    Shapes: ``x`` and ``y`` broadcast together (``x`` may be a Python float);
    ``grad_out`` has the broadcast shape, the result ``y``'s shape.
    """
    return unbroadcast(grad_out * x, y)


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


# --- step 06: the operations an MLP needs ------------------------------------------------


def negative_back(grad_out: Arr, out: Arr, x: Arr) -> Arr:
    """Gradient with respect to ``x`` of ``out = -x``: ``-grad_out``.

    Shapes: ``grad_out``, ``out`` and ``x`` all share ``x``'s shape.
    """
    return -grad_out


def exp_back(grad_out: Arr, out: Arr, x: Arr) -> Arr:
    """Gradient with respect to ``x`` of ``out = exp(x)``: ``grad_out * out``.

    The derivative of exp is exp itself, which the forward pass already
    computed: reuse ``out`` instead of calling ``np.exp(x)`` again.
    Shapes: ``grad_out``, ``out`` and ``x`` all share ``x``'s shape.
    """
    return grad_out * out


def reshape_back(grad_out: Arr, out: Arr, x: Arr, shape: tuple[int, ...]) -> Arr:
    """Gradient with respect to ``x`` of ``out = reshape(x, shape)``: ``grad_out`` reshaped back.

    Reshaping moves no value, so each element's gradient just moves back.
    Shapes: ``grad_out`` has ``out``'s shape, the result ``x``'s shape.
    """
    return grad_out.reshape(x.shape)


def permute_back(grad_out: Arr, out: Arr, x: Arr, dims: tuple[int, ...]) -> Arr:
    """Gradient with respect to ``x`` of ``out = transpose(x, dims)``: the inverse permutation.

    Output dimension ``i`` is input dimension ``dims[i]``, so the gradient's
    dimension ``i`` goes back to position ``dims[i]`` (the inverse is ``dims``
    itself only when the permutation is its own inverse, as a 2-D transpose is).
    Shapes: ``grad_out`` has ``out``'s shape, the result ``x``'s shape.
    """
    inverse = [0] * len(dims)
    for position, dim in enumerate(dims):
        inverse[dim % x.ndim] = position
    return grad_out.transpose(inverse)


def expand_back(grad_out: Arr, out: Arr, x: Arr, sizes: tuple[int, ...]) -> Arr:
    """Gradient with respect to ``x`` of ``out = expand(x, sizes)``: ``unbroadcast``.

    Expanding is broadcasting by request: each input element was copied along
    the stretched dimensions, so its gradient is the sum over them.
    Shapes: ``grad_out`` has ``out``'s shape, the result ``x``'s shape.
    """
    return unbroadcast(grad_out, x)


def sum_back(
    grad_out: Arr, out: Arr, x: Arr, dim: int | tuple[int, ...] | None, keepdim: bool
) -> Arr:
    """Gradient with respect to ``x`` of ``out = x.sum(dim, keepdim)``: ``grad_out`` spread out.

    Every summed element contributed once, so each receives the gradient of
    its sum: put back the reduced dimensions (when ``keepdim`` dropped them)
    and broadcast to ``x``'s shape. The result is a read-only broadcast view.
    Shapes: ``grad_out`` has ``out``'s shape (0-d for ``dim=None`` without
    ``keepdim``), the result ``x``'s shape.
    """
    if not keepdim and dim is not None:
        grad_out = np.expand_dims(grad_out, dim)
    return np.broadcast_to(grad_out, x.shape)


def getitem_back(grad_out: Arr, out: Arr, x: Arr, index: object) -> Arr:
    """Gradient with respect to ``x`` of ``out = x[index]``: ``grad_out`` added into zeros.

    An element picked several times (an integer array with repeated
    coordinates) receives the sum of its gradients: ``np.add.at`` accumulates,
    where ``grad[index] += grad_out`` would keep only one of them.
    Shapes: ``grad_out`` has ``out``'s shape, the result ``x``'s shape.
    """
    grad = np.zeros(x.shape, dtype=grad_out.dtype)
    np.add.at(grad, index, grad_out)  # type: ignore[arg-type]  # any valid NumPy index
    return grad


def add_back0(grad_out: Arr, out: Arr, x: Arr, y: Arr | float) -> Arr:
    """Gradient with respect to ``x`` (argument 0) of ``out = x + y``: ``grad_out``, unbroadcast.

    Shapes: ``x`` and ``y`` broadcast together; ``grad_out`` has the broadcast
    shape, the result ``x``'s shape.
    """
    return unbroadcast(grad_out, x)


def add_back1(grad_out: Arr, out: Arr, x: Arr | float, y: Arr) -> Arr:
    """Gradient with respect to ``y`` (argument 1) of ``out = x + y``: ``grad_out``, unbroadcast.

    Shapes: ``x`` and ``y`` broadcast together; ``grad_out`` has the broadcast
    shape, the result ``y``'s shape.
    """
    return unbroadcast(grad_out, y)


def subtract_back0(grad_out: Arr, out: Arr, x: Arr, y: Arr | float) -> Arr:
    """Gradient with respect to ``x`` (argument 0) of ``out = x - y``: ``grad_out``, unbroadcast.

    Shapes: ``x`` and ``y`` broadcast together; ``grad_out`` has the broadcast
    shape, the result ``x``'s shape.
    """
    return unbroadcast(grad_out, x)


def subtract_back1(grad_out: Arr, out: Arr, x: Arr | float, y: Arr) -> Arr:
    """Gradient with respect to ``y`` (argument 1) of ``out = x - y``: ``-grad_out``, unbroadcast.

    Shapes: ``x`` and ``y`` broadcast together; ``grad_out`` has the broadcast
    shape, the result ``y``'s shape.
    """
    return unbroadcast(-grad_out, y)


def true_divide_back0(grad_out: Arr, out: Arr, x: Arr, y: Arr | float) -> Arr:
    """Gradient with respect to ``x`` (argument 0) of ``out = x / y``: ``grad_out / y``.

    Shapes: ``x`` and ``y`` broadcast together; ``grad_out`` has the broadcast
    shape, the result ``x``'s shape.
    """
    return unbroadcast(grad_out / y, x)


def true_divide_back1(grad_out: Arr, out: Arr, x: Arr | float, y: Arr) -> Arr:
    """Gradient with respect to ``y`` (argument 1) of ``out = x / y``: ``-grad_out * x / y**2``.

    Read from the inputs only, not as ``-grad_out * out / y``: a backward that
    reads ``out`` gives a wrong answer once ``out`` is changed in place.
    Shapes: ``x`` and ``y`` broadcast together; ``grad_out`` has the broadcast
    shape, the result ``y``'s shape.
    """
    return unbroadcast(-grad_out * x / (y * y), y)


def maximum_back0(grad_out: Arr, out: Arr, x: Arr, y: Arr | float) -> Arr:
    """Gradient with respect to ``x`` (argument 0) of ``out = maximum(x, y)``.

    ``grad_out`` where ``x`` is larger, half of it where ``x`` and ``y`` tie
    (the tie splits the gradient evenly between the two), 0 where ``x`` is
    smaller. Where either is NaN the output is NaN and ``grad_out`` passes to
    both, as in PyTorch, so the gradient does not hide the NaN.
    Shapes: ``x`` and ``y`` broadcast together; ``grad_out`` has the broadcast
    shape, the result ``x``'s shape.
    """
    grad = grad_out * ~(x < y)  # not "x > y": a comparison with NaN is False
    ties = np.equal(x, y)
    if ties.any():  # rare with real data, so only then pay for the split
        grad = grad - grad_out * ties * 0.5
    return unbroadcast(grad, x)


def maximum_back1(grad_out: Arr, out: Arr, x: Arr | float, y: Arr) -> Arr:
    """Gradient with respect to ``y`` (argument 1) of ``out = maximum(x, y)``.

    ``grad_out`` where ``y`` is larger, half of it at a tie, 0 where ``y`` is
    smaller, and ``grad_out`` where either is NaN (as in PyTorch).
    Shapes: ``x`` and ``y`` broadcast together; ``grad_out`` has the broadcast
    shape, the result ``y``'s shape.
    """
    grad = grad_out * ~(y < x)
    ties = np.equal(x, y)
    if ties.any():  # rare with real data, so only then pay for the split
        grad = grad - grad_out * ties * 0.5
    return unbroadcast(grad, y)


def matmul_back0(grad_out: Arr, out: Arr, x: Arr, y: Arr) -> Arr:
    """Gradient with respect to ``x`` (argument 0) of ``out = x @ y``: ``grad_out @ y.T``.

    Shapes: ``x`` is (m, k), ``y`` is (k, n); ``grad_out`` is (m, n), the result (m, k).
    """
    return grad_out @ y.T


def matmul_back1(grad_out: Arr, out: Arr, x: Arr, y: Arr) -> Arr:
    """Gradient with respect to ``y`` (argument 1) of ``out = x @ y``: ``x.T @ grad_out``.

    The gradient is laid out in memory like ``y``: when ``y`` is a transposed
    view (a ``Linear`` layer's ``weight.T``), the product is computed as
    ``(grad_out.T @ x).T``, the same numbers, so that the weight's gradient,
    transposed back, is contiguous like the weight (and the optimiser's update
    runs along memory, several times faster than across it).
    Shapes: ``x`` is (m, k), ``y`` is (k, n); ``grad_out`` is (m, n), the result (k, n).
    """
    if y.flags.f_contiguous and not y.flags.c_contiguous:
        return (grad_out.T @ x).T
    return x.T @ grad_out


def linear_back0(grad_out: Arr, out: Arr, x: Arr, weight: Arr, bias: Arr | None) -> Arr:
    """Gradient with respect to ``x`` (argument 0) of ``out = x @ weight.T + bias``.

    ``grad_out @ weight``: ``matmul_back0`` with ``y = weight.T``.
    Shapes: ``x`` (batch, in), ``weight`` (out, in); ``grad_out`` (batch, out), the
    result (batch, in).
    """
    return grad_out @ weight


def linear_back1(grad_out: Arr, out: Arr, x: Arr, weight: Arr, bias: Arr | None) -> Arr:
    """Gradient with respect to ``weight`` (argument 1) of ``out = x @ weight.T + bias``.

    ``grad_out.T @ x``: ``matmul_back1``'s ``x.T @ grad_out``, transposed, as
    ``weight.T`` was, computed directly in the weight's shape.
    Shapes: ``x`` (batch, in), ``weight`` (out, in); ``grad_out`` (batch, out), the
    result (out, in).
    """
    return grad_out.T @ x


def linear_back2(grad_out: Arr, out: Arr, x: Arr, weight: Arr, bias: Arr) -> Arr:
    """Gradient with respect to ``bias`` (argument 2) of ``out = x @ weight.T + bias``.

    The bias is broadcast over the batch, so its gradient is ``grad_out`` summed
    over the batch: ``unbroadcast`` of ``add_back1``, written out.
    Shapes: ``grad_out`` (batch, out), the result (out,).
    """
    grad: Arr = grad_out.sum(axis=0)
    return grad


def cross_entropy_back(grad_out: Arr, out: Arr, logits: Arr, labels: Arr) -> Arr:
    """Gradient with respect to ``logits`` (argument 0) of ``out = _cross_entropy(logits, labels)``.

    Row ``i`` of the loss is ``log(sum_j exp(logits[i, j])) - logits[i, labels[i]]``,
    whose derivative with respect to ``logits[i, j]`` is ``softmax(logits)[i, j]``
    minus 1 for the true class: the softmax minus the one-hot label, times
    ``grad_out[i]``. The softmax is recomputed from the logits, with each row's
    maximum subtracted first so that ``exp`` cannot overflow.
    Shapes: ``logits`` (batch, classes), ``labels`` and ``grad_out`` (batch,); the
    result (batch, classes).
    """
    grad: Arr = np.exp(logits - logits.max(axis=1, keepdims=True))
    grad *= (grad_out / grad.sum(axis=1))[:, None]  # normalised and scaled in one pass
    grad[np.arange(len(labels)), labels] -= grad_out
    return grad
