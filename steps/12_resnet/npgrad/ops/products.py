"""Matrix products: ``matmul`` with batching and broadcasting, and ``einsum``."""

import re
import string
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from npgrad.arrays import Arr
from npgrad.forward import wrap_forward_fn
from npgrad.ops.broadcasting import unbroadcast
from npgrad.registry import BACK_FUNCS
from npgrad.tensor import Tensor


def _check_matmul_operands(x: object, y: object) -> None:
    """Raise ``TypeError`` unless both operands of matmul are arrays (a number has no rows)."""
    for operand in (x, y):
        if not isinstance(operand, np.ndarray):
            raise TypeError(
                f"matmul needs two tensors, got {type(operand).__name__} {operand!r}: "
                "to scale a tensor by a number, use * instead of @"
            )


def _matmul(x: Arr, y: Arr) -> Arr:
    """``x @ y`` with PyTorch's shape rules; shapes that do not fit raise, naming both.

    Two 1-D arrays give their dot product (0-d); a 1-D ``x`` is a row and a
    1-D ``y`` a column, whose added dimension is dropped again; arrays with
    more than two dimensions are stacks of matrices in the last two, and
    their batch dimensions (all but the last two) broadcast.
    """
    _check_matmul_operands(x, y)
    if x.ndim == 0 or y.ndim == 0:
        raise ValueError(_matmul_error(x, y, "both need at least one dimension"))
    inner = y.shape[0] if y.ndim == 1 else y.shape[-2]
    if x.shape[-1] != inner:
        reason = f"the last size of the first ({x.shape[-1]}) must equal "
        reason += "the size of the second" if y.ndim == 1 else "the second-to-last of the second"
        raise ValueError(_matmul_error(x, y, f"{reason} ({inner})"))
    try:
        np.broadcast_shapes(x.shape[:-2], y.shape[:-2])
    except ValueError:
        reason = f"the batch shapes {x.shape[:-2]} and {y.shape[:-2]} do not broadcast"
        raise ValueError(_matmul_error(x, y, reason)) from None
    return np.asarray(np.matmul(x, y))


def _matmul_error(x: Arr, y: Arr, reason: str) -> str:
    return (
        f"matmul of incompatible shapes: got {x.shape} and {y.shape}; {reason} "
        "(transpose one side with .T, or reshape it)"
    )


matmul: Callable[[Tensor | Arr, Tensor | Arr], Tensor] = wrap_forward_fn(_matmul)


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
    return _drop_added_dimension(unbroadcast(grad2 @ np.swapaxes(y2, -1, -2), x2), x)


def matmul_back1(grad_out: Arr, out: Arr, x: Arr, y: Arr) -> Arr:
    """Gradient with respect to ``y`` (argument 1) of ``out = x @ y``: ``x.T @ grad_out``.

    The same rules as ``matmul_back0``: 1-D arguments become a row (``x``) or
    a column (``y``), the transpose swaps the last two dimensions, and batch
    dimensions that ``y`` was broadcast along are summed away.
    Shapes: ``x`` is (..., m, k) or (k,), ``y`` is (..., k, n) or (k,); ``grad_out``
    has ``out``'s shape, the result ``y``'s shape.
    """
    x2, y2, grad2 = _matmul_as_2d(grad_out, x, y)
    return _drop_added_dimension(unbroadcast(np.swapaxes(x2, -1, -2) @ grad2, y2), y)


def _drop_added_dimension(grad: Arr, arg: Arr) -> Arr:
    """``grad`` in the shape of ``arg``, reshaped only when ``arg`` was 1-D and padded.

    A reshape to the same shape would still return a view, and a view is not a
    fresh array, so ``backprop`` would copy it into a leaf's ``.grad``.
    """
    return grad if grad.shape == arg.shape else grad.reshape(arg.shape)


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


BACK_FUNCS.add_back_func(_matmul, 0, matmul_back0, reads=(1,))
BACK_FUNCS.add_back_func(_matmul, 1, matmul_back1, reads=(0,))


def _linear(x: Arr, weight: Arr, bias: Arr | None) -> Arr:
    """``x @ weight.T + bias`` (no bias for None) as one operation: ``Linear``'s forward.

    The same numbers as the three recorded operations ``x @ weight.T + bias``
    (transpose, matmul, add), with one recipe instead of three and no
    broadcasting to undo: the engine's time per operation is what a small
    model spends most of its time on (step 08's README, "How this is made fast").
    Shapes: ``x`` (batch, in), ``weight`` (out, in), ``bias`` (out,) or None; the
    result (batch, out).
    """
    _check_matmul_operands(x, weight)
    if x.ndim != 2 or weight.ndim != 2 or x.shape[1] != weight.shape[1]:
        raise ValueError(
            f"linear needs x of shape (batch, in) and weight of shape (out, in), got "
            f"{x.shape} and {weight.shape}"
        )
    out: Arr = x @ weight.T
    return out if bias is None else out + bias


linear: Callable[[Tensor, Tensor, Tensor | None], Tensor] = wrap_forward_fn(_linear)


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


BACK_FUNCS.add_back_func(_linear, 0, linear_back0, reads=(1,))


BACK_FUNCS.add_back_func(_linear, 1, linear_back1, reads=(0,))


BACK_FUNCS.add_back_func(_linear, 2, linear_back2, reads=())

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


def _einsum(subscripts: str, *operands: Arr) -> Arr:
    """``np.einsum`` with the subscripts made explicit first (``einsum_labels``).

    So the forward and ``einsum_back`` read the subscripts the same way, and
    an output without ``...`` sums the ellipsis dimensions, as in PyTorch.
    """
    terms, output = einsum_labels(subscripts, [np.shape(operand) for operand in operands])
    return np.asarray(np.einsum(",".join(terms) + "->" + output, *operands))


_einsum_forward = wrap_forward_fn(_einsum)


def einsum(subscripts: str, *operands: Tensor) -> Tensor:
    """Einstein summation over ``operands``, with a gradient for each.

    ``einsum("ij,jk->ik", a, b)`` is a matrix product: each letter names a
    dimension, letters missing from the output (after ``->``) are summed, a
    letter repeated in one term takes a diagonal (``"ii->i"``), ``...``
    stands for broadcast dimensions, and without ``->`` the output is every
    letter used once, in ASCII order (uppercase first). Each operand is a
    separate argument of the recorded forward, so one variadic backward
    (``einsum_back``) serves them all. Shapes: one letter per dimension of
    each operand; the result has one dimension per output letter.
    """
    if not isinstance(subscripts, str):
        raise TypeError(
            f"einsum takes the subscripts string first, as in einsum('ij,jk->ik', a, b); got "
            f"a {type(subscripts).__name__} (NumPy's form with integer lists is not supported)"
        )
    return _einsum_forward(subscripts, *operands)


def einsum_back(position: int, grad_out: Arr, out: Arr, subscripts: str, *operands: Arr) -> Arr:
    """Gradient of ``out = einsum(subscripts, *operands)`` for the argument at ``position``.

    Registered as the variadic backward of einsum: ``position`` is the
    argument's place in ``einsum(subscripts, *operands)``, so operand
    ``position - 1``. An einsum is linear in each operand, so its gradient is
    another einsum, of ``grad_out`` with every other operand and a few helper
    arrays (``einsum_back_spec``).
    Shapes: ``grad_out`` has ``out``'s shape, the result has the operand's shape.
    """
    shapes = [operand.shape for operand in operands]
    spec, helpers = einsum_back_spec(position, subscripts, shapes, grad_out.dtype)
    others = [other for k, other in enumerate(operands) if k != position - 1]
    return np.asarray(np.einsum(spec, grad_out, *others, *helpers, optimize=True))


def einsum_back_spec(
    position: int, subscripts: str, shapes: list[tuple[int, ...]], dtype: np.dtype[np.generic]
) -> tuple[str, list[Arr]]:
    """The einsum that gives the gradient for the argument at ``position``, and its helpers.

    The gradient is ``einsum(spec, grad_out, *other_operands, *helpers)``:
    ``grad_out`` (with the output's letters) times every other operand, summed
    over every letter the operand does not have. Three letters need help to
    appear in that einsum's output:
    - a letter repeated in the operand (``'ii->i'``, a diagonal): the gradient
      lives on the diagonal, so each repeat gets a fresh letter tied to the
      first by an identity matrix;
    - a letter only the operand has (``'ij->i'`` sums ``j`` away), or has
      at full size: each summed element receives the same gradient, a vector
      of ones carries it;
    - a dimension of size 1 that broadcasting stretched: summed, kept as size 1.
    Only the operands' shapes are needed, so step 13's recorded gradient builds
    the same einsum from Tensors.
    """
    terms, output = einsum_labels(subscripts, shapes)
    index = position - 1
    shape, term = shapes[index], terms[index]
    sizes: dict[str, int] = {}
    for other_term, other_shape in zip(terms, shapes, strict=True):
        for letter, size in zip(other_term, other_shape, strict=True):
            sizes[letter] = size if sizes.get(letter, 1) == 1 else sizes[letter]  # 1 broadcasts
    free = iter(letter for letter in EINSUM_LETTERS if letter not in subscripts + "".join(terms))
    result: list[str] = []  # the gradient's letters, one per dimension of the operand
    helper_terms: list[str] = []
    helpers: list[Arr] = []
    kept: list[str] = []  # letters of the operand carried to its gradient as they are
    for axis, letter in enumerate(term):
        if shape[axis] != sizes[letter]:  # size 1, broadcast: sum over the letter
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
    other_shapes = [other for k, other in enumerate(shapes) if k != index]
    full = set(output).union(*helper_terms)  # letters some input has at their full size
    for other_term, other_shape in zip(other_terms, other_shapes, strict=True):
        full.update(
            letter for letter, n in zip(other_term, other_shape, strict=True) if n == sizes[letter]
        )
    for letter in kept:
        if letter not in full:  # summed away by this operand alone: ones spread it back
            helper_terms.append(letter)
            helpers.append(np.ones(sizes[letter], dtype=dtype))
    spec = ",".join([output, *other_terms, *helper_terms]) + "->" + "".join(result)
    return spec, helpers


def _next_letter(free: Iterator[str], subscripts: str) -> str:
    letter = next(free, None)
    if letter is None:
        raise ValueError(f"the gradient of einsum {subscripts!r} needs more than 52 letters")
    return letter


BACK_FUNCS.add_variadic_back_func(_einsum, einsum_back, reads_other_args=True)
