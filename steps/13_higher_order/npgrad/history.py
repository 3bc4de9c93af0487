"""Recording history that in-place changes cannot corrupt.

Three ideas, each a few lines below:

- A recipe saves the version of exactly the arrays its backward functions
  read (``BACK_FUNCS.reads``), so backprop raises when one of those changed in
  place, and only then.
- A recorded in-place operation on ``x`` moves ``x``'s old history onto a new
  node appended to ``x._history``; a recipe records how many such operations
  its parents had seen, so it keeps meaning the values it was computed from.
- A result that is a NumPy view of an input (basic indexing, ``reshape``,
  ``permute``, ``expand``) shares that input's version counter. An in-place
  change through a view also rewrites the base's history, and a view whose
  base changed since its recipe was made gets a fresh one before it is used.
"""

from collections.abc import Callable, Mapping

import numpy as np

from npgrad.arrays import Arr
from npgrad.grad_mode import is_grad_enabled
from npgrad.registry import BACK_FUNCS, ArgKey
from npgrad.tensor import Recipe, Tensor, View


def needs_grad(value: object) -> bool:
    """True for a Tensor whose gradient is wanted: it requires grad or was recorded."""
    return isinstance(value, Tensor) and (value.requires_grad or value.recipe is not None)


def make_recipe(
    func: Callable[..., Arr],
    arg_values: tuple[object, ...],
    kwargs: dict[str, object],
    parents: dict[ArgKey, Tensor],
    tensors: Mapping[ArgKey, Tensor],
    out: Tensor,
) -> Recipe:
    """The recipe of ``out = func(*arg_values, **kwargs)``, whose Tensor arguments are ``tensors``.

    Saves the versions of the arguments (and the output) that the backward
    functions of the ``parents`` read, and the parents' generations.
    """
    read_args: set[ArgKey] = set()
    reads_output = False
    for key in parents:
        reads = BACK_FUNCS.reads(func, key)
        read_args.update(tensors if reads.args is None else reads.args)
        if reads.others:
            read_args.update(other for other in tensors if other != key)
        reads_output = reads_output or reads.output
    saved_versions = tuple(
        (key, tensor._version_counter, tensor._version_counter.value)
        for key, tensor in tensors.items()
        if key in read_args
    )
    generations: dict[ArgKey, int] = {
        key: len(parent._history) for key, parent in parents.items() if parent._history is not None
    }
    out_version = out._version if reads_output else None
    return Recipe(func, arg_values, kwargs, parents, saved_versions, out_version, generations)


# --- in-place operations ----------------------------------------------------------------


def check_inplace_allowed(x: Tensor, operation: str) -> None:
    """Refuse to change a leaf that requires grad, or a view of one, while tracking.

    Its gradient is for the values it holds; once they are overwritten no
    gradient can be right. Inside ``no_grad()`` (an optimizer step) it is fine.
    """
    if not is_grad_enabled():
        return
    if x.requires_grad and x.recipe is None:
        raise RuntimeError(
            f"{operation}: a leaf tensor that requires grad cannot be changed in place while "
            "grad tracking is on; do it inside no_grad() (as an optimizer step does), or "
            "change a copy"
        )
    base = x._view.base if x._view is not None else None
    if base is not None and base.requires_grad and base.recipe is None:
        raise RuntimeError(
            f"{operation}: this tensor is a view of a leaf tensor that requires grad, so the "
            "change would overwrite the leaf; do it inside no_grad(), or change a copy"
        )


def record_inplace(x: Tensor, operation: str, func: Callable[..., Arr], *args: object) -> Tensor:
    """Run ``func(x.array, *args)``, which writes its result into ``x``'s array, and return ``x``.

    Bumps the version of ``x``'s memory, so a recipe that saved the old values
    raises in backward. While tracking is on and ``x``, an argument or (for a
    view) its base needs a gradient, the change is recorded: ``x``'s old
    history moves onto a new node, ``before``, and ``x`` becomes the result of
    ``func(before, *args)``. An argument that is ``x`` itself means its old value.
    """
    check_inplace_allowed(x, operation)
    tracked = is_grad_enabled()
    if tracked:
        refresh_view(x)
        for arg in args:
            if isinstance(arg, Tensor):
                refresh_view(arg)
        base = x._view.base if x._view is not None else None
        tracked = needs_grad(x) or any(needs_grad(arg) for arg in args) or needs_grad(base)
    before = take_over_history(x) if tracked else None
    values = tuple(arg.array if isinstance(arg, Tensor) else arg for arg in args)
    func(x.array, *values)
    x._version_counter.value += 1
    if before is not None:
        inputs = (before, *(before if arg is x else arg for arg in args))
        tensors: dict[ArgKey, Tensor] = {
            position: arg for position, arg in enumerate(inputs) if isinstance(arg, Tensor)
        }
        parents = {key: arg for key, arg in tensors.items() if needs_grad(arg)}
        x.requires_grad = True
        x.recipe = make_recipe(func, (x.array, *values), {}, parents, tensors, x)
        if x._view is not None:
            x._view.history_version = x._version
            _rewrite_base_history(x, x._view)
    return x


def take_over_history(x: Tensor) -> Tensor:
    """A node standing for ``x`` before an in-place change; ``x`` then stands for the result.

    It takes over ``x``'s recipe and shares its array and version counter, so a
    backward function that reads the old values finds the version changed.
    Recipes made earlier find it in ``x._history``.
    """
    before = Tensor(x.array)
    before.requires_grad = x.requires_grad
    before.recipe = x.recipe
    before._version_counter = x._version_counter
    if x._history is None:
        x._history = []
    x._history.append(before)
    return before


# --- views ------------------------------------------------------------------------------


def note_view(
    out: Tensor,
    func: Callable[..., Arr],
    args: tuple[object, ...],
    arg_values: tuple[object, ...],
    kwargs: dict[str, object],
) -> None:
    """If ``out``'s array is a view of a Tensor argument's, make ``out`` share its memory's counter.

    ``out.array.base`` is None for an array that owns its memory (most results),
    so the memory check runs only for real views.
    """
    if out.array.base is None:
        return
    for position, arg in enumerate(args):
        if isinstance(arg, Tensor) and np.may_share_memory(out.array, arg.array):
            base = arg if arg._view is None else arg._view.base
            of_base = _view_function(func, position, arg_values, kwargs, arg._view)
            out._version_counter = arg._version_counter
            out._view = View(base, of_base, out._version_counter.value)
            return


def _view_function(
    func: Callable[..., Arr],
    position: int,
    arg_values: tuple[object, ...],
    kwargs: dict[str, object],
    parent_view: View | None,
) -> Callable[[Arr], Arr]:
    """The function from the base's array to ``func``'s view of argument ``position``."""

    def of_base(base_array: Arr) -> Arr:
        source = base_array if parent_view is None else parent_view.of_base(base_array)
        values = list(arg_values)
        values[position] = source
        return func(*values, **kwargs)

    return of_base


def refresh_view(tensor: Tensor) -> None:
    """Give a view whose memory changed through another tensor a recipe that matches its values.

    When the base, or another view of it, was changed in place after this
    view's recipe was made, the view's values come from the base as it is now:
    its new recipe reads them from the base's current history. Earlier recipes
    that used the view keep its old node (``take_over_history``).
    """
    view = tensor._view
    if view is None or view.history_version == tensor._version_counter.value:
        return
    view.history_version = tensor._version_counter.value
    base = view.base
    if not (is_grad_enabled() and needs_grad(base)):
        return
    take_over_history(tensor)
    tensor.array = view_of(base.array, view.of_base)  # the same memory, as the recipe says
    tensor.requires_grad = True
    tensor.recipe = make_recipe(
        view_of, (base.array, view.of_base), {}, {0: base}, {0: base}, tensor
    )


def _rewrite_base_history(x: Tensor, view: View) -> None:
    """After a recorded in-place change through the view ``x``, record it in the base too.

    The base becomes ``write_through_view(before, x)``: its old values
    everywhere except where ``x`` lies, and ``x``'s new values there.
    """
    base = view.base
    before = take_over_history(base)
    # The memory is shared, so this writes what is already there; it is what the recipe says.
    write_through_view(base.array, x.array, view.of_base)
    parents: dict[ArgKey, Tensor] = {1: x} if not needs_grad(before) else {0: before, 1: x}
    base.requires_grad = True
    base.recipe = make_recipe(
        write_through_view,
        (base.array, x.array, view.of_base),
        {},
        parents,
        {0: before, 1: x},
        base,
    )


def view_index(shape: tuple[int, ...], of_base: Callable[[Arr], Arr]) -> Arr:
    """For each element of the view, the flat index of the base element it is."""
    return of_base(np.arange(int(np.prod(shape))).reshape(shape))


def view_of(base: Arr, of_base: Callable[[Arr], Arr]) -> Arr:
    """The view of ``base`` that ``of_base`` takes (recorded when a view's recipe is renewed)."""
    return of_base(base)


def view_of_back(grad_out: Arr, out: Arr, base: Arr, of_base: Callable[[Arr], Arr]) -> Arr:
    """Gradient with respect to ``base`` of ``out = of_base(base)``: each element's gradient
    added back where it came from (``np.add.at``, since an expanded view repeats elements)."""
    grad = np.zeros(base.size, dtype=grad_out.dtype)
    np.add.at(grad, view_index(base.shape, of_base).ravel(), np.ravel(grad_out))
    return grad.reshape(base.shape)


def write_through_view(base: Arr, values: Arr, of_base: Callable[[Arr], Arr]) -> Arr:
    """``base`` with the part that ``of_base`` views set to ``values``, written in place."""
    of_base(base)[...] = values
    return base


def write_through_view_back0(
    grad_out: Arr, out: Arr, base: Arr, values: Arr, of_base: Callable[[Arr], Arr]
) -> Arr:
    """Gradient with respect to the old ``base``: ``grad_out``, but 0 where ``values`` went."""
    grad = np.array(grad_out, copy=True).reshape(-1)
    grad[view_index(base.shape, of_base).ravel()] = 0
    return grad.reshape(base.shape)


def write_through_view_back1(
    grad_out: Arr, out: Arr, base: Arr, values: Arr, of_base: Callable[[Arr], Arr]
) -> Arr:
    """Gradient with respect to ``values``: the part of ``grad_out`` where they went."""
    return np.ravel(grad_out)[view_index(base.shape, of_base)]


BACK_FUNCS.add_back_func(view_of, 0, view_of_back, reads=())
BACK_FUNCS.add_back_func(write_through_view, 0, write_through_view_back0, reads=())
BACK_FUNCS.add_back_func(write_through_view, 1, write_through_view_back1, reads=())
