"""Backpropagation: order the recorded graph, then run every backward function once."""

from collections.abc import Hashable, Iterable, Iterator
from typing import Protocol, TypeVar

import numpy as np

from npgrad import history
from npgrad.arrays import Arr
from npgrad.registry import BACK_FUNCS, describe_arg, display_name
from npgrad.tensor import Recipe, Tensor


class InplaceError(RuntimeError):
    """An array that a backward function reads was changed in place after the forward pass."""


class CycleError(ValueError):
    """The graph handed to ``topological_sort`` contains a cycle."""


Node = TypeVar("Node", bound=Hashable)


class ChildrenGetter(Protocol[Node]):
    """Gives the nodes one node depends on (for a Tensor: the parents in its recipe)."""

    def __call__(self, node: Node, /) -> Iterable[Node]: ...


def topological_sort(node: Node, get_children: ChildrenGetter[Node]) -> list[Node]:
    """Every node reachable from ``node``, each listed after all of its children.

    The furthest nodes come first and ``node`` itself last. A depth-first
    search with an explicit stack instead of recursion, so a graph a million
    nodes deep does not hit Python's recursion limit. A node met again while
    it is still on the current path closes a cycle, which raises ``CycleError``.
    One dictionary records every node met: True while it is on the current
    path, False once finished (one lookup per edge, where two sets took two;
    backprop sorts a new graph at every training step).
    """
    order: list[Node] = []
    on_path: dict[Node, bool] = {node: True}
    stack: list[tuple[Node, Iterator[Node]]] = [(node, iter(get_children(node)))]
    while stack:
        current, children = stack[-1]
        for child in children:
            seen = on_path.get(child)
            if seen is None:  # met for the first time: go down into it
                on_path[child] = True
                stack.append((child, iter(get_children(child))))
                break
            if seen:
                raise CycleError(
                    f"the graph has a cycle through {_short_repr(child)}: "
                    "a node cannot depend on itself"
                )
        else:  # every child is finished: so is current
            stack.pop()
            on_path[current] = False
            order.append(current)
    return order


def _short_repr(node: object) -> str:
    text = repr(node)
    return text if len(text) <= 80 else text[:77] + "..."


def _parents(tensor: Tensor) -> Iterable[Tensor]:
    recipe = tensor.recipe
    if recipe is None:
        return ()
    if not recipe.parent_generations:
        return [as_recorded(parent, 0) for parent in recipe.parents.values()]
    return [
        as_recorded(parent, recipe.parent_generations.get(key, 0))
        for key, parent in recipe.parents.items()
    ]


def as_recorded(parent: Tensor, generation: int) -> Tensor:
    """The node that stood for ``parent`` after ``generation`` recorded in-place operations.

    A recipe keeps the parent Tensor the user holds; if that tensor was changed
    in place since, its older state lives on in ``parent._history``.
    """
    earlier = parent._history
    return parent if earlier is None or generation == len(earlier) else earlier[generation]


def sorted_computational_graph(tensor: Tensor) -> list[Tensor]:
    """``tensor`` and everything it was computed from, ``tensor`` first.

    Each node comes before the nodes it was computed from, so when backprop
    reaches a node, every use of it has already sent back its gradient.
    """
    return topological_sort(tensor, _parents)[::-1]


def backprop(end_node: Tensor, end_grad: Tensor | Arr | None = None) -> None:
    """Accumulate into ``.grad`` of every leaf that requires grad the gradient of ``end_node``.

    ``end_grad`` is the gradient to start from, shaped like ``end_node``; it
    defaults to ones for a one-element output. Gradients of leaves are summed
    into their ``.grad`` (never overwritten). Intermediate gradients are kept
    in a dictionary only until their node has been processed. ``owned`` holds
    the leaves whose gradient array this pass created and nobody else can reach
    (see ``_is_fresh``): they keep that array without a copy.
    """
    history.refresh_view(end_node)  # a view changed through its base gets current history
    grads: dict[Tensor, Arr] = {end_node: _initial_grad(end_node, end_grad)}
    owned: set[Tensor] = set()
    for node in sorted_computational_graph(end_node):
        grad_out = grads.pop(node)  # consumed now: released as soon as we move on
        recipe = node.recipe
        if recipe is None:
            if node.requires_grad:
                _accumulate_into_leaf(node, grad_out, copy=node not in owned)
            continue
        check_saved_versions(node, recipe)
        generations = recipe.parent_generations
        func, args, kwargs = recipe.func, recipe.args, recipe.kwargs
        for key, recorded in recipe.parents.items():  # key: a position or a keyword name
            parent = as_recorded(recorded, generations.get(key, 0))
            back_fn = BACK_FUNCS.get_back_func(func, key)
            grad_in = back_fn(grad_out, node.array, *args, **kwargs)
            if grad_in.shape != parent.array.shape:
                name = display_name(func)
                raise RuntimeError(
                    f"the backward function for {describe_arg(key)} of {name} returned a "
                    f"gradient of shape {grad_in.shape} for an input of shape "
                    f"{parent.array.shape}: a gradient must have its input's shape"
                )
            previous = grads.get(parent)
            if previous is None:
                grads[parent] = grad_in
                if parent.recipe is None and _is_fresh(grad_in, grad_out, node):
                    owned.add(parent)  # only leaves: only their gradients are kept
            else:
                # Not +=: the stored array may be shared with another node or read-only.
                grads[parent] = previous + grad_in
                if parent.recipe is None:
                    owned.add(parent)


def _is_fresh(grad_in: Arr, grad_out: Arr, node: Tensor) -> bool:
    """True when ``grad_in`` is an array the backward of ``node``'s recipe has just computed.

    Not ``grad_out`` passed on (addition's gradient), not ``node``'s own array,
    not a view of another array (a reshape, a transpose, a read-only broadcast)
    and not one of the forward's arguments: then no other node, leaf or caller
    holds it.
    """
    if grad_in.base is not None or grad_in is grad_out or grad_in is node.array:
        return False
    assert node.recipe is not None
    return all(grad_in is not arg for arg in (*node.recipe.args, *node.recipe.kwargs.values()))


def _accumulate_into_leaf(leaf: Tensor, grad: Arr, copy: bool = True) -> None:
    """Add ``grad`` to ``leaf.grad`` (or store it there), in the leaf's dtype.

    The gradient takes the leaf's floating point dtype, as in PyTorch: a
    float32 leaf that met float64 values on the way still gets a float32
    ``.grad``. The stored array is always one that nobody else holds: the
    incoming gradient may be a caller's array, a read-only broadcast view or
    the very array another leaf receives, so it is copied (into an array laid
    out like the leaf, whatever layout arrived), unless backprop knows it is
    fresh (``copy=False``).
    """
    dtype = leaf.array.dtype if leaf.array.dtype.kind == "f" else grad.dtype
    if leaf.grad is None:
        if copy:  # into a new array laid out like the leaf (empty_like keeps its memory order)
            stored = np.empty_like(leaf.array, dtype=dtype)
            np.copyto(stored, grad, casting="unsafe")
            leaf.grad = Tensor(stored)
        else:
            leaf.grad = Tensor(grad.astype(dtype, copy=False))
        return
    if leaf.grad.shape != leaf.shape:
        raise RuntimeError(
            f"the .grad of a leaf of shape {leaf.shape} has shape {leaf.grad.shape}, so the "
            f"new gradient (shape {grad.shape}) cannot be added to it: a gradient must have "
            "its tensor's shape; set .grad = None, or to a tensor of the leaf's shape"
        )
    leaf.grad = Tensor((leaf.grad.array + grad).astype(dtype, copy=False))


def _initial_grad(end_node: Tensor, end_grad: Tensor | Arr | None) -> Arr:
    if not end_node.requires_grad:
        raise RuntimeError(
            "backward() on a tensor that does not require grad: create the inputs with "
            "requires_grad=True, and compute the result while grad tracking is enabled"
        )
    if end_grad is None:
        if end_node.array.size != 1:
            raise RuntimeError(
                f"backward() without a gradient needs a one-element output, this one has "
                f"shape {end_node.shape}: pass end_grad shaped {end_node.shape}, or reduce "
                "the output first (for example with .sum())"
            )
        return np.ones_like(end_node.array)
    grad = end_grad.array if isinstance(end_grad, Tensor) else np.asarray(end_grad)
    if grad.shape != end_node.shape:
        raise ValueError(
            f"end_grad has shape {grad.shape} but the output has shape {end_node.shape}: "
            "the starting gradient must match the output's shape"
        )
    return grad


def check_saved_versions(node: Tensor, recipe: Recipe) -> None:
    """Raise ``InplaceError`` if an array this recipe's backward reads changed since forward."""
    for key, counter, version in recipe.saved_versions:
        if counter.value != version:
            raise _inplace_error(describe_arg(key), recipe, counter.value, version)
    if recipe.out_version is not None and node._version != recipe.out_version:
        raise _inplace_error("the output", recipe, node._version, recipe.out_version)


def _inplace_error(what: str, recipe: Recipe, version: int, expected: int) -> InplaceError:
    """The error for ``what`` (an argument or the output) of ``recipe``'s function."""
    # Built only on failure: the check above runs for every node of every backward pass.
    name = display_name(recipe.func)
    return InplaceError(
        f"{what} of {name}, saved for backward, was modified by an in-place operation: "
        f"it is at version {version}, expected version {expected}; make the in-place "
        "change after backward(), or apply it to a copy"
    )
