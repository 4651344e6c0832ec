"""The coupon week for the whole population: coupons, visits, the streamed visitor blocks, summaries.

Weekly order: coupons -> visits (from last week's state) -> purchases of visitors (compacted and
streamed in blocks of ``params.block_size`` customers whose utilities are computed
``params.sub_block_size`` customers at a time on the flat slot layout; no ``[U, I]`` array is ever
stored) -> reward -> running summaries -> next week's shelf prices, marketing feature and observed
feature -> the 9-feature context ``[U, 9]``.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxretail.core.counter_rng import row_offset
from jaxretail.envs.coupon import customer as cm
from jaxretail.envs.coupon.clip import streamed_percentile
from jaxretail.envs.coupon.context import context, draw_next_week
from jaxretail.envs.coupon.params import layout_for, model_options
from jaxretail.envs.coupon.streams import (
    _REDEEM,
    _VISIT,
    category_hashes,
    customer_hashes,
    customer_ids,
    observed_feature_totals,
    stream_seeds,
    uniform,
    week_tiles,
)
from jaxretail.envs.coupon.types import CouponParams, CouponState, Summaries


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


def by_sub_block(fn, batch, sub_block: int):
    """``fn`` (a function of a batch of customers: a pytree of arrays with a leading ``[B]``) applied
    ``sub_block`` customers at a time, outputs concatenated along ``B``. The loop boundary makes XLA
    compute ``fn``'s values once (fused into several consumers, cheap per-slot work such as hashing
    would be recomputed for each) and keeps the ``[sub_block, S]`` working set in cache."""
    block = jax.tree.leaves(batch)[0].shape[0]
    if sub_block >= block:
        return fn(batch)
    part = lambda i: jax.tree.map(lambda a: jax.lax.dynamic_slice_in_dim(a, i * sub_block, sub_block), batch)  # noqa: E731
    init = jax.tree.map(lambda x: jnp.zeros((block,) + x.shape[1:], x.dtype), jax.eval_shape(fn, part(0)))

    def fill(i, buf):
        return jax.tree.map(
            lambda b, v: jax.lax.dynamic_update_slice_in_dim(b, v, i * sub_block, 0), buf, fn(part(i))
        )

    return jax.lax.fori_loop(0, block // sub_block, fill, init)


def visitor_utilities(tiles: cm.WeekTiles, cust: cm.CustomerWeek, opts, sub_block: int) -> jax.Array:
    """Utilities ``[B, S]`` of a block of customers (``cust`` fields with a leading ``[B]``), computed
    ``sub_block`` customers at a time (:func:`by_sub_block`). The observed feature's angle sines
    ``[B, S]`` are computed first, in their own pass, so that its three consumers read them."""
    if opts.legacy_coupling:
        return by_sub_block(jax.vmap(lambda c: cm.utilities(tiles, c, opts)), cust, sub_block)
    sines = by_sub_block(jax.vmap(lambda c: cm.observed_feature_sine(tiles, c, opts)), cust, sub_block)
    one = jax.vmap(lambda c, s: cm.utilities(tiles, c, opts, s))
    return by_sub_block(lambda b: one(*b), (cust, sines), sub_block)


def exact_poisson_fallback(lines: dict, poisson_base: jax.Array, ids: jax.Array) -> jax.Array:
    """Quantities ``[B, J]`` of a block: lines flagged ``needs_exact_poisson`` (rate above the inverse-CDF
    range) get ``1 + jax.random.poisson`` with the customer's key ``fold_in(poisson_base, id)``, computed
    only when the block holds such a line (the choice depends on the rate only: the law stays exact)."""
    need = lines["needs_exact_poisson"]

    def draw():
        keys = jax.vmap(jax.random.fold_in, in_axes=(None, 0))(poisson_base, ids)
        extra = jax.vmap(jax.random.poisson)(keys, jnp.where(need, lines["rate"], 0.0))
        return jnp.where(need, 1 + extra, lines["quantity"]).astype(jnp.int32)

    return jax.lax.cond(jnp.any(need), draw, lambda: lines["quantity"])


def simulate_week(state: CouponState, action: jax.Array, params: CouponParams) -> dict[str, Any]:
    """One week for the whole population; returns ``obs``, ``state``, ``reward``, ``info``, ``lines``
    (per-customer, per-category purchases ``[U, J]``, for analysis and tests), ``visit_probability``
    ``[U]`` and ``utility_cap`` ``[]``."""
    sc, cfg = params.scenario, params.config
    n_u, n_j, block = params.num_customers, cfg.num_categories, params.block_size
    layout = layout_for(cfg.category_sizes)
    opts = model_options(params)
    week = state.t
    seeds = stream_seeds(sc, week)
    ids = customer_ids(params)
    coupon, invalid_action = coupon_fractions(action, params)  # [U, J], [U]
    redeemed = (uniform(seeds, _REDEEM, ids) < sc.redemption_rate).astype(jnp.float32)
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
    visited = uniform(seeds, _VISIT, ids) < p_visit
    order = jnp.nonzero(visited, size=n_u, fill_value=n_u)[0].astype(jnp.uint32)
    padded = jnp.concatenate([order, jnp.full((block,), n_u, jnp.uint32)])
    cust_hashes = customer_hashes(seeds, ids)
    cust_offsets = row_offset(cust_hashes)
    cat_hashes = category_hashes(seeds, ids)
    poisson_base = jax.random.fold_in(jax.random.fold_in(sc.noise_key, week), 77)
    x_chi2, x_total = observed_feature_totals(params, week, seeds)

    def customer_week(gid):
        return cm.CustomerWeek(
            customer_hashes=cust_hashes[gid],
            customer_offsets=cust_offsets[gid],
            category_hashes=cat_hashes[gid],
            beta_w_customer=sc.beta_w_customer[gid],
            coupon=coupon[gid],
            redeemed=redeemed[gid],
            x_chi2=x_chi2[gid],
            x_total=x_total[gid],
        )

    tiles = week_tiles(params, state.price, seeds)
    if params.utility_clip == "percentile" and cfg.utility_clip_percentile < 100.0:
        # the original clips at the percentile of every customer's utilities (visitors or not)
        def all_customers(b):
            gid = b * block + jnp.arange(block, dtype=jnp.int32)
            ok = gid < n_u
            mu = visitor_utilities(tiles, customer_week(jnp.where(ok, gid, 0)), opts, params.sub_block_size)
            return mu.ravel(), (ok[:, None] & tiles.valid[None]).ravel()

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
        mus = visitor_utilities(tiles, cust, opts, params.sub_block_size)
        res = jax.vmap(cm.purchase_given_utilities, in_axes=(0, None, 0, None, None))(
            mus, tiles, cust, opts, layout
        )
        res["quantity"] = exact_poisson_fallback(res, poisson_base, ids[gid])
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
    shelf, price, discount, marketing, obs_x = draw_next_week(params, state.shelf, next_week, coupon)
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
