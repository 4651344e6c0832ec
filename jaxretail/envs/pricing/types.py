"""State, SKU instance and parameters of the dynamic pricing environment (one SKU; vmap over SKUs).

Shapes: ``W`` = look-back window (days), ``F = 8`` history features per day, ``H = max(W, lag)``
days of simulated pre-history. Money is in the SKU's own currency units; ``p_ref`` is its list price.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import struct

from jaxretail.core.environment import EnvParams, EnvState

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
    history: jax.Array  # [W, F] float, rows oldest -> newest, features HISTORY_FEATURES
    basis_lags: jax.Array  # [lag, 2] float, (RCR or PCR, 1 if UV > 0) of the last lag days, [0] oldest
    shock: jax.Array  # [] float, conversion shock z_t of day t (hidden)
    uv: jax.Array  # [] float, unique visitors of day t (hidden until the day is over)
    competitor_rel: jax.Array  # [] float, competitor price / list price on day t
    stock: jax.Array  # [] float, units left (markdown; 0 and unused in daily mode)
    reviews: jax.Array  # [] float, cumulative units sold (comment-count proxy)


@struct.dataclass
class PricingParams(EnvParams):
    """Static sizes and modes, and the SKU-generator distribution (vmappable floats).

    Build with :func:`make_params` (validates every field);
    :func:`jaxretail.envs.pricing.generator.group_params` holds the luxury-like and FMCG-like presets.
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

    @property
    def history_length(self) -> int:
        """``H = max(W, lag)`` days of pre-history simulated at reset."""
        return max(self.window, self.lag)

    @property
    def obs_size(self) -> int:
        return self.window * len(HISTORY_FEATURES) + len(STATIC_FEATURES)


def _int_at_least(name, value, minimum):
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or int(value) != value
        or value < minimum
    ):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {name}={value!r}")
    return int(value)


def _finite(name, value, minimum=None, maximum=None, strict=False):
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if ok and minimum is not None:
        ok = value > minimum if strict else value >= minimum
    if ok and maximum is not None:
        ok = value <= maximum
    if not ok:
        rule = "a finite number"
        if minimum is not None:
            rule += f" {'>' if strict else '>='} {minimum}"
        if maximum is not None:
            rule += f" and <= {maximum}"
        raise ValueError(f"{name} must be {rule}, got {name}={value!r}")
    return float(value)


def _range(name, value, minimum=None, maximum=None):
    if len(tuple(value)) != 2:
        raise ValueError(f"{name} must be a (low, high) pair, got {name}={value!r}")
    lo = _finite(f"{name}[0]", float(value[0]), minimum, maximum)
    hi = _finite(f"{name}[1]", float(value[1]), minimum, maximum)
    if lo > hi:
        raise ValueError(f"{name} must have low <= high, got {name}={value!r}")
    return (lo, hi)


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
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got mode={mode!r}")
    if action_type not in ACTION_TYPES:
        raise ValueError(f"action_type must be one of {ACTION_TYPES}, got action_type={action_type!r}")
    if reward not in REWARDS:
        raise ValueError(f"reward must be one of {REWARDS}, got reward={reward!r}")
    for name, flag in (("relative", relative), ("normalize_reward", normalize_reward)):
        if not isinstance(flag, bool):  # a truthy string or number is not a switch
            raise ValueError(f"{name} must be True or False, got {name}={flag!r}")
    k = _int_at_least("num_prices", num_prices, 2)
    if mode == "markdown":
        if k not in (9, 10):
            raise ValueError(f"num_prices must be 9 in markdown mode (10..90 % off), got num_prices={k}")
        k = 9
        reward = "pcr" if reward == "drcr" else reward
    w = _int_at_least("window", window, 1)
    t = _int_at_least("horizon", horizon, 1)
    lag_ = _int_at_least("lag", lag, 1)
    stock = _finite("initial_stock", initial_stock, 0.0)
    allowed = set(PricingParams.__dataclass_fields__) - {
        "mode",
        "action_type",
        "num_prices",
        "window",
        "horizon",
        "reward",
        "lag",
        "relative",
        "normalize_reward",
        "initial_stock",
        "sku",
        "reward_scale",
    }
    unknown = set(distribution) - allowed
    if unknown:
        raise ValueError(f"unknown PricingParams field(s): {sorted(unknown)}; allowed: {sorted(allowed)}")
    checked = {}
    for name, value in distribution.items():
        if name.endswith("_range"):
            checked[name] = _range(name, value, 0.0 if name != "log_price_range" else None)
        else:
            checked[name] = _finite(name, value, 0.0, 0.999 if name == "shock_rho" else None)
    if "conversion_range" in checked and checked["conversion_range"][1] >= 0.5:
        raise ValueError(f"conversion_range must lie in (0, 0.5), got {checked['conversion_range']}")
    if "history_discount_range" in checked and checked["history_discount_range"][1] >= 1.0:
        raise ValueError(
            f"history_discount_range must lie in [0, 1), got {checked['history_discount_range']}"
        )
    return PricingParams(
        mode=mode,
        action_type=action_type,
        num_prices=k,
        window=w,
        horizon=t,
        reward=reward,
        lag=lag_,
        relative=bool(relative),
        normalize_reward=bool(normalize_reward),
        initial_stock=stock,
        sku=sku,
        reward_scale=_finite("reward_scale", float(reward_scale), 0.0, strict=True),
        **checked,
    )
