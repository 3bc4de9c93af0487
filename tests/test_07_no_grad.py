"""Step 07: NoGrad / no_grad, the context manager that turns tracking off for a block."""

import numpy as np
import pytest

from npgrad import NoGrad, Tensor, is_grad_enabled, no_grad, set_grad_enabled

pytestmark = pytest.mark.step(7)


def test_no_grad_turns_tracking_off_inside_and_back_on_after() -> None:
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    with NoGrad():
        assert not is_grad_enabled()
        b = a * 2
    assert is_grad_enabled()
    assert b.recipe is None
    assert not b.requires_grad
    c = a * 2
    assert c.recipe is not None


def test_no_grad_is_the_lower_case_alias() -> None:
    assert no_grad is NoGrad
    with no_grad():
        assert not is_grad_enabled()
    assert is_grad_enabled()


def test_nested_no_grad_restores_each_level() -> None:
    with NoGrad():
        with NoGrad():
            assert not is_grad_enabled()
        assert not is_grad_enabled(), (
            "leaving a no_grad block must restore the state saved on entry, not switch tracking on"
        )
    assert is_grad_enabled()


def test_one_instance_entered_twice_restores_correctly() -> None:
    context = NoGrad()
    with context:
        with context:
            assert not is_grad_enabled()
        assert not is_grad_enabled()
    assert is_grad_enabled()


def raise_inside_no_grad() -> None:
    with NoGrad():
        assert not is_grad_enabled()
        raise ZeroDivisionError("inside the block")


def test_no_grad_restores_tracking_after_an_exception() -> None:
    with pytest.raises(ZeroDivisionError, match=r"inside the block"):
        raise_inside_no_grad()  # the exception propagates: NoGrad does not swallow it
    assert is_grad_enabled()


def test_no_grad_restores_after_an_exception_in_a_nested_block() -> None:
    with NoGrad():
        with pytest.raises(ZeroDivisionError, match=r"inside the block"):
            raise_inside_no_grad()
        assert not is_grad_enabled()
    assert is_grad_enabled()


@pytest.mark.usefixtures("grad_tracking_off")
def test_no_grad_inside_disabled_tracking_leaves_it_disabled() -> None:
    with NoGrad():
        assert not is_grad_enabled()
    assert not is_grad_enabled()


@pytest.mark.usefixtures("grad_tracking_off")
def test_no_grad_restores_the_state_on_entry_not_a_fixed_value() -> None:
    with NoGrad():
        set_grad_enabled(True)  # the block flips the switch itself
    assert not is_grad_enabled()  # back to the state on entry (off), not forced on


def test_a_leaf_created_inside_no_grad_keeps_requires_grad() -> None:
    with NoGrad():
        a = Tensor(np.array([1.0]), requires_grad=True)
    assert a.requires_grad
    (a * 3).backward()
    assert a.grad is not None
    assert a.grad.item() == 3.0


def test_no_grad_as_a_decorator_turns_tracking_off_for_each_call() -> None:
    # Decorated inside the test: at module level a learner's unfinished
    # decorator would break the collection of every test here.
    @no_grad()
    def double_without_grad(t: Tensor) -> Tensor:
        """Doubles ``t``; the decorator turns tracking off for the call."""
        assert not is_grad_enabled()
        return t * 2

    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    out = double_without_grad(a)
    assert is_grad_enabled()
    assert out.recipe is None
    np.testing.assert_array_equal(out.array, [2.0, 4.0])
    assert double_without_grad.__name__ == "double_without_grad"  # functools.wraps
    assert double_without_grad.__doc__ is not None
    assert "decorator" in double_without_grad.__doc__
    set_grad_enabled(False)
    double_without_grad(a)
    assert not is_grad_enabled()  # restored to the state at the call, not switched on
    set_grad_enabled(True)


def test_no_grad_decorator_restores_after_an_exception() -> None:
    @NoGrad()
    def fail() -> None:
        raise ZeroDivisionError("inside the decorated function")

    with pytest.raises(ZeroDivisionError, match=r"inside the decorated function"):
        fail()
    assert is_grad_enabled()


def test_no_grad_decorator_works_for_a_recursive_function() -> None:
    @no_grad()
    def countdown(n: int) -> int:
        assert not is_grad_enabled()
        return 0 if n == 0 else 1 + countdown(n - 1)

    assert countdown(5) == 5
    assert is_grad_enabled()


def test_set_grad_enabled_inside_no_grad_restores_each_level() -> None:
    with no_grad():
        with set_grad_enabled(True):
            assert is_grad_enabled()
        assert not is_grad_enabled()
    assert is_grad_enabled()
