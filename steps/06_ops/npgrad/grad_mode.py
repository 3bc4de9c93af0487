"""The global switch that decides whether operations record recipes.

Read it with ``is_grad_enabled()`` every time: a ``from ... import`` of the
flag itself would copy its value once and never see it change.
"""

from types import TracebackType

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
