"""High-low shelf prices and coupons (RetailSynth pricing policy; ``shared/specs/coupon.md`` §2).

Per product a two-state chain ``S_it`` (``S_i0 = 0``): ``P(S=1 | S_prev=0) = a01_i``,
``P(S=1 | S_prev=1) = a11_i``; stationary discount frequency ``a01 / (1 - a11 + a01)``. Depth
``delta_it ~ Beta`` fresh every week; shelf price ``max((1 - delta S) P^base, p_min)``; final price
after a store-wide coupon ``c`` redeemed with probability ``rho``: ``(1 - c R) P`` (not re-floored).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxretail.envs.coupon.configs import ScenarioConfig
from jaxretail.envs.coupon.types import Scenario, ShelfState


def initial_shelf_state(num_products: int) -> ShelfState:
    return ShelfState(discounted=jnp.zeros((num_products,), bool))


def stationary_discount_frequency(scenario: Scenario) -> jax.Array:
    """``pi_i = a01_i / (1 - a11_i + a01_i)``, ``[I]``."""
    a01, a11 = scenario.discount_start, scenario.discount_stay
    return a01 / (1.0 - a11 + a01)


def shelf_step(
    key: jax.Array, state: ShelfState, scenario: Scenario, cfg: ScenarioConfig
) -> tuple[ShelfState, jax.Array, jax.Array]:
    """Advance the chain one week: returns ``(state, discount D_it [I], shelf price P_it [I])``."""
    k_state, k_depth = jax.random.split(key)
    p_on = jnp.where(state.discounted, scenario.discount_stay, scenario.discount_start)
    discounted = jax.random.uniform(k_state, p_on.shape, jnp.float32) < p_on
    with jax.enable_x64(False):  # float32 draws in both modes (the same prices under JAX_ENABLE_X64)
        depth = cfg.discount_depth.build().sample(k_depth, p_on.shape).astype(jnp.float32)
    discount = jnp.where(discounted, depth, 0.0)
    price = jnp.maximum((1.0 - discount) * scenario.base_price, cfg.min_price)
    return ShelfState(discounted=discounted), discount, price


def coupon_value(action: jax.Array, cfg: ScenarioConfig) -> jax.Array:
    """Coupon fraction of a level index (``0.05 * a`` for the default 11 levels)."""
    return jnp.asarray(cfg.coupon_levels, jnp.float32)[action]


def final_price(shelf_price: jax.Array, coupon: jax.Array, redeemed: jax.Array) -> jax.Array:
    """``(1 - c R) P``: the price a customer pays (``[I]`` for one customer)."""
    return (1.0 - coupon * redeemed) * shelf_price
