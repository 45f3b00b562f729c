"""Checks of what a person gives us: each raises ``InputError``, a ``ValueError`` that knows
which parameter was wrong, with a message that names the parameter, the limit and the value
(shortened) — never a server path, never a parser's internals. Used by ``fgg.inputs.resolve_spec``
and by the app for its own parameters.
"""

from __future__ import annotations

import math
from numbers import Integral, Number

SHOWN_CHARS = 40


class InputError(ValueError):
    """A bad value of API parameter ``parameter``; ``str(err)`` is the message for the user."""

    def __init__(self, parameter: str, message: str):
        super().__init__(message)
        self.parameter = parameter


def shown(value, limit: int = SHOWN_CHARS) -> str:
    """``repr(value)`` cut to ``limit`` characters, with the full length, so a huge bad value is
    never echoed back (or logged) in full."""
    text = repr(value)
    if len(text) <= limit:
        return text
    if isinstance(value, str):
        size = f"{len(value):,} characters"
    elif hasattr(value, "__len__"):
        size = f"{len(value):,} items"
    else:
        size = f"{len(text):,} characters"
    return f"{text[:limit]}… ({size})"


def number(value, name: str, lo: float, hi: float, *, integer: bool = False, unit: str = "") -> float | int:
    """``value`` as a number in [lo, hi] (an int if ``integer``), else ``InputError``. Numbers
    out of range are refused, not clamped: a caller who asked for seed 10³⁰ must learn that it
    did not get it. Numeric strings ("120") are accepted; bools are not numbers here. Integers
    are compared exactly (a 64-bit seed never passes through a float)."""
    limits = " to ".join(f"{x:.0f}" if float(x).is_integer() else f"{x:g}" for x in (lo, hi))
    expected = f"{name} must be {'a whole number' if integer else 'a number'} from {limits}{f' {unit}' if unit else ''}"
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise InputError(name, f"{expected} (got {shown(value)})") from None
    if isinstance(value, bool) or not isinstance(value, Number):
        raise InputError(name, f"{expected} (got {shown(value)})")
    exact: float | int = int(value) if isinstance(value, Integral) else float(value)  # type: ignore[arg-type]
    whole = isinstance(exact, int) or exact.is_integer()
    if not math.isfinite(exact) or not lo <= exact <= hi or (integer and not whole):
        raise InputError(name, f"{expected} (got {exact:g})")
    return int(exact) if integer else float(exact)


def text(value, name: str, max_chars: int) -> str:
    """A string of at most ``max_chars`` characters (None is the empty string); checked before
    anything parses it."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InputError(name, f"{name} must be text (got {shown(value)})")
    if len(value) > max_chars:
        raise InputError(name, f"{name} is {len(value):,} characters long; the limit is {max_chars:,}")
    return value


def choice(value, options, name: str):
    """A dropdown value re-checked on the server."""
    if not isinstance(value, (str, int, float)) or value not in options:
        raise InputError(name, f"unknown {name} {shown(value)}; choose one of {', '.join(map(str, options))}")
    return value


def one_of(value, options, name: str):
    """The option ``value`` is, else ``InputError`` ("… must be one of 1, 2, 3, 4, 5 (got 3.5)").
    A number is the numeric option it equals (3.0 is 3; NaN, True and "3" are none), a string
    only the same string."""
    for option in options:
        kinds = [(isinstance(x, bool), isinstance(x, str)) for x in (value, option)]
        if kinds[0] == kinds[1] and isinstance(value, (str, Number)) and value == option:
            return option
    raise InputError(name, f"{name} must be one of {', '.join(map(str, options))} (got {shown(value)})")


def boolean(value, name: str) -> bool:
    """Exactly True or False: not 1/0, not "true", not None."""
    if not isinstance(value, bool):
        raise InputError(name, f"{name} must be true or false (got {shown(value)})")
    return value


def flag(value, name: str) -> bool:
    """True or False (also 1/0), never "false" (truthy) or None."""
    if value not in (True, False):
        raise InputError(name, f"{name} must be true or false (got {shown(value)})")
    return bool(value)
