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

from jaxretail.core.validation.checks import (
    ConfigError,
    check_bool,
    check_bools,
    check_choice,
    check_int,
    check_number,
    check_positive_ints,
    check_probability,
    check_ranges,
    check_sizes,
    check_state_matches,
    is_traced,
)
from jaxretail.core.validation.cli import (
    SEED_MAX,
    catalogue_sizes,
    check_flags,
    cli_parser,
    finite_float,
    int_at_least,
    int_in_range,
    run_cli,
    seed_flag,
)
from jaxretail.core.validation.params import check_params, checked_dataclass, fingerprint, is_concrete

__all__ = [
    "SEED_MAX",
    "ConfigError",
    "catalogue_sizes",
    "check_bool",
    "check_bools",
    "check_choice",
    "check_flags",
    "check_int",
    "check_number",
    "check_params",
    "check_positive_ints",
    "check_probability",
    "check_ranges",
    "check_sizes",
    "check_state_matches",
    "checked_dataclass",
    "cli_parser",
    "finite_float",
    "fingerprint",
    "int_at_least",
    "int_in_range",
    "is_concrete",
    "is_traced",
    "run_cli",
    "seed_flag",
]
