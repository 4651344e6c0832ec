"""Coupon-targeting environment over a whole customer population (gymnax 1.0 API).

One state holds every customer of a simulation; the action is one coupon level per customer and the
reward each customer's weekly revenue after coupons (Xia et al., arXiv 2405.10469;
``shared/specs/coupon.md`` §3). Weekly order: coupons -> visits (from last week's state) ->
purchases of visitors (streamed in blocks of ``block_size`` customers; no ``[U, I]`` array is ever
stored) -> reward -> running summaries -> next week's shelf prices, marketing feature and observed
feature -> the 9-feature context ``[U, 9]``.

Randomness of week ``t`` is a function of the scenario's noise key, ``t`` and global customer /
product ids only: two policies run on the same scenario face the same customers (common random
numbers), and blocking or sharding the customer axis leaves the result unchanged.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxretail.core import spaces
from jaxretail.core.counter_rng import (
    bits_to_uniform,
    column_hash,
    hash_bits,
    pair_bits,
    row_hash,
    seed_from_key,
    uniform_to_normal,
)
from jaxretail.core.environment import Environment, EnvParams, EnvState
from jaxretail.core.validation import check_state_matches
from jaxretail.envs.coupon import customer as cm
from jaxretail.envs.coupon.clip import streamed_percentile
from jaxretail.envs.coupon.configs import ScenarioConfig, validate
from jaxretail.envs.coupon.layout import TileLayout, make_layout
from jaxretail.envs.coupon.pricing import shelf_step
from jaxretail.envs.coupon.types import Scenario, ShelfState

CONTEXT_FEATURES = (
    "avg_previous_transaction", "avg_product_price", "marketing_feature", "avg_observed_feature",
    "avg_purchase_quantity", "avg_purchase_probability", "avg_purchase_price", "avg_redeemed_discount",
    "avg_purchase_discount",
)  # fmt: skip
# customer-level hash streams (in addition to customer.STREAMS)
_SUB_BLOCK = 64
_VISIT, _REDEEM, _MKT_MEAN, _MKT_SCALE, _MKT_NOISE, _CAT, _CHOICE, _POISSON = range(8)
_X_TOTAL = 14


@struct.dataclass
class Summaries:
    """Running per-customer purchase statistics (``[U]`` each, ``weeks`` scalar)."""

    weeks: jax.Array  # [] weeks elapsed
    purchase_weeks: jax.Array  # weeks with >= 1 item
    items_in_purchase_weeks: jax.Array  # items bought over those weeks
    lines: jax.Array  # purchased line items (distinct product-weeks)
    line_price: jax.Array  # sum of pre-coupon shelf prices of those lines
    line_discount: jax.Array  # sum of shelf discounts 1 - P / P_base of those lines
    redeemed_lines: jax.Array  # lines bought with a coupon
    redeemed_value: jax.Array  # sum over weeks of redeemed lines x coupon


@struct.dataclass
class CouponState(EnvState):
    """Population state. ``U`` customers, ``I`` products. ``t``: weeks simulated so far."""

    shelf: ShelfState  # [I] discount chain state
    price: jax.Array  # [I] shelf price of the coming week
    discount: jax.Array  # [I] shelf discount D of the coming week
    marketing: jax.Array  # [U] marketing feature M of the coming week
    visit_probability: jax.Array  # [U] p^store of the last week (1 after reset)
    visited: jax.Array  # [U] bool, realized visit last week (True after reset)
    store_value: jax.Array  # [U] SV of last week (visitors), 0 otherwise
    previous_items: jax.Array  # [U] items bought last week
    previous_coupon: jax.Array  # [U, J] coupon fraction per category applied last week
    observed_feature: jax.Array  # [U] mean over products of the coming week's X
    summaries: Summaries
    first_step: jax.Array  # [] bool, True until the first step of this trajectory


@struct.dataclass
class CouponParams(EnvParams):
    """Scenario (vmappable latent parameters) and static options."""

    scenario: Scenario
    config: ScenarioConfig = struct.field(pytree_node=False)
    num_customers: int = struct.field(pytree_node=False)
    block_size: int = struct.field(pytree_node=False, default=512)
    legacy_coupling: bool = struct.field(pytree_node=False, default=False)
    next_week_price_quirk: bool = struct.field(pytree_node=False, default=False)
    utility_cap: float | None = struct.field(pytree_node=False, default=None)
    utility_clip: str = struct.field(pytree_node=False, default="none")  # "none" | "percentile"
    debug: bool = struct.field(
        pytree_node=False, default=False
    )  # raise on invalid actions / non-finite values
    discount_factor: float = struct.field(pytree_node=False, default=1.0)
    coupon_scope: str = struct.field(pytree_node=False, default="store")  # "store" [U] | "category" [U, J]
    # set on the params of one shard inside jax.shard_map (see sharded_step): the mesh axis whose
    # index locates the shard's customers and over which population-wide means are summed
    axis_name: str | None = struct.field(pytree_node=False, default=None)
    # global id of the first customer held by these params (a view of one customer, see single.py)
    first_customer: jax.Array | int = 0


COUPON_SCOPES = ("store", "category")
UTILITY_CLIPS = ("none", "percentile")


def make_params(
    scenario: Scenario,
    config: ScenarioConfig,
    *,
    block_size: int = 512,
    legacy_coupling: bool = False,
    next_week_price_quirk: bool = False,
    utility_cap: float | None = None,
    utility_clip: str = "none",
    discount_factor: float = 1.0,
    coupon_scope: str = "store",
    debug: bool = False,
    mode: str | None = None,
) -> CouponParams:
    """Validated :class:`CouponParams` (errors name the field, the value and the rule).

    Args:
      utility_cap: a fixed upper cap on utilities (finite), or ``None``.
      utility_clip: ``"percentile"`` caps utilities each week at ``config.utility_clip_percentile`` of
        the week's customer x product utilities (all customers, exact; :mod:`.clip`), as the original;
        ``"none"`` does not (see :mod:`.modes` for clean mode's choice).
      debug: check every step (host callback): an invalid action or a non-finite visit probability,
        store value or revenue raises instead of only being flagged in ``info``.
      mode: ``"clean"`` or ``"paper"`` sets ``legacy_coupling``, ``next_week_price_quirk`` and
        ``utility_clip`` at once (:mod:`.modes`); the scenario must be sampled in the same mode.
    """
    validate(config)
    if mode is not None:
        from jaxretail.envs.coupon.modes import mode_settings

        m = mode_settings(mode)
        legacy_coupling, next_week_price_quirk = m.legacy_coupling, m.next_week_price_quirk
        utility_clip = m.utility_clip
    if utility_clip not in UTILITY_CLIPS:
        raise ValueError(f"utility_clip must be one of {UTILITY_CLIPS}, got utility_clip={utility_clip!r}")
    if utility_cap is not None and (
        isinstance(utility_cap, bool)
        or not isinstance(utility_cap, (int, float))
        or not math.isfinite(utility_cap)
    ):
        raise ValueError(f"utility_cap must be a finite number or None, got utility_cap={utility_cap!r}")
    for name, flag in (("legacy_coupling", legacy_coupling), ("next_week_price_quirk", next_week_price_quirk),
                       ("debug", debug)):  # fmt: skip
        if not isinstance(flag, bool):
            raise ValueError(f"{name} must be True or False, got {name}={flag!r}")
    num_customers = int(scenario.beta_w_customer.shape[0])
    if scenario.base_price.shape != (config.num_products,):
        raise ValueError(
            f"scenario has {scenario.base_price.shape[0]} products, config {config.num_products}"
        )
    if (
        isinstance(block_size, bool)
        or int(block_size) != block_size
        or block_size < 1
        or block_size % _SUB_BLOCK
    ):
        raise ValueError(
            f"block_size must be a positive multiple of {_SUB_BLOCK}, got block_size={block_size!r}"
        )
    if coupon_scope not in COUPON_SCOPES:
        raise ValueError(f"coupon_scope must be one of {COUPON_SCOPES}, got coupon_scope={coupon_scope!r}")
    if config.num_categories > 32:
        raise ValueError(
            "the coupon env reports bought categories as a 32-bit mask; "
            f"num_categories={config.num_categories} > 32 is not supported yet"
        )
    if isinstance(discount_factor, bool) or not 0.0 <= discount_factor <= 1.0:
        raise ValueError(f"discount_factor must be in [0, 1], got discount_factor={discount_factor!r}")
    return CouponParams(
        scenario=scenario,
        config=config,
        num_customers=num_customers,
        block_size=int(block_size),
        legacy_coupling=bool(legacy_coupling),
        next_week_price_quirk=bool(next_week_price_quirk),
        utility_cap=None if utility_cap is None else float(utility_cap),
        utility_clip=utility_clip,
        debug=debug,
        discount_factor=float(discount_factor),
        coupon_scope=coupon_scope,
    )


@functools.lru_cache(maxsize=16)
def layout_for(category_sizes: tuple[int, ...]) -> TileLayout:
    return make_layout(category_sizes)


def _lognormal(spec) -> tuple[float, float]:
    kw = dict(spec.kwargs)
    return float(kw["loc"]), float(kw["scale"])


def model_options(params: CouponParams) -> cm.ModelOptions:
    cfg = params.config
    return cm.ModelOptions(
        beta_z=_lognormal(cfg.beta_z),
        beta_x=_lognormal(cfg.beta_x),
        quantity_slope=_lognormal(cfg.quantity_slope),
        price_scale=cfg.price_scale,
        noise_scale=cfg.utility_noise_scale,
        legacy_x=params.legacy_coupling,
    )


def stream_seeds(scenario: Scenario, week: jax.Array) -> dict[str, jax.Array]:
    """uint32 seeds of the weekly hash streams; the three latent streams do not depend on the week."""
    weekly = jax.vmap(
        lambda s: seed_from_key(jax.random.fold_in(jax.random.fold_in(scenario.noise_key, week), s))
    )(jnp.arange(16))
    return {"latent": scenario.latent_seeds, "weekly": weekly}


def week_tiles(params: CouponParams, price: jax.Array, seeds, utility_cap=None) -> cm.WeekTiles:
    """Per-product inputs of a week in tile layout (``utility_cap``: this week's cap, default the
    fixed ``params.utility_cap`` or none)."""
    layout = layout_for(params.config.category_sizes)
    sc = params.scenario
    prod = jnp.asarray(layout.product)
    valid = jnp.asarray(layout.valid)
    idx = jnp.where(valid, prod, 0)
    tile = lambda v, fill=0.0: jnp.where(valid, v[idx], fill)
    stream_seed = jnp.concatenate([seeds["latent"], seeds["weekly"][8:12]])  # 7 product streams
    product_consts = jax.vmap(lambda s: column_hash(s, idx.astype(jnp.uint32)))(stream_seed)
    cap = jnp.float32(jnp.inf if params.utility_cap is None else params.utility_cap)
    if utility_cap is not None:
        cap = jnp.minimum(cap, utility_cap)
    j = jnp.arange(params.config.num_categories, dtype=jnp.uint32)
    return cm.WeekTiles(
        log_price=tile(jnp.log(price)),
        price=tile(price, 1.0),
        base_price=tile(sc.base_price, 1.0),
        brand=tile(sc.brand),
        beta_w_product=tile(sc.beta_w_product),
        quantity_intercept=tile(sc.quantity_intercept),
        product_consts=product_consts,
        category_intercept=sc.category_intercept,
        category_slope=sc.category_slope,
        category_consts=jax.vmap(lambda s: column_hash(s, j))(seeds["weekly"][12:14]),
        row_category=jnp.asarray(layout.row_category),
        utility_cap=cap,
    )


def customer_ids(params: CouponParams) -> jax.Array:
    """Global ids ``[U]`` (uint32) of the customers held by ``params``: a shard of ``U`` customers on
    position ``k`` of the mesh axis holds customers ``k U .. k U + U - 1``."""
    ids = jnp.arange(params.num_customers, dtype=jnp.uint32) + jnp.asarray(params.first_customer, jnp.uint32)
    if params.axis_name is None:
        return ids
    return jax.lax.axis_index(params.axis_name).astype(jnp.uint32) * params.num_customers + ids


def _population_sum(x: jax.Array, params: CouponParams) -> jax.Array:
    """Sum over the whole population (across the shards of ``params.axis_name`` if set)."""
    total = jnp.sum(x)
    return total if params.axis_name is None else jax.lax.psum(total, params.axis_name)


def _customer_hashes(seeds, ids: jax.Array) -> jax.Array:
    """``[B, 7]`` row words per customer: 3 latent streams (week independent) + 4 weekly streams."""
    latent = jax.vmap(lambda s: row_hash(s, ids), out_axes=1)(seeds["latent"])
    weekly = jax.vmap(lambda s: row_hash(s, ids), out_axes=1)(seeds["weekly"][8:12])
    return jnp.concatenate([latent, weekly], axis=1)


def _uniform(seeds, stream: int, ids: jax.Array) -> jax.Array:
    return bits_to_uniform(hash_bits(seeds["weekly"][stream], ids))


def marketing_feature(params: CouponParams, seeds, discount: jax.Array, coupon: jax.Array) -> jax.Array:
    """``M_ut`` for the coming week, ``[U]`` (``random``, ``discount`` or ``discount_coupon`` mode)."""
    mode = params.config.marketing_mode
    ids = customer_ids(params)
    if mode == "random":  # m ~ N(0, 1), s ~ HalfNormal(1) (= |m| with the original's shared key), M ~ N(m, s)
        m = uniform_to_normal(_uniform(seeds, _MKT_MEAN, ids))
        s = (
            jnp.abs(m)
            if params.legacy_coupling
            else jnp.abs(uniform_to_normal(_uniform(seeds, _MKT_SCALE, ids)))
        )
        return m + s * uniform_to_normal(_uniform(seeds, _MKT_NOISE, ids))
    total_discount = jnp.sum(discount)
    if mode == "discount":
        return jnp.full((params.num_customers,), total_discount)
    # discount_coupon: kappa_u = sum_j c_uj |j| with last week's coupons (c I for a store-wide coupon)
    return total_discount + coupon @ jnp.asarray(params.config.category_sizes, coupon.dtype)


def observed_feature_totals(params: CouponParams, week: jax.Array, seeds) -> tuple[jax.Array, jax.Array]:
    """``(Q [U], S [U])``: per-customer totals of the week's observed feature (see
    :func:`jaxretail.envs.coupon.customer.observed_feature`); functions of (scenario, week, customer)."""
    n_i = params.config.num_products
    ids = customer_ids(params)
    base = jax.random.fold_in(jax.random.fold_in(params.scenario.noise_key, week), 55)
    keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(base, ids)
    chi2 = jax.vmap(lambda k: jax.random.chisquare(k, float(n_i), dtype=jnp.float32))(keys)
    total = jnp.sqrt(n_i + chi2) * uniform_to_normal(_uniform(seeds, _X_TOTAL, ids))
    return chi2, total


def mean_observed_feature(params: CouponParams, seeds, week: jax.Array | None = None) -> jax.Array:
    """Mean over products of each customer's observed feature ``X_ui`` of the week, ``[U]``.

    O(1) per customer (``S / I``) in the default model; the legacy law ``X = m + |m| z`` has no
    such shortcut and is summed over products."""
    if not params.legacy_coupling:
        return observed_feature_totals(params, week, seeds)[1] / params.config.num_products
    """Mean over products of each customer's observed feature ``X_ui`` of the week, ``[U]``."""
    layout = layout_for(params.config.category_sizes)
    valid = jnp.asarray(layout.valid)
    tiles = week_tiles(params, jnp.ones(params.config.num_products, jnp.float32), seeds)
    ids = customer_ids(params)
    hashes = _customer_hashes(seeds, ids)
    normal = lambda h, s: uniform_to_normal(bits_to_uniform(pair_bits(h[s], tiles.product_consts[s])))

    def one(h):  # the same X as customer.utilities draws for this week
        if params.legacy_coupling:
            m = normal(h, 3)
            x = m + jnp.abs(m) * normal(h, 5)
        else:
            s = normal(h, 4)
            x = jnp.sqrt(1.0 + s * s) * normal(h, 5)
        return jnp.sum(jnp.where(valid, x, 0.0)) / params.config.num_products

    return jax.lax.map(one, hashes, batch_size=params.block_size)


def _draw_next_week(params: CouponParams, state_shelf: ShelfState, week: jax.Array, coupon: jax.Array):
    """Shelf prices, discount, marketing feature and mean observed feature of week ``week``."""
    sc = params.scenario
    seeds = stream_seeds(sc, week)
    shelf, discount, price = shelf_step(
        jax.random.fold_in(jax.random.fold_in(sc.noise_key, week), 99), state_shelf, sc, params.config
    )
    marketing = marketing_feature(params, seeds, discount, coupon)
    return shelf, price, discount, marketing, mean_observed_feature(params, seeds, week)


def context(state: CouponState, params: CouponParams) -> jax.Array:
    """The 9-feature agent context ``[U, 9]`` (names in :data:`CONTEXT_FEATURES`)."""
    s = state.summaries
    n_u = params.num_customers
    safe = lambda a, b: a / jnp.maximum(b, 1.0)
    has_lines = s.lines > 0
    total = lambda x: _population_sum(x, params)  # noqa: E731
    any_lines = jnp.maximum(total(has_lines.astype(jnp.float32)), 1.0)
    avg_price = safe(s.line_price, s.lines)
    avg_disc = safe(s.line_discount, s.lines)
    mean_price = total(jnp.where(has_lines, avg_price, 0.0)) / any_lines
    mean_disc = total(jnp.where(has_lines, avg_disc, 0.0)) / any_lines
    redeemers = s.redeemed_lines > 0
    avg_redeemed = safe(s.redeemed_value, s.redeemed_lines)
    mean_redeemed = total(jnp.where(redeemers, avg_redeemed, 0.0)) / jnp.maximum(
        total(redeemers.astype(jnp.float32)), 1.0
    )
    feats = jnp.stack([
        state.previous_items / params.config.num_products,
        jnp.full((n_u,), jnp.mean(state.price)),
        state.marketing,
        state.observed_feature,
        safe(s.items_in_purchase_weeks, s.purchase_weeks),
        safe(s.purchase_weeks, jnp.broadcast_to(s.weeks, (n_u,))),
        jnp.where(has_lines, avg_price, mean_price),
        jnp.where(redeemers, avg_redeemed, mean_redeemed),
        jnp.where(has_lines, avg_disc, mean_disc),
    ], axis=1)  # fmt: skip
    return jnp.where(state.first_step & (s.weeks == 0), 0.0, feats)


class CouponEnv(Environment[CouponState, CouponParams]):
    """RetailSynth coupon targeting over a population. Build params with :func:`make_params`.

    * action: ``[U]`` int32 coupon level index (``config.coupon_levels``, default 0 %, 5 %, ..., 50 %),
      or ``[U, J]`` (one level per category) with ``coupon_scope="category"``;
    * observation: ``[U, 9]`` context (:data:`CONTEXT_FEATURES`), zeros after reset;
    * reward: ``[U]`` revenue after coupons;
    * info (``[U]`` each): ``revenue``, ``demand`` (items), ``visited``, ``categories`` (distinct
      categories bought), ``coupon`` (offered fraction), ``redeemed`` (a coupon line was bought),
      ``redeemed_lines``, ``category_mask`` (uint32, bit j set if category j was bought; J <= 32)
      and ``discount`` (the explicit discount factor);
    * never terminates: ``terminated = truncated = False``; the protocol decides the horizon.
    """

    def __init__(self, params: CouponParams | None = None):
        self._default = params

    @property
    def default_params(self) -> CouponParams:
        if self._default is None:
            raise ValueError("CouponEnv needs params: CouponEnv(make_params(sample_scenario(...), config))")
        return self._default

    def action_space(self, params: CouponParams) -> spaces.Box:
        shape = (params.num_customers,) + (
            (params.config.num_categories,) if params.coupon_scope == "category" else ()
        )
        return spaces.Box(0, len(params.config.coupon_levels) - 1, shape, jnp.int32)

    def observation_space(self, params: CouponParams) -> spaces.Box:
        return spaces.Box(-jnp.inf, jnp.inf, (params.num_customers, len(CONTEXT_FEATURES)))

    def reset_env(self, key: jax.Array, params: CouponParams):
        """Start a trajectory at week 0 (``key`` unused: the scenario fixes the randomness)."""
        del key
        n_u, n_i = params.num_customers, params.config.num_products
        zeros = jnp.zeros((n_u,), jnp.float32)
        no_coupon = jnp.zeros((n_u, params.config.num_categories), jnp.float32)
        shelf, price, discount, marketing, obs_x = _draw_next_week(
            params, ShelfState(discounted=jnp.zeros((n_i,), bool)), jnp.asarray(0, jnp.int32), no_coupon
        )
        state = CouponState(
            t=jnp.asarray(0, jnp.int32),
            shelf=shelf,
            price=price,
            discount=discount,
            marketing=marketing,
            visit_probability=jnp.ones((n_u,), jnp.float32),
            visited=jnp.ones((n_u,), bool),
            store_value=zeros,
            previous_items=zeros,
            previous_coupon=no_coupon,
            observed_feature=obs_x,
            summaries=Summaries(jnp.zeros((), jnp.float32), *([zeros] * 7)),
            first_step=jnp.asarray(True),
        )
        return context(state, params), state

    def step_env(self, key, state: CouponState, action: jax.Array, params: CouponParams):
        del key
        check_state_matches(
            "CouponEnv.step",
            {"marketing": state.marketing.shape, "price": state.price.shape},
            {"marketing": (params.num_customers,), "price": (params.config.num_products,)},
        )
        out = simulate_week(state, action, params)
        return out["obs"], out["state"], out["reward"], jnp.asarray(False), jnp.asarray(False), out["info"]


def coupon_fractions(action: jax.Array, params: CouponParams) -> tuple[jax.Array, jax.Array]:
    """Coupon fraction per customer and category ``[U, J]`` and the invalid-action flag ``[U]``.

    ``action`` is ``[U]`` (store-wide) or, with ``coupon_scope="category"``, ``[U, J]`` integer level
    indices into ``config.coupon_levels``. Any other shape or a float dtype is refused when tracing. A
    level outside ``[0, L)`` is a ``ValueError`` outside ``jit``; inside it, it offers no coupon (never
    another level) and is flagged (``debug``: raises).
    """
    cfg = params.config
    n_u, n_j, n_levels = params.num_customers, cfg.num_categories, len(cfg.coupon_levels)
    action = jnp.asarray(action)
    expected = (n_u,) if params.coupon_scope == "store" else (n_u, n_j)
    if action.shape != expected:
        raise ValueError(
            f"coupon action must have shape {expected} under coupon_scope={params.coupon_scope!r} "
            f"({'one level per customer' if params.coupon_scope == 'store' else 'one level per category'}), "
            f"got shape {action.shape}"
        )
    if not jnp.issubdtype(action.dtype, jnp.integer):
        raise ValueError(f"coupon action must hold integer level indices, got dtype {action.dtype}")
    ok = (action >= 0) & (action < n_levels)
    if not isinstance(ok, jax.core.Tracer) and not bool(jnp.all(ok)):  # concrete: the library's rule
        bad = np.asarray(action)[~np.asarray(ok)][:5].tolist()
        raise ValueError(f"coupon action must hold level indices in [0, {n_levels}), got levels {bad}")
    coupon = jnp.where(ok, jnp.asarray(cfg.coupon_levels, jnp.float32)[jnp.where(ok, action, 0)], 0.0)
    coupon = jnp.broadcast_to(coupon[:, None] if coupon.ndim == 1 else coupon, (n_u, n_j))
    invalid = ~ok if ok.ndim == 1 else ~jnp.all(ok, axis=1)
    return coupon, invalid


def _check_week(week, invalid_action, nonfinite, ids) -> None:
    """Host-side check of debug mode."""
    import numpy as np

    if np.any(invalid_action):
        bad = np.asarray(ids)[np.asarray(invalid_action)][:5].tolist()
        raise ValueError(
            f"invalid coupon action in week {int(week)} for customers {bad} (levels out of range)"
        )
    if np.any(nonfinite):
        bad = np.asarray(ids)[np.asarray(nonfinite)][:5].tolist()
        raise FloatingPointError(
            f"non-finite visit probability, store value or revenue in week {int(week)} for customers {bad}"
        )


def simulate_week(state: CouponState, action: jax.Array, params: CouponParams) -> dict[str, Any]:
    """One week for the whole population; returns ``obs``, ``state``, ``reward``, ``info`` and
    ``lines`` (per-customer, per-category purchases ``[U, J]``, for analysis and tests)."""
    sc, cfg = params.scenario, params.config
    n_u, n_j, block = params.num_customers, cfg.num_categories, params.block_size
    layout = layout_for(cfg.category_sizes)
    opts = model_options(params)
    week = state.t
    seeds = stream_seeds(sc, week)
    ids = customer_ids(params)
    coupon, invalid_action = coupon_fractions(action, params)  # [U, J], [U]
    redeemed = (_uniform(seeds, _REDEEM, ids) < sc.redemption_rate).astype(jnp.float32)
    # stage 1: visit, from last week's state only
    p_visit = cm.visit_probability(
        state.visit_probability,
        state.visited,
        state.store_value,
        state.marketing,
        sc.visit_inertia,
        sc.visit_intercept,
        sc.visit_slope,
        sc.marketing_weight,
        state.first_step,
    )
    # a non-finite probability (impossible with finite draws; guarded so that it cannot silently
    # remove a customer) keeps last week's value and is flagged in info["nonfinite"]
    bad_visit = ~jnp.isfinite(p_visit)
    previous = state.visit_probability
    p_visit = jnp.where(bad_visit, jnp.where(jnp.isfinite(previous), previous, 1.0), p_visit)
    visited = _uniform(seeds, _VISIT, ids) < p_visit
    valid = jnp.asarray(layout.valid)
    order = jnp.nonzero(visited, size=n_u, fill_value=n_u)[0].astype(jnp.uint32)
    padded = jnp.concatenate([order, jnp.full((block,), n_u, jnp.uint32)])
    cust_hashes = _customer_hashes(seeds, ids)
    cat_hashes = jnp.stack([row_hash(seeds["weekly"][_CAT], ids), row_hash(seeds["weekly"][_CHOICE], ids)], 1)
    poisson_base = jax.random.fold_in(jax.random.fold_in(sc.noise_key, week), 77)
    x_chi2, x_total = observed_feature_totals(params, week, seeds)

    def customer_week(gid):
        return cm.CustomerWeek(
            customer_hashes=cust_hashes[gid],
            category_hashes=cat_hashes[gid],
            beta_w_customer=sc.beta_w_customer[gid],
            coupon=coupon[gid],
            redeemed=redeemed[gid],
            poisson_key=jax.vmap(jax.random.fold_in, in_axes=(None, 0))(poisson_base, ids[gid]),
            x_chi2=x_chi2[gid],
            x_total=x_total[gid],
        )

    def block_utilities(tiles, cust):
        # utilities are filled into a buffer by an inner loop: a loop boundary makes XLA compute
        # them once (fused into several consumers, the hashing was recomputed for each)
        def fill(i, buf):
            part = jax.tree.map(lambda a: jax.lax.dynamic_slice_in_dim(a, i * _SUB_BLOCK, _SUB_BLOCK), cust)
            mu = jax.vmap(lambda c: cm.utilities(tiles, c, opts, valid)["mu"])(part)
            return jax.lax.dynamic_update_slice_in_dim(buf, mu, i * _SUB_BLOCK, 0)

        return jax.lax.fori_loop(0, block // _SUB_BLOCK, fill, jnp.zeros((block,) + valid.shape, jnp.float32))

    tiles = week_tiles(params, state.price, seeds)
    if params.utility_clip == "percentile" and cfg.utility_clip_percentile < 100.0:
        # the original clips at the percentile of every customer's utilities (visitors or not)
        def all_customers(b):
            gid = b * block + jnp.arange(block, dtype=jnp.int32)
            ok = gid < n_u
            mu = block_utilities(tiles, customer_week(jnp.where(ok, gid, 0)))
            return mu.ravel(), (ok[:, None, None] & valid[None]).ravel()

        shards = 1 if params.axis_name is None else jax.lax.axis_size(params.axis_name)
        cap = streamed_percentile(
            all_customers,
            -(-n_u // block),
            cfg.utility_clip_percentile,
            params.axis_name,
            count=n_u * shards * cfg.num_products,
        )
        tiles = tiles.replace(utility_cap=jnp.minimum(tiles.utility_cap, cap))
    empty = {
        "quantity": jnp.zeros((n_u, n_j), jnp.int32),
        "product": jnp.full((n_u, n_j), -1, jnp.int32),
        "shelf_price": jnp.zeros((n_u, n_j), jnp.float32),
        "base_price": jnp.ones((n_u, n_j), jnp.float32),
        "paid_price": jnp.zeros((n_u, n_j), jnp.float32),
        "store_value": jnp.zeros((n_u,), jnp.float32),
    }

    def block_body(b, acc):
        bid = jax.lax.dynamic_slice(padded, (b * block,), (block,))
        ok = bid < n_u
        gid = jnp.where(ok, bid, 0).astype(jnp.int32)
        cust = customer_week(gid)
        mus = block_utilities(tiles, cust)
        res = jax.vmap(cm.purchase_given_utilities, in_axes=(0, None, 0, None, None))(
            mus, tiles, cust, opts, layout
        )
        target = jnp.where(ok, gid, n_u)  # out-of-range rows are dropped
        return {k: acc[k].at[target].set(res[k], mode="drop") for k in acc}

    num_blocks = (jnp.sum(visited) + block - 1) // block
    lines = jax.lax.fori_loop(0, num_blocks, block_body, empty)
    quantity = lines["quantity"].astype(jnp.float32)
    bought = lines["quantity"] > 0
    revenue = jnp.sum(quantity * lines["paid_price"], axis=1)
    store_value = jnp.where(visited, lines["store_value"], 0.0)
    nonfinite = bad_visit | ~jnp.isfinite(store_value) | ~jnp.isfinite(revenue)
    store_value = jnp.where(jnp.isfinite(store_value), store_value, 0.0)
    revenue = jnp.where(jnp.isfinite(revenue), revenue, 0.0)
    if params.debug:
        jax.debug.callback(_check_week, week, invalid_action, nonfinite, ids)
    demand = jnp.sum(quantity, axis=1)
    n_lines = jnp.sum(bought, axis=1).astype(jnp.float32)
    coupon_line = bought & (lines["paid_price"] < lines["shelf_price"])
    redeemed_lines = jnp.sum(coupon_line, axis=1).astype(jnp.float32)
    # running summaries (features 3 and 5 use the price paid this week unless the quirk is on)
    next_week = week + 1
    shelf, price, discount, marketing, obs_x = _draw_next_week(params, state.shelf, next_week, coupon)
    offered = jnp.mean(coupon, axis=1)  # [U] mean offered coupon over categories
    if params.next_week_price_quirk:
        prod = jnp.where(bought, lines["product"], 0)
        line_shelf = price[prod]
        line_disc = discount[prod]
    else:
        line_shelf = lines["shelf_price"]
        line_disc = 1.0 - lines["shelf_price"] / lines["base_price"]
    s = state.summaries
    summaries = Summaries(
        weeks=s.weeks + 1,
        purchase_weeks=s.purchase_weeks + (demand > 0),
        items_in_purchase_weeks=s.items_in_purchase_weeks + demand,
        lines=s.lines + n_lines,
        line_price=s.line_price + jnp.sum(jnp.where(bought, line_shelf, 0.0), axis=1),
        line_discount=s.line_discount + jnp.sum(jnp.where(bought, line_disc, 0.0), axis=1),
        redeemed_lines=s.redeemed_lines + redeemed_lines,
        redeemed_value=s.redeemed_value + jnp.sum(jnp.where(coupon_line, coupon, 0.0), axis=1),
    )
    new_state = CouponState(
        t=next_week,
        shelf=shelf,
        price=price,
        discount=discount,
        marketing=marketing,
        visit_probability=p_visit,
        visited=visited,
        store_value=store_value,
        previous_items=demand,
        previous_coupon=coupon,
        observed_feature=obs_x,
        summaries=summaries,
        first_step=jnp.asarray(False),
    )
    info = {
        "revenue": revenue,
        "demand": demand,
        "visited": visited,
        "categories": n_lines,
        "coupon": offered,
        "redeemed": redeemed_lines > 0,
        "redeemed_lines": redeemed_lines,
        "category_mask": jnp.sum(
            jnp.where(
                bought, jnp.left_shift(jnp.uint32(1), jnp.arange(n_j, dtype=jnp.uint32)), jnp.uint32(0)
            ),
            axis=1,
            dtype=jnp.uint32,
        ),
        "discount": jnp.full((n_u,), params.discount_factor, jnp.float32),
        "invalid_action": invalid_action,
        "nonfinite": nonfinite,
    }
    return {
        "obs": context(new_state, params),
        "state": new_state,
        "reward": revenue,
        "info": info,
        "lines": lines,
        "visit_probability": p_visit,
        "utility_cap": tiles.utility_cap,  # [] the week's utility cap (+inf: none)
    }
