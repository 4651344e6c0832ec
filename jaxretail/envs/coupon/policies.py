"""Baseline coupon policies: fixed level for everyone, and uniformly random levels per customer.

A coupon policy acts on the whole population: ``policy(key, obs [U, 9], state, params) -> [U] int32``
(``[U, J]`` with ``coupon_scope="category"``).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp


def static_coupon_policy(level: int) -> Callable:
    """Everyone gets coupon level ``level`` (``FixedArm_k`` of the original benchmark)."""

    def policy(key, obs, state, params):
        del key, state
        n_levels = len(params.config.coupon_levels)
        if not 0 <= level < n_levels:
            raise ValueError(f"coupon level must be in [0, {n_levels}), got level={level}")
        return jnp.full(action_shape(obs, params), level, jnp.int32)

    return policy


def random_coupon_policy(key, obs, state, params) -> jax.Array:
    """Each customer gets a uniformly random level, independently every week."""
    del state
    return jax.random.randint(key, action_shape(obs, params), 0, len(params.config.coupon_levels), jnp.int32)


def action_shape(obs, params) -> tuple[int, ...]:
    """``(U,)`` for store-wide coupons, ``(U, J)`` for per-category coupons."""
    return (obs.shape[0],) + ((params.config.num_categories,) if params.coupon_scope == "category" else ())


def level_policy(key, obs, state, params, level) -> jax.Array:
    """Static level ``level`` for everyone, or uniformly random levels when ``level == -1``.

    ``level`` may be a traced int, so one compiled evaluation serves every baseline.
    """
    static = jnp.full(action_shape(obs, params), jnp.maximum(level, 0), jnp.int32)
    return jnp.where(level < 0, random_coupon_policy(key, obs, state, params), static)
