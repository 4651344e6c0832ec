"""Command lines: a parser whose errors are one line with exit status 2, and ``argparse`` types that
refuse a bad flag while parsing."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NoReturn

from jaxretail.core.validation.checks import ConfigError, _int_rule, _number_rule


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
