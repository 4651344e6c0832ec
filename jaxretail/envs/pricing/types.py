"""State, SKU instance and parameters of the dynamic pricing environment (one SKU; vmap over SKUs).

Shapes: ``W`` = look-back window (days), ``F = 8`` history features per day, ``H = max(W, lag)``
days of simulated pre-history. Money is in the SKU's own currency units; ``p_ref`` is its list price.
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
)

MODES = ("daily", "markdown")
ACTION_TYPES = ("discrete", "continuous")
REWARDS = ("revenue", "profit", "rcr", "pcr", "drcr", "dpcr")
GROUPS = ("luxury", "fmcg")
HISTORY_FEATURES = (
    "price_rel",  # price paid / list price                      (price group)
    "discount",  # 1 - price / list price                        (price group)
    "log_units",  # log1p(units sold)                            (sales group)
    "log_revenue_rel",  # log1p(revenue / list price)            (sales group)
    "uv_rel",  # unique visitors / base traffic                  (traffic group)
    "rcr_rel",  # 10 * RCR / list price                          (traffic x sales)
    "pcr_rel",  # 10 * PCR / list price                          (traffic x sales)
    "competitor_rel",  # competitor price / list price           (competitiveness group)
)
STATIC_FEATURES = ("p_min_rel", "p_max_rel", "cost_rel", "dow_sin", "dow_cos", "stock_rel", "time", "reviews")
MARKDOWN_DISCOUNTS = tuple(round(0.1 * k, 1) for k in range(1, 10))  # action k -> (k + 1) * 10 % off


@struct.dataclass
class SKU:
    """One SKU's market (all scalars ``[]`` float; vmap for many SKUs)."""

    list_price: jax.Array  # p_ref > 0, the regular price
    unit_cost: jax.Array  # c >= 0
    p_min: jax.Array  # lowest price of the look-back window
    p_max: jax.Array  # highest price of the look-back window (>= p_min)
    base_uv: jax.Array  # mean daily unique visitors
    season_amplitude: jax.Array  # weekly seasonality amplitude in [0, 1)
    season_phase: jax.Array  # weekday of day 0, in [0, 7)
    traffic_noise: jax.Array  # sd of the log traffic noise
    intercept: jax.Array  # a: utility of the SKU at price 0
    price_slope: jax.Array  # b / p_ref: utility loss per currency unit (> 0)
    competitor_intercept: jax.Array  # a_c: competitor utility at price 0 (same slope)
    competitor_price: jax.Array  # mean competitor price / p_ref
    competitor_noise: jax.Array  # sd of the daily log competitor price
    shock_sd: jax.Array  # stationary sd of the AR(1) conversion shock z_t
    shock_rho: jax.Array  # AR(1) persistence of z_t, in [0, 1)


@struct.dataclass
class PricingState(EnvState):
    """One SKU's episode. ``t`` (from EnvState, int32 []): 1-based day of the next decision."""

    sku: SKU
    # ring buffers, oldest day at row (t - 1) % size, overwritten by day t (env.ordered_history /
    # env.ordered_lags read them oldest -> newest):
    history: jax.Array  # [W, F] float, the last W days, features HISTORY_FEATURES
    basis_lags: jax.Array  # [lag, 2] float, (RCR or PCR, 1 if UV > 0) of the last lag days
    shock: jax.Array  # [] float, conversion shock z_t of day t (hidden)
    uv: jax.Array  # [] float, unique visitors of day t (hidden until the day is over)
    competitor_rel: jax.Array  # [] float, competitor price / list price on day t
    stock: jax.Array  # [] float, units left (markdown; 0 and unused in daily mode)
    reviews: jax.Array  # [] float, cumulative units sold (comment-count proxy)


@checked_dataclass
class PricingParams(EnvParams):
    """Static sizes and modes, and the SKU-generator distribution (vmappable floats).

    Build with :func:`make_params`; :func:`jaxretail.envs.pricing.generator.group_params` holds the
    luxury-like and FMCG-like presets. A direct ``PricingParams(...)`` or ``.replace(...)`` checks every
    field with the same rules (:data:`_INTS`, :data:`_NUMBERS`, :data:`_RANGES`, :data:`_SKU_RULES`;
    tracers pass); JAX's own rebuilds of the node (``in_axes`` specs, masks, gradients) are not checked.

    Raises:
      ConfigError: (a ``ValueError``) naming the field, the value and the rule.
    """

    mode: str = struct.field(pytree_node=False, default="daily")  # "daily" | "markdown"
    action_type: str = struct.field(pytree_node=False, default="discrete")  # | "continuous"
    num_prices: int = struct.field(pytree_node=False, default=10)  # K price areas (9 in markdown)
    window: int = struct.field(pytree_node=False, default=7)  # W look-back days
    horizon: int = struct.field(pytree_node=False, default=30)  # T days (truncation / markdown end)
    reward: str = struct.field(pytree_node=False, default="drcr")
    lag: int = struct.field(pytree_node=False, default=1)  # t~ of DRCR
    relative: bool = struct.field(pytree_node=False, default=False)  # DRCR as growth ratio
    normalize_reward: bool = struct.field(pytree_node=False, default=True)  # divide money by p_ref
    reward_scale: jax.Array | float = 1.0  # multiplies every reward (e.g. 100 x DRCR)
    initial_stock: jax.Array | float = 10.0  # markdown stock (daily mode: unlimited)
    sku: SKU | None = None  # fixed SKU for every reset; None -> draw from the distribution below
    # generator distribution (see generator.draw_sku); ranges are [low, high]
    # (defaults = the luxury-like group of generator.GROUP_PRESETS)
    log_price_range: tuple = (5.3, 8.5)  # log list price ~ U
    cost_ratio_range: tuple = (0.3, 0.5)  # unit cost / list price ~ U
    history_discount_range: tuple = (0.2, 0.5)  # p_min = p_ref (1 - d), d ~ U
    log_uv_range: tuple = (3.4, 5.7)  # log base UV ~ U
    conversion_range: tuple = (0.005, 0.02)  # conversion at list price, competitor at parity
    slope_range: tuple = (1.5, 3.5)  # b: price sensitivity per list price
    season_amplitude: float = 0.2  # weekly traffic amplitude
    traffic_noise: float = 0.3  # sd of log daily traffic noise
    competitor_noise: float = 0.05  # sd of log daily competitor price
    shock_sd: float = 0.1  # stationary sd of the conversion shock
    shock_rho: float = 0.5  # its AR(1) persistence

    def __post_init__(self):
        _check_params(self, owner="PricingParams")

    @property
    def history_length(self) -> int:
        """``H = max(W, lag)`` days of pre-history simulated at reset."""
        return max(self.window, self.lag)

    @property
    def obs_size(self) -> int:
        return self.window * len(HISTORY_FEATURES) + len(STATIC_FEATURES)


# The rules of every PricingParams field, used by make_params and by the constructor alike.
_INTS = {"num_prices": 2, "window": 1, "horizon": 1, "lag": 1}  # name -> minimum
# name -> (low, high, low_open, high_open); None = unbounded
_NUMBERS = {
    "initial_stock": (0.0, None, False, False),
    "reward_scale": (0.0, None, True, False),
    "season_amplitude": (0.0, 0.99, False, False),
    "traffic_noise": (0.0, None, False, False),
    "competitor_noise": (0.0, None, False, False),
    "shock_sd": (0.0, None, False, False),
    "shock_rho": (0.0, 0.999, False, False),
}
# (low, high) pairs with low <= high; the bounds of both ends: (low, high, low_open, high_open)
_RANGES = {
    "log_price_range": (None, None, False, False),
    "cost_ratio_range": (0.0, None, False, False),
    "history_discount_range": (0.0, 1.0, False, True),
    "log_uv_range": (0.0, None, False, False),
    "conversion_range": (0.0, 0.5, True, True),
    "slope_range": (0.0, None, False, False),
}
# a fixed SKU's fields: (low, high, low_open, high_open)
_SKU_RULES = {
    "list_price": (0.0, None, True, False),
    "unit_cost": (0.0, None, False, False),
    "p_min": (0.0, None, True, False),
    "p_max": (0.0, None, True, False),
    "base_uv": (0.0, None, False, False),
    "season_amplitude": (0.0, 0.99, False, False),
    "season_phase": (None, None, False, False),
    "traffic_noise": (0.0, None, False, False),
    "intercept": (None, None, False, False),
    "price_slope": (0.0, None, True, False),
    "competitor_intercept": (None, None, False, False),
    "competitor_price": (0.0, None, True, False),
    "competitor_noise": (0.0, None, False, False),
    "shock_sd": (0.0, None, False, False),
    "shock_rho": (0.0, 0.999, False, False),
}


def _check_params(p: PricingParams, owner: str | None = None) -> None:
    """Every rule of :class:`PricingParams` (concrete values; tracers pass)."""
    check_choice("mode", p.mode, MODES, owner=owner)
    check_choice("action_type", p.action_type, ACTION_TYPES, owner=owner)
    check_choice("reward", p.reward, REWARDS, owner=owner)
    for name in ("relative", "normalize_reward"):  # a truthy string or number is not a switch
        check_bool(name, getattr(p, name), owner=owner)
    for name, minimum in _INTS.items():
        check_int(name, getattr(p, name), minimum, owner=owner)
    prefix = f"{owner}." if owner else ""
    if p.mode == "markdown" and p.num_prices != len(MARKDOWN_DISCOUNTS):
        raise ConfigError(
            f"{prefix}num_prices must be 9 in markdown mode (10..90 % off), got num_prices={p.num_prices}"
        )
    for name, (low, high, low_open, high_open) in _NUMBERS.items():
        check_number(name, getattr(p, name), low=low, high=high, low_open=low_open, high_open=high_open,
                     owner=owner)  # fmt: skip
    for name in _RANGES:
        pair = _range(name, getattr(p, name), owner)
        if is_concrete(*pair) and not np.all(np.asarray(pair[0]) <= np.asarray(pair[1])):
            raise ConfigError(f"{prefix}{name} must have low <= high, got {name}={pair!r}")
    if p.sku is not None:
        if not isinstance(p.sku, SKU):
            raise ConfigError(f"{prefix}sku must be a SKU (see make_sku) or None, got sku={p.sku!r}")
        for name, (low, high, low_open, high_open) in _SKU_RULES.items():
            check_number(f"sku.{name}", getattr(p.sku, name), low=low, high=high, low_open=low_open,
                         high_open=high_open, owner=owner)  # fmt: skip
        lo, hi = p.sku.p_min, p.sku.p_max
        if is_concrete(lo, hi) and not np.all(np.asarray(lo) <= np.asarray(hi)):
            raise ConfigError(f"{prefix}sku.p_min must be <= sku.p_max, got p_min={np.asarray(lo).tolist()}, "
                              f"p_max={np.asarray(hi).tolist()}")  # fmt: skip


def _int_at_least(name, value, minimum):
    """An integer >= ``minimum`` (a whole float such as ``10.0`` is taken as the integer)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return check_int(name, value, minimum)


def _finite(name, value, minimum=None, maximum=None, strict=False):
    """A Python float of one finite number within the bounds (``minimum`` exclusive when ``strict``)."""
    check_number(name, value, low=minimum, high=maximum, low_open=strict, shape=())
    return float(value)


def _scalar(name, value):
    """A Python float of a finite number (the bounds are checked by :func:`_check_params`)."""
    low, high, low_open, high_open = _NUMBERS[name]
    check_number(name, value, low=low, high=high, low_open=low_open, high_open=high_open)
    return float(value)


def _range(name, value, owner=None):
    """A ``(low, high)`` pair within the bounds of :data:`_RANGES` (order checked by the caller)."""
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise ConfigError(f"{f'{owner}.' if owner else ''}{name} must be a (low, high) pair of finite "
                          f"numbers, got {name}={value!r}")  # fmt: skip
    low, high, low_open, high_open = _RANGES[name]
    for i, v in enumerate(value):
        check_number(f"{name}[{i}]", v, low=low, high=high, low_open=low_open, high_open=high_open,
                     owner=owner)  # fmt: skip
    return tuple(value)


def make_sku(
    list_price: float,
    unit_cost: float = 0.0,
    p_min: float | None = None,
    p_max: float | None = None,
    base_uv: float = 100.0,
    conversion: float = 0.02,
    slope: float = 5.0,
    season_amplitude: float = 0.0,
    season_phase: float = 0.0,
    traffic_noise: float = 0.0,
    competitor_price: float = 1.0,
    competitor_noise: float = 0.0,
    shock_sd: float = 0.0,
    shock_rho: float = 0.0,
) -> SKU:
    """A validated fixed :class:`SKU` (host-side floats).

    ``conversion`` is the purchase probability at the list price with the competitor at parity;
    ``slope`` is ``b``, the utility loss of a price rise of one list price. The intercepts follow:
    ``a = b + log(conversion C / (1 - conversion))`` with the competitor as similar as the SKU
    (``a_c = a``), so ``C = 1 + e^{a - b}``.

    Raises:
      ValueError: non-finite values, ``list_price <= 0``, ``unit_cost < 0``, ``p_min > p_max``,
        ``conversion`` outside (0, 0.5), ``slope <= 0``, ``base_uv < 0``.
    """
    p_ref = _finite("list_price", list_price, 0.0, strict=True)
    cost = _finite("unit_cost", unit_cost, 0.0)
    lo = _finite("p_min", p_ref if p_min is None else p_min, 0.0, strict=True)
    hi = _finite("p_max", p_ref if p_max is None else p_max, 0.0, strict=True)
    if lo > hi:
        raise ValueError(f"p_min must be <= p_max, got p_min={lo}, p_max={hi}")
    uv = _finite("base_uv", base_uv, 0.0)
    conv = _finite("conversion", conversion, 0.0, 0.5, strict=True)
    if conv >= 0.5:
        raise ValueError(f"conversion must be in (0, 0.5), got conversion={conv}")
    b = _finite("slope", slope, 0.0, strict=True)
    amp = _finite("season_amplitude", season_amplitude, 0.0, 0.99)
    rho = _finite("shock_rho", shock_rho, 0.0, 0.999)
    # with the competitor identical at parity: P = e^x / (1 + 2 e^x), x = a - b -> e^x = conv / (1 - 2 conv)
    a = b + math.log(conv / (1.0 - 2.0 * conv))
    f = lambda v: jnp.asarray(v, jnp.float32)
    return SKU(
        list_price=f(p_ref),
        unit_cost=f(cost),
        p_min=f(lo),
        p_max=f(hi),
        base_uv=f(uv),
        season_amplitude=f(amp),
        season_phase=f(_finite("season_phase", season_phase)),
        traffic_noise=f(_finite("traffic_noise", traffic_noise, 0.0)),
        intercept=f(a),
        price_slope=f(b / p_ref),
        competitor_intercept=f(a),
        competitor_price=f(_finite("competitor_price", competitor_price, 0.0, strict=True)),
        competitor_noise=f(_finite("competitor_noise", competitor_noise, 0.0)),
        shock_sd=f(_finite("shock_sd", shock_sd, 0.0)),
        shock_rho=f(rho),
    )


def make_params(
    mode: str = "daily",
    action_type: str = "discrete",
    num_prices: int = 10,
    window: int = 7,
    horizon: int = 30,
    reward: str = "drcr",
    lag: int = 1,
    relative: bool = False,
    normalize_reward: bool = True,
    initial_stock: float = 10.0,
    sku: SKU | None = None,
    reward_scale: float = 1.0,
    **distribution,
) -> PricingParams:
    """Validated :class:`PricingParams`; every error names the field, the value and what is allowed.

    Markdown mode fixes ``num_prices = 9`` (10 %..90 % off) and defaults the reward to ``"pcr"``
    when ``reward`` is left at ``"drcr"``.

    Raises:
      ValueError: unknown ``mode`` / ``action_type`` / ``reward``, ``num_prices < 2``, ``window < 1``,
        ``lag < 1``, ``horizon < 1``, negative or non-finite ``initial_stock``, bad distribution ranges.
    """
    check_choice("mode", mode, MODES)
    k = _int_at_least("num_prices", num_prices, _INTS["num_prices"])
    if mode == "markdown":
        if k not in (9, 10):
            raise ValueError(f"num_prices must be 9 in markdown mode (10..90 % off), got num_prices={k}")
        k = 9
        reward = "pcr" if reward == "drcr" else reward
    w = _int_at_least("window", window, _INTS["window"])
    t = _int_at_least("horizon", horizon, _INTS["horizon"])
    lag_ = _int_at_least("lag", lag, _INTS["lag"])
    allowed = (set(_NUMBERS) | set(_RANGES)) - {"initial_stock", "reward_scale"}
    unknown = set(distribution) - allowed
    if unknown:
        raise ValueError(f"unknown PricingParams field(s): {sorted(unknown)}; allowed: {sorted(allowed)}")
    checked = {}
    for name, value in distribution.items():
        if name in _RANGES:
            checked[name] = tuple(float(v) for v in _range(name, value))
        else:
            checked[name] = _scalar(name, value)
    return PricingParams(
        mode=mode,
        action_type=action_type,
        num_prices=k,
        window=w,
        horizon=t,
        reward=reward,
        lag=lag_,
        relative=relative,
        normalize_reward=normalize_reward,
        initial_stock=_scalar("initial_stock", initial_stock),
        sku=sku,
        reward_scale=_scalar("reward_scale", reward_scale),
        **checked,
    )
