"""The global switch that decides whether operations record recipes.

Read it with ``is_grad_enabled()`` every time: a ``from ... import`` of the
flag itself would copy its value once and never see it change.
"""

import functools
from collections.abc import Callable
from types import TracebackType
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

_grad_enabled = True


def is_grad_enabled() -> bool:
    """True when operations record how their results were computed."""
    return _grad_enabled


# A class spelled like a function, as in PyTorch: a call switches at once, and
# the object it returns can also serve as a context manager.
class set_grad_enabled:  # noqa: N801
    """Switch grad tracking now, and, used in a ``with``, back at the end of the block.

    ``set_grad_enabled(False)`` switches at once, for the whole program.
    ``with set_grad_enabled(False):`` switches for the block only: the call
    remembers the state it replaced, and leaving the block (normally or by an
    exception) puts that state back, so blocks nest.
    """

    __slots__ = ("_previous",)

    def __init__(self, enabled: bool) -> None:
        """Turn recording of recipes on or off for every later operation."""
        global _grad_enabled
        if not isinstance(enabled, bool):
            raise TypeError(
                f"set_grad_enabled takes True or False, got {enabled!r}: "
                "pass a bool (for example bool(flag))"
            )
        self._previous = _grad_enabled
        _grad_enabled = enabled

    def __enter__(self) -> None:
        """Nothing to do: the call already switched."""

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        global _grad_enabled
        _grad_enabled = self._previous


class NoGrad:
    """A context manager: ``with NoGrad():`` runs its block with tracking off.

    Also a decorator, as in PyTorch: a function decorated with ``@no_grad()``
    runs its whole body with tracking off, each call as one ``with`` block.

    On entry it saves the current state of the switch and turns tracking off;
    on exit, normal or by an exception, it restores the saved state. So a
    block nested in another, or inside ``set_grad_enabled(False)``, leaves the
    switch as it found it. Exceptions are never swallowed. The saved states
    form a stack, so even one instance entered twice (nested) restores
    correctly. ``no_grad`` is the same class under PyTorch's name.
    """

    __slots__ = ("_saved",)

    def __init__(self) -> None:
        self._saved: list[bool] = []

    def __enter__(self) -> None:
        self._saved.append(is_grad_enabled())
        set_grad_enabled(False)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        set_grad_enabled(self._saved.pop())

    def __call__(self, func: Callable[P, R]) -> Callable[P, R]:
        """``func`` wrapped so that every call runs inside ``with self:``."""

        @functools.wraps(func)
        def without_grad(*args: P.args, **kwargs: P.kwargs) -> R:
            with self:
                return func(*args, **kwargs)

        return without_grad


no_grad = NoGrad
