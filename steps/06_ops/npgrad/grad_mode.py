"""The global switch that decides whether operations record recipes.

Read it with ``is_grad_enabled()`` every time: a ``from ... import`` of the
flag itself would copy its value once and never see it change.
"""

_grad_enabled = True


def is_grad_enabled() -> bool:
    """True when operations record how their results were computed."""
    return _grad_enabled


def set_grad_enabled(enabled: bool) -> None:
    """Turn recording of recipes on or off for every later operation."""
    global _grad_enabled
    _grad_enabled = enabled
