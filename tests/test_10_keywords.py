"""Step 10: gradients with respect to tensors passed by keyword.

The keyword rule (``wrap_forward_fn``, ``_bind_keywords``):
1. a Tensor passed by keyword for a parameter that may be passed positionally
   (per the forward's Python signature) moves to that position, so it is an
   ordinary positional parent and one backward serves both spellings;
2. otherwise (a keyword-only parameter, ``**kwargs``, or a forward without
   an inspectable signature) it stays a keyword, and as a parent it is keyed
   by its name: its backward is registered under ``(forward, name)``;
3. where neither applies, ``TypeError`` names the function and the keyword:
   a positional-only parameter (every input of a NumPy ufunc), a name the
   function does not have, a call that does not bind, or a parent whose
   keyword has no backward function.
"""

from collections.abc import Callable

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import npgrad
import npgrad.autograd
from npgrad import (
    BACK_FUNCS,
    Arr,
    BackwardFuncLookup,
    InplaceError,
    MissingBackwardFunctionError,
    Tensor,
    unbroadcast,
    wrap_forward_fn,
)
from shared.testing.gradients import numeric_vjp
from shared.testing.tensors import grad_of, leaf

pytestmark = pytest.mark.step(10)


# Forward functions with Python signatures, and their backward functions.


def scale(x: Arr, factor: Arr) -> Arr:
    """``x * factor``: both parameters may be passed by position or by keyword."""
    return x * factor


ZERO = np.zeros(())


def affine(x: Arr, weight: float | Arr = 1.0, bias: float | Arr = 0.0) -> Arr:
    """``x * weight + bias``, with defaults to skip over."""
    return x * weight + bias


def affine_back0(
    grad_out: Arr, out: Arr, x: Arr, weight: float | Arr = 1.0, bias: object = 0.0
) -> Arr:
    return unbroadcast(grad_out * weight, x)


def affine_back2(grad_out: Arr, out: Arr, x: Arr, weight: object = 1.0, bias: Arr = ZERO) -> Arr:
    return unbroadcast(grad_out, bias)


def cumulative_sum(a: Arr, axis: int = 0) -> Arr:
    """``np.cumsum`` along ``axis``."""
    return np.cumsum(a, axis=axis)


def cumulative_sum_back(grad_out: Arr, out: Arr, a: Arr, axis: int = 0) -> Arr:
    """Each element feeds every later partial sum: a reversed cumulative sum of ``grad_out``."""
    return np.flip(np.cumsum(np.flip(grad_out, axis), axis), axis)


def weighted(x: Arr, *, weight: Arr) -> Arr:
    """``x * weight`` where ``weight`` is keyword-only: its gradient is keyed by name."""
    return x * weight


def with_options(x: Arr, **options: Arr) -> Arr:
    """``x + shift``, ``shift`` arriving through ``**options``."""
    return x + options["shift"]


def unregistered(x: Arr, *, weight: Arr) -> Arr:
    """Like ``weighted``, but no backward is ever registered for ``weight``."""
    return x * weight


class NoSignature:
    """A callable whose signature cannot be inspected, as for some C functions."""

    __name__ = "no_signature"
    __signature__ = "unavailable"  # inspect.signature raises TypeError for anything but None

    def __call__(self, x: Arr, *, weight: Arr) -> Arr:
        return x * weight


no_signature = NoSignature()

BACK_FUNCS.add_back_func(
    scale, 0, lambda grad_out, out, x, factor: unbroadcast(grad_out * factor, x)
)
BACK_FUNCS.add_back_func(
    scale, 1, lambda grad_out, out, x, factor: unbroadcast(grad_out * x, factor)
)
BACK_FUNCS.add_back_func(cumulative_sum, 0, cumulative_sum_back)
BACK_FUNCS.add_back_func(affine, 0, affine_back0)
BACK_FUNCS.add_back_func(affine, 2, affine_back2)
KEYWORD_FORWARDS: tuple[Callable[..., Arr], ...] = (weighted, no_signature)
for forward in KEYWORD_FORWARDS:
    BACK_FUNCS.add_back_func(forward, 0, lambda grad_out, out, x, *, weight: grad_out * weight)
    BACK_FUNCS.add_back_func(forward, "weight", lambda grad_out, out, x, *, weight: grad_out * x)
BACK_FUNCS.add_back_func(with_options, "shift", lambda grad_out, out, x, **options: grad_out)


# --- 1. a keyword naming a positional parameter moves to its position ----------------

Spelling = Callable[[Callable[..., Tensor], Tensor, Tensor], Tensor]


@pytest.mark.parametrize(
    "call",
    [
        lambda f, a, b: f(a, b),
        lambda f, a, b: f(a, factor=b),
        lambda f, a, b: f(x=a, factor=b),
        lambda f, a, b: f(factor=b, x=a),
    ],
    ids=["positional", "one_keyword", "both_keywords", "keywords_reversed"],
)
def test_one_backward_serves_both_spellings(call: Spelling) -> None:
    scaled = wrap_forward_fn(scale)
    a, b = leaf([1.0, 2.0]), leaf([3.0, 5.0])
    out = call(scaled, a, b)
    assert out.recipe is not None
    assert out.recipe.parents == {0: a, 1: b}
    assert out.recipe.args[0] is a.array
    assert out.recipe.args[1] is b.array
    assert out.recipe.kwargs == {}
    out.backward(end_grad=np.array([1.0, 10.0]))
    assert_array_equal(grad_of(a), [3.0, 50.0])
    assert_array_equal(grad_of(b), [1.0, 20.0])


def test_parameters_skipped_before_a_keyword_tensor_take_their_defaults() -> None:
    forward = wrap_forward_fn(affine)
    x, bias = leaf([1.0, 2.0]), leaf([0.5, 0.25])
    out = forward(x, bias=bias)
    assert out.recipe is not None
    assert len(out.recipe.args) == 3
    assert out.recipe.args[0] is x.array
    assert out.recipe.args[1] == 1.0  # the default of weight, skipped over
    assert out.recipe.args[2] is bias.array
    assert out.recipe.parents == {0: x, 2: bias}
    assert out.recipe.kwargs == {}
    out.backward(end_grad=np.array([2.0, 3.0]))
    assert_array_equal(grad_of(x), [2.0, 3.0])
    assert_array_equal(grad_of(bias), [2.0, 3.0])


def test_plain_keyword_values_stay_keywords() -> None:
    forward = wrap_forward_fn(affine)
    x = leaf([1.0, 2.0])
    out = forward(x, weight=3.0)  # no Tensor by keyword: nothing moves
    assert out.recipe is not None
    assert len(out.recipe.args) == 1
    assert out.recipe.kwargs == {"weight": 3.0}


def test_keywords_in_any_order_with_a_plain_keyword_after_the_tensor() -> None:
    cumulative = wrap_forward_fn(cumulative_sum)  # cumulative_sum(a, axis=0)
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    out = cumulative(axis=1, a=x)
    assert_array_equal(out.array, [[1.0, 3.0], [3.0, 7.0]])
    assert out.recipe is not None
    assert out.recipe.parents == {0: x}
    assert len(out.recipe.args) == 1  # moved up to the last Tensor keyword only
    assert out.recipe.args[0] is x.array
    assert out.recipe.kwargs == {"axis": 1}
    out.backward(end_grad=np.array([[1.0, 10.0], [100.0, 1000.0]]))
    assert_array_equal(grad_of(x), [[11.0, 10.0], [1100.0, 1000.0]])
    chosen = npgrad.where(condition=x > 2.0, x=x, y=0.0)  # a typed function: plain Python
    assert chosen.recipe is not None
    assert chosen.recipe.parents == {1: x}


# --- 2. a keyword that cannot move is keyed by its name -------------------------------


@pytest.mark.parametrize("forward", KEYWORD_FORWARDS, ids=["keyword_only", "no_signature"])
def test_a_keyword_only_tensor_is_a_parent_keyed_by_its_name(forward: Callable[..., Arr]) -> None:
    tensor_func = wrap_forward_fn(forward)
    x_values, w_values = np.array([1.0, -2.0, 3.0]), np.array([0.5, 4.0, -1.0])
    x, w = leaf(x_values), leaf(w_values)
    out = tensor_func(x, weight=w)
    assert out.recipe is not None
    assert out.recipe.parents == {0: x, "weight": w}
    assert out.recipe.kwargs["weight"] is w.array  # unboxed, like positional arguments
    grad_out = np.array([1.0, 2.0, 3.0])
    out.backward(end_grad=grad_out)
    expected_w = numeric_vjp(lambda a, b: weighted(a, weight=b), [x_values, w_values], 1, grad_out)
    assert_allclose(grad_of(w), expected_w, rtol=1e-7, atol=1e-9)
    assert_array_equal(grad_of(x), grad_out * w_values)


def test_a_tensor_through_var_keyword_is_keyed_by_its_name() -> None:
    forward = wrap_forward_fn(with_options)
    x, shift = Tensor(np.array([1.0, 2.0])), leaf([10.0, 20.0])
    out = forward(x, shift=shift)
    assert out.recipe is not None
    assert out.recipe.parents == {"shift": shift}
    out.backward(end_grad=np.array([1.0, 2.0]))
    assert_array_equal(grad_of(shift), [1.0, 2.0])
    assert x.grad is None


def test_a_keyword_tensor_that_needs_no_gradient_needs_no_backward() -> None:
    forward = wrap_forward_fn(unregistered)
    x = leaf([1.0, 2.0])
    out = forward(x, weight=Tensor(np.array([3.0, 4.0])))  # a constant: never a parent
    assert out.recipe is not None
    assert out.recipe.parents == {0: x}
    assert out.recipe.kwargs["weight"].tolist() == [3.0, 4.0]  # type: ignore[attr-defined]


@pytest.mark.usefixtures("grad_tracking_off")
def test_keyword_tensors_are_fine_where_no_gradient_is_tracked() -> None:
    out = wrap_forward_fn(unregistered)(leaf([1.0]), weight=leaf([2.0]))
    assert out.recipe is None
    assert_array_equal(out.array, [2.0])


def test_a_non_differentiable_function_takes_keyword_tensors() -> None:
    every = wrap_forward_fn(np.all, is_differentiable=False)
    out = every(a=leaf([1.0, 2.0]) > 1.5)
    assert out.item() is False
    assert out.recipe is None


# --- 3. the errors ---------------------------------------------------------------------


def test_a_ufunc_input_by_keyword_raises_naming_function_and_keyword() -> None:
    a, b = leaf([1.0]), Tensor(np.array([2.0]))  # b needs no gradient: still an error
    with pytest.raises(
        TypeError,
        match=r"multiply\(\) got a Tensor for keyword argument 'x2', but 'x2' is a "
        r"positional-only parameter of multiply: pass tensors positionally",
    ):
        wrap_forward_fn(np.multiply)(a, x2=b)
    with pytest.raises(TypeError, match=r"add\(\) got a Tensor for keyword argument 'x2'"):
        npgrad.add(a, x2=a)  # type: ignore[call-arg]  # the misuse under test


def test_a_parent_by_keyword_without_a_backward_raises_at_the_call() -> None:
    with pytest.raises(
        TypeError,
        match=r"unregistered\(\) got a Tensor for keyword argument 'weight', but no backward "
        r"function is registered for it: pass tensors positionally, or register one with "
        r"BACK_FUNCS\.add_back_func\(unregistered, 'weight', <backward function>\)",
    ):
        wrap_forward_fn(unregistered)(leaf([1.0]), weight=leaf([2.0]))


def test_a_moved_keyword_is_exactly_a_positional_argument_even_in_its_errors() -> None:
    forward = wrap_forward_fn(affine)  # no backward for position 1 (weight)
    by_position = forward(leaf([1.0]), leaf([2.0]))
    by_keyword = forward(leaf([1.0]), weight=leaf([2.0]))
    for out in (by_position, by_keyword):
        with pytest.raises(MissingBackwardFunctionError, match=r"argument 1 of affine"):
            out.backward()


def test_an_unknown_keyword_or_a_call_that_does_not_bind_raises() -> None:
    scaled = wrap_forward_fn(scale)
    a = leaf([1.0])
    with pytest.raises(TypeError, match=r"keyword argument 'size', but scale has no such param"):
        scaled(a, a, size=a)
    with pytest.raises(TypeError, match=r"keyword argument 'x', but multiple values for argument"):
        scaled(a, x=a)
    with pytest.raises(TypeError, match=r"pass tensors positionally"):
        wrap_forward_fn(np.true_divide)(a, out=a)  # x2 is missing


def test_missing_keyword_backward_in_the_registry_names_the_keyword() -> None:
    lookup = BackwardFuncLookup()
    with pytest.raises(
        MissingBackwardFunctionError, match=r"keyword argument 'weight' of weighted"
    ):
        lookup.get_back_func(weighted, "weight")
    assert not lookup.has_back_func(weighted, "weight")
    assert BACK_FUNCS.has_back_func(weighted, "weight")


def test_a_keyword_backward_of_the_wrong_shape_is_named_in_the_error() -> None:
    def shifted(x: Arr, *, shift: Arr) -> Arr:
        return x + shift

    BACK_FUNCS.add_back_func(shifted, "shift", lambda grad_out, out, x, *, shift: grad_out)
    out = wrap_forward_fn(shifted)(Tensor(np.zeros((2, 3))), shift=leaf(np.zeros(3)))
    with pytest.raises(
        RuntimeError, match=r"backward function for keyword argument 'shift' of shifted returned"
    ):
        out.backward(end_grad=np.ones((2, 3)))


def test_a_keyword_argument_of_the_forward_is_never_kept_as_a_leaf_gradient() -> None:
    # backprop keeps a leaf's gradient without a copy only when nobody else holds it
    x, w = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    out = wrap_forward_fn(no_signature)(x, weight=w)  # no signature: weight stays a keyword
    assert out.recipe is not None
    kept = out.recipe.kwargs["weight"]
    assert isinstance(kept, np.ndarray)
    grad_out = np.ones(2)
    assert not npgrad.autograd._is_fresh(kept, grad_out, out)
    assert not npgrad.autograd._is_fresh(out.array, grad_out, out)
    assert npgrad.autograd._is_fresh(grad_out * 2.0, grad_out, out)


# --- with step 09's version counters --------------------------------------------------


def test_a_keyword_tensor_changed_in_place_after_the_forward_raises_naming_it() -> None:
    forward = wrap_forward_fn(weighted)
    x, w = leaf([1.0, 2.0]), Tensor(np.array([3.0, 4.0]))  # w needs no gradient: still saved
    out = forward(x, weight=w)
    assert out.recipe is not None
    assert out.recipe.parents == {0: x}
    saved = [(key, version) for key, _, version in out.recipe.saved_versions]
    assert saved == [(0, 0), ("weight", 0)]
    w.add_(1.0)  # weighted's backward for x reads weight: its gradient would be wrong
    with pytest.raises(
        InplaceError,
        match=r"keyword argument 'weight' of weighted, saved for backward, was modified by an "
        r"in-place operation: it is at version 1, expected version 0",
    ):
        out.backward(end_grad=np.ones(2))


def test_a_moved_keyword_tensor_is_saved_under_its_position() -> None:
    scaled = wrap_forward_fn(scale)
    a, b = leaf([1.0, 2.0]), Tensor(np.array([3.0, 5.0]))
    out = scaled(factor=b, x=a)
    assert out.recipe is not None
    assert [key for key, _, _ in out.recipe.saved_versions] == [0, 1]
    b.add_(1.0)
    with pytest.raises(InplaceError, match=r"argument 1 of scale, saved for backward"):
        out.backward(end_grad=np.ones(2))
