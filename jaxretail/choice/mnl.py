"""Multinomial logit with a no-purchase option, for ONE choice situation (vmap for batches).

Items ``i = 0..N-1`` have utilities ``u_i``; the outside (no-purchase) option has utility 0 and
takes index ``N``. With an offer mask ``a`` (``a_i`` in {0, 1}):

    P(i) = a_i e^{u_i} / (1 + sum_j a_j e^{u_j}),      P(N) = 1 / (1 + sum_j a_j e^{u_j}).

Everything is computed relative to ``m = max(0, max_{a_i=1} u_i)`` so ``exp`` never overflows
(utilities of +-1e4 are fine in float32).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _shifted_weights(utilities: jax.Array, offered: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(w [N], w_outside [])`` proportional to the MNL weights, largest weight equal to 1."""
    offered = offered.astype(bool)
    masked = jnp.where(offered, utilities, -jnp.inf)
    m = jnp.maximum(jnp.max(masked), 0.0)
    w = jnp.where(offered, jnp.exp(jnp.where(offered, utilities, m) - m), 0.0)
    return w, jnp.exp(-m)


def weights(utilities: jax.Array, offered: jax.Array) -> tuple[jax.Array, jax.Array]:
    """MNL weights relative to the largest: ``w_i = a_i e^{u_i - m}`` ``[N]`` and the no-purchase weight
    ``e^{-m}`` ``[]``, ``m = max(0, max_{a_i=1} u_i)`` (so no ``exp`` overflows); ``P(i) = w_i / (sum_j w_j
    + e^{-m})``. For revenue-ordered searches over assortments that reuse one set of weights.

    Args:
      utilities: ``[N]`` deterministic utilities.
      offered: ``[N]`` 0/1 (or bool) offer mask (all ones: weights of the whole catalogue).
    """
    return _shifted_weights(utilities, offered)


def log_probs(utilities: jax.Array, offered: jax.Array) -> jax.Array:
    """Log choice probabilities ``[N + 1]`` (last entry: no purchase); ``-inf`` if not offered.

    Args:
      utilities: ``[N]`` deterministic utilities.
      offered: ``[N]`` 0/1 (or bool) offer mask.
    """
    offered = offered.astype(bool)
    logits = jnp.concatenate([jnp.where(offered, utilities, -jnp.inf), jnp.zeros((1,), utilities.dtype)])
    return logits - jax.nn.logsumexp(logits)


def probs(utilities: jax.Array, offered: jax.Array) -> jax.Array:
    """Choice probabilities ``[N + 1]`` (last entry: no purchase)."""
    w, w0 = _shifted_weights(utilities, offered)
    total = jnp.sum(w) + w0
    return jnp.concatenate([w, w0[None]]) / total


def inclusive_value(utilities: jax.Array, offered: jax.Array) -> jax.Array:
    """Log-sum-exp of the offered utilities, ``log sum_j a_j e^{u_j}`` (``-inf`` if none)."""
    return jax.nn.logsumexp(jnp.where(offered.astype(bool), utilities, -jnp.inf))


def expected_revenue(utilities: jax.Array, offered: jax.Array, prices: jax.Array) -> jax.Array:
    """``sum_i a_i p_i e^{u_i} / (1 + sum_j a_j e^{u_j})``: expected revenue of one customer."""
    w, w0 = _shifted_weights(utilities, offered)
    return jnp.sum(w * prices) / (jnp.sum(w) + w0)


def sample(uniform: jax.Array, utilities: jax.Array, offered: jax.Array) -> jax.Array:
    """Draw a choice in ``0..N`` (``N`` = no purchase) by inverse CDF from ONE uniform.

    Uses a single random number instead of ``N + 1`` Gumbels, which matters when the random
    number generator dominates the step cost.

    Args:
      uniform: scalar in ``[0, 1)``.
      utilities: ``[N]``.
      offered: ``[N]`` offer mask.

    Returns:
      int32 index of the chosen option.
    """
    w, w0 = _shifted_weights(utilities, offered)
    weights = jnp.concatenate([w, w0[None]])
    # running sum as a tiny matmul: XLA's CPU cumsum is several times slower on short rows
    upper = jnp.triu(jnp.ones((weights.shape[0],) * 2, weights.dtype))
    cum = weights @ upper
    # threshold in (0, total]: the first index with cum >= threshold has positive weight
    threshold = (1.0 - uniform) * cum[-1]
    return jnp.sum(cum < threshold).astype(jnp.int32)
