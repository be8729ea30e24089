"""Checks for activation parameters: the one place where α, a gain or a flag is judged valid.

Each check takes ``(activation, key, value)`` and returns the value normalised (a float, a bool)
or raises ValueError with a message naming both, e.g. ``activation 'leaky_relu': alpha must be
>= 0 (got -0.2)``. Registry entries list them per parameter (:class:`common.activations.spec.Param`)
and ``FusedLeakyReLU`` calls them from its constructor, so a module built by name and one built
directly refuse the same values with the same words.
"""

from __future__ import annotations

import math
from typing import Any, Callable

#: ``check(activation, key, value) -> normalised value``; raises ValueError.
Check = Callable[[str, str, Any], Any]


def _fail(activation: str, message: str) -> ValueError:
    return ValueError(f"activation '{activation}': {message}")


def number(activation: str, key: str, value: Any, *, positive: bool = False) -> float:
    """A finite real number (bools refused), >= 0, or > 0 when ``positive``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _fail(activation, f"{key} must be a finite number (got {value!r})")
    if positive and value <= 0:
        raise _fail(activation, f"{key} must be > 0 (got {value!r})")
    if value < 0:
        raise _fail(activation, f"{key} must be >= 0 (got {value!r})")
    return float(value)


def nonnegative(activation: str, key: str, value: Any) -> float:
    """A finite number >= 0 (a negative slope α, for instance)."""
    return number(activation, key, value)


def positive(activation: str, key: str, value: Any) -> float:
    """A finite number > 0 (a gain, ELU's saturation level)."""
    return number(activation, key, value, positive=True)


def boolean(activation: str, key: str, value: Any) -> bool:
    """True or False, nothing that merely converts to one (``"yes"`` is refused)."""
    if not isinstance(value, bool):
        raise _fail(activation, f"{key} must be true or false (got {value!r})")
    return value


def one_of(*options: Any) -> Check:
    """A check accepting exactly the given values."""

    def check(activation: str, key: str, value: Any) -> Any:
        if value not in options:
            allowed = " or ".join(repr(o) for o in options)
            raise _fail(activation, f"{key} must be {allowed} (got {value!r})")
        return value

    return check


def explained(check: Check, why: str) -> Check:
    """``check`` whose refusals also say why the rule exists (appended after a semicolon)."""

    def explained_check(activation: str, key: str, value: Any) -> Any:
        try:
            return check(activation, key, value)
        except ValueError as exc:
            raise ValueError(f"{exc}; {why}") from None

    return explained_check


def placement(activation: str, channels: Any, dim: Any) -> None:
    """Where a module goes: ``channels`` a positive int or None, ``dim`` an int."""
    if channels is not None and (isinstance(channels, bool) or not isinstance(channels, int) or channels < 1):
        raise _fail(activation, f"channels must be a positive int (got {channels!r})")
    if isinstance(dim, bool) or not isinstance(dim, int):
        raise _fail(activation, f"dim must be an int (got {dim!r})")
