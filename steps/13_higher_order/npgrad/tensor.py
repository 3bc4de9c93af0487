"""The Tensor: a NumPy array plus what autograd needs to know about it."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from types import EllipsisType
from typing import TypeAlias, overload

import numpy as np
import numpy.typing as npt

from npgrad.arrays import Arr


class VersionCounter:
    """How many in-place operations have changed one array.

    Shared by every Tensor that stands for the same memory (a Parameter and the
    tensor it wraps, the node an in-place operation leaves behind, and every
    view of an array and the array itself), so a change through any of them is
    seen by all.
    """

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value: int = 0


class View:
    """Where a tensor's array lives: inside the array of ``base``, another tensor's.

    Basic indexing, ``reshape``, ``permute``, ``expand`` and ``T`` may return
    NumPy views, which share memory with their input. Such a result shares its
    base's version counter, and remembers ``of_base``, the function that takes
    the base's array to its own, so that an in-place change through either side
    can update the other side's history. ``history_version`` is the counter's
    value when the view's recipe was last made to match its values.
    """

    __slots__ = ("base", "history_version", "of_base")

    def __init__(self, base: Tensor, of_base: Callable[[Arr], Arr], history_version: int) -> None:
        self.base = base
        self.of_base = of_base
        self.history_version = history_version


@dataclass(frozen=True, slots=True, eq=False)
class Recipe:
    """How a tensor was computed: everything its backward pass needs.

    ``func`` is the NumPy forward function (the key into ``BACK_FUNCS``);
    ``args`` are the positional arguments it received, the very arrays (not
    copies) and plain values such as Python floats; ``kwargs`` its keyword
    arguments, Tensors among them unboxed to their arrays too; ``parents``
    maps each input that needs a gradient to its Tensor, keyed by position,
    or by keyword name for a Tensor that stayed a keyword (see
    ``wrap_forward_fn``).

    ``saved_versions`` holds ``(position or name, version counter, version)``
    for every Tensor argument whose values a backward function reads, and
    ``out_version`` the output's version when one reads the output (None when
    none does): backprop checks that no in-place operation changed them since.
    ``parent_generations`` gives, for a parent that had been changed in place
    by recorded operations, how many: the recipe means the parent as it was
    then, not as later in-place operations left it (see ``Tensor._history``).
    """

    func: Callable[..., Arr]
    args: tuple[object, ...]
    kwargs: dict[str, object]
    parents: dict[int | str, Tensor]
    saved_versions: tuple[tuple[int | str, VersionCounter, int], ...] = ()
    out_version: int | None = None
    parent_generations: dict[int | str, int] = field(default_factory=dict)


class Tensor:
    """A NumPy array with autograd bookkeeping.

    ``array`` holds the data (an ndarray passed in is shared, not copied);
    ``requires_grad`` says whether a gradient is wanted for this tensor;
    ``grad`` receives that gradient as a Tensor; ``recipe`` records how the
    tensor was computed, and is None for a tensor created directly (a leaf).

    A recorded in-place operation gives the tensor a new recipe; ``_history``
    keeps the nodes that stood for it before each one (a recipe made earlier
    still means the tensor as it was then). ``_view`` is set for a tensor whose
    array is a view of another tensor's.
    """

    __slots__ = (
        "_history",
        "_version_counter",
        "_view",
        "array",
        "grad",
        "recipe",
        "requires_grad",
    )

    array: Arr
    requires_grad: bool
    grad: Tensor | None
    recipe: Recipe | None
    _version_counter: VersionCounter
    _history: list[Tensor] | None
    _view: View | None

    # NumPy defers to the Tensor's reflected operators: ``np.float64(2) * t`` and
    # ``np.ones(3) + t`` call ``t.__rmul__``/``t.__radd__`` and give a Tensor,
    # instead of NumPy making an object array of Tensors (losing the graph).
    __array_ufunc__ = None

    def __init__(self, array: npt.ArrayLike, requires_grad: bool = False) -> None:
        self.array = np.asarray(array)
        if self.array.dtype.kind == "O":
            raise TypeError(
                "Tensor data must be numbers or arrays of numbers, not Python objects "
                "(dtype object); to share another tensor's data, pass tensor.array"
            )
        if self.array.dtype.kind not in "biuf":
            raise TypeError(
                f"Tensor data must be boolean, integer or floating point numbers, got dtype "
                f"{self.array.dtype} (strings, bytes, complex numbers, dates and times are not "
                "supported): convert the data to numbers first"
            )
        # Gradients exist only for floating point: integer or boolean data that
        # must require grad becomes float64, as the exercise's examples expect.
        if requires_grad and self.array.dtype.kind in "biu":
            self.array = self.array.astype(np.float64)
        self.requires_grad = requires_grad
        self.grad = None
        self.recipe = None
        self._version_counter = VersionCounter()
        self._history = None
        self._view = None

    def __repr__(self) -> str:
        return f"Tensor({self.array!r}, requires_grad={self.requires_grad})"

    # By identity: two tensors with equal values are still two graph nodes.
    # Spelled out because a class that defines __eq__ (step 06) loses its
    # inherited __hash__; object's own is implemented in C, and backprop
    # hashes every node several times.
    __hash__ = object.__hash__

    def __len__(self) -> int:
        if self.array.ndim == 0:
            raise TypeError("len() of a 0-d tensor: it has no first dimension; use .item()")
        return len(self.array)

    def __bool__(self) -> bool:
        if self.array.size != 1:
            raise RuntimeError(
                f"the truth value of a tensor with {self.array.size} elements is ambiguous: "
                "reduce it first (for example with .item() on a one-element result)"
            )
        return bool(self.array)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.array.shape

    @property
    def ndim(self) -> int:
        return self.array.ndim

    @overload
    def size(self) -> tuple[int, ...]: ...
    @overload
    def size(self, dim: int) -> int: ...
    def size(self, dim: int | None = None) -> tuple[int, ...] | int:
        """The shape, or the length of dimension ``dim`` (negative counts from the end)."""
        return self.array.shape if dim is None else self.array.shape[dim]

    def item(self) -> float:
        """The single value of a one-element tensor, as a Python number."""
        if self.array.size != 1:
            raise RuntimeError(
                f"item() needs a tensor with one element, this one has {self.array.size}: "
                "index or reduce it first"
            )
        value: float = self.array.item()
        return value

    @property
    def _version(self) -> int:
        """How many in-place operations have changed this tensor's array (like PyTorch's)."""
        return self._version_counter.value

    @property
    def is_leaf(self) -> bool:
        """True for a tensor that no recorded operation produced."""
        return self.recipe is None

    def backward(self, end_grad: Tensor | Arr | None = None, create_graph: bool = False) -> None:
        """Backpropagate from this tensor; see ``npgrad.autograd.backprop``.

        With ``create_graph=True`` the backward pass is itself recorded (see
        ``npgrad.higher_order``): the gradients added to ``.grad`` are Tensors
        with recipes, which can be differentiated again.
        """
        if create_graph:
            # Imported here: the recorded path needs the whole package, which imports this module.
            from npgrad.higher_order.engine import backward_with_graph

            backward_with_graph(self, end_grad)
        else:
            autograd.backprop(self, end_grad)

    def __mul__(self, other: Tensor | Arr | float) -> Tensor:
        return ops.multiply(self, other)

    def __rmul__(self, other: Tensor | Arr | float) -> Tensor:
        return ops.multiply(other, self)

    def log(self) -> Tensor:
        return ops.log(self)

    def __neg__(self) -> Tensor:
        return ops.negative(self)

    def __add__(self, other: Tensor | Arr | float) -> Tensor:
        return ops.add(self, other)

    def __radd__(self, other: Tensor | Arr | float) -> Tensor:
        return ops.add(other, self)

    def __sub__(self, other: Tensor | Arr | float) -> Tensor:
        return ops.subtract(self, other)

    def __rsub__(self, other: Tensor | Arr | float) -> Tensor:
        return ops.subtract(other, self)

    def __truediv__(self, other: Tensor | Arr | float) -> Tensor:
        return ops.true_divide(self, other)

    def __rtruediv__(self, other: Tensor | Arr | float) -> Tensor:
        return ops.true_divide(other, self)

    def __matmul__(self, other: Tensor) -> Tensor:
        return ops.matmul(self, other)

    def __rmatmul__(self, other: Arr) -> Tensor:
        return ops.matmul(other, self)

    def __getitem__(self, index: Index) -> Tensor:
        return ops.getitem(self, index)

    def __iter__(self) -> Iterator[Tensor]:
        """The rows along the first dimension, each recorded like ``self[i]``."""
        # Defined so that a 0-d tensor raises, as in PyTorch; without it Python
        # would iterate through __getitem__ and give nothing at all.
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor: use .item() to get its value")
        return (self[i] for i in range(len(self)))

    # A Tensor of booleans, as in PyTorch, where object.__eq__ promises a bool.
    # __hash__ is defined above, so it stays (by identity).
    def __eq__(self, other: Tensor | float) -> Tensor:  # type: ignore[override]
        return ops.eq(self, other)

    def exp(self) -> Tensor:
        return ops.exp(self)

    # Sizes and dims come as separate arguments or as one tuple (or list), as in
    # PyTorch: t.reshape(3, 2) and t.reshape((3, 2)) are the same call.
    @overload
    def reshape(self, shape: Sequence[int], /) -> Tensor: ...
    @overload
    def reshape(self, *shape: int) -> Tensor: ...
    def reshape(self, *shape: int | Sequence[int]) -> Tensor:
        return ops.reshape(self, _int_args(shape, "reshape"))

    @overload
    def permute(self, dims: Sequence[int], /) -> Tensor: ...
    @overload
    def permute(self, *dims: int) -> Tensor: ...
    def permute(self, *dims: int | Sequence[int]) -> Tensor:
        return ops.permute(self, _int_args(dims, "permute"))

    @property
    def T(self) -> Tensor:
        """The dimensions in reverse order: the transpose of a 2-D tensor."""
        return ops.permute(self, tuple(range(self.ndim - 1, -1, -1)))

    @overload
    def expand(self, sizes: Sequence[int], /) -> Tensor: ...
    @overload
    def expand(self, *sizes: int) -> Tensor: ...
    def expand(self, *sizes: int | Sequence[int]) -> Tensor:
        return ops.expand(self, _int_args(sizes, "expand"))

    def sum(self, dim: int | tuple[int, ...] | None = None, keepdim: bool = False) -> Tensor:
        return ops.sum(self, dim, keepdim)

    def argmax(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        return ops.argmax(self, dim, keepdim)

    def maximum(self, other: Tensor | float) -> Tensor:
        return ops.maximum(self, other)

    def relu(self) -> Tensor:
        return ops.relu(self)

    def relu_(self) -> Tensor:
        return ops.relu(self, inplace=True)

    def add_(self, other: Tensor | float, alpha: float = 1.0) -> Tensor:
        return ops.add_(self, other, alpha)

    def uniform_(
        self, low: float = 0.0, high: float = 1.0, *, rng: np.random.Generator | None = None
    ) -> Tensor:
        """Fill the tensor with numbers drawn uniformly from ``[low, high)``, in place.

        Returns the tensor, like ``torch.Tensor.uniform_``; ``rng`` (a NumPy
        Generator, as ``Linear`` takes) plays the part of PyTorch's
        ``generator``: pass one for reproducible values; without one, a fresh
        ``np.random.default_rng()`` is used. The numbers are drawn in float64
        and stored in the tensor's own dtype. Like every in-place operation it
        bumps the version and refuses a leaf that requires grad while tracking;
        on a tensor in the graph it is recorded, and no gradient flows back
        through it (the old values are gone). A tensor that is not floating
        point raises ``TypeError``; a range that is not finite or has
        ``low > high`` raises ``ValueError``.
        """
        if self.array.dtype.kind != "f":
            raise TypeError(
                f"uniform_ fills floating-point tensors, this one holds {self.array.dtype}; "
                "make a float tensor first (for example zeros(3, dtype=np.float32))"
            )
        if not (np.isfinite(low) and np.isfinite(high) and low <= high):
            raise ValueError(
                f"uniform_ needs a finite range with low <= high, got low={low}, high={high}"
            )
        if not self.array.flags.writeable:
            raise ValueError(
                "uniform_ cannot write into this tensor: its array is read-only (an expanded "
                "tensor repeats one element in many places); fill a copy instead"
            )
        rng = np.random.default_rng() if rng is None else rng
        return ops.overwrite(self, rng.uniform(low, high, size=self.shape), "uniform_")

    def where(self, condition: Tensor | Arr, other: Tensor | float) -> Tensor:
        """``where(condition, self, other)``: this tensor where ``condition`` holds."""
        return ops.where(condition, self, other)

    def all(self, dim: int | tuple[int, ...] | None = None, keepdim: bool = False) -> Tensor:
        return ops.all(self, dim, keepdim)

    def any(self, dim: int | tuple[int, ...] | None = None, keepdim: bool = False) -> Tensor:
        return ops.any(self, dim, keepdim)

    def floor(self) -> Tensor:
        return ops.floor(self)

    def ceil(self) -> Tensor:
        return ops.ceil(self)

    def logical_not(self) -> Tensor:
        return ops.logical_not(self)

    def less(self, other: Tensor | float) -> Tensor:
        return ops.less(self, other)

    def greater(self, other: Tensor | float) -> Tensor:
        return ops.greater(self, other)

    def less_equal(self, other: Tensor | float) -> Tensor:
        return ops.less_equal(self, other)

    def greater_equal(self, other: Tensor | float) -> Tensor:
        return ops.greater_equal(self, other)

    def __lt__(self, other: Tensor | float) -> Tensor:
        return ops.less(self, other)

    def __gt__(self, other: Tensor | float) -> Tensor:
        return ops.greater(self, other)

    def __le__(self, other: Tensor | float) -> Tensor:
        return ops.less_equal(self, other)

    def __ge__(self, other: Tensor | float) -> Tensor:
        return ops.greater_equal(self, other)


def _int_args(args: tuple[int | Sequence[int], ...], method: str) -> tuple[int, ...]:
    """The integers of ``t.method(2, 3)`` or of ``t.method((2, 3))``, as one tuple."""
    items = tuple(args[0]) if len(args) == 1 and isinstance(args[0], Sequence) else args
    sizes = [int(item) for item in items if isinstance(item, int | np.integer)]
    if len(sizes) != len(items):
        raise TypeError(
            f"{method}() takes integers, as separate arguments or as one tuple, got "
            f"{items!r}: for example t.{method}(2, 3) or t.{method}((2, 3))"
        )
    return tuple(sizes)


# What ``t[index]`` accepts: ints, slices, Ellipsis, None, integer (or boolean)
# arrays, lists or Tensors, or a tuple of these. NumPy receives the same with
# every Tensor replaced by its array.
ArrayIndexItem: TypeAlias = int | slice | EllipsisType | list[int] | Arr | None
ArrayIndex: TypeAlias = ArrayIndexItem | tuple[ArrayIndexItem, ...]
IndexItem: TypeAlias = ArrayIndexItem | Tensor
Index: TypeAlias = IndexItem | tuple[IndexItem, ...]


def tensor(
    data: npt.ArrayLike, requires_grad: bool = False, dtype: npt.DTypeLike | None = None
) -> Tensor:
    """A Tensor holding a copy of ``data``, like ``torch.tensor``."""
    return Tensor(np.array(data, dtype=dtype), requires_grad)


def zeros(*shape: int, requires_grad: bool = False, dtype: npt.DTypeLike = np.float64) -> Tensor:
    """A Tensor of zeros: ``zeros(2, 3)`` has shape (2, 3)."""
    return Tensor(np.zeros(shape, dtype=dtype), requires_grad)


def empty(*shape: int, requires_grad: bool = False, dtype: npt.DTypeLike = np.float64) -> Tensor:
    """A Tensor of the given shape whose values are whatever memory held."""
    return Tensor(np.empty(shape, dtype=dtype), requires_grad)


def arange(
    start: float,
    end: float | None = None,
    step: float = 1,
    *,
    requires_grad: bool = False,
    dtype: npt.DTypeLike | None = None,
) -> Tensor:
    """Evenly spaced values in ``[start, end)``, or ``[0, start)`` with one argument."""
    array = (
        np.arange(start, dtype=dtype) if end is None else np.arange(start, end, step, dtype=dtype)
    )
    return Tensor(array, requires_grad)


# Imported last: the operations need the Tensor class above, and Tensor's
# methods call the operations, so each module needs the other.
from npgrad import autograd, ops  # noqa: E402
