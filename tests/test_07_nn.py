"""Step 07: Parameter, Module, Linear, ReLU and MLP."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, assert_type

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from npgrad import (
    MLP,
    Linear,
    Module,
    NoGrad,
    Parameter,
    ReLU,
    Tensor,
    cross_entropy,
    tensor,
)
from shared.testing.parity import require_torch, to_numpy

pytestmark = pytest.mark.step(7)


MLP_REPR = """MLP(
  (linear1): Linear(in_features=784, out_features=64, bias=True)
  (relu1): ReLU()
  (linear2): Linear(in_features=64, out_features=64, bias=True)
  (relu2): ReLU()
  (linear3): Linear(in_features=64, out_features=10, bias=True)
)"""

MLP_KEYS = [
    "linear1.weight",
    "linear1.bias",
    "linear2.weight",
    "linear2.bias",
    "linear3.weight",
    "linear3.bias",
]


def ids(items: Iterable[object]) -> list[int]:
    """Identities, for comparing lists of tensors (``==`` on tensors is elementwise)."""
    return [id(item) for item in items]


class Pair(Module):
    """Two own parameters around a child, to pin the order of ``parameters()``."""

    def __init__(self) -> None:
        super().__init__()
        self.first = Parameter(Tensor(np.array([1.0])))
        self.child = Linear(2, 3, rng=np.random.default_rng(0))
        self.second = Parameter(Tensor(np.array([2.0])))

    def forward(self, x: Tensor) -> Tensor:
        return self.child(x) * self.first * self.second


# --- Parameter --------------------------------------------------------------------------


def test_a_parameter_shares_the_tensors_array() -> None:
    t = Tensor(np.array([1.0, 2.0, 3.0]))
    p = Parameter(t)
    assert p.array is t.array
    t.array[0] = 10.0
    assert p.array[0] == 10.0
    with NoGrad():
        p.add_(Tensor(np.array([1.0, 1.0, 1.0])))
    assert_array_equal(t.array, [11.0, 3.0, 4.0])


def test_a_parameter_is_a_leaf_tensor_that_requires_grad() -> None:
    p = Parameter(Tensor(np.array([1.0])))
    assert isinstance(p, Tensor)
    assert p.requires_grad
    assert p.is_leaf
    assert p.grad is None
    assert not Parameter(Tensor(np.array([1.0])), requires_grad=False).requires_grad


def test_a_parameter_keeps_its_dtype() -> None:
    p = Parameter(Tensor(np.array([1.0], dtype=np.float32)))
    assert p.array.dtype == np.float32


def test_a_parameter_is_a_tensor_everywhere_and_receives_its_gradient() -> None:
    w = Parameter(Tensor(np.array([[1.0, 2.0], [3.0, 4.0]])))
    b = Parameter(Tensor(np.array([0.5, -0.5])))
    x = Tensor(np.array([[1.0, 1.0]]))
    (x @ w.T + b).relu().exp().sum().backward()
    hidden = x.array @ w.array.T + b.array  # [[3.5, 6.5]]: relu passes it through
    assert isinstance(w.grad, Tensor)
    assert isinstance(b.grad, Tensor)
    assert_allclose(w.grad.array, np.exp(hidden).T @ x.array, rtol=1e-12)
    assert_allclose(b.grad.array, np.exp(hidden)[0], rtol=1e-12)
    first = w.grad.array.copy()
    (w * w).sum().backward()  # accumulates like any leaf
    assert_allclose(w.grad.array, first + 2 * w.array, rtol=1e-12)


def test_parameter_repr() -> None:
    p = Parameter(Tensor(np.array([1.0, 2.0])))
    assert repr(p) == "Parameter containing:\nTensor(array([1., 2.]), requires_grad=True)"


def test_a_parameter_has_no_instance_dict() -> None:
    p = Parameter(Tensor(np.array([1.0])))
    assert not hasattr(p, "__dict__")


@pytest.mark.parametrize("data", [np.ones(3), [1.0, 2.0], 3.0])
def test_a_parameter_of_something_other_than_a_tensor_raises(data: object) -> None:
    with pytest.raises(
        TypeError, match=r"Parameter wraps a Tensor, got a \w+: write Parameter\(Tensor"
    ):
        Parameter(data)  # type: ignore[arg-type]  # not a Tensor, on purpose


def test_a_parameter_of_integer_data_that_requires_grad_raises() -> None:
    with pytest.raises(TypeError, match=r"int64 data.*floating point first"):
        Parameter(Tensor(np.array([1, 2], dtype=np.int64)))
    with pytest.raises(TypeError, match=r"bool data"):
        Parameter(Tensor(np.array([True])))
    frozen = Parameter(Tensor(np.array([1, 2])), requires_grad=False)  # no gradient: fine
    assert frozen.array.dtype.kind == "i"


# --- Module -----------------------------------------------------------------------------


def test_parameters_are_own_first_then_each_childs_in_assignment_order() -> None:
    pair = Pair()
    expected = [pair.first, pair.second, pair.child.weight, pair.child.bias]
    assert ids(pair.parameters()) == ids(expected), (
        "parameters() must list the module's own Parameters, then every child module's, "
        "recursively, in assignment order"
    )
    assert ids(pair.parameters(recurse=False)) == ids([pair.first, pair.second])


def test_mlp_parameters_in_layer_order() -> None:
    mlp = MLP()
    expected = []
    for layer in (mlp.linear1, mlp.linear2, mlp.linear3):
        expected += [layer.weight, layer.bias]
    assert ids(mlp.parameters()) == ids(expected)
    assert [name for name, _ in mlp.named_parameters()] == MLP_KEYS
    assert list(mlp.parameters(recurse=False)) == []


def test_modules_lists_the_direct_children_in_order() -> None:
    mlp = MLP()
    children = [mlp.linear1, mlp.relu1, mlp.linear2, mlp.relu2, mlp.linear3]
    assert ids(mlp.modules()) == ids(children)

    class Outer(Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = Pair()

    outer = Outer()
    assert ids(outer.modules()) == ids([outer.inner])  # not the grandchild Linear
    assert len(list(outer.parameters())) == 4


def test_a_parameter_shared_by_two_modules_is_listed_once() -> None:
    class Tied(Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = Linear(3, 3, bias=False)
            self.decoder = Linear(3, 3, bias=False)
            self.decoder.weight = self.encoder.weight

    tied = Tied()
    assert ids(tied.parameters()) == ids([tied.encoder.weight])
    assert list(tied.state_dict()) == ["encoder.weight", "decoder.weight"]


def test_assigning_none_to_a_registered_name_keeps_its_place() -> None:
    layer = Linear(2, 3)
    weight, bias = layer.weight, layer.bias
    assert bias is not None
    layer.bias = None
    assert layer.bias is None
    assert ids(layer.parameters()) == ids([weight])
    layer.bias = bias
    assert ids(layer.parameters()) == ids([weight, bias])


def test_assigning_a_non_parameter_to_a_parameter_name_raises() -> None:
    layer = Linear(2, 3)
    with pytest.raises(TypeError, match=r"cannot assign a Tensor to Linear.weight.*Parameter"):
        layer.weight = Tensor(np.zeros((3, 2)))  # type: ignore[assignment]  # what we test


def test_assigning_a_non_module_to_a_module_name_raises() -> None:
    mlp = MLP()
    with pytest.raises(TypeError, match=r"cannot assign a float to MLP.relu1.*a Module or None$"):
        mlp.relu1 = 0.5  # type: ignore[assignment]  # what we test


def test_reassigning_a_name_to_another_kind_moves_it() -> None:
    model = Pair()
    model.first = Linear(1, 1)  # type: ignore[assignment]  # a parameter's name, now a module
    assert "first" not in dict(model.named_parameters(recurse=False))
    assert ids(model.modules()) == ids([model.child, model.first])


def test_plain_attributes_are_not_registered() -> None:
    class WithConstant(Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = 2.0
            self.offset = Tensor(np.array([1.0]), requires_grad=True)  # a Tensor, not a Parameter

    module = WithConstant()
    assert module.scale == 2.0
    assert list(module.parameters()) == []


def test_deleting_an_attribute_unregisters_it() -> None:
    layer = Linear(2, 3)
    del layer.bias
    assert ids(layer.parameters()) == ids([layer.weight])
    assert not hasattr(layer, "bias")


def test_calling_a_module_calls_forward() -> None:
    class Double(Module):
        def forward(self, x: Tensor) -> Tensor:
            return x * 2

    assert_array_equal(Double()(Tensor(np.array([1.0, 2.0]))).array, [2.0, 4.0])


class Masked(Module):
    """A forward with a second positional argument and a keyword, as attention layers have."""

    def forward(self, x: Tensor, scale: float = 1.0, *, mask: Tensor | None = None) -> Tensor:
        out = x * scale
        return out if mask is None else out * mask


def test_calling_a_module_passes_every_argument_and_keyword_to_forward() -> None:
    x, mask = Tensor(np.array([1.0, 2.0, 3.0])), Tensor(np.array([1.0, 0.0, 1.0]))
    module = Masked()
    assert_array_equal(module(x).array, [1.0, 2.0, 3.0])
    assert_array_equal(module(x, 2.0).array, [2.0, 4.0, 6.0])
    assert_array_equal(module(x, mask=mask).array, [1.0, 0.0, 3.0])
    assert_array_equal(module(x, scale=3.0, mask=mask).array, [3.0, 0.0, 9.0])
    # The call has forward's own signature for the type checker (mypy checks this file).
    assert_type(module(x, 2.0, mask=mask), Tensor)
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'weights'"):
        module(x, weights=mask)  # type: ignore[call-arg]  # mypy catches it too


def test_module_call_is_forward_bound_to_the_module() -> None:
    module = Masked()
    assert module.__call__ == module.forward
    assert callable(module)


def test_a_module_without_forward_raises_not_implemented() -> None:
    with pytest.raises(NotImplementedError, match=r"Module must define forward"):
        Module()(Tensor(np.array([1.0])))


def test_module_repr_nests_like_pytorch() -> None:
    assert repr(MLP()) == MLP_REPR
    assert repr(ReLU()) == "ReLU()"
    assert repr(Linear(3, 2, bias=False)) == "Linear(in_features=3, out_features=2, bias=False)"

    class Outer(Module):
        def __init__(self) -> None:
            super().__init__()
            self.mlp = Linear(1, 1)
            self.inner = Pair()

    assert repr(Outer()) == (
        "Outer(\n"
        "  (mlp): Linear(in_features=1, out_features=1, bias=True)\n"
        "  (inner): Pair(\n"
        "    (child): Linear(in_features=2, out_features=3, bias=True)\n"
        "  )\n"
        ")"
    )


def test_a_missing_attribute_raises_attribute_error() -> None:
    mlp = MLP()
    with pytest.raises(AttributeError, match=r"'MLP' object has no attribute 'linear4'"):
        _ = mlp.linear4  # type: ignore[attr-defined]  # the misuse under test
    assert not hasattr(mlp, "linear4")
    assert getattr(mlp, "linear4", None) is None
    assert hasattr(mlp, "linear3")


def test_assigning_a_parameter_before_module_init_raises() -> None:
    class Forgetful(Module):
        def __init__(self) -> None:  # no super().__init__()
            self.weight = Parameter(Tensor(np.array([1.0])))

    with pytest.raises(AttributeError, match=r"call super\(\).__init__\(\) first in Forgetful"):
        Forgetful()


# --- state_dict and load_state_dict -----------------------------------------------------


def test_state_dict_has_dotted_names_and_copies() -> None:
    mlp = MLP()
    state = mlp.state_dict()
    assert list(state) == MLP_KEYS
    assert state["linear1.weight"].shape == (64, 784)
    assert mlp.linear3.bias is not None
    assert_array_equal(state["linear3.bias"], mlp.linear3.bias.array)
    state["linear1.weight"][0, 0] = 123.0
    assert mlp.linear1.weight.array[0, 0] != 123.0


def test_state_dict_skips_a_missing_bias() -> None:
    assert list(Linear(2, 3, bias=False).state_dict()) == ["weight"]


def test_load_state_dict_copies_in_place_and_keeps_parameters_shared() -> None:
    source, target = MLP(), MLP()
    params_before = list(target.parameters())
    arrays_before = [p.array for p in params_before]
    target.load_state_dict(source.state_dict())
    assert ids(target.parameters()) == ids(params_before)
    for param, array, (name, value) in zip(
        target.parameters(), arrays_before, source.state_dict().items(), strict=True
    ):
        assert param.array is array, name
        assert_array_equal(param.array, value)
    x = Tensor(np.random.default_rng(0).normal(size=(2, 784)).astype(np.float32))
    assert_array_equal(target(x).array, source(x).array)


def test_load_state_dict_accepts_tensors_and_casts_to_the_parameter_dtype() -> None:
    layer = Linear(2, 1)
    layer.load_state_dict({"weight": Tensor(np.array([[1.0, 2.0]])), "bias": np.array([0.5])})
    assert layer.weight.array.dtype == np.float32
    assert_array_equal(layer.weight.array, [[1.0, 2.0]])


def test_load_state_dict_names_every_missing_extra_and_misshaped_key() -> None:
    mlp = MLP()
    before = mlp.state_dict()
    state = mlp.state_dict()
    del state["linear2.bias"]
    del state["linear3.weight"]
    state["linear4.weight"] = np.zeros((1, 1))
    state["linear1.weight"] = np.zeros((64, 783))
    with pytest.raises(RuntimeError, match=r"MLP") as error:
        mlp.load_state_dict(state)
    message = str(error.value)
    assert "missing key 'linear2.bias'" in message
    assert "missing key 'linear3.weight'" in message
    assert "unexpected key 'linear4.weight'" in message
    assert "shape mismatch for 'linear1.weight': the state has shape (64, 783)" in message
    assert "(64, 784)" in message
    for name, value in mlp.state_dict().items():  # nothing was copied
        assert_array_equal(value, before[name])


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        ("missing", r"missing key 'bias'"),
        ("extra", r"unexpected key 'scale'"),
        ("shape", r"shape mismatch for 'weight': the state has shape \(2, 3\).*\(3, 2\)"),
    ],
)
def test_load_state_dict_raises_for_each_kind_of_bad_key(change: str, pattern: str) -> None:
    layer = Linear(2, 3)
    state = layer.state_dict()
    if change == "missing":
        del state["bias"]
    elif change == "extra":
        state["scale"] = np.ones(1)
    else:
        state["weight"] = np.zeros((2, 3))
    with pytest.raises(RuntimeError, match=pattern):
        layer.load_state_dict(state)


BAD_LAST_VALUES: dict[str, tuple[object, str]] = {
    "int32": (np.arange(10, dtype=np.int32), r"dtype mismatch for 'linear3\.bias'.*int32"),
    "bool": (np.ones(10, dtype=bool), r"dtype mismatch for 'linear3\.bias'.*bool"),
    "complex": (np.ones(10, dtype=complex), r"dtype mismatch for 'linear3\.bias'.*complex128"),
    "string": (np.array(["abc"] * 10), r"dtype mismatch for 'linear3\.bias'.*<U3"),
    "datetime": (
        np.array(["2024-01-01"] * 10, dtype="datetime64[D]"),
        r"dtype mismatch for 'linear3\.bias'.*datetime64",
    ),
    "object": (np.array([None] * 10, dtype=object), r"dtype mismatch for 'linear3\.bias'.*object"),
    "nan": (
        np.full(10, np.nan, dtype=np.float32),
        r"non-finite values for 'linear3\.bias': 10 of 10",
    ),
    "inf": (np.array([np.inf] + [0.0] * 9), r"non-finite values for 'linear3\.bias': 1 of 10"),
    "too large for float32": (
        np.full(10, 1e39),
        r"non-finite values for 'linear3\.bias': 10 of 10 .* float32",
    ),
    "ragged": ([[1.0], [1.0, 2.0]], r"cannot read 'linear3\.bias' as an array"),
}


@pytest.mark.parametrize("kind", list(BAD_LAST_VALUES))
def test_load_state_dict_with_a_bad_last_value_changes_nothing(kind: str) -> None:
    value, pattern = BAD_LAST_VALUES[kind]
    mlp = MLP(rng=np.random.default_rng(0))
    before = mlp.state_dict()
    state: dict[str, Any] = dict(MLP(rng=np.random.default_rng(1)).state_dict())
    state["linear3.bias"] = value  # the last key: every other one is fine and differs
    with pytest.raises(RuntimeError, match=pattern):
        mlp.load_state_dict(state)
    for name, array in mlp.state_dict().items():  # nothing was copied
        assert_array_equal(array, before[name], err_msg=name)


def test_load_state_dict_names_every_bad_value() -> None:
    layer = Linear(2, 3)
    state: dict[str, Any] = {
        "weight": np.zeros((3, 2), dtype=np.int64),
        "bias": np.array([0.0, np.nan, 1.0]),
    }
    with pytest.raises(RuntimeError, match=r"Linear") as error:
        layer.load_state_dict(state)
    message = str(error.value)
    assert "dtype mismatch for 'weight': the state has dtype int64" in message
    assert "non-finite values for 'bias': 1 of 3" in message


def test_load_state_dict_accepts_float16_and_float64_values() -> None:
    layer = Linear(2, 1)
    layer.load_state_dict({"weight": np.array([[1.0, 2.0]], dtype=np.float16), "bias": [0.5]})
    assert_array_equal(layer.weight.array, [[1.0, 2.0]])
    assert layer.bias is not None
    assert_array_equal(layer.bias.array, [0.5])


def test_load_state_dict_of_something_other_than_a_mapping_raises_type_error() -> None:
    layer = Linear(2, 1)
    pairs = list(layer.state_dict().items())
    with pytest.raises(TypeError, match=r"needs a mapping .* model\.state_dict\(\).*got a list"):
        layer.load_state_dict(pairs)  # type: ignore[arg-type]  # a list of pairs, on purpose


# --- Linear -----------------------------------------------------------------------------


def test_linear_shapes_dtype_and_init_bounds() -> None:
    # Seeded: "spread over the interval" holds for almost every draw, not for all.
    layer = Linear(100, 30, rng=np.random.default_rng(0))
    assert layer.bias is not None
    assert layer.weight.shape == (30, 100)
    assert layer.bias.shape == (30,)
    assert layer.weight.array.dtype == np.float32
    assert layer.bias.array.dtype == np.float32
    assert isinstance(layer.weight, Parameter)
    assert layer.weight.requires_grad
    bound = 1 / math.sqrt(100)
    for param in (layer.weight, layer.bias):
        assert np.abs(param.array).max() <= np.float32(bound)  # bound rounded like the values
        assert np.abs(param.array).max() > 0.8 * bound  # spread over the interval, not tiny
    assert abs(float(layer.weight.array.mean())) < 0.1 * bound  # centred on zero


def test_linear_init_is_reproducible_with_an_rng() -> None:
    first = Linear(4, 3, rng=np.random.default_rng(7))
    second = Linear(4, 3, rng=np.random.default_rng(7))
    third = Linear(4, 3, rng=np.random.default_rng(8))
    assert_array_equal(first.weight.array, second.weight.array)
    assert not np.array_equal(first.weight.array, third.weight.array)


def test_linear_forward_is_x_at_w_transposed_plus_b() -> None:
    layer = Linear(4, 3)
    assert layer.bias is not None
    x = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    out = layer(Tensor(x))
    assert out.shape == (5, 3)
    assert out.array.dtype == np.float32
    expected = x @ layer.weight.array.T + layer.bias.array
    assert_allclose(out.array, expected, rtol=1e-6, atol=1e-6)


def test_linear_backward_gives_weight_and_bias_gradients() -> None:
    layer = Linear(4, 3)
    rng = np.random.default_rng(1)
    x = Tensor(rng.normal(size=(5, 4)).astype(np.float32), requires_grad=True)
    grad_out = rng.normal(size=(5, 3)).astype(np.float32)
    layer(x).backward(end_grad=grad_out)
    assert layer.weight.grad is not None
    assert layer.bias is not None
    assert layer.bias.grad is not None
    assert x.grad is not None
    assert_allclose(layer.weight.grad.array, grad_out.T @ x.array, rtol=1e-5, atol=1e-6)
    assert_allclose(layer.bias.grad.array, grad_out.sum(axis=0), rtol=1e-5, atol=1e-6)
    assert_allclose(x.grad.array, grad_out @ layer.weight.array, rtol=1e-5, atol=1e-6)
    assert layer.weight.grad.array.dtype == np.float32


def test_linear_without_bias() -> None:
    layer = Linear(4, 3, bias=False)
    assert layer.bias is None
    assert ids(layer.parameters()) == ids([layer.weight])
    x = np.random.default_rng(0).normal(size=(2, 4))
    assert_allclose(layer(Tensor(x)).array, x @ layer.weight.array.T, rtol=1e-12)
    assert layer.extra_repr() == "in_features=4, out_features=3, bias=False"


def test_linear_takes_any_number_of_leading_dimensions() -> None:
    layer = Linear(4, 3)
    assert layer.bias is not None
    rng = np.random.default_rng(2)
    for shape in [(4,), (2, 5, 4), (1, 2, 3, 4)]:
        x = Tensor(rng.normal(size=shape), requires_grad=True)
        out = layer(x)
        assert out.shape == (*shape[:-1], 3)
        expected = x.array @ layer.weight.array.T + layer.bias.array
        assert_allclose(out.array, expected, rtol=1e-6, atol=1e-6)
        out.sum().backward()
        assert x.grad is not None
        assert x.grad.shape == shape


@pytest.mark.parametrize("data", [[[1.0, 2.0]], np.ones((1, 2), dtype=np.float32)])
def test_linear_of_something_other_than_a_tensor_raises(data: object) -> None:
    layer = Linear(2, 3)
    with pytest.raises(TypeError, match=r"Linear takes a Tensor, got a (list|ndarray): wrap"):
        layer(data)  # type: ignore[arg-type]  # not a Tensor, on purpose


def test_linear_of_the_wrong_input_size_raises() -> None:
    with pytest.raises(ValueError, match=r"input of shape \(\*, 4\), got shape \(2, 3\)"):
        Linear(4, 3)(Tensor(np.zeros((2, 3))))
    with pytest.raises(ValueError, match=r"got shape \(6,\)"):
        Linear(3, 3)(Tensor(np.zeros(6)))  # must not be reshaped to (2, 3) silently


def test_linear_of_zero_features_raises() -> None:
    with pytest.raises(ValueError, match=r"in_features=0"):
        Linear(0, 3)


def linear_as_float64(layer: Linear) -> Linear:
    """Replace the parameters with float64 copies, for exact comparisons."""
    layer.weight = Parameter(tensor(layer.weight.array, dtype=np.float64))
    if layer.bias is not None:
        layer.bias = Parameter(tensor(layer.bias.array, dtype=np.float64))
    return layer


def torch_linear(torch: Any, layer: Linear) -> Any:
    """A torch.nn.Linear (float64) holding ``layer``'s weights."""
    reference = torch.nn.Linear(
        layer.in_features, layer.out_features, bias=layer.bias is not None, dtype=torch.float64
    )
    with torch.no_grad():
        reference.weight.copy_(torch.tensor(layer.weight.array))
        if layer.bias is not None:
            reference.bias.copy_(torch.tensor(layer.bias.array))
    return reference


@pytest.mark.parity
@pytest.mark.parametrize("bias", [True, False])
def test_linear_forward_and_backward_match_pytorch(bias: bool) -> None:
    torch = require_torch()
    rng = np.random.default_rng(3)
    layer = linear_as_float64(Linear(6, 4, bias=bias))
    reference = torch_linear(torch, layer)
    x_array = rng.normal(size=(5, 6))
    grad_out = rng.normal(size=(5, 4))

    x = Tensor(x_array, requires_grad=True)
    out = layer(x)
    out.backward(end_grad=grad_out)
    torch_x = torch.tensor(x_array, requires_grad=True)
    torch_out = reference(torch_x)
    torch_out.backward(torch.tensor(grad_out))

    assert_allclose(out.array, to_numpy(torch_out), rtol=1e-12, atol=1e-12)
    assert layer.weight.grad is not None
    assert x.grad is not None
    assert_allclose(layer.weight.grad.array, to_numpy(reference.weight.grad), rtol=1e-12)
    assert_allclose(x.grad.array, to_numpy(torch_x.grad), rtol=1e-12, atol=1e-12)
    if layer.bias is not None:
        assert layer.bias.grad is not None
        assert_allclose(layer.bias.grad.array, to_numpy(reference.bias.grad), rtol=1e-12)


# --- ReLU and MLP -----------------------------------------------------------------------


def test_relu_module() -> None:
    out = ReLU()(Tensor(np.array([[-1.0, 0.5], [2.0, -3.0]])))
    assert_array_equal(out.array, [[0.0, 0.5], [2.0, 0.0]])


def test_mlp_shapes_and_dtype() -> None:
    mlp = MLP()
    x = Tensor(np.random.default_rng(0).random((3, 784), dtype=np.float32))
    logits = mlp(x)
    assert logits.shape == (3, 10)
    assert logits.array.dtype == np.float32
    assert [p.shape for p in mlp.parameters()] == [
        (64, 784),
        (64,),
        (64, 64),
        (64,),
        (10, 64),
        (10,),
    ]
    assert all(p.array.dtype == np.float32 for p in mlp.parameters())


def test_mlp_is_reproducible_with_an_rng() -> None:
    first = MLP(rng=np.random.default_rng(0)).state_dict()
    second = MLP(rng=np.random.default_rng(0)).state_dict()
    for name in MLP_KEYS:
        assert_array_equal(first[name], second[name])


def test_mlp_training_step_gives_every_parameter_a_gradient() -> None:
    mlp = MLP(rng=np.random.default_rng(0))
    rng = np.random.default_rng(1)
    x = Tensor(rng.random((8, 784), dtype=np.float32))
    labels = rng.integers(0, 10, size=8)
    loss = cross_entropy(mlp(x), labels).sum()
    loss.backward()
    for name, param in mlp.named_parameters():
        assert param.grad is not None, name
        assert param.grad.shape == param.shape
        assert np.all(np.isfinite(param.grad.array))


@pytest.mark.parity
def test_mlp_forward_and_backward_match_pytorch() -> None:
    torch = require_torch()
    mlp = MLP(rng=np.random.default_rng(4))
    layers = [mlp.linear1, mlp.linear2, mlp.linear3]
    for layer in layers:
        linear_as_float64(layer)
    reference = torch.nn.Sequential(
        torch_linear(torch, mlp.linear1),
        torch.nn.ReLU(),
        torch_linear(torch, mlp.linear2),
        torch.nn.ReLU(),
        torch_linear(torch, mlp.linear3),
    )
    rng = np.random.default_rng(5)
    x_array = rng.random((6, 784))
    labels = rng.integers(0, 10, size=6)

    logits = mlp(Tensor(x_array))
    loss = cross_entropy(logits, labels).sum()
    loss.backward()
    torch_logits = reference(torch.tensor(x_array))
    torch_loss = torch.nn.functional.cross_entropy(
        torch_logits, torch.tensor(labels), reduction="sum"
    )
    torch_loss.backward()

    assert_allclose(logits.array, to_numpy(torch_logits), rtol=1e-10, atol=1e-12)
    assert loss.item() == pytest.approx(torch_loss.item(), rel=1e-12)
    torch_params = list(reference.parameters())
    ours = list(mlp.named_parameters())
    assert len(ours) == len(torch_params) == 6
    for (name, param), torch_param in zip(ours, torch_params, strict=True):
        assert param.grad is not None, name
        assert_allclose(
            param.grad.array, to_numpy(torch_param.grad), rtol=1e-9, atol=1e-12, err_msg=name
        )
