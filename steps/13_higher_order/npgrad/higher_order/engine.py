"""Backward passes that can be recorded, and ``grad``: gradients returned instead of stored.

``Tensor.backward()`` without ``create_graph`` runs ``npgrad.autograd.backprop``,
the lesson's NumPy loop, untouched. Everything here is the other path: the same
walk over the graph (users before what they use), where each step calls the
Tensor twin of the backward function (``GRAPH_BACK_FUNCS``) instead of the
function itself. The gradients are then Tensors with recipes of their own, made
by the very operations autograd already knows, so they can be differentiated
again, and again.

``grad`` also serves first-order requests: it walks with the NumPy backward
functions and returns the gradients of the inputs it was asked about, leaving
every ``.grad`` alone.
"""

from collections.abc import Sequence

import numpy as np

from npgrad import history
from npgrad.arrays import Arr
from npgrad.autograd import as_recorded, check_saved_versions, topological_sort
from npgrad.grad_mode import set_grad_enabled
from npgrad.higher_order.elementwise import cast
from npgrad.higher_order.registry import GRAPH_BACK_FUNCS
from npgrad.registry import BACK_FUNCS, describe_arg, display_name
from npgrad.tensor import Recipe, Tensor

Gradient = Tensor | Arr  # a Tensor on the recorded path, an array on the plain one


def backward_with_graph(end_node: Tensor, end_grad: Tensor | Arr | None = None) -> None:
    """``end_node.backward(end_grad, create_graph=True)``: record the backward pass.

    Like ``backprop``, the gradient of every leaf that requires grad is added to
    its ``.grad``; here the gradient is a recorded Tensor, and the sum
    ``leaf.grad + gradient`` is recorded too, as PyTorch does, so ``.grad`` can
    be differentiated afterwards.
    """
    start = _start_grad(end_node, end_grad, create_graph=True, name="backward()")
    with set_grad_enabled(True):
        reached = _run([end_node], [start], None, create_graph=True)
        for leaf, gradient in reached.items():
            gradient = _like_input(leaf, gradient)
            if leaf.grad is None:
                leaf.grad = gradient
            elif leaf.grad.shape != leaf.shape:
                raise RuntimeError(
                    f"the .grad of a leaf of shape {leaf.shape} has shape {leaf.grad.shape}, so "
                    "the new gradient cannot be added to it: set .grad = None, or to a tensor "
                    "of the leaf's shape"
                )
            else:
                leaf.grad = leaf.grad + gradient


def grad(
    outputs: Tensor | Sequence[Tensor],
    inputs: Tensor | Sequence[Tensor],
    grad_outputs: Tensor | Arr | Sequence[Tensor | Arr | None] | None = None,
    create_graph: bool = False,
    allow_unused: bool = False,
) -> tuple[Tensor, ...]:
    """The gradients of ``outputs`` with respect to each of ``inputs`` (``torch.autograd.grad``).

    Returns one Tensor per input, shaped like it, and changes no ``.grad``.
    ``grad_outputs`` gives the gradient to start from for each output (the
    vector of a vector-Jacobian product); None for an output means ones, which
    needs a one-element output. An input may be any tensor of the graph, a leaf
    or not. With ``create_graph=True`` the results are recorded Tensors that
    can be differentiated again (a Tensor in ``grad_outputs`` that needs a
    gradient takes part too); otherwise they are constants. An input the
    outputs do not depend on raises ``ValueError``; with ``allow_unused=True``
    its gradient is zeros (PyTorch gives None there, or zeros with
    ``materialize_grads=True``).
    """
    output_list = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    input_list = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is None or isinstance(grad_outputs, Tensor | np.ndarray):
        start_list: list[Tensor | Arr | None] = [grad_outputs] * len(output_list)
        if grad_outputs is not None and len(output_list) != 1:
            raise ValueError(
                f"grad() got one grad_outputs for {len(output_list)} outputs: pass a sequence "
                "with one gradient (or None) per output"
            )
    else:
        start_list = list(grad_outputs)
    if len(start_list) != len(output_list):
        raise ValueError(
            f"grad() got {len(start_list)} grad_outputs for {len(output_list)} outputs: pass "
            "one gradient (or None) per output"
        )
    if not output_list or not input_list:
        raise ValueError("grad() needs at least one output and at least one input")
    for position, tensor in enumerate(input_list):
        if not history.needs_grad(tensor):
            raise ValueError(
                f"grad(): input {position} does not require grad, so nothing can be "
                "differentiated with respect to it: create it with requires_grad=True"
            )
    starts = [
        _start_grad(out, start, create_graph, "grad()")
        for out, start in zip(output_list, start_list, strict=True)
    ]
    with set_grad_enabled(create_graph):
        reached = _run(output_list, starts, input_list, create_graph)
    results: list[Tensor] = []
    for position, tensor in enumerate(input_list):
        gradient = reached.get(tensor)
        if gradient is None:
            if not allow_unused:
                raise ValueError(
                    f"grad(): the outputs do not depend on input {position} (shape "
                    f"{tensor.shape}); pass allow_unused=True to get zeros for it"
                )
            gradient = np.zeros_like(tensor.array)
        results.append(_like_input(tensor, gradient))
    return tuple(results)


def _like_input(tensor: Tensor, gradient: Gradient) -> Tensor:
    """``gradient`` as a Tensor in ``tensor``'s floating point dtype, as ``backward`` stores it.

    A recorded gradient is converted by a recorded ``cast``; an array is copied
    (it may be the caller's array, a view or another input's gradient).
    """
    dtype = tensor.array.dtype
    if isinstance(gradient, Tensor):
        if dtype.kind != "f" or gradient.array.dtype == dtype:
            return gradient
        return cast(gradient, dtype)
    return Tensor(gradient.astype(dtype if dtype.kind == "f" else gradient.dtype))


def _start_grad(
    end_node: Tensor, end_grad: Tensor | Arr | None, create_graph: bool, name: str
) -> Gradient:
    """The gradient to start from: ``end_grad`` checked, or ones for a one-element output."""
    if not history.needs_grad(end_node):
        raise RuntimeError(
            f"{name} on a tensor that does not require grad: create the inputs with "
            "requires_grad=True, and compute the result while grad tracking is enabled"
        )
    if end_grad is None:
        if end_node.array.size != 1:
            raise RuntimeError(
                f"{name} without a starting gradient needs a one-element output, this one "
                f"has shape {end_node.shape}: pass a gradient shaped {end_node.shape}, or "
                "reduce the output first (for example with .sum())"
            )
        ones = np.ones_like(end_node.array)
        return Tensor(ones) if create_graph else ones
    array = end_grad.array if isinstance(end_grad, Tensor) else np.asarray(end_grad)
    if array.shape != end_node.shape:
        raise ValueError(
            f"the starting gradient has shape {array.shape} but the output has shape "
            f"{end_node.shape}: it must match the output's shape"
        )
    if not create_graph:
        return array
    return end_grad if isinstance(end_grad, Tensor) else Tensor(array)


def _parents(node: Tensor) -> list[Tensor]:
    recipe = node.recipe
    if recipe is None:
        return []
    generations = recipe.parent_generations
    return [as_recorded(parent, generations.get(key, 0)) for key, parent in recipe.parents.items()]


def _graph_order(roots: Sequence[Tensor]) -> list[Tensor]:
    """Every node the roots were computed from, each before the nodes it was computed from."""
    top = Tensor(np.zeros(()))  # stands above every root, so one sort covers them all

    def children(node: Tensor) -> list[Tensor]:
        return list(roots) if node is top else _parents(node)

    return topological_sort(top, children)[::-1][1:]


def _run(
    roots: Sequence[Tensor],
    starts: Sequence[Gradient],
    targets: Sequence[Tensor] | None,
    create_graph: bool,
) -> dict[Tensor, Gradient]:
    """Backpropagate from ``roots``; the gradient reaching each target (each leaf for None).

    Only nodes that lead to a target are visited. Gradients are arrays, or
    recorded Tensors when ``create_graph`` is True.
    """
    for root in roots:
        history.refresh_view(root)
    order = _graph_order(roots)
    wanted = set(targets) if targets is not None else None
    leads: set[Tensor] = set()  # nodes from which a target is reached
    for node in reversed(order):  # what a node was computed from comes first
        if _is_target(node, wanted) or any(parent in leads for parent in _parents(node)):
            leads.add(node)
    grads: dict[Tensor, Gradient] = {}
    for root, start in zip(roots, starts, strict=True):
        if root in leads:
            previous = grads.get(root)
            grads[root] = start if previous is None else previous + start
    reached: dict[Tensor, Gradient] = {}
    for node in order:
        grad_out = grads.pop(node, None)
        if grad_out is None:
            continue
        if _is_target(node, wanted):
            reached[node] = grad_out
        recipe = node.recipe
        if recipe is None:
            continue
        check_saved_versions(node, recipe)
        generations = recipe.parent_generations
        for key, recorded in recipe.parents.items():
            parent = as_recorded(recorded, generations.get(key, 0))
            if parent not in leads:
                continue
            back_fn = BACK_FUNCS.get_back_func(recipe.func, key)
            if create_graph:
                assert isinstance(grad_out, Tensor)
                grad_in: Gradient = _call_twin(back_fn, grad_out, node, recipe)
            else:
                assert not isinstance(grad_out, Tensor)
                grad_in = back_fn(grad_out, node.array, *recipe.args, **recipe.kwargs)
            if grad_in.shape != parent.array.shape:
                name = display_name(recipe.func)
                raise RuntimeError(
                    f"the backward function for {describe_arg(key)} of {name} returned a "
                    f"gradient of shape {grad_in.shape} for an input of shape "
                    f"{parent.array.shape}: a gradient must have its input's shape"
                )
            previous = grads.get(parent)
            grads[parent] = grad_in if previous is None else previous + grad_in
    return reached


def _is_target(node: Tensor, wanted: set[Tensor] | None) -> bool:
    """A node whose gradient is wanted: one of ``wanted``, or (None) a leaf that requires grad."""
    if wanted is None:
        return node.recipe is None and node.requires_grad
    return node in wanted


def _call_twin(back_fn: object, grad_out: Tensor, node: Tensor, recipe: Recipe) -> Tensor:
    """The twin of ``back_fn`` called with the recipe's arguments, parents as their Tensors."""
    twin = GRAPH_BACK_FUNCS.get_twin(back_fn)  # type: ignore[arg-type]  # from BACK_FUNCS
    generations = recipe.parent_generations
    args = list(recipe.args)
    kwargs = dict(recipe.kwargs)
    for key, parent in recipe.parents.items():
        recorded = as_recorded(parent, generations.get(key, 0))
        if isinstance(key, int):
            args[key] = recorded
        else:
            kwargs[key] = recorded
    result = twin(grad_out, node, *args, **kwargs)
    if not isinstance(result, Tensor):
        raise TypeError(f"the twin of {back_fn!r} returned {type(result).__name__}, not a Tensor")
    return result
