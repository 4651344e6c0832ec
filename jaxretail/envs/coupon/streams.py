"""Random-number streams of the coupon week: seeds, customer ids and the per-week product inputs.

Randomness of week ``t`` is a function of the scenario's noise key, ``t`` and global customer /
product ids only (counter hashes, :mod:`jaxretail.core.counter_rng`): two policies run on the same
scenario face the same customers (common random numbers), and blocking or sharding the customer axis
leaves the result unchanged.

Weekly seeds (16 words): customer streams 0-7 (visit, redemption, marketing mean / scale / noise,
category purchase, product choice, quantity), per-(customer, product) streams 8-11 (observed-feature
mean, scale and noise, utility noise), the category column words 12, 13, 15 and the observed
feature's total 14; the three latent taste streams do not depend on the week (``scenario.latent_seeds``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxretail.core.counter_rng import (
    bits_to_uniform,
    column_hash,
    hash_bits,
    row_hash,
    seed_from_key,
    uniform_to_normal,
)
from jaxretail.envs.coupon import customer as cm
from jaxretail.envs.coupon.params import layout_for
from jaxretail.envs.coupon.types import CouponParams, Scenario

# customer-level hash streams (in addition to customer.STREAMS)
_VISIT, _REDEEM, _MKT_MEAN, _MKT_SCALE, _MKT_NOISE, _CAT, _CHOICE, _POISSON = range(8)
_X_TOTAL = 14
CATEGORY_STREAM_SEEDS = (_CAT, _CHOICE, _POISSON)  # row words of customer.CATEGORY_STREAMS
CATEGORY_COLUMN_SEEDS = (12, 13, 15)  # their column words


def stream_seeds(scenario: Scenario, week: jax.Array) -> dict[str, jax.Array]:
    """uint32 seeds of the weekly hash streams; the three latent streams do not depend on the week."""
    weekly = jax.vmap(
        lambda s: seed_from_key(jax.random.fold_in(jax.random.fold_in(scenario.noise_key, week), s))
    )(jnp.arange(16))
    return {"latent": scenario.latent_seeds, "weekly": weekly}


def week_tiles(params: CouponParams, price: jax.Array, seeds, utility_cap=None) -> cm.WeekTiles:
    """Per-product inputs of a week in the flat slot layout (``utility_cap``: this week's cap, default
    the fixed ``params.utility_cap`` or none)."""
    layout = layout_for(params.config.category_sizes)
    sc = params.scenario
    valid = jnp.asarray(layout.valid.ravel())
    idx = jnp.asarray(layout.product.ravel().clip(0))
    tile = lambda v, fill=0.0: jnp.where(valid, v[idx], fill)  # noqa: E731
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
        valid=valid,
        row_category=jnp.asarray(layout.row_category),
        category_intercept=sc.category_intercept,
        category_slope=sc.category_slope,
        category_consts=jax.vmap(lambda s: column_hash(s, j))(
            seeds["weekly"][jnp.asarray(CATEGORY_COLUMN_SEEDS)]
        ),
        utility_cap=cap,
    )


def customer_ids(params: CouponParams) -> jax.Array:
    """Global ids ``[U]`` (uint32) of the customers held by ``params``: a shard of ``U`` customers on
    position ``k`` of the mesh axis holds customers ``k U .. k U + U - 1``."""
    ids = jnp.arange(params.num_customers, dtype=jnp.uint32) + jnp.asarray(params.first_customer, jnp.uint32)
    if params.axis_name is None:
        return ids
    return jax.lax.axis_index(params.axis_name).astype(jnp.uint32) * params.num_customers + ids


def population_sum(x: jax.Array, params: CouponParams) -> jax.Array:
    """Sum over the whole population (across the shards of ``params.axis_name`` if set)."""
    total = jnp.sum(x)
    return total if params.axis_name is None else jax.lax.psum(total, params.axis_name)


def customer_hashes(seeds, ids: jax.Array) -> jax.Array:
    """``[B, 7]`` row words per customer: 3 latent streams (week independent) + 4 weekly streams."""
    latent = jax.vmap(lambda s: row_hash(s, ids), out_axes=1)(seeds["latent"])
    weekly = jax.vmap(lambda s: row_hash(s, ids), out_axes=1)(seeds["weekly"][8:12])
    return jnp.concatenate([latent, weekly], axis=1)


def category_hashes(seeds, ids: jax.Array) -> jax.Array:
    """``[B, 3]`` row words per customer of the category streams (purchase, choice, quantity)."""
    return jnp.stack([row_hash(seeds["weekly"][s], ids) for s in CATEGORY_STREAM_SEEDS], axis=1)


def uniform(seeds, stream: int, ids: jax.Array) -> jax.Array:
    """``[B]`` uniforms of a customer-level weekly stream."""
    return bits_to_uniform(hash_bits(seeds["weekly"][stream], ids))


def observed_feature_totals(params: CouponParams, week: jax.Array, seeds) -> tuple[jax.Array, jax.Array]:
    """``(Q [U], S [U])``: per-customer totals of the week's observed feature (see
    :func:`jaxretail.envs.coupon.customer.observed_feature`); functions of (scenario, week, customer)."""
    n_i = params.config.num_products
    ids = customer_ids(params)
    base = jax.random.fold_in(jax.random.fold_in(params.scenario.noise_key, week), 55)
    keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(base, ids)
    chi2 = jax.vmap(lambda k: jax.random.chisquare(k, float(n_i), dtype=jnp.float32))(keys)
    total = jnp.sqrt(n_i + chi2) * uniform_to_normal(uniform(seeds, _X_TOTAL, ids))
    return chi2, total
