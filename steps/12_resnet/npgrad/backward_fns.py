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


# --- step 11: convolution and pooling -----------------------------------------------------
#
# Images are (N, C, H, W): batch, channels, height, width. A kernel of size (kh, kw)
# slides over the (zero-)padded image with a stride (sh, sw); each position is a window.
# ``_windows`` sees every window at once as a strided view (no copy, no loop), and
# ``_add_windows`` is its adjoint: it sends each window's gradient back to the pixels
# the window came from, summing where windows overlap.

Pair = tuple[int, int]


def _windows(x: Arr, kernel_size: Pair, stride: Pair, padding: Pair, pad_value: float = 0.0) -> Arr:
    """Every ``kernel_size`` window of ``x`` padded by ``padding``, as a strided view.

    Window ``(h, w)`` starts at row ``h * sh`` and column ``w * sw`` of the padded
    image. Nothing is copied except the padding (``np.pad``, when ``padding`` is not
    zero): ``sliding_window_view`` makes a view with one window per pixel, and the
    stride is a slice of it. ``pad_value`` fills the border (``-inf`` for max pooling).
    Shapes: ``x`` (N, C, H, W); the result (N, C, OH, OW, kh, kw), read-only, where
    ``OH = (H + 2 * ph - kh) // sh + 1`` and likewise ``OW``.
    """
    ph, pw = padding
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=pad_value)
    every_window = np.lib.stride_tricks.sliding_window_view(x, kernel_size, axis=(2, 3))
    return every_window[:, :, :: stride[0], :: stride[1]]


def _window_reduce(windows: Arr, combine: np.ufunc) -> Arr:
    """Each window combined into one value, shape (N, C, OH, OW): ``np.maximum`` or ``np.add``.

    A loop over the kh * kw offsets inside a kernel, each one a vectorised
    ``combine`` over every window at once: many times faster than NumPy's ``max``
    or ``sum`` over the two tiny last axes of a strided view.
    """
    kh, kw = windows.shape[-2:]
    result = windows[..., 0, 0].copy()
    for i in range(kh):
        for j in range(kw):
            if i or j:
                combine(result, windows[..., i, j], out=result)
    return result


def _add_windows(grad_windows: Arr, x_shape: tuple[int, ...], stride: Pair, padding: Pair) -> Arr:
    """The adjoint of ``_windows``: each window's gradient added back where it came from.

    A pixel that lies in several windows (the stride is smaller than the kernel)
    receives the sum of their gradients. The loop runs over the kh * kw offsets
    inside a kernel, never over pixels: offset ``(i, j)`` of every window at once is
    one strided slice of the padded image, so each iteration is one vectorised add.
    The padding's gradient is dropped at the end.
    Shapes: ``grad_windows`` (N, C, OH, OW, kh, kw); ``x_shape`` (N, C, H, W), the
    shape of the result.
    """
    n, c, oh, ow, kh, kw = grad_windows.shape
    (sh, sw), (ph, pw) = stride, padding
    height, width = x_shape[2], x_shape[3]
    grad = np.zeros((n, c, height + 2 * ph, width + 2 * pw), dtype=grad_windows.dtype)
    for i in range(kh):
        for j in range(kw):
            grad[:, :, i : i + sh * oh : sh, j : j + sw * ow : sw] += grad_windows[..., i, j]
    return grad[:, :, ph : ph + height, pw : pw + width]


def _output_size(x: Arr, kernel_size: Pair, stride: Pair, padding: Pair) -> Pair:
    """(OH, OW): how many windows fit down and across the padded image."""
    return (
        (x.shape[2] + 2 * padding[0] - kernel_size[0]) // stride[0] + 1,
        (x.shape[3] + 2 * padding[1] - kernel_size[1]) // stride[1] + 1,
    )


def _padded_channels_last(x: Arr, padding: Pair) -> Arr:
    """``x`` zero-padded by ``padding`` and copied channels-last: (N, H + 2 * ph, W + 2 * pw, C).

    Channels-last puts the ``kw * C`` values of one window row next to each other in
    memory, so the copy into im2col's rows moves long runs instead of single numbers.
    """
    n, c, height, width = x.shape
    ph, pw = padding
    padded = np.zeros((n, height + 2 * ph, width + 2 * pw, c), dtype=x.dtype)
    padded[:, ph : ph + height, pw : pw + width, :] = x.transpose(0, 2, 3, 1)
    return padded


def _windows_channels_last(x: Arr, kernel_size: Pair, stride: Pair, padding: Pair) -> Arr:
    """Every window of ``x`` padded by ``padding``, channels-last, as a strided view.

    The same windows as ``_windows``, with the channel axis moved to the end:
    element ``[n, h, w, i, j, c]`` is ``xp[n, c, h * sh + i, w * sw + j]``.
    Shapes: ``x`` (N, C, H, W); the result (N, OH, OW, kh, kw, C), read-only.
    """
    padded = _padded_channels_last(x, padding)
    n, _, _, c = padded.shape
    (kh, kw), (sh, sw) = kernel_size, stride
    oh, ow = _output_size(x, kernel_size, stride, padding)
    step_n, step_h, step_w, step_c = padded.strides
    return np.lib.stride_tricks.as_strided(
        padded,
        shape=(n, oh, ow, kh, kw, c),
        strides=(step_n, step_h * sh, step_w * sw, step_h, step_w, step_c),
        writeable=False,
    )


def _im2col(x: Arr, kernel_size: Pair, stride: Pair, padding: Pair) -> Arr:
    """The windows of ``x`` as the rows of a matrix: im2col, for convolution by one product.

    Row ``(n, h, w)`` holds window ``(h, w)`` of image ``n``, flattened in the order
    (row, column, channel) of ``_kernel_rows``, so ``cols @ _kernel_rows(weight).T`` is
    the convolution. This is the one copy of the windows (C * kh * kw values per
    output position). The copy runs along whatever is longest in memory: a window
    row of every channel (``kw * C`` values) in general; with a single channel
    (an input image), that is only ``kw`` values, so the matrix is then copied
    transposed, along image rows, and returned as a transposed view (a matrix
    product reads either layout at the same speed).
    Shapes: ``x`` (N, C, H, W); the result (N * OH * OW, kh * kw * C).
    """
    windows = _windows_channels_last(x, kernel_size, stride, padding)
    n, oh, ow, kh, kw, c = windows.shape
    if c == 1:
        return windows.transpose(3, 4, 5, 0, 1, 2).reshape(kh * kw * c, n * oh * ow).T
    return windows.reshape(n * oh * ow, kh * kw * c)


def _kernel_rows(weight: Arr) -> Arr:
    """(O, C, kh, kw) as the matrix (O, kh * kw * C), in the column order of ``_im2col``."""
    return weight.transpose(0, 2, 3, 1).reshape(weight.shape[0], -1)


def _output_rows(grad_out: Arr) -> Arr:
    """(N, O, OH, OW) as the matrix (N * OH * OW, O) whose rows match ``_im2col``'s rows."""
    n, o, oh, ow = grad_out.shape
    return grad_out.transpose(0, 2, 3, 1).reshape(n * oh * ow, o)


def _correlate(x: Arr, weight: Arr, bias: Arr | None, stride: Pair, padding: Pair) -> Arr:
    """The convolution of ``x`` with ``weight``, plus ``bias``: im2col and one matrix product.

    The product's rows are the output positions and its columns the output
    channels, so the result is channels-last in memory; it is returned as the
    (N, O, OH, OW) view of that, which elementwise operations keep, and which
    ``_output_rows`` turns back into the matrix without a copy.
    Shapes: ``x`` (N, C, H, W), ``weight`` (O, C, kh, kw), ``bias`` (O,) or None; the
    result (N, O, OH, OW).
    """
    kernel_size = (weight.shape[2], weight.shape[3])
    out = _im2col(x, kernel_size, stride, padding) @ _kernel_rows(weight).T  # (N * OH * OW, O)
    if bias is not None:
        out += bias
    oh, ow = _output_size(x, kernel_size, stride, padding)
    return out.reshape(x.shape[0], oh, ow, weight.shape[0]).transpose(0, 3, 1, 2)


def _add_windows_channels_last(
    grad_windows: Arr, x_shape: tuple[int, ...], stride: Pair, padding: Pair
) -> Arr:
    """``_add_windows`` for channels-last windows, the adjoint of ``_windows_channels_last``.

    Shapes: ``grad_windows`` (N, OH, OW, kh, kw, C); ``x_shape`` (N, C, H, W), the
    shape of the result (a view of a channels-last array).
    """
    n, oh, ow, kh, kw, c = grad_windows.shape
    (sh, sw), (ph, pw) = stride, padding
    height, width = x_shape[2], x_shape[3]
    grad = np.zeros((n, height + 2 * ph, width + 2 * pw, c), dtype=grad_windows.dtype)
    for i in range(kh):
        for j in range(kw):
            grad[:, i : i + sh * oh : sh, j : j + sw * ow : sw, :] += grad_windows[:, :, :, i, j, :]
    return grad[:, ph : ph + height, pw : pw + width, :].transpose(0, 3, 1, 2)


def conv2d_back0(
    grad_out: Arr,
    out: Arr,
    x: Arr,
    weight: Arr,
    bias: Arr | None,
    stride: Pair,
    padding: Pair,
) -> Arr:
    """Gradient with respect to ``x`` (argument 0) of ``out = conv2d(x, weight, bias, ...)``.

    ``out[n, o, h, w] = sum_{c, i, j} xp[n, c, h * sh + i, w * sw + j] * weight[o, c, i, j]``,
    so pixel ``xp[n, c, y, z]`` receives ``grad_out[n, o, h, w] * weight[o, c, i, j]``
    from every window ``(h, w)`` it lies in, at offset ``(i, j)``. Two ways to sum that:

    - with stride 1 this is itself a convolution, a *transposed* one: pad
      ``grad_out`` by ``kh - 1 - ph`` (and ``kw - 1 - pw``), then convolve it with the
      kernel flipped top to bottom and left to right, its in and out channels
      swapped. One im2col and one matrix product, as fast as the forward pass.
    - otherwise (a stride, or padding wider than the kernel, or a single input
      channel, where the product above would have one column): the gradient of
      every window is ``grad_out`` times ``weight``, summed over ``o``, one matrix
      product in im2col's shape, and ``_add_windows_channels_last`` sums the
      windows back into the image (where they overlap, a pixel receives from each
      window it is in).

    Shapes: ``x`` (N, C, H, W), ``weight`` (O, C, kh, kw); ``grad_out`` (N, O, OH, OW),
    the result (N, C, H, W).
    """
    n, _, oh, ow = grad_out.shape
    _, c, kh, kw = weight.shape
    ph, pw = padding
    if stride == (1, 1) and c > 1 and ph < kh and pw < kw:
        flipped = weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)  # (C, O, kh, kw)
        return _correlate(grad_out, flipped, None, (1, 1), (kh - 1 - ph, kw - 1 - pw))
    rows, kernel = _output_rows(grad_out), _kernel_rows(weight)
    # the same memory order as _im2col's matrix, for the same reason
    grad_cols = (kernel.T @ rows.T).T if c == 1 else rows @ kernel  # (N * OH * OW, kh * kw * C)
    grad_windows = grad_cols.reshape(n, oh, ow, kh, kw, c)
    return _add_windows_channels_last(grad_windows, x.shape, stride, padding)


def conv2d_back1(
    grad_out: Arr,
    out: Arr,
    x: Arr,
    weight: Arr,
    bias: Arr | None,
    stride: Pair,
    padding: Pair,
) -> Arr:
    """Gradient with respect to ``weight`` (argument 1) of ``out = conv2d(x, weight, ...)``.

    Every weight meets every window: ``grad_out`` times the windows of ``x``, summed
    over the batch and the output positions, one matrix product with im2col's matrix
    (rebuilt from ``x``).
    Shapes: ``x`` (N, C, H, W), ``weight`` (O, C, kh, kw); ``grad_out`` (N, O, OH, OW),
    the result (O, C, kh, kw).
    """
    o, c, kh, kw = weight.shape
    cols = _im2col(x, (kh, kw), stride, padding)
    return (_output_rows(grad_out).T @ cols).reshape(o, kh, kw, c).transpose(0, 3, 1, 2)


def conv2d_back2(
    grad_out: Arr, out: Arr, x: Arr, weight: Arr, bias: Arr, stride: Pair, padding: Pair
) -> Arr:
    """Gradient with respect to ``bias`` (argument 2) of ``out = conv2d(x, weight, bias, ...)``.

    Bias ``o`` is added at every position of output channel ``o``: the sum of
    ``grad_out`` over the batch, height and width.
    Shapes: ``grad_out`` (N, O, OH, OW), the result (O,).
    """
    grad: Arr = grad_out.sum(axis=(0, 2, 3))
    return grad


def max_pool2d_back(
    grad_out: Arr, out: Arr, x: Arr, kernel_size: Pair, stride: Pair, padding: Pair
) -> Arr:
    """Gradient with respect to ``x`` of ``out = max_pool2d(x, kernel_size, stride, padding)``.

    Each window's maximum came from one element, which receives the whole gradient;
    the others receive 0. At a tie the first maximum in the window (row by row) takes
    it, as in PyTorch. The maxima are found again from ``x``; then, offset by offset
    in that order, an element equal to its window's maximum takes whatever gradient
    its window has left (all of it, or 0 once an earlier maximum took it), so only
    the first maximum receives it. ``_add_windows`` sums where windows overlap.
    Shapes: ``x`` (N, C, H, W); ``grad_out`` (N, C, OH, OW), the result (N, C, H, W).
    """
    windows = _windows(x, kernel_size, stride, padding, pad_value=-np.inf)
    largest = _window_reduce(windows, np.maximum)
    kh, kw = kernel_size
    grad_windows = np.empty((kh, kw, *grad_out.shape), dtype=grad_out.dtype)
    left = grad_out.copy()
    for i in range(kh):
        for j in range(kw):
            np.multiply(left, windows[..., i, j] == largest, out=grad_windows[i, j])
            left -= grad_windows[i, j]
    return _add_windows(grad_windows.transpose(2, 3, 4, 5, 0, 1), x.shape, stride, padding)


def avg_pool2d_back(
    grad_out: Arr, out: Arr, x: Arr, kernel_size: Pair, stride: Pair, padding: Pair
) -> Arr:
    """Gradient with respect to ``x`` of ``out = avg_pool2d(x, kernel_size, stride, padding)``.

    Each window's mean gives each of its kh * kw elements (padding included, which
    is PyTorch's ``count_include_pad=True``) an equal share of the gradient; the
    shares are summed back with ``_add_windows``.
    Shapes: ``x`` (N, C, H, W); ``grad_out`` (N, C, OH, OW), the result (N, C, H, W).
    """
    kh, kw = kernel_size
    share = grad_out / (kh * kw)
    grad_windows = np.broadcast_to(share[..., None, None], (*share.shape, kh, kw))
    return _add_windows(grad_windows, x.shape, stride, padding)


# --- step 12: batch normalisation ---------------------------------------------------------


def _channel_axes(x: Arr) -> tuple[int, ...]:
    """Every axis but the channel axis 1: what batch normalisation averages over."""
    return (0, *range(2, x.ndim))


def _per_channel(values: Arr, ndim: int) -> Arr:
    """A per-channel vector (C,) shaped (1, C, 1, ...) to broadcast against ``ndim`` dimensions."""
    return values.reshape(1, -1, *([1] * (ndim - 2)))


def _normalise_by_batch(x: Arr, eps: float) -> tuple[Arr, Arr]:
    """``(x_hat, inv_std)``: ``x`` standardised per channel by its own mean and variance.

    ``x_hat = (x - mean) * inv_std`` with ``inv_std = 1 / sqrt(var + eps)``, where the
    mean and the biased variance (divided by the count, not count - 1) are taken over
    every axis but the channels. Shapes: ``x`` (N, C, *); ``x_hat`` like ``x``,
    ``inv_std`` (1, C, 1, ...).
    """
    axes = _channel_axes(x)
    centred = x - x.mean(axis=axes, keepdims=True)
    inv_std = 1.0 / np.sqrt(np.mean(centred * centred, axis=axes, keepdims=True) + eps)
    return centred * inv_std, inv_std


def batch_norm_train_back0(
    grad_out: Arr, out: Arr, x: Arr, weight: Arr | None, bias: Arr | None, eps: float
) -> Arr:
    """Gradient with respect to ``x`` (argument 0) of batch normalisation in training mode.

    ``out = x_hat * weight + bias`` with ``x_hat = (x - mean) * inv_std``, where the
    mean and variance are this batch's own, per channel: they depend on every element
    of the channel, so the gradient has three terms. With ``g = grad_out * weight``
    (the gradient with respect to ``x_hat``) and means over all but the channel axis::

        grad_x = inv_std * (g - mean(g) - x_hat * mean(g * x_hat))

    The middle term is the path through the mean, the last the path through the
    variance. ``x_hat`` and ``inv_std`` are recomputed from ``x``.
    Shapes: ``x`` (N, C, *), ``weight`` and ``bias`` (C,) or None; ``grad_out`` like
    ``x``, and so is the result.
    """
    axes = _channel_axes(x)
    x_hat, inv_std = _normalise_by_batch(x, eps)
    g = grad_out if weight is None else grad_out * _per_channel(weight, x.ndim)
    mean_g: Arr = g.mean(axis=axes, keepdims=True)
    mean_g_x_hat: Arr = (g * x_hat).mean(axis=axes, keepdims=True)
    grad: Arr = inv_std * (g - mean_g - x_hat * mean_g_x_hat)
    return grad


def batch_norm_train_back1(
    grad_out: Arr, out: Arr, x: Arr, weight: Arr, bias: Arr | None, eps: float
) -> Arr:
    """Gradient with respect to ``weight`` (argument 1) of batch normalisation, training mode.

    ``weight[c]`` scales every ``x_hat`` of channel ``c``: the sum of
    ``grad_out * x_hat`` over all but the channel axis.
    Shapes: ``x`` and ``grad_out`` (N, C, *); the result (C,).
    """
    x_hat, _ = _normalise_by_batch(x, eps)
    grad: Arr = (grad_out * x_hat).sum(axis=_channel_axes(x))
    return grad


def batch_norm_train_back2(
    grad_out: Arr, out: Arr, x: Arr, weight: Arr | None, bias: Arr, eps: float
) -> Arr:
    """Gradient with respect to ``bias`` (argument 2) of batch normalisation, training mode.

    ``bias[c]`` is added to every element of channel ``c``: the sum of ``grad_out``
    over all but the channel axis. Shapes: ``grad_out`` (N, C, *); the result (C,).
    """
    grad: Arr = grad_out.sum(axis=_channel_axes(x))
    return grad


def _normalise_by_running_stats(
    x: Arr, running_mean: Arr, running_var: Arr, eps: float
) -> tuple[Arr, Arr]:
    """``(x_hat, inv_std)`` for evaluation mode: standardised by the running statistics.

    Shapes: ``x`` (N, C, *), ``running_mean`` and ``running_var`` (C,); ``x_hat`` like
    ``x``, ``inv_std`` (1, C, 1, ...).
    """
    inv_std = 1.0 / np.sqrt(_per_channel(running_var, x.ndim) + eps)
    return (x - _per_channel(running_mean, x.ndim)) * inv_std, inv_std


def batch_norm_eval_back0(
    grad_out: Arr,
    out: Arr,
    x: Arr,
    running_mean: Arr,
    running_var: Arr,
    weight: Arr | None,
    bias: Arr | None,
    eps: float,
) -> Arr:
    """Gradient with respect to ``x`` (argument 0) of batch normalisation in evaluation mode.

    The running statistics are constants here, so the normalisation is an affine map
    per channel: ``grad_out * weight * inv_std``.
    Shapes: ``x`` (N, C, *), the statistics, ``weight`` and ``bias`` (C,) (the last
    two may be None); ``grad_out`` like ``x``, and so is the result.
    """
    inv_std = 1.0 / np.sqrt(_per_channel(running_var, x.ndim) + eps)
    scale = inv_std if weight is None else inv_std * _per_channel(weight, x.ndim)
    return grad_out * scale


def batch_norm_eval_back3(
    grad_out: Arr,
    out: Arr,
    x: Arr,
    running_mean: Arr,
    running_var: Arr,
    weight: Arr,
    bias: Arr | None,
    eps: float,
) -> Arr:
    """Gradient with respect to ``weight`` (argument 3) of batch normalisation, evaluation mode.

    The sum of ``grad_out * x_hat`` over all but the channel axis, with ``x_hat``
    standardised by the running statistics.
    Shapes: ``x`` and ``grad_out`` (N, C, *); the result (C,).
    """
    x_hat, _ = _normalise_by_running_stats(x, running_mean, running_var, eps)
    grad: Arr = (grad_out * x_hat).sum(axis=_channel_axes(x))
    return grad


def batch_norm_eval_back4(
    grad_out: Arr,
    out: Arr,
    x: Arr,
    running_mean: Arr,
    running_var: Arr,
    weight: Arr | None,
    bias: Arr,
    eps: float,
) -> Arr:
    """Gradient with respect to ``bias`` (argument 4) of batch normalisation, evaluation mode.

    The sum of ``grad_out`` over all but the channel axis.
    Shapes: ``grad_out`` (N, C, *); the result (C,).
    """
    grad: Arr = grad_out.sum(axis=_channel_axes(x))
    return grad
