"""Baseline offer policies: ``scores(features [N, F], labels [N]) -> Q-like scores [N, 5]``.

Scores are one-hot on the chosen action, so ``argmax`` gives the action and the classification
metrics treat them like any Q-vector. The oracle reads the true class (simulated data: the smallest
sufficient discount), the others ignore both inputs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxretail.envs.offers.types import NUM_ACTIONS


def constant_scores(action: int, n: int) -> jax.Array:
    return jax.nn.one_hot(jnp.full((n,), action), NUM_ACTIONS)


def no_offer(features: jax.Array, labels: jax.Array | None = None) -> jax.Array:
    """Action 0 for everyone: no offer (customers still buy at the shelf price if it is within their WTP)."""
    return constant_scores(0, features.shape[0])


def uniform_discount(action: int):
    """The same offer (action ``1..4``) for everyone."""
    if not 1 <= int(action) < NUM_ACTIONS:
        raise ValueError(f"uniform_discount needs an offer action in 1..{NUM_ACTIONS - 1}, got {action!r}")

    def scores(features, labels=None):
        return constant_scores(int(action), features.shape[0])

    return scores


def oracle(features: jax.Array, labels: jax.Array) -> jax.Array:
    """The true class: the smallest sufficient offer, or no offer when none is enough."""
    return jax.nn.one_hot(labels, NUM_ACTIONS)
