"""Baseline coupon policies: fixed level for everyone, and uniformly random levels per customer.

A coupon policy acts on the whole population: ``policy(key, obs [U, 9], state, params) -> [U] int32``.
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
        return jnp.full((obs.shape[0],), level, jnp.int32)

    return policy


def random_coupon_policy(key, obs, state, params) -> jax.Array:
    """Each customer gets a uniformly random level, independently every week."""
    del state
    return jax.random.randint(key, (obs.shape[0],), 0, len(params.config.coupon_levels), jnp.int32)
