"""Backward functions: the local gradient of each operation, written in NumPy.

For an operation ``out = f(x, y, ...)``, the backward function for argument
``x`` receives ``grad_out`` (the gradient of the final value with respect to
``out``, shaped like ``out``), the forward output ``out`` and every forward
input, and returns the gradient of the final value with respect to ``x``. That
is the chain rule for one link: local derivative times the gradient from above.
"""

import re
import string
from collections.abc import Iterator, Sequence

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

    With PyTorch's rules for matmul: a 1-D ``x`` is a row ``(1, k)`` and a
    1-D ``y`` a column ``(k, 1)`` whose added dimension is dropped from
    ``out``, so ``grad_out`` gets that dimension back first; the transpose
    swaps the last two dimensions only; and batch dimensions that ``x`` was
    broadcast along are summed away (``unbroadcast``).
    Shapes: ``x`` is (..., m, k) or (k,), ``y`` is (..., k, n) or (k,); ``grad_out``
    has ``out``'s shape, the result ``x``'s shape.
    """
    x2, y2, grad2 = _matmul_as_2d(grad_out, x, y)
    return unbroadcast(grad2 @ np.swapaxes(y2, -1, -2), x2).reshape(x.shape)


def matmul_back1(grad_out: Arr, out: Arr, x: Arr, y: Arr) -> Arr:
    """Gradient with respect to ``y`` (argument 1) of ``out = x @ y``: ``x.T @ grad_out``.

    The same rules as ``matmul_back0``: 1-D arguments become a row (``x``) or
    a column (``y``), the transpose swaps the last two dimensions, and batch
    dimensions that ``y`` was broadcast along are summed away. Two 2-D
    arguments where ``y`` is a transposed view (``weight.T``): the product is
    computed as ``(grad_out.T @ x).T``, the same numbers laid out like ``y``,
    so the weight's gradient, transposed back, is contiguous like the weight
    (and the optimiser's update runs along memory, several times faster).
    Shapes: ``x`` is (..., m, k) or (k,), ``y`` is (..., k, n) or (k,); ``grad_out``
    has ``out``'s shape, the result ``y``'s shape.
    """
    x2, y2, grad2 = _matmul_as_2d(grad_out, x, y)
    if x2.ndim == 2 and y2.ndim == 2 and y2.flags.f_contiguous and not y2.flags.c_contiguous:
        return (grad2.T @ x2).T  # laid out like ``y``, a transposed view: see below
    return unbroadcast(np.swapaxes(x2, -1, -2) @ grad2, y2).reshape(y.shape)


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


def _matmul_as_2d(grad_out: Arr, x: Arr, y: Arr) -> tuple[Arr, Arr, Arr]:
    """``x`` as (..., m, k), ``y`` as (..., k, n) and ``grad_out`` as (..., m, n).

    Undoes the dimension matmul drops for a 1-D argument: a 1-D ``x`` is the
    row (1, k), a 1-D ``y`` the column (k, 1), and ``grad_out`` regains the
    size-1 dimension each of them lost in ``out``.
    """
    if x.ndim == 1:
        x = x[np.newaxis, :]
    if y.ndim == 1:
        y = y[:, np.newaxis]
    batch = np.broadcast_shapes(x.shape[:-2], y.shape[:-2])
    return x, y, grad_out.reshape((*batch, x.shape[-2], y.shape[-1]))


def add_scaled_back0(grad_out: Arr, out: Arr, x: Arr, other: Arr | float, alpha: float) -> Arr:
    """Gradient with respect to ``x`` of the in-place ``x += alpha * other``: ``grad_out``.

    Shapes: ``x``, ``out`` and ``grad_out`` share ``x``'s shape.
    """
    return grad_out


def add_scaled_back1(grad_out: Arr, out: Arr, x: Arr, other: Arr, alpha: float) -> Arr:
    """Gradient with respect to ``other`` of the in-place ``x += alpha * other``.

    ``alpha * grad_out``, summed back to ``other``'s shape (``other``
    broadcasts to ``x``'s shape).
    """
    return unbroadcast(grad_out * alpha, other)


def relu_inplace_back(grad_out: Arr, out: Arr, x: Arr) -> Arr:
    """Gradient with respect to ``x`` of the in-place relu: ``grad_out`` except where ``out <= 0``.

    Read from the output, since the input's old values were overwritten: the
    gradient at exactly 0 is 0, and at a NaN it passes, as in PyTorch.
    Shapes: all share ``x``'s shape.
    """
    return grad_out * ~(out <= 0)


# --- step 10: general operations ---------------------------------------------------------

# Every label einsum accepts, in ASCII order: the order of an implicit output.
EINSUM_LETTERS = string.ascii_uppercase + string.ascii_lowercase
_EINSUM_TERM = re.compile(r"[A-Za-z]*(?:\.\.\.)?[A-Za-z]*")


def einsum_labels(
    subscripts: str, shapes: Sequence[tuple[int, ...]]
) -> tuple[tuple[str, ...], str]:
    """``subscripts`` for operands of ``shapes``, made explicit: one letter per dimension.

    Returns a term per operand and the output term, where ``...`` has become
    fresh letters (one per broadcast dimension, right-aligned as in
    broadcasting) and an implicit output (no ``->``) is spelled out: the
    ellipsis dimensions, then every letter used exactly once, in ASCII order
    (uppercase first). An explicit output without ``...`` sums the ellipsis
    dimensions away, as in PyTorch. Raises ``ValueError`` for subscripts that
    do not fit the shapes.
    """
    text = subscripts.replace(" ", "")
    inputs, arrow, output = text.partition("->")
    terms = inputs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(
            f"einsum subscripts {subscripts!r} name {len(terms)} operand(s) but "
            f"{len(shapes)} were given: write one comma-separated term per operand"
        )
    for term in (*terms, output):
        if _EINSUM_TERM.fullmatch(term) is None:
            raise ValueError(
                f"einsum subscripts {subscripts!r}: {term!r} is not a term; a term is letters "
                "(a-z, A-Z) with at most one '...'"
            )
    n_ellipsis_dims = []
    for index, (term, shape) in enumerate(zip(terms, shapes, strict=True)):
        n_letters = len(term.replace("...", ""))
        extra = len(shape) - n_letters
        if extra < 0 or (extra > 0 and "..." not in term):
            raise ValueError(
                f"einsum term {term!r} names {n_letters} dimension(s) but operand {index} has "
                f"shape {shape}: write one letter per dimension, or '...' for the rest"
            )
        n_ellipsis_dims.append(extra)
    used = set(text)
    free = [letter for letter in EINSUM_LETTERS if letter not in used]
    n_broadcast = max(n_ellipsis_dims, default=0)
    if n_broadcast > len(free):
        raise ValueError(f"einsum subscripts {subscripts!r} need more than 52 letters")
    ellipsis_letters = "".join(free[:n_broadcast])
    explicit = tuple(
        term.replace("...", ellipsis_letters[n_broadcast - n :])
        for term, n in zip(terms, n_ellipsis_dims, strict=True)
    )
    if arrow:
        output = output.replace("...", ellipsis_letters)
        named = "".join(terms)
        for letter in output:
            if output.count(letter) > 1 or letter not in named + ellipsis_letters:
                raise ValueError(
                    f"einsum subscripts {subscripts!r}: the output letter {letter!r} must appear "
                    "in an input term, and only once in the output"
                )
    else:
        letters = "".join(terms).replace("...", "")
        once = sorted(letter for letter in set(letters) if letters.count(letter) == 1)
        has_ellipsis = "..." in inputs
        output = (ellipsis_letters if has_ellipsis else "") + "".join(once)
    _check_einsum_sizes(subscripts, explicit, shapes)
    return explicit, output


def _check_einsum_sizes(
    subscripts: str, terms: Sequence[str], shapes: Sequence[tuple[int, ...]]
) -> None:
    """Each letter has one size across the operands, or size 1 where it broadcasts."""
    sizes: dict[str, set[int]] = {}
    for term, shape in zip(terms, shapes, strict=True):
        for letter, size in zip(term, shape, strict=True):
            sizes.setdefault(letter, set()).add(size)
    for letter, found in sizes.items():
        if len(found - {1}) > 1:
            shown = ", ".join(str(shape) for shape in shapes)
            raise ValueError(
                f"einsum subscripts {subscripts!r} with operands of shapes {shown}: the "
                f"letter {letter!r} has sizes {sorted(found)}, but a letter stands for one "
                "size (or 1, which broadcasts)"
            )


def einsum_back(position: int, grad_out: Arr, out: Arr, subscripts: str, *operands: Arr) -> Arr:
    """Gradient of ``out = einsum(subscripts, *operands)`` for the argument at ``position``.

    Registered as the variadic backward of einsum: ``position`` is the
    argument's place in ``einsum(subscripts, *operands)``, so operand
    ``position - 1``. An einsum is linear in each operand, so its gradient is
    another einsum: ``grad_out`` (with the output's letters) times every other
    operand, summed over every letter the operand does not have. Three
    letters need help to appear in that einsum's output:
    - a letter repeated in the operand (``'ii->i'``, a diagonal): the gradient
      lives on the diagonal, so each repeat gets a fresh letter tied to the
      first by an identity matrix;
    - a letter only the operand has (``'ij->i'`` sums ``j`` away), or has
      at full size: each summed element receives the same gradient, a vector
      of ones carries it;
    - a dimension of size 1 that broadcasting stretched: summed, kept as size 1.
    Shapes: ``grad_out`` has ``out``'s shape, the result has the operand's shape.
    """
    shapes = [operand.shape for operand in operands]
    terms, output = einsum_labels(subscripts, shapes)
    index = position - 1
    operand, term = operands[index], terms[index]
    sizes: dict[str, int] = {}
    for other_term, shape in zip(terms, shapes, strict=True):
        for letter, size in zip(other_term, shape, strict=True):
            sizes[letter] = size if sizes.get(letter, 1) == 1 else sizes[letter]  # 1 broadcasts
    free = iter(letter for letter in EINSUM_LETTERS if letter not in subscripts + "".join(terms))
    dtype = grad_out.dtype
    result: list[str] = []  # the gradient's letters, one per dimension of the operand
    helper_terms: list[str] = []
    helpers: list[Arr] = []
    kept: list[str] = []  # letters of the operand carried to its gradient as they are
    for axis, letter in enumerate(term):
        if operand.shape[axis] != sizes[letter]:  # size 1, broadcast: sum over the letter
            fresh = _next_letter(free, subscripts)
            helper_terms.append(fresh)
            helpers.append(np.ones(1, dtype=dtype))
            result.append(fresh)
        elif letter in kept:  # a repeat: the diagonal, through an identity matrix
            fresh = _next_letter(free, subscripts)
            helper_terms.append(letter + fresh)
            helpers.append(np.eye(sizes[letter], dtype=dtype))
            result.append(fresh)
        else:
            kept.append(letter)
            result.append(letter)
    other_terms = [other for k, other in enumerate(terms) if k != index]
    others = [other for k, other in enumerate(operands) if k != index]
    full = set(output).union(*helper_terms)  # letters some input has at their full size
    for other_term, other in zip(other_terms, others, strict=True):
        full.update(
            letter for letter, n in zip(other_term, other.shape, strict=True) if n == sizes[letter]
        )
    for letter in kept:
        if letter not in full:  # summed away by this operand alone: ones spread it back
            helper_terms.append(letter)
            helpers.append(np.ones(sizes[letter], dtype=dtype))
    spec = ",".join([output, *other_terms, *helper_terms]) + "->" + "".join(result)
    return np.asarray(np.einsum(spec, grad_out, *others, *helpers, optimize=True))


def _next_letter(free: Iterator[str], subscripts: str) -> str:
    letter = next(free, None)
    if letter is None:
        raise ValueError(f"the gradient of einsum {subscripts!r} needs more than 52 letters")
    return letter


def stack_back(position: int, grad_out: Arr, out: Arr, *arrays: Arr, dim: int) -> Arr:
    """Gradient of ``out = stack(arrays, dim)`` for the array at ``position``.

    Registered as the variadic backward of stack: array ``position`` became
    the slice ``position`` of ``out`` along the new dimension ``dim``, so its
    gradient is that slice of ``grad_out``.
    Shapes: every array has one shape ``s``; ``out`` and ``grad_out`` have ``s``
    with ``len(arrays)`` inserted at ``dim``; the result has shape ``s``.
    """
    return np.asarray(np.take(grad_out, position, axis=dim))


def concatenate_back(position: int, grad_out: Arr, out: Arr, *arrays: Arr, dim: int) -> Arr:
    """Gradient of ``out = concatenate(arrays, dim)`` for the array at ``position``.

    Registered as the variadic backward of concatenate: array ``position``
    fills a run of ``out`` along ``dim`` that starts after the arrays before
    it, so its gradient is that run of ``grad_out``.
    Shapes: the arrays agree except along ``dim``; ``grad_out`` has ``out``'s
    shape; the result has the shape of ``arrays[position]``.
    """
    axis = dim % out.ndim
    start = sum(array.shape[axis] for array in arrays[:position])
    run = slice(start, start + arrays[position].shape[axis])
    return grad_out[(slice(None),) * axis + (run,)]


def where_back1(grad_out: Arr, out: Arr, condition: Arr, x: Arr, y: Arr | float) -> Arr:
    """Gradient with respect to ``x`` (argument 1) of ``out = where(condition, x, y)``.

    ``grad_out`` where ``condition`` holds (those elements came from ``x``),
    0 elsewhere, unbroadcast. The condition itself gets no gradient.
    Shapes: ``condition``, ``x`` and ``y`` broadcast together; ``grad_out`` has
    the broadcast shape, the result ``x``'s shape.
    """
    return unbroadcast(np.where(condition, grad_out, 0.0), x)


def where_back2(grad_out: Arr, out: Arr, condition: Arr, x: Arr | float, y: Arr) -> Arr:
    """Gradient with respect to ``y`` (argument 2) of ``out = where(condition, x, y)``.

    ``grad_out`` where ``condition`` fails (those elements came from ``y``),
    0 elsewhere, unbroadcast.
    Shapes: ``condition``, ``x`` and ``y`` broadcast together; ``grad_out`` has
    the broadcast shape, the result ``y``'s shape.
    """
    return unbroadcast(np.where(condition, 0.0, grad_out), y)
