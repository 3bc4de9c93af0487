"""gradcheck: compare backward's gradients with central differences, element by element.

``gradgradcheck`` does the same for second derivatives, through recorded backward passes.
"""

from collections.abc import Callable, Sequence

import numpy as np

from npgrad.arrays import Arr
from npgrad.grad_mode import no_grad, set_grad_enabled
from npgrad.higher_order.engine import grad
from npgrad.ops import concatenate, reshape
from npgrad.tensor import Tensor


class GradcheckError(AssertionError):
    """Backward and central differences disagree on one element of one input's gradient."""


def gradcheck(
    fn: Callable[..., Tensor],
    inputs: Sequence[Tensor],
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
) -> bool:
    """Check every gradient of ``fn(*inputs)`` against central differences; True if all agree.

    For every element ``j`` of the output, backward from a one-hot gradient
    gives row ``j`` of the Jacobian with respect to each input that requires
    grad; moving each input element by ``+eps`` and ``-eps`` gives the same
    Jacobian numerically. They agree where ``|analytic - numeric| <= atol +
    rtol * |numeric|``. Inputs that require grad must be float64 (in float32,
    ``eps = 1e-6`` is below the rounding error). On a disagreement this raises
    ``GradcheckError`` naming the input, the element index, the output element
    and both values. Each input's ``.grad`` is reset to None afterwards. An
    input with no elements (shape (0, 3)) has nothing to check and passes, as
    does every input when the output has no elements.
    """
    checked = [i for i, tensor in enumerate(inputs) if tensor.requires_grad]
    if not checked:
        raise ValueError("gradcheck needs at least one input with requires_grad=True")
    for i in checked:
        if inputs[i].array.dtype != np.float64:
            raise ValueError(
                f"gradcheck input {i} has dtype {inputs[i].array.dtype}: use float64, since "
                "central differences with a small eps are meaningless in lower precision"
            )
    analytic = _analytic_jacobians(fn, inputs, checked)
    for i in checked:
        if inputs[i].array.size == 0:
            continue  # no element to move, no gradient element to compare: nothing can disagree
        numeric = _numeric_jacobian(fn, inputs, i, eps)
        close = np.abs(analytic[i] - numeric) <= atol + rtol * np.abs(numeric)
        if not close.all():
            out_index, in_index = (int(k) for k in np.argwhere(~close)[0])
            out_shape = _output_shape(fn, inputs)
            raise GradcheckError(
                f"gradcheck failed for input {i} at index {_position(in_index, inputs[i].shape)} "
                f"(output element {_position(out_index, out_shape)}): backward gave "
                f"{float(analytic[i][out_index, in_index])!r}, central differences gave "
                f"{float(numeric[out_index, in_index])!r}"
            )
    return True


def _position(flat_index: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(k) for k in np.unravel_index(flat_index, shape))


def _output_shape(fn: Callable[..., Tensor], inputs: Sequence[Tensor]) -> tuple[int, ...]:
    return _forward_without_tracking(fn, inputs).shape


def _analytic_jacobians(
    fn: Callable[..., Tensor], inputs: Sequence[Tensor], checked: list[int]
) -> dict[int, Arr]:
    """``{input index: Jacobian of shape (output size, input size)}`` from backward passes."""
    out = fn(*inputs)
    jacobians = {i: np.zeros((out.array.size, inputs[i].array.size)) for i in checked}
    for j in range(out.array.size):
        for i in checked:
            inputs[i].grad = None
        one_hot = np.zeros(out.array.size, dtype=out.array.dtype)
        one_hot[j] = 1.0
        out.backward(one_hot.reshape(out.shape))
        for i in checked:
            grad = inputs[i].grad
            if grad is not None:  # None: this output element does not depend on input i
                jacobians[i][j] = grad.array.reshape(-1)
    for i in checked:
        inputs[i].grad = None
    return jacobians


def _numeric_jacobian(
    fn: Callable[..., Tensor], inputs: Sequence[Tensor], i: int, eps: float
) -> Arr:
    """Jacobian of ``fn`` with respect to input ``i`` by central differences."""
    flat = inputs[i].array.reshape(-1)  # a view when contiguous; checked below
    if not np.shares_memory(flat, inputs[i].array):
        raise ValueError(f"gradcheck input {i} must be a contiguous array")
    columns = []
    for k in range(flat.size):
        original = flat[k]
        flat[k] = original + eps
        plus = _forward_without_tracking(fn, inputs).array.reshape(-1).astype(np.float64)
        flat[k] = original - eps
        minus = _forward_without_tracking(fn, inputs).array.reshape(-1).astype(np.float64)
        flat[k] = original
        columns.append((plus - minus) / (2 * eps))
    return np.stack(columns, axis=1)


def _forward_without_tracking(fn: Callable[..., Tensor], inputs: Sequence[Tensor]) -> Tensor:
    with no_grad():
        return fn(*inputs)


def gradgradcheck(
    fn: Callable[..., Tensor],
    inputs: Sequence[Tensor],
    grad_outputs: Tensor | None = None,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
) -> bool:
    """Check the second derivatives of ``fn(*inputs)`` against central differences.

    ``gradcheck`` applied to the first derivatives: the function checked takes
    the inputs and a vector ``v`` shaped like the output, and returns the
    recorded gradients of ``fn`` with respect to the inputs that require grad,
    for the starting gradient ``v``, flattened and joined. Its Jacobian, by
    backward passes through those recorded backward passes, must agree with
    central differences of the first derivatives, with respect to the inputs
    (Hessian-vector products) and to ``v`` (the first derivatives are linear in
    ``v``). ``grad_outputs`` is ``v``; by default random normal numbers (seed
    0). A ``GradcheckError`` names ``v`` as the input after the last of
    ``inputs``. True when every element agrees.
    """
    checked = [tensor for tensor in inputs if tensor.requires_grad]
    if not checked:
        raise ValueError("gradgradcheck needs at least one input with requires_grad=True")
    out_shape = _output_shape(fn, inputs)
    if grad_outputs is None:
        vector = np.random.default_rng(0).normal(size=out_shape)
    else:
        vector = np.array(grad_outputs.array, dtype=np.float64)
    if vector.shape != out_shape:
        raise ValueError(
            f"gradgradcheck: grad_outputs has shape {vector.shape} but the output has shape "
            f"{out_shape}; it must match the output's shape"
        )

    def first_derivatives(*values: Tensor) -> Tensor:
        *points, v = values
        with set_grad_enabled(True):  # recorded even while gradcheck's differences run
            out = fn(*points)
            wanted = [point for point in points if point.requires_grad]
            grads = grad(out, wanted, grad_outputs=v, create_graph=True, allow_unused=True)
            return concatenate([reshape(g, (-1,)) for g in grads])

    return gradcheck(
        first_derivatives,
        [*inputs, Tensor(vector, requires_grad=True)],
        eps=eps,
        atol=atol,
        rtol=rtol,
    )
