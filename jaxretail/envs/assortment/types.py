"""State and parameters of the dynamic assortment environment.

Shapes use ``N`` = number of items and ``d`` = number of static features.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxretail.core.environment import EnvParams, EnvState
from jaxretail.core.validation import (
    ConfigError,
    check_bool,
    check_choice,
    check_int,
    check_number,
    checked_dataclass,
    is_concrete,
    is_traced,
)

OBS_MODES = ("paper", "package")
HISTORY_LENGTH = 5


@struct.dataclass
class AssortmentState(EnvState):
    """One episode of the dynamic assortment problem (one instance + its customer stream)."""

    price: jax.Array  # [N] float, item prices p (fixed over the episode)
    static_features: jax.Array  # [d, N] float, f_1..f_d (fixed over the episode)
    hype: jax.Array  # [N] float, current hype h
    saturation: jax.Array  # [N] float, current saturation sigma
    hype_initial: jax.Array  # [N] float, h_0
    saturation_initial: jax.Array  # [N] float, sigma_0
    hype_delta: jax.Array  # [N] float, one-step change of h made by the last transition
    saturation_delta: jax.Array  # [N] float, one-step change of sigma made by the last transition
    history: jax.Array  # [5] int32, last purchases, history[0] most recent; N = no purchase / empty
    customer_key: jax.Array  # [] PRNG key; the customer at step t uses fold_in(customer_key, t)
    # t: [] int32 from EnvState, 1-based index of the next decision (T + 1 once the episode ended)


@checked_dataclass
class AssortmentParams(EnvParams):
    """Sizes (static) and coefficients (vmappable) of the problem.

    Defaults follow Hoppe et al. (arXiv 2505.19053) and DecisionFocusedLearningBenchmarks.jl:
    utility ``theta_i = -0.8 p_i + 0.6 h_i - 0.4 sigma_i + sum_k (0.3 + 0.2 (k-1)) f_{k,i}``,
    hype multipliers ``(+0.02, -0.005 x 4)`` over the last five purchases, saturation x1.01.
    Build with :func:`make_params`; a direct ``AssortmentParams(...)`` or ``.replace(...)`` checks
    every field with the same rules (tracers pass). JAX's own rebuilds of the node (``in_axes`` specs
    such as ``tree.map(lambda _: 0, p)``, gradients, masks) are not parameters and are not checked
    (:func:`jaxretail.core.validation.checked_dataclass`).

    Raises:
      ConfigError: (a ``ValueError``) naming the field, the value and the rule (see :func:`make_params`).
    """

    num_items: int = struct.field(pytree_node=False, default=20)  # N
    num_features: int = struct.field(pytree_node=False, default=2)  # d
    assortment_size: int = struct.field(pytree_node=False, default=4)  # K
    horizon: int = struct.field(pytree_node=False, default=80)  # T decisions per episode
    obs_mode: str = struct.field(pytree_node=False, default="paper")  # "paper" | "package"
    exogenous: bool = struct.field(pytree_node=False, default=False)  # freeze hype and saturation
    price_weight: jax.Array | float = -0.8
    hype_weight: jax.Array | float = 0.6
    saturation_weight: jax.Array | float = -0.4
    feature_weights: jax.Array | None = None  # [d]; None -> 0.3, 0.5, 0.7, ...
    hype_lag_effects: jax.Array | None = None  # [5]; None -> (0.02, -0.005, -0.005, -0.005, -0.005)
    saturation_growth: jax.Array | float = 1.01
    draw_low: jax.Array | float = 1.0  # every instance value ~ Uniform[draw_low, draw_high]
    draw_high: jax.Array | float = 10.0

    def __post_init__(self):
        _check_static(self.num_items, self.num_features, self.horizon, self.assortment_size)
        check_choice("obs_mode", self.obs_mode, OBS_MODES, owner="AssortmentParams")
        check_bool("exogenous", self.exogenous, owner="AssortmentParams")
        coef = {name: getattr(self, name) for name in _COEFFICIENTS}
        _check_coefficients(self.num_features, self.horizon, coef, owner="AssortmentParams")

    @property
    def num_subsets(self) -> int:
        """C(N, K), the number of feasible assortments."""
        import math

        return math.comb(self.num_items, self.assortment_size)


_COEFFICIENTS = (
    "price_weight",
    "hype_weight",
    "saturation_weight",
    "feature_weights",
    "hype_lag_effects",
    "saturation_growth",
    "draw_low",
    "draw_high",
)
# Largest magnitude any state value or utility may reach over the horizon (float32 max is 3.4e38;
# the margin keeps sums, differences and the /10 of package observations finite).
VALUE_LIMIT = 1e30
NO_SALE = 110.0  # exp(-110) is 0 in float32: an item with utility below -NO_SALE is never chosen


def max_hype_growth(lag_effects, horizon: int) -> float:
    """Largest factor ``prod_t m_t`` by which one item's hype can grow over ``horizon`` steps.

    ``m_t = 1 + sum_k alpha_k [H_{t,k} = j]`` depends only on which of the last five purchases were
    item ``j``, so the worst case is a max-plus path over the 16 states of the previous four
    purchase indicators, computed exactly by repeated squaring (``O(16^3 log T)``) from an empty
    history. Returns ``inf`` when the factor overflows float64.
    """
    lags = np.asarray(lag_effects, np.float64)
    bits = (np.arange(32)[:, None] >> np.arange(HISTORY_LENGTH)[None, :]) & 1  # bit k: lag k + 1 is j
    with np.errstate(divide="ignore"):
        log_m = np.log(np.maximum(1.0 + bits @ lags, 0.0))  # [32] log multiplier of each 5-lag pattern
    # pattern p = new | (s << 1): from the previous lags-1..4 indicators s = p >> 1 to s' = p & 15
    step = np.full((16, 16), -np.inf)
    for pattern in range(32):
        step[(pattern >> 1) & 15, pattern & 15] = log_m[pattern]

    def maxplus(a, b):
        return np.max(a[:, :, None] + b[None, :, :], axis=1)

    total, power, n = np.full((16, 16), -np.inf), step, int(horizon)
    np.fill_diagonal(total, 0.0)
    while n:
        if n & 1:
            total = maxplus(total, power)
        power, n = maxplus(power, power), n >> 1
    best = float(np.max(total[0]))  # from the empty history (no purchase of j among the last four)
    return math.exp(best) if best < 709.0 else math.inf


def _check_finite_over_horizon(d, t, fw, lag, coef) -> None:
    """Refuse settings under which hype, saturation or the utilities can pass :data:`VALUE_LIMIT`."""
    if not is_concrete(lag, coef["draw_low"], coef["draw_high"]):
        return
    lag_np = np.asarray(lag, np.float64)
    rows = np.unique(lag_np.reshape(-1, HISTORY_LENGTH), axis=0)  # a batch of params: every distinct row
    shrink = 1.0 + np.min(np.sum(np.minimum(rows, 0.0), axis=1))
    if not shrink > 0:
        raise ConfigError(
            f"hype_lag_effects must keep every hype multiplier 1 + sum(alpha) > 0 (the negative effects "
            f"sum to >= -1 here), got hype_lag_effects={lag_np.tolist()}"
        )
    weights = [coef[k] for k in ("price_weight", "hype_weight", "saturation_weight")]
    if any(is_traced(w) for w in weights) or is_traced(fw) or is_traced(coef["saturation_growth"]):
        return
    value = max(abs(float(np.max(coef["draw_low"]))), abs(float(np.max(coef["draw_high"]))), 1.0)
    pw, hw, sw = (np.asarray(w, np.float64) for w in weights)
    base = float(np.max(np.abs(pw))) * value + float(np.sum(np.abs(np.asarray(fw, np.float64)))) * value
    growth = float(np.max(coef["saturation_growth"]))
    # the worst case: every useful purchase happens
    hype_max = value * max(max_hype_growth(row, t) for row in rows)
    saturation_max = value * (math.exp(min(t * math.log(growth), 709.0)) if growth > 1 else 1.0)
    # With a negative weight the growth limits itself: an item whose utility is below -NO_SALE has
    # probability exactly 0 in float32 (exp underflows) and is never bought again, and without a
    # purchase its hype and saturation stop growing (hype after the last lag effects have passed).
    if np.max(hw) < 0:
        rest = base + max(float(np.max(sw)), 0.0) * saturation_max
        growth_5 = max(max_hype_growth(row, HISTORY_LENGTH + 1) for row in rows)
        cap = growth_5 * (rest + NO_SALE) / abs(float(np.max(hw)))
        hype_max = min(hype_max, max(value, cap))
    if np.max(sw) < 0:
        rest = base + max(float(np.max(hw)), 0.0) * hype_max
        saturation_max = min(saturation_max, max(value, growth * (rest + NO_SALE) / abs(float(np.max(sw)))))
    if not hype_max <= VALUE_LIMIT:
        raise ConfigError(
            f"hype_lag_effects={lag_np.tolist()} let hype grow from {value:g} to {hype_max:.3g} within "
            f"horizon={t} (the limit is {VALUE_LIMIT:g}, past which float32 overflows); shorten the horizon "
            "or reduce the positive lag effects"
        )
    if not saturation_max <= VALUE_LIMIT:
        raise ConfigError(
            f"saturation_growth={growth:g} lets saturation grow to {saturation_max:.3g} within horizon={t} "
            f"(the limit is {VALUE_LIMIT:g}); shorten the horizon or lower saturation_growth"
        )
    utility = base + float(np.max(np.abs(hw))) * hype_max + float(np.max(np.abs(sw))) * saturation_max
    if not utility <= VALUE_LIMIT:
        raise ConfigError(
            f"the utility weights (price_weight, hype_weight, saturation_weight, feature_weights) let "
            f"|utility| reach {utility:.3g} within horizon={t} (the limit is {VALUE_LIMIT:g}); "
            "use smaller weights"
        )


def _check_coefficients(d: int, t: int, coef: dict, owner: str | None = None):
    """Check the coefficients of :data:`_COEFFICIENTS` in ``coef`` (see :func:`make_params` for the
    rules); returns the feature weights ``[d]`` and lag effects ``[5]`` with their defaults filled in."""

    def scalar(name):  # one coefficient for every item (a vmapped batch arrives as a tracer)
        return None if is_traced(coef[name]) else ()

    for name in ("price_weight", "hype_weight", "saturation_weight"):
        check_number(name, coef[name], shape=scalar(name), owner=owner)
    check_number("saturation_growth", coef["saturation_growth"], low=0.0, low_open=True,
                 shape=scalar("saturation_growth"), owner=owner)  # fmt: skip
    check_number("draw_low", coef["draw_low"], low=0.0, shape=scalar("draw_low"), owner=owner)
    check_number("draw_high", coef["draw_high"], low=0.0, shape=scalar("draw_high"), owner=owner)
    concrete = not is_traced(coef["draw_low"]) and not is_traced(coef["draw_high"])
    if concrete and not np.all(np.asarray(coef["draw_low"]) < np.asarray(coef["draw_high"])):
        raise ConfigError(
            f"draw_high must be > draw_low, got draw_low={coef['draw_low']}, draw_high={coef['draw_high']}"
        )
    fw = coef["feature_weights"]
    fw = 0.3 + 0.2 * np.arange(d, dtype=np.float32) if fw is None else fw
    check_number("feature_weights", fw, shape=None if is_traced(fw) else (d,), owner=owner)
    lag = coef["hype_lag_effects"]
    lag = np.array([0.02, -0.005, -0.005, -0.005, -0.005], np.float32) if lag is None else lag
    check_number("hype_lag_effects", lag, shape=None if is_traced(lag) else (HISTORY_LENGTH,), owner=owner)
    _check_finite_over_horizon(d, t, fw, lag, coef)
    return fw, lag


def _check_static(num_items, num_features, horizon, assortment_size) -> tuple[int, int, int, int]:
    n = check_int("num_items", num_items, 1)
    d = check_int("num_features", num_features, 0)
    t = check_int("horizon", horizon, 1)
    k = check_int("assortment_size", assortment_size, 1)
    if k > n:
        raise ConfigError(
            f"assortment_size must satisfy 1 <= assortment_size <= num_items={n}, got assortment_size={k}"
        )
    return n, d, t, k


def make_params(
    num_items: int = 20,
    num_features: int = 2,
    assortment_size: int = 4,
    horizon: int = 80,
    obs_mode: str = "paper",
    exogenous: bool = False,
    **coefficients,
) -> AssortmentParams:
    """Validated :class:`AssortmentParams`; every error names the field, the value and the rule.

    Sizes are integers (``1 <= K <= N``, ``d >= 0``, ``T >= 1``), ``obs_mode`` is ``"paper"`` or
    ``"package"``, ``exogenous`` a bool. Coefficients are finite numbers (or arrays of them for a
    vmapped sweep); ``0 <= draw_low < draw_high`` (prices, hype and saturation are drawn from that
    range and must not be negative); ``saturation_growth > 0``; ``feature_weights`` has shape ``[d]``
    and ``hype_lag_effects`` shape ``[5]``. Settings under which hype, saturation or the utilities
    could exceed :data:`VALUE_LIMIT` within the horizon (e.g. a lag-1 hype effect of 0.5 compounding
    over 400 steps) are refused, so every state, observation and utility stays finite.

    Raises:
      ConfigError: (a ``ValueError``) for any field outside these rules.
    """
    n, d, t, k = _check_static(num_items, num_features, horizon, assortment_size)
    check_choice("obs_mode", obs_mode, OBS_MODES)
    exogenous = check_bool("exogenous", exogenous)
    unknown = set(coefficients) - set(_COEFFICIENTS)
    if unknown:
        raise ConfigError(f"unknown AssortmentParams field(s): {sorted(unknown)}; allowed: {_COEFFICIENTS}")
    defaults = AssortmentParams()
    coef = {name: coefficients.get(name, getattr(defaults, name)) for name in _COEFFICIENTS}
    fw, lag = _check_coefficients(d, t, coef)
    return AssortmentParams(
        num_items=n,
        num_features=d,
        assortment_size=k,
        horizon=t,
        obs_mode=obs_mode,
        exogenous=exogenous,
        feature_weights=jnp.asarray(fw, dtype=jnp.float32),
        hype_lag_effects=jnp.asarray(lag, dtype=jnp.float32),
        **{
            name: coefficients[name]
            for name in coef
            if name in coefficients and name not in ("feature_weights", "hype_lag_effects")
        },
    )
