"""Dynamic pricing of one SKU per environment, one step = one day (Liu et al. 2019, arXiv 1912.02572).

See ``shared/specs/pricing_and_offers.md`` section 1. Vmap over SKUs (``core.vector.batched``).

* **Market of day t** (drawn at the end of day t-1, hidden from the agent, so a privileged oracle
  can price it exactly): unique visitors ``UV_t = round(base_uv (1 + A sin(2 pi (t + phase) / 7))
  e^{s e - s^2/2})``; an AR(1) conversion shock ``z_t = rho z_{t-1} + sd sqrt(1 - rho^2) e``; the
  competitor's price ``p_c = p_ref m e^{s_c e - s_c^2/2}``.
* **Choice** (:mod:`jaxretail.choice.pricing`): each visitor buys the SKU, buys the similar
  competitor product or leaves, by MNL with utilities ``a + z_t - s p``, ``a_c + z_t - s p_c``, 0.
  Units ``~ Poisson(UV_t P(p))``, drawn from one uniform: inverse CDF (40 terms) for a mean up to
  12, the continuity-corrected normal quantile above. Markdown caps units at the stock.
* **Actions**: discrete ``k in 0..K-1`` = price area ``k`` of ``[P_min, P_max]`` with the bin centre
  ``P_min + (k + 1/2)(P_max - P_min)/K`` as price; continuous ``a in [-1, 1]`` (a tanh output) mapped
  affinely to ``[P_min, P_max]``. Markdown: ``k`` means ``(k + 1) 10 %`` off the list price (K = 9),
  or ``a`` maps to 10..90 % off. An out-of-range or NaN action is never replaced by another: the
  SKU is not offered that day (no sale) and ``info["invalid_action"]`` is True.
* **Reward** (``params.reward``): revenue, profit, RCR, PCR, DRCR or DPCR (see ``metrics``), money
  divided by the list price if ``normalize_reward``, times ``reward_scale``.
* **Observation** ``[W * 8 + 8]``: the last ``W`` days of the four feature groups (price, sales,
  traffic, competitiveness; ``types.HISTORY_FEATURES``), oldest first, and ``types.STATIC_FEATURES``.
  The state keeps the window as a ring buffer (:func:`ordered_history` reads it in age order).
* **Episodes**: daily mode has unlimited supply, no terminal state and truncation after
  ``horizon`` days; markdown starts with ``initial_stock`` units and terminates at stock-out
  (truncated at ``horizon`` otherwise). Reset simulates ``H = max(W, lag)`` pre-history days at
  prices drawn uniformly in ``[P_min, P_max]`` (the look-back window that defines the bounds).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.special import ndtri

from jaxretail.choice import pricing as choice_pricing
from jaxretail.core import spaces, threefry
from jaxretail.core.actions import check_action
from jaxretail.core.environment import Environment
from jaxretail.core.validation import check_state_matches
from jaxretail.envs.pricing import metrics
from jaxretail.envs.pricing.generator import draw_sku
from jaxretail.envs.pricing.types import (
    HISTORY_FEATURES,
    SKU,
    PricingParams,
    PricingState,
    make_params,
)


def _stored(x: jax.Array, never: jax.Array) -> jax.Array:
    """``x`` unchanged (divided by exactly 1; ``never`` is an all-False mask the compiler cannot
    fold). XLA treats a division as costly, so it computes ``x`` once and stores it instead of
    recomputing what is behind it (the 40-term Poisson CDF, the weekday sine and cosine) in every
    fusion that reads it."""
    return x / jnp.where(never, 2.0, 1.0)


_SMALL_MEAN = 12.0
_TERMS = 40


def poisson_from_uniform(u: jax.Array, mean: jax.Array) -> jax.Array:
    """A Poisson(``mean``) count from one uniform ``u`` in (0, 1) (see the module docstring)."""
    mean = jnp.maximum(mean, 0.0)
    m_small = jnp.minimum(mean, _SMALL_MEAN)

    def term(j, carry):
        k, pmf, cdf = carry
        pmf = pmf * m_small / j
        return k + (u > cdf), pmf, cdf + pmf

    pmf = jnp.exp(-m_small)
    k, _, _ = jax.lax.fori_loop(1, _TERMS, term, (jnp.zeros_like(mean), pmf, pmf), unroll=True)
    normal = jnp.floor(mean + jnp.sqrt(mean) * ndtri(jnp.clip(u, 1e-7, 1 - 1e-7)) + 0.5)
    return jnp.where(mean <= _SMALL_MEAN, k, jnp.maximum(normal, 0.0))


def price_grid(sku: SKU, params: PricingParams) -> jax.Array:
    """Prices ``[K]`` of the discrete actions (bin centres, or markdown levels)."""
    return area_price(jnp.arange(params.num_prices, dtype=jnp.float32), sku, params)


def area_price(k: jax.Array, sku: SKU, params: PricingParams) -> jax.Array:
    """Price of discrete action ``k`` (float, any shape): ``(k + 1) 10 %`` off the list price in markdown
    mode, else the centre of area ``k`` of ``[P_min, P_max]`` (computed directly, no ``[K]`` grid)."""
    if params.mode == "markdown":
        return sku.list_price * (1.0 - 0.1 * (k + 1.0))
    width = (sku.p_max - sku.p_min) / params.num_prices
    return sku.p_min + (k + 0.5) * width


def action_price(action: jax.Array, sku: SKU, params: PricingParams) -> tuple[jax.Array, jax.Array]:
    """``(price [], valid [])`` of an action; an invalid action gets price 0 and ``valid=False``."""
    if params.action_type == "discrete":
        a = jnp.asarray(action).reshape(())
        valid = (a >= 0) & (a < params.num_prices)
        price = area_price(jnp.clip(a, 0, params.num_prices - 1).astype(jnp.float32), sku, params)
    else:
        a = jnp.asarray(action, jnp.float32).reshape(())
        valid = (a >= -1.0) & (a <= 1.0)  # False for NaN
        x = jnp.where(valid, (a + 1.0) * 0.5, 0.0)
        if params.mode == "markdown":
            price = sku.list_price * (0.9 - 0.8 * x)
        else:
            price = sku.p_min + x * (sku.p_max - sku.p_min)
    return jnp.where(valid, price, 0.0), valid


def price_to_action(price: jax.Array, sku: SKU, params: PricingParams) -> jax.Array:
    """Inverse map: the area ``k`` that contains a logged price (top edge in area K-1, prices outside
    the bounds clipped into the end areas), or the continuous action ``a in [-1, 1]``."""
    if params.mode == "markdown":
        frac = (0.9 - price / sku.list_price) / 0.8  # 0 at 10 % off, 1 at 90 % off
    else:
        span = sku.p_max - sku.p_min
        frac = jnp.where(span > 0, (price - sku.p_min) / jnp.where(span > 0, span, 1.0), 0.5)
    frac = jnp.clip(frac, 0.0, 1.0)
    if params.action_type == "continuous":
        return 2.0 * frac - 1.0
    if params.mode == "markdown":
        return jnp.clip(jnp.round(frac * 8.0), 0, 8).astype(jnp.int32)
    return jnp.minimum(jnp.floor(frac * params.num_prices), params.num_prices - 1).astype(jnp.int32)


def purchase_probability(price, sku: SKU, shock, competitor_rel) -> jax.Array:
    """MNL share of the SKU among {SKU, competitor, no purchase} at ``price`` on a day's market."""
    v = sku.competitor_intercept + shock - sku.price_slope * competitor_rel * sku.list_price
    return choice_pricing.purchase_probability(price, sku.intercept + shock, sku.price_slope, v[None])


def draw_market(key: jax.Array, sku: SKU, day: jax.Array, shock: jax.Array) -> tuple:
    """``(uv, shock, competitor_rel)`` of ``day`` given yesterday's shock (3 normal draws)."""
    return market(jax.random.normal(key, (3,), jnp.float32), sku, day, shock)


def weekday_sin(sku: SKU, day: jax.Array) -> jax.Array:
    """``sin(2 pi (day + phase) / 7)``: the weekly cycle of traffic and of the weekday features."""
    return jnp.sin(weekday_angle(sku, day))


def weekday_angle(sku: SKU, day: jax.Array) -> jax.Array:
    """``2 pi (day + phase) / 7``, the weekday angle of ``day`` (float or int, any shape)."""
    return 2.0 * jnp.pi * (day + sku.season_phase) / 7.0


def market(e: jax.Array, sku: SKU, day: jax.Array, shock: jax.Array, sin_day=None) -> tuple:
    """:func:`draw_market` from given standard normals ``e [3]`` (traffic, shock, competitor);
    ``sin_day`` is :func:`weekday_sin` of ``day`` when the caller has it already."""
    sin_day = weekday_sin(sku, day) if sin_day is None else sin_day
    season = 1.0 + sku.season_amplitude * sin_day
    s = sku.traffic_noise
    uv = jnp.round(sku.base_uv * season * jnp.exp(s * e[0] - 0.5 * s * s))
    z = sku.shock_rho * shock + sku.shock_sd * jnp.sqrt(1.0 - sku.shock_rho**2) * e[1]
    c = sku.competitor_noise
    comp = sku.competitor_price * jnp.exp(c * e[2] - 0.5 * c * c)
    return uv, z, comp


def sell(u, sku: SKU, price, valid, uv, shock, comp, stock, capped: bool) -> dict:
    """Sales of one day: units, revenue, profit, RCR, PCR and their ``defined`` flag."""
    prob = jnp.where(valid, purchase_probability(price, sku, shock, comp), 0.0)
    mean = uv * prob
    units = _stored(poisson_from_uniform(u, mean), mean < 0)
    if capped:
        units = jnp.minimum(units, stock)
    revenue = price * units
    profit = (price - sku.unit_cost) * units
    rcr, defined = metrics.conversion_rate(revenue, uv)
    pcr, _ = metrics.conversion_rate(profit, uv)
    return dict(units=units, revenue=revenue, profit=profit, rcr=rcr, pcr=pcr, defined=defined, prob=prob)


def history_row(sku: SKU, price, uv, comp, sale: dict) -> jax.Array:
    """One day of the four feature groups ``[F]`` (order of ``types.HISTORY_FEATURES``)."""
    p_ref = sku.list_price
    # jnp.array, not jnp.stack: vmapped, it concatenates along the feature axis directly, where
    # stack builds [F, N] and transposes, a strided write of the whole row
    return jnp.array(
        [
            price / p_ref,
            1.0 - price / p_ref,
            jnp.log1p(sale["units"]),
            jnp.log1p(sale["revenue"] / p_ref),
            uv / jnp.maximum(sku.base_uv, 1.0),
            10.0 * sale["rcr"] / p_ref,
            10.0 * sale["pcr"] / p_ref,
            comp,
        ]
    )


def observation(state: PricingState, params: PricingParams, sin_day=None, cos_day=None) -> jax.Array:
    """``[W * F + 8]``: flattened history, then bounds, cost, weekday, stock, time and reviews
    (``sin_day``, ``cos_day``: the sine and cosine of :func:`weekday_angle` of ``state.t`` when the
    caller has them already)."""
    sku = state.sku
    dow = weekday_angle(sku, state.t)
    sin_day = jnp.sin(dow) if sin_day is None else sin_day
    cos_day = jnp.cos(dow) if cos_day is None else cos_day
    stock = state.stock / jnp.maximum(params.initial_stock, 1.0) if params.mode == "markdown" else 1.0
    static = jnp.array(
        [
            sku.p_min / sku.list_price,
            sku.p_max / sku.list_price,
            sku.unit_cost / sku.list_price,
            sin_day,
            cos_day,
            jnp.asarray(stock, jnp.float32),
            state.t / params.horizon,
            jnp.log1p(state.reviews) / 10.0,
        ]
    ).astype(jnp.float32)
    return jnp.concatenate([ordered_history(state).reshape(-1).astype(jnp.float32), static])


def ring_start(state: PricingState, size: int) -> jax.Array:
    """Row of the oldest day in a ring buffer of ``size`` rows, ``(t - 1) mod size`` (int32 []):
    reset stores the days oldest first at ``t = 1``, and day ``t`` overwrites the oldest row."""
    return (state.t - 1) % size


def _in_age_order(ring: jax.Array, start: jax.Array) -> jax.Array:
    size = ring.shape[0]
    i = start + jnp.arange(size)
    return ring.at[jnp.where(i >= size, i - size, i)].get(mode="promise_in_bounds")


def _per_sku(read, ring: jax.Array, state: PricingState) -> jax.Array:
    """``read`` of one SKU's ring, vmapped over the leading batch axes a batched state carries (those of
    ``state.t``), so a state of many SKUs is never mistaken for one SKU's ring."""
    if state.t.ndim == 0:
        return read(ring, state)
    return jax.vmap(lambda r, s: _per_sku(read, r, s))(ring, state)


def ordered_history(state: PricingState) -> jax.Array:
    """``[..., W, F]`` history rows oldest -> newest (the ring buffer ``state.history`` read from its
    oldest row); ``[..., -1, :]`` is the last day played. A batched state (``t [N]``, ``history
    [N, W, F]``) is read SKU by SKU."""
    return _per_sku(lambda h, s: _in_age_order(h, ring_start(s, h.shape[0])), state.history, state)


def last_day(state: PricingState) -> jax.Array:
    """``[F]`` features of the last day played (the newest row of one SKU's ring buffer, row
    ``(t - 2) mod W``; ``ordered_history(state)[-1]`` without reordering the window)."""
    return state.history[(state.t - 2) % state.history.shape[0]]


def ordered_lags(state: PricingState) -> jax.Array:
    """``[..., lag, 2]`` (RCR or PCR, UV > 0) of the last ``lag`` days, oldest first
    (``state.basis_lags`` read from its oldest row; a batched state SKU by SKU)."""
    return _per_sku(lambda b, s: _in_age_order(b, ring_start(s, b.shape[0])), state.basis_lags, state)


class DynamicPricing(Environment[PricingState, PricingParams]):
    """One SKU priced daily (gymnax 1.0 API); vmap it over SKUs.

    Example::

        env = DynamicPricing(reward="drcr", num_prices=10)
        obs, state = env.reset(jax.random.key(0))
        obs, state, r, term, trunc, info = env.step(key, state, jnp.int32(3))
    """

    def __init__(self, **param_overrides):
        self._default_params = make_params(**param_overrides)

    @property
    def default_params(self) -> PricingParams:
        return self._default_params

    def observation_space(self, params: PricingParams) -> spaces.Box:
        return spaces.Box(-jnp.inf, jnp.inf, (params.obs_size,))

    def action_space(self, params: PricingParams):
        if params.action_type == "discrete":
            return spaces.Discrete(params.num_prices)
        return spaces.Box(-1.0, 1.0, (1,))

    def reset_env(self, key: jax.Array, params: PricingParams):
        k_sku, k_rest = jax.random.split(key)
        sku = draw_sku(k_sku, params) if params.sku is None else params.sku
        return self.reset_with_sku(k_rest, sku, params)

    def reset_with_sku(self, key: jax.Array, sku: SKU, params: PricingParams):
        """Reset on a given SKU (vmap over a pool of SKUs, e.g. from ``generator.draw_skus``)."""
        sku = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), sku)
        H, lag = params.history_length, params.lag
        k_hist, k_day1 = jax.random.split(key)
        z0 = sku.shock_sd * jax.random.normal(jax.random.fold_in(k_hist, 0), (), jnp.float32)

        def day(shock, i):
            k = jax.random.fold_in(k_hist, i + 1)
            uv, z, comp = draw_market(k, sku, (i + 1 - H).astype(jnp.float32), shock)
            u = jax.random.uniform(jax.random.fold_in(k, 1), (2,), jnp.float32)
            price = sku.p_min + u[0] * (sku.p_max - sku.p_min)
            sale = sell(u[1], sku, price, True, uv, z, comp, jnp.inf, False)
            basis = sale["pcr"] if params.reward in ("pcr", "dpcr") else sale["rcr"]
            return z, (history_row(sku, price, uv, comp, sale), basis, sale["defined"], sale["units"])

        shock, (rows, basis, defined, units) = jax.lax.scan(day, z0, jnp.arange(H))
        uv, shock, comp = draw_market(k_day1, sku, jnp.float32(1.0), shock)
        state = PricingState(
            t=jnp.asarray(1, jnp.int32),
            sku=sku,
            history=rows[H - params.window :],
            basis_lags=jnp.stack([basis[H - lag :], defined[H - lag :].astype(jnp.float32)], axis=1),
            shock=shock,
            uv=uv,
            competitor_rel=comp,
            stock=jnp.asarray(params.initial_stock if params.mode == "markdown" else 0.0, jnp.float32),
            reviews=jnp.sum(units),
        )
        return observation(state, params), state

    def step_env(self, key: jax.Array, state: PricingState, action, params: PricingParams):
        sku = state.sku
        check_state_matches(  # a state of another window or reward lag (trace time)
            "DynamicPricing.step",
            {"history": state.history.shape[:1], "basis_lags": state.basis_lags.shape[:1]},
            {"history": (params.window,), "basis_lags": (params.lag,)},
        )
        # the library's invalid-action rule (jaxretail.core.actions): ValueError outside jit, projected
        # onto the space and flagged inside it; never another price silently
        action, invalid = check_action(self.action_space(params), action)
        price, valid = action_price(action, sku, params)
        markdown = params.mode == "markdown"
        # one counter-based draw per SKU-day: the units' uniform and tomorrow's three normals
        # (jax.random.uniform's numbers, hashed in the fused code instead of a rolled loop)
        u = threefry.uniform(key, 4, 1e-7, 1.0 - 1e-7)
        sale = sell(
            u[0], sku, price, valid, state.uv, state.shock, state.competitor_rel, state.stock, markdown
        )
        reward = self.reward(sale, state, params)
        basis = sale["pcr"] if params.reward in ("pcr", "dpcr") else sale["rcr"]
        new_lag = jnp.array([basis, sale["defined"].astype(jnp.float32)])
        row = history_row(sku, price, state.uv, state.competitor_rel, sale)
        t = state.t + 1
        # one normal per market variable, each read by one output only, so XLA fuses each inverse
        # CDF into its consumer instead of storing [3]-wide temporaries
        e = (ndtri(u[1]), ndtri(u[2]), ndtri(u[3]))
        # tomorrow's weekday sine (traffic, observation) and cosine (observation), computed once:
        # stored as one complex number, so the CPU backend makes a single sincos library call
        angle = weekday_angle(sku, t.astype(jnp.float32))
        trig = _stored(jax.lax.complex(jnp.cos(angle), jnp.sin(angle)), angle != angle)
        sin_day, cos_day = jnp.imag(trig), jnp.real(trig)
        uv, shock, comp = market(e, sku, t.astype(jnp.float32), state.shock, sin_day)
        stock = state.stock - sale["units"] if markdown else state.stock
        info = {
            "price": price,
            "unit_cost": sku.unit_cost,
            "uv": state.uv,
            "units": sale["units"],
            "revenue": sale["revenue"],
            "profit": sale["profit"],
            "rcr": sale["rcr"],
            "pcr": sale["pcr"],
            "purchase_probability": sale["prob"],
            "no_traffic": ~sale["defined"],
            "invalid_action": invalid | ~valid,
        }
        new_state = state.replace(
            t=t,
            # ring buffers: day t overwrites the oldest row in place (no shifted copy of the window)
            history=state.history.at[ring_start(state, params.window)].set(row),
            basis_lags=state.basis_lags.at[ring_start(state, params.lag)].set(new_lag),
            shock=shock,
            uv=uv,
            competitor_rel=comp,
            stock=stock,
            reviews=state.reviews + sale["units"],
        )
        terminated = (stock <= 0) if markdown else jnp.asarray(False)
        truncated = (t > params.horizon) & ~terminated
        obs = observation(new_state, params, sin_day, cos_day)
        return obs, new_state, reward, terminated, truncated, info

    @staticmethod
    def reward(sale: dict, state: PricingState, params: PricingParams) -> jax.Array:
        """The configured reward of one day (see ``metrics`` for the UV = 0 rule)."""
        name = params.reward
        scale = params.reward_scale / state.sku.list_price if params.normalize_reward else params.reward_scale
        if name in ("revenue", "profit", "rcr", "pcr"):
            return sale[name] * scale
        now = sale["rcr"] if name == "drcr" else sale["pcr"]
        oldest = state.basis_lags[ring_start(state, state.basis_lags.shape[0])]
        before, before_defined = oldest[0], oldest[1] > 0
        diff = metrics.rate_difference(now, before, sale["defined"], before_defined, params.relative)
        return diff * params.reward_scale if params.relative else diff * scale


HISTORY_SIZE = len(HISTORY_FEATURES)
