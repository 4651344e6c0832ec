"""Baseline and learned-model policies for the dynamic assortment environment.

Every policy has the per-environment signature ``policy(key, obs, state, params) -> mask [N]``
(bool, exactly ``K`` True) and is batched by :func:`jaxretail.core.rollout.rollout`.

* :func:`expert_policy` -- the myopic full-information expert of the paper: enumerates all
  ``C(N, K)`` assortments and maximises the current step's expected revenue; ties go to the first
  subset in lexicographic order.
* :func:`expert_parametric_policy` -- the same optimum found by Dinkelbach's parametric method on
  the MNL revenue (exact; a few top-K passes instead of ``C(N, K)`` evaluations).
* :func:`greedy_policy` -- the ``K`` highest prices.
* :func:`random_policy` -- a uniformly random ``K``-subset.
* :func:`scores_topk_policy` -- any score model ``obs -> [N]`` followed by top-K: where learned
  (imitation / structured RL) actors plug in.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxretail.choice import mnl
from jaxretail.envs.assortment.env import utilities
from jaxretail.envs.assortment.types import AssortmentParams, AssortmentState

_UNROLL_LIMIT = 8
DEFAULT_MAX_SUBSET_BYTES = 1 << 30  # the [C(N,K), N] float32 mask of the expert


def _repeat(n: int, body: Callable, carry):
    """``carry = body(i, carry)`` for ``i < n``: unrolled for small ``n``, ``fori_loop`` otherwise."""
    if n <= _UNROLL_LIMIT:
        for i in range(n):
            carry = body(i, carry)
        return carry
    return jax.lax.fori_loop(0, n, body, carry)


def top_k_mask(scores: jax.Array, k: int) -> jax.Array:
    """Bool mask ``[N]`` of the ``k`` largest scores; ties go to the lower index.

    Implemented as ``k`` rounds of ``argmax`` (faster than ``lax.top_k`` + scatter on CPU).
    """
    idx = jnp.arange(scores.shape[-1])

    def body(_, carry):
        mask, s = carry
        hit = idx == jnp.argmax(s)
        return mask | hit, jnp.where(hit, -jnp.inf, s)

    mask, _ = _repeat(k, body, (jnp.zeros(scores.shape, bool), scores))
    return mask


def greedy_policy(key, obs, state: AssortmentState, params: AssortmentParams) -> jax.Array:
    """Offer the ``K`` highest-priced items, ignoring utilities."""
    del key, obs
    return top_k_mask(state.price, params.assortment_size)


def random_policy(key, obs, state: AssortmentState, params: AssortmentParams) -> jax.Array:
    """A uniformly random ``K``-subset (sequential draws without replacement, ``K`` uniforms)."""
    del obs, state
    n, k = params.num_items, params.assortment_size
    u = jax.random.uniform(key, (k,), jnp.float32)
    idx = jnp.arange(n)
    upper = jnp.triu(jnp.ones((n, n), jnp.float32))  # running count as a tiny matmul (no XLA cumsum)

    def body(i, taken):
        rank = jnp.floor(u[i] * (n - i))  # rank among the n - i free items
        free_count = (~taken).astype(jnp.float32) @ upper  # free items up to and including j
        pick = jnp.sum(free_count <= rank)  # first free item whose free-count exceeds rank
        return taken | (idx == pick)

    return _repeat(k, body, jnp.zeros((n,), bool))


def scores_topk_policy(score_fn: Callable[[jax.Array], jax.Array], noise_std: float = 0.0) -> Callable:
    """Policy ``topK(score_fn(obs) + noise_std * Z)`` with ``Z ~ N(0, I)``.

    Args:
      score_fn: maps the observation ``[F, N]`` to item scores ``[N]`` (e.g. an affine actor
        applied column-wise, ``lambda obs: w @ obs + b``).
      noise_std: standard deviation of Gaussian exploration added to the scores (0: deterministic).
    """

    def policy(key, obs, state, params: AssortmentParams) -> jax.Array:
        del state
        scores = score_fn(obs)
        if noise_std:
            scores = scores + noise_std * jax.random.normal(key, scores.shape, scores.dtype)
        return top_k_mask(scores, params.assortment_size)

    return policy


def subset_masks(num_items: int, k: int, max_bytes: int = DEFAULT_MAX_SUBSET_BYTES) -> np.ndarray:
    """All ``k``-subsets of ``num_items`` items as a ``[C(N, k), N]`` 0/1 array, lexicographic order.

    Raises:
      ValueError: if the float32 mask would exceed ``max_bytes`` (checked before allocating).
    """
    count = math.comb(num_items, k)
    nbytes = count * num_items * 4
    if nbytes > max_bytes:
        raise ValueError(
            f"the brute-force expert would enumerate C(num_items={num_items}, "
            f"assortment_size={k}) = {count:,} subsets, a {nbytes / 2**20:,.0f} MiB mask, over "
            f"the limit max_bytes={max_bytes:,}; use expert_parametric_policy (exact, no "
            "enumeration) or raise max_bytes"
        )
    masks = np.zeros((count, num_items), np.float32)
    for row, combo in enumerate(itertools.combinations(range(num_items), k)):
        masks[row, list(combo)] = 1.0
    return masks


def _shifted_weights(state: AssortmentState, params: AssortmentParams):
    """``v = e^{theta - m}`` ``[N]`` and the no-purchase weight ``v0 = e^{-m}``, ``m = max(0, max theta)``:
    the MNL weights of the whole catalogue (:func:`jaxretail.choice.mnl.weights`)."""
    theta = utilities(state, params)
    return mnl.weights(theta, jnp.ones(theta.shape, bool))


def expert_policy(params: AssortmentParams, max_bytes: int = DEFAULT_MAX_SUBSET_BYTES) -> Callable:
    """The myopic expert by enumeration of all ``C(N, K)`` assortments.

    Maximises ``sum_{i in S} p_i e^{theta_i} / (1 + sum_{j in S} e^{theta_j})`` with the true
    utilities; the first maximiser in lexicographic order wins. For large batches run it through
    ``rollout(..., policy_batch_size=...)`` so the ``[B, C(N, K)]`` revenue table is chunked.

    Raises:
      ValueError: when ``C(N, K)`` subsets would not fit in ``max_bytes`` (see :func:`subset_masks`).
    """
    masks_np = subset_masks(params.num_items, params.assortment_size, max_bytes)
    masks_t = masks_np.T.copy()  # [N, C]

    def policy(key, obs, state: AssortmentState, params: AssortmentParams) -> jax.Array:
        del key, obs
        m_t = jnp.asarray(masks_t, state.price.dtype)
        v, v0 = _shifted_weights(state, params)
        sums = jnp.stack([v * state.price, v]) @ m_t  # [2, C]
        best = jnp.argmax(sums[0] / (v0 + sums[1]))  # first maximiser
        return m_t[:, best] > 0

    return policy


def expert_parametric_policy(max_iterations: int = 32) -> Callable:
    """The myopic expert by Dinkelbach's method (exact, no enumeration).

    ``R(S) >= lam`` iff ``sum_{i in S} v_i (p_i - lam) >= lam v_0``, so the optimal revenue
    ``lam*`` is the root of ``f(lam) = max_{|S| = K} sum_S v_i (p_i - lam) - lam v_0``, whose
    maximiser is a top-K set. Starting at ``lam = 0``, each iteration takes
    ``S = topK(v (p - lam))`` and sets ``lam = R(S)``; ``lam`` increases strictly until ``S`` is
    optimal, which takes a handful of iterations.

    The optimal sets are exactly the maximisers of ``sum_S v_i (p_i - lam*)``: the items above the
    K-th score plus any choice among the items tied with it. The returned ``topK(v (p - lam*))``
    takes the lowest-index tied items, which is the lexicographically first optimal subset, the
    same answer as :func:`expert_policy` (up to float rounding of near-ties).
    Cost: ``O(N K)`` per iteration instead of ``O(C(N, K) N)``.
    """

    def policy(key, obs, state: AssortmentState, params: AssortmentParams) -> jax.Array:
        del key, obs
        k = params.assortment_size
        v, v0 = _shifted_weights(state, params)
        p = state.price

        def revenue(mask):
            return jnp.sum(jnp.where(mask, v * p, 0.0)) / (v0 + jnp.sum(jnp.where(mask, v, 0.0)))

        def cond(carry):
            i, _, _, improved = carry
            return improved & (i < max_iterations)

        def body(carry):
            i, lam, mask, _ = carry
            new_mask = top_k_mask(v * (p - lam), k)
            new_lam = revenue(new_mask)
            improved = new_lam > lam
            return (i + 1, jnp.where(improved, new_lam, lam), jnp.where(improved, new_mask, mask), improved)

        mask0 = top_k_mask(v * p, k)
        init = (jnp.asarray(0, jnp.int32), revenue(mask0), mask0, jnp.asarray(True))
        _, lam, _, _ = jax.lax.while_loop(cond, body, init)
        return top_k_mask(v * (p - lam), k)

    return policy
