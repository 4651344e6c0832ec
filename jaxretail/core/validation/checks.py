"""Field checks: finite numbers, integers, probabilities, choices and sizes, each raising
:class:`ConfigError` naming the field, the value and what is allowed; JAX tracers pass unchecked."""

from __future__ import annotations

import numbers
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np


class ConfigError(ValueError):
    """An invalid config, parameter or flag; the message names the field, the value and the rule."""


def is_traced(value: Any) -> bool:
    """True for a JAX tracer (abstract value under ``jit`` / ``vmap``), which cannot be checked here."""
    if "jax" not in sys.modules:
        return False
    import jax

    return isinstance(value, jax.core.Tracer)


def _show(value: Any) -> str:
    if isinstance(value, np.ndarray | list | tuple) or hasattr(value, "shape"):
        arr = np.asarray(value)
        if arr.ndim and arr.size > 8:
            return f"array of shape {arr.shape}"
        return repr(arr.tolist())
    return repr(value)


def _name(field: str, owner: str | None) -> str:
    return f"{owner}.{field}" if owner else field


def check_bool(field: str, value: Any, owner: str | None = None) -> bool:
    """``True``/``False`` only (also NumPy bools): a string such as ``"no"`` is not a boolean."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    raise ConfigError(f"{_name(field, owner)} must be True or False, got {field}={value!r}")


def check_choice(field: str, value: Any, choices: Sequence[Any], owner: str | None = None) -> Any:
    """One of ``choices`` (a bool never matches a non-bool choice such as 1)."""
    hashable = isinstance(value, str | numbers.Number | type(None))
    if hashable and any(value == c and isinstance(value, bool) == isinstance(c, bool) for c in choices):
        return value
    raise ConfigError(f"{_name(field, owner)} must be one of {tuple(choices)}, got {field}={value!r}")


def check_int(
    field: str,
    value: Any,
    minimum: int | None = None,
    maximum: int | None = None,
    owner: str | None = None,
    allow_none: bool = False,
) -> int | None:
    """An integer (Python or NumPy; not a bool, not a float) in ``[minimum, maximum]``."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
        rule = _int_rule(minimum, maximum)
        raise ConfigError(f"{_name(field, owner)} must be {rule}, got {field}={value!r}")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ConfigError(f"{_name(field, owner)} must be {_int_rule(minimum, maximum)}, got {field}={value}")
    return value


def _int_rule(minimum, maximum) -> str:
    if minimum is not None and maximum is not None:
        return f"an integer in [{minimum}, {maximum}]"
    if minimum is not None:
        return f"an integer >= {minimum}"
    if maximum is not None:
        return f"an integer <= {maximum}"
    return "an integer"


def check_number(
    field: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    owner: str | None = None,
    shape: tuple[int, ...] | None = None,
) -> Any:
    """A finite real number, or an array of them (every element), within the given bounds.

    ``low``/``high`` are inclusive unless ``low_open``/``high_open``. ``shape``, when given, is the
    required array shape. Booleans and strings are refused. Returns ``value`` unchanged (a tracer too).
    """
    if is_traced(value):
        return value
    name = _name(field, owner)
    rule = _number_rule(low, high, low_open, high_open)
    if isinstance(value, bool | np.bool_ | str | bytes) or value is None:
        raise ConfigError(f"{name} must be {rule}, got {field}={value!r}")
    try:
        arr = np.asarray(value)
    except Exception as err:  # pragma: no cover - exotic objects
        raise ConfigError(f"{name} must be {rule}, got {field}={value!r}") from err
    if arr.dtype == object or arr.dtype.kind not in "iuf":
        raise ConfigError(f"{name} must be {rule}, got {field}={value!r}")
    if shape is not None and arr.shape != tuple(shape):
        raise ConfigError(
            f"{name} must have shape {tuple(shape)}, got shape {arr.shape} ({field}={_show(value)})"
        )
    arr = arr.astype(np.float64)
    bad = ~np.isfinite(arr)
    if low is not None:
        bad |= (arr <= low) if low_open else (arr < low)
    if high is not None:
        bad |= (arr >= high) if high_open else (arr > high)
    if np.any(bad):
        shown = _show(value) if arr.ndim else repr(float(arr))
        raise ConfigError(f"{name} must be {rule}, got {field}={shown}")
    return value


def _number_rule(low, high, low_open, high_open) -> str:
    if low is not None and high is not None:
        return f"a finite number in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if low is not None:
        return f"a finite number {'>' if low_open else '>='} {low}"
    if high is not None:
        return f"a finite number {'<' if high_open else '<='} {high}"
    return "a finite number"


def check_probability(field: str, value: Any, owner: str | None = None) -> Any:
    """A finite number (or array) in [0, 1]."""
    return check_number(field, value, low=0.0, high=1.0, owner=owner)


def check_sizes(field: str, value: Any, owner: str | None = None) -> tuple[int, ...]:
    """A tuple of positive integer layer widths."""
    if not isinstance(value, tuple | list) or not all(
        isinstance(w, numbers.Integral) and not isinstance(w, bool) and w >= 1 for w in value
    ):
        raise ConfigError(f"{_name(field, owner)} must be a tuple of integers >= 1, got {field}={value!r}")
    return tuple(int(w) for w in value)


def check_ranges(values: Any, rules: dict, owner: str) -> None:
    """Raise :class:`ConfigError` naming the field, value and allowed range
    for any concrete value that is not a finite number in range (strings and bools are refused too).
    ``rules[name] = (low, high, low_inclusive)``; ``high`` is inclusive, ``None`` unbounded."""
    for name, (low, high, inclusive) in rules.items():
        check_number(name, getattr(values, name), low=low, high=high, low_open=not inclusive, owner=owner)


def check_positive_ints(values: Any, names: Sequence[str], owner: str) -> None:
    """Each ``getattr(values, name)`` is a positive int (or None); errors name ``owner.name``."""
    for name in names:
        check_int(name, getattr(values, name), 1, owner=owner, allow_none=True)


def check_bools(values: Any, names: Sequence[str], owner: str) -> None:
    """Each ``getattr(values, name)`` is a real bool; errors name ``owner.name``."""
    for name in names:
        check_bool(name, getattr(values, name), owner=owner)


def check_state_matches(owner: str, shapes: dict[str, tuple], expected: dict[str, tuple]) -> None:
    """Refuse a state built for other params: each named state field's shape (static, so this runs at
    trace time, jitted or not) must equal what the params imply.

    Raises:
      ValueError: naming the field, its shape and the shape the params imply.
    """
    for name, want in expected.items():
        got = tuple(shapes[name])
        if got != tuple(want):
            raise ValueError(
                f"{owner}: state.{name} has shape {got}, but these params imply {tuple(want)}; "
                "the state was built with other params (reset with these params)"
            )
