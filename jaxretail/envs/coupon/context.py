"""Next week's shelf, marketing and observed features, and the 9-feature agent context of the coupon env."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxretail.core.counter_rng import uniform_to_normal
from jaxretail.envs.coupon import customer as cm
from jaxretail.envs.coupon.params import model_options
from jaxretail.envs.coupon.pricing import shelf_step
from jaxretail.envs.coupon.streams import (
    _MKT_MEAN,
    _MKT_NOISE,
    _MKT_SCALE,
    customer_hashes,
    customer_ids,
    observed_feature_totals,
    population_sum,
    stream_seeds,
    uniform,
    week_tiles,
)
from jaxretail.envs.coupon.types import CouponParams, CouponState, ShelfState

CONTEXT_FEATURES = (
    "avg_previous_transaction", "avg_product_price", "marketing_feature", "avg_observed_feature",
    "avg_purchase_quantity", "avg_purchase_probability", "avg_purchase_price", "avg_redeemed_discount",
    "avg_purchase_discount",
)  # fmt: skip


def marketing_feature(params: CouponParams, seeds, discount: jax.Array, coupon: jax.Array) -> jax.Array:
    """``M_ut`` for the coming week, ``[U]`` (``random``, ``discount`` or ``discount_coupon`` mode)."""
    mode = params.config.marketing_mode
    ids = customer_ids(params)
    if mode == "random":  # m ~ N(0, 1), s ~ HalfNormal(1) (= |m| with the original's shared key), M ~ N(m, s)
        m = uniform_to_normal(uniform(seeds, _MKT_MEAN, ids))
        s = (
            jnp.abs(m)
            if params.legacy_coupling
            else jnp.abs(uniform_to_normal(uniform(seeds, _MKT_SCALE, ids)))
        )
        return m + s * uniform_to_normal(uniform(seeds, _MKT_NOISE, ids))
    total_discount = jnp.sum(discount)
    if mode == "discount":
        return jnp.full((params.num_customers,), total_discount)
    # discount_coupon: kappa_u = sum_j c_uj |j| with last week's coupons (c I for a store-wide coupon)
    return total_discount + coupon @ jnp.asarray(params.config.category_sizes, coupon.dtype)


def mean_observed_feature(params: CouponParams, seeds, week: jax.Array | None = None) -> jax.Array:
    """Mean over products of each customer's observed feature ``X_ui`` of the week, ``[U]``.

    O(1) per customer (``S / I``) in the default model; the legacy law ``X = m + |m| z`` has no
    such shortcut and is summed over products (the same draws as the utilities)."""
    if not params.legacy_coupling:
        return observed_feature_totals(params, week, seeds)[1] / params.config.num_products
    tiles = week_tiles(params, jnp.ones(params.config.num_products, jnp.float32), seeds)
    opts = model_options(params)
    hashes = customer_hashes(seeds, customer_ids(params))
    zero = jnp.zeros((), jnp.float32)

    def one(h):
        cust = cm.CustomerWeek(h, jnp.zeros(3, jnp.uint32), zero, jnp.zeros(params.config.num_categories),
                               zero, zero, zero)  # fmt: skip
        return jnp.sum(cm.observed_feature_draws(tiles, cust, opts)) / params.config.num_products

    return jax.lax.map(one, hashes, batch_size=params.block_size)


def draw_next_week(params: CouponParams, state_shelf: ShelfState, week: jax.Array, coupon: jax.Array):
    """Shelf state, prices ``[I]``, discount ``[I]``, marketing feature ``[U]`` and mean observed
    feature ``[U]`` of week ``week``."""
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
    safe = lambda a, b: a / jnp.maximum(b, 1.0)  # noqa: E731
    has_lines = s.lines > 0
    total = lambda x: population_sum(x, params)  # noqa: E731
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
