"""One validation layer for every public config, parameter and command-line flag.

Every check runs on concrete host values before any compute and raises :class:`ConfigError` (a
``ValueError``) whose message names the field, the value given and what is allowed, e.g.
``ConfigError("draw_high must be a finite number > draw_low=1.0, got draw_high=inf")``. Values that are
JAX tracers (a field vmapped or jitted over) are passed through unchecked: they were checked when the
concrete config was built.

Command-line entry points build their parser with :func:`cli_parser` (defaults shown in ``--help``,
errors printed as one ``prog: error: ...`` line with exit status 2) and use the ``argparse`` types below
(:func:`int_at_least`, :func:`finite_float`, ...) so a bad flag is refused while parsing;
:func:`run_cli` turns a :class:`ConfigError` raised while the run's configs are built into the same
one-line exit.
"""

from __future__ import annotations

import argparse
import math
import numbers
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NoReturn

import numpy as np

__all__ = [
    "ConfigError",
    "check_bool",
    "check_choice",
    "check_int",
    "check_number",
    "check_probability",
    "check_sizes",
    "checked_dataclass",
    "fingerprint",
    "cli_parser",
    "finite_float",
    "int_at_least",
    "int_in_range",
    "is_concrete",
    "is_traced",
    "run_cli",
]


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


# ------------------------------------------------------------------------------- params classes


def checked_dataclass(clz: type) -> type:
    """``flax.struct.dataclass`` whose constructor validates but whose pytree rebuild does not.

    The class's own ``__post_init__`` checks the fields (with the same rules as its ``make_params``):
    it runs when a user builds the params directly or calls ``.replace(...)``, so a concrete bad value
    (NaN, a wrong sign, a probability above 1, a value of an unexpected type) is refused there; values
    that are JAX tracers (under ``jit``, ``vmap``, ``grad``) are passed through by the ``check_*``
    functions. JAX also rebuilds the node for trees that are not parameters -- an ``in_axes`` spec
    ``jax.tree.map(lambda _: 0, p)``, a mask ``jax.tree.map(jnp.isnan, p)``, the cotangents of
    ``jax.grad`` -- so the node's unflatten builds the instance without ``__init__`` /
    ``__post_init__`` (``object.__new__`` and the fields set one by one), and those trees pass.

    Fields are split as in flax: ``struct.field(pytree_node=False)`` fields are static (aux data),
    the others are children with ``GetAttrKey`` paths. ``replace`` and flax serialization work as for
    ``flax.struct.dataclass`` (a restored state dict is rebuilt without re-validation).
    """
    import dataclasses

    import jax
    from flax import serialization

    if "_flax_dataclass" in clz.__dict__:
        raise TypeError(f"{clz.__name__} is already a flax dataclass; decorate it only once")
    data_clz = dataclasses.dataclass(frozen=True)(clz)
    fields = dataclasses.fields(data_clz)
    meta = tuple(f.name for f in fields if not f.metadata.get("pytree_node", True))
    data = tuple(f.name for f in fields if f.metadata.get("pytree_node", True))

    def replace(self, **updates):
        """A new instance with ``updates`` (validated like a direct construction)."""
        return dataclasses.replace(self, **updates)

    def rebuild(aux, children):
        obj = object.__new__(data_clz)
        for name, value in zip(meta, aux, strict=True):
            object.__setattr__(obj, name, value)
        for name, value in zip(data, children, strict=True):
            object.__setattr__(obj, name, value)
        return obj

    def flatten(x):
        return tuple(getattr(x, n) for n in data), tuple(getattr(x, n) for n in meta)

    def flatten_with_keys(x):
        children = tuple((jax.tree_util.GetAttrKey(n), getattr(x, n)) for n in data)
        return children, tuple(getattr(x, n) for n in meta)

    def to_state_dict(x):
        return {n: serialization.to_state_dict(getattr(x, n)) for n in data}

    def from_state_dict(x, state):
        state = dict(state)
        missing = [n for n in data if n not in state]
        if missing or set(state) - set(data):
            raise ValueError(
                f"state dict of {clz.__name__} must hold the fields {list(data)}, got {sorted(state)}"
            )
        children = [serialization.from_state_dict(getattr(x, n), state[n], name=n) for n in data]
        return rebuild(flatten(x)[1], children)

    data_clz.replace = replace
    jax.tree_util.register_pytree_with_keys(data_clz, flatten_with_keys, rebuild, flatten)
    serialization.register_serialization_state(data_clz, to_state_dict, from_state_dict)
    data_clz._flax_dataclass = True
    return data_clz


def is_concrete(*values: Any) -> bool:
    """True when none of ``values`` is a JAX tracer (so a check of them can run on the host)."""
    return not any(is_traced(v) for v in values)


def fingerprint(*arrays: Any) -> np.uint32:
    """A uint32 identity (CRC-32) of concrete arrays: their shapes, dtypes and bytes."""
    import zlib

    crc = 0
    for a in arrays:
        arr = np.ascontiguousarray(np.asarray(a))
        crc = zlib.crc32(f"{arr.dtype.str}{arr.shape}".encode(), crc)
        crc = zlib.crc32(arr.tobytes(), crc)
    return np.uint32(crc)


# ------------------------------------------------------------------------------------------- CLIs


class _OneLineParser(argparse.ArgumentParser):
    """``argparse`` parser whose errors are one ``prog: error: ...`` line (no usage block), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")

    def add_argument(self, *args, **kwargs):
        # ArgumentDefaultsHelpFormatter only shows the default of a documented flag: give every flag
        # a help text (the rule its type checks) so --help lists every default
        if kwargs.get("help") is None and kwargs.get("action") not in ("help", "version"):
            rule = getattr(kwargs.get("type"), "__name__", "")
            name = str(kwargs.get("dest") or args[0]).lstrip("-").replace("-", " ").replace("_", " ")
            kwargs["help"] = rule if rule.startswith(("an ", "a ")) else name
        return super().add_argument(*args, **kwargs)


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


def cli_parser(description: str, prog: str | None = None) -> argparse.ArgumentParser:
    """A parser that shows every default in ``--help`` and reports errors in one line with exit 2."""
    return _OneLineParser(
        prog=prog, description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )


def run_cli(
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    check: Callable[[argparse.Namespace], Any],
    run: Callable[..., Any],
    errors: tuple[type[BaseException], ...] = (),
) -> Any:
    """Parse ``argv``, build the run's configs with ``check(args)`` and run ``run(args, built)``.

    A ``ValueError`` from ``check`` (every config constructor raises one for a bad field), or any
    exception of ``errors`` raised by ``run`` (e.g. an output folder held by another run), is printed
    as one ``prog: error: ...`` line and exits with status 2; nothing has been computed by then.
    """
    args = parser.parse_args(argv)
    try:
        built = check(args)
    except ValueError as err:
        parser.error(str(err))
    try:
        return run(args, built)
    except errors as err:
        parser.error(str(err))


def int_at_least(minimum: int) -> Callable[[str], int]:
    """``argparse`` type: an integer >= ``minimum``."""
    return int_in_range(minimum, None)


def int_in_range(minimum: int | None, maximum: int | None) -> Callable[[str], int]:
    """``argparse`` type: an integer in ``[minimum, maximum]`` (either bound may be None)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if (
            value is None
            or (minimum is not None and value < minimum)
            or (maximum is not None and value > maximum)
        ):
            raise argparse.ArgumentTypeError(f"must be {_int_rule(minimum, maximum)}, got {text!r}")
        return value

    parse.__name__ = _int_rule(minimum, maximum)
    return parse


# The run seed of every command line: one range for all of them. Jobs derive further seeds as
# ``seed + i`` (i < 2**31), which stays inside jax.random.key's uint32 range (larger seeds wrap).
SEED_MAX = 2**31 - 1
seed_flag = int_in_range(0, SEED_MAX)


def catalogue_sizes(text: str) -> tuple[int, ...]:
    """``argparse`` type: products per category as comma-separated positive integers, e.g. ``7,3,12,5``."""
    try:
        sizes = tuple(int(x) for x in text.split(","))
    except ValueError:
        sizes = ()
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(
            f"must be comma-separated positive integers like 7,3,12,5, got {text!r}"
        )
    return sizes


def finite_float(
    low: float | None = None, high: float | None = None, low_open: bool = False
) -> Callable[[str], float]:
    """``argparse`` type: a finite float within the bounds (``low`` exclusive when ``low_open``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        ok = math.isfinite(value)
        ok &= low is None or (value > low if low_open else value >= low)
        ok &= high is None or value <= high
        if not ok:
            raise argparse.ArgumentTypeError(
                f"must be {_number_rule(low, high, low_open, False)}, got {text!r}"
            )
        return value

    parse.__name__ = _number_rule(low, high, low_open, False)
    return parse


def check_flags(args: argparse.Namespace, rules: Iterable[tuple[str, Callable[[Any], bool], str]]) -> None:
    """Cross-flag rules ``(flag, predicate(args), allowed)``; the first that fails raises ConfigError."""
    for flag, ok, allowed in rules:
        if not ok(args):
            value = getattr(args, flag.lstrip("-").replace("-", "_"), None)
            raise ConfigError(f"{flag} must be {allowed}, got {flag}={value}")
