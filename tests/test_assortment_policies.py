"""Expert (enumeration and parametric), greedy, random and score -> top-K policies."""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from assortment_reference import brute_force_revenues, utility
from scipy import stats

from jaxretail.envs.assortment import (
    DynamicAssortment,
    expert_parametric_policy,
    expert_policy,
    greedy_policy,
    random_policy,
    scores_topk_policy,
    subset_masks,
    top_k_mask,
)
from jaxretail.evaluation import episode_keys


def _random_states(env, params, n, seed=0):
    """Instances with hype and saturation perturbed, so states look like mid-episode ones."""
    _, states = jax.vmap(env.reset, in_axes=(0, None))(episode_keys(range(seed, seed + n)), params)
    k1, k2 = jax.random.split(jax.random.key(seed))
    scale = jax.random.uniform(k1, states.hype.shape, minval=0.8, maxval=1.3)
    return states.replace(
        hype=states.hype * scale,
        saturation=states.saturation * jax.random.uniform(k2, states.hype.shape, minval=1, maxval=1.3),
    )


def _np_state(states, e):
    g = lambda x: np.asarray(x[e], np.float64)
    return g(states.price), g(states.static_features), g(states.hype), g(states.saturation)


@pytest.mark.parametrize("n_items, k", [(20, 4), (8, 3), (6, 1), (5, 5)])
def test_expert_matches_numpy_brute_force(n_items, k):
    env = DynamicAssortment(num_items=n_items, assortment_size=k)
    params = env.default_params
    states = _random_states(env, params, 200)
    batched = lambda pol: jax.jit(jax.vmap(pol, in_axes=(None, None, 0, None)))(None, None, states, params)
    enum = np.asarray(batched(expert_policy(params)))
    para = np.asarray(batched(expert_parametric_policy()))
    for e in range(200):
        price, feats, hype, sat = _np_state(states, e)
        subsets, revs = brute_force_revenues(utility(price, feats, hype, sat), price, k)
        chosen = tuple(np.flatnonzero(enum[e]))
        best = revs.max()
        # never beaten in expectation by any other subset (float32 vs float64 tolerance)
        assert revs[subsets.index(chosen)] >= best - 1e-5 * best
        assert revs[subsets.index(tuple(np.flatnonzero(para[e])))] >= best - 1e-5 * best
        second = np.partition(revs, -2)[-2] if len(revs) > 1 else -np.inf
        if best - second > 1e-4 * best:  # unique optimum: identical subset
            assert chosen == subsets[int(np.argmax(revs))]


def test_expert_ties_go_to_first_lexicographic_subset():
    """With identical items every subset ties; the expert must return items 0..K-1."""
    env = DynamicAssortment(num_items=7, assortment_size=3)
    params = env.default_params
    _, state = env.reset(jax.random.key(0), params)
    same = lambda x: jnp.full_like(x, 5.0)
    state = state.replace(
        price=same(state.price),
        hype=same(state.hype),
        saturation=same(state.saturation),
        static_features=jnp.full_like(state.static_features, 5.0),
    )
    for policy in (expert_policy(params), expert_parametric_policy()):
        mask = policy(None, None, state, params)
        np.testing.assert_array_equal(np.flatnonzero(np.asarray(mask)), [0, 1, 2])
        # items 2 and 5 strictly better than the rest, tie for the third among {0, 1, 3, 4, 6}
        better = state.replace(price=state.price.at[jnp.array([2, 5])].set(6.0))
        mask = policy(None, None, better, params)
        np.testing.assert_array_equal(np.flatnonzero(np.asarray(mask)), [0, 2, 5])


def test_subset_masks_lexicographic_and_memory_guard():
    masks = subset_masks(6, 2)
    assert [tuple(np.flatnonzero(r)) for r in masks] == list(itertools.combinations(range(6), 2))
    with pytest.raises(ValueError, match=r"C\(num_items=200, assortment_size=10\)"):
        subset_masks(200, 10)
    env = DynamicAssortment(num_items=60, assortment_size=12)
    with pytest.raises(ValueError, match="expert_parametric_policy"):
        expert_policy(env.default_params)


def test_parametric_expert_scales_past_enumeration():
    """N=60, K=12 (C = 1.4e12 subsets): parametric solution beats 2,000 random feasible swaps."""
    env = DynamicAssortment(num_items=60, assortment_size=12)
    params = env.default_params
    _, state = env.reset(jax.random.key(5), params)
    mask = np.asarray(expert_parametric_policy()(None, None, state, params))
    price, feats, hype, sat = _np_state(jax.tree.map(lambda x: x[None], state), 0)
    v = np.exp(utility(price, feats, hype, sat))
    rev = lambda m: (v * price * m).sum() / (1 + (v * m).sum())
    best = rev(mask)
    rng = np.random.default_rng(0)
    for _ in range(2000):  # every single swap (in, out) is no better
        i, o = rng.choice(np.flatnonzero(mask)), rng.choice(np.flatnonzero(~mask))
        m2 = mask.copy()
        m2[i], m2[o] = False, True
        assert rev(m2) <= best + 1e-5 * best


def test_greedy_offers_k_highest_prices(env, params):
    _, state = env.reset(jax.random.key(2), params)
    mask = np.asarray(greedy_policy(None, None, state, params))
    top = np.argsort(-np.asarray(state.price))[: params.assortment_size]
    assert set(np.flatnonzero(mask)) == set(top)


def test_random_policy_uniform_over_subsets():
    env = DynamicAssortment(num_items=6, assortment_size=2)
    params = env.default_params
    _, state = env.reset(jax.random.key(0), params)
    draws = 30_000
    masks = jax.jit(jax.vmap(random_policy, in_axes=(0, None, None, None)))(
        jax.random.split(jax.random.key(1), draws), None, state, params
    )
    masks = np.asarray(masks)
    assert (masks.sum(1) == 2).all()
    codes = (masks * (1 << np.arange(6))).sum(1)
    counts = np.unique(codes, return_counts=True)[1]
    assert len(counts) == math.comb(6, 2)
    assert stats.chisquare(counts).pvalue > 1e-3


def test_scores_topk_policy_and_tie_rule(params):
    scores = jnp.array([1.0, 3.0, 3.0, 0.5, 3.0, 2.0])
    np.testing.assert_array_equal(np.flatnonzero(np.asarray(top_k_mask(scores, 2))), [1, 2])
    big = jax.random.normal(jax.random.key(0), (50,))
    np.testing.assert_array_equal(  # fori_loop path (k > 8) agrees with a sort
        np.sort(np.flatnonzero(np.asarray(top_k_mask(big, 12)))), np.sort(np.argsort(-np.asarray(big))[:12])
    )
    w = jnp.zeros(10).at[4].set(1.0)  # score = price row of the paper observation
    policy = scores_topk_policy(lambda obs: w @ obs)
    env = DynamicAssortment()
    obs, state = env.reset(jax.random.key(4), params)
    np.testing.assert_array_equal(
        np.asarray(policy(None, obs, state, params)), np.asarray(greedy_policy(None, obs, state, params))
    )
    noisy = scores_topk_policy(lambda obs: w @ obs, noise_std=100.0)
    masks = jax.vmap(noisy, in_axes=(0, None, None, None))(
        jax.random.split(jax.random.key(1), 50), obs, state, params
    )
    assert (np.asarray(masks).sum(1) == params.assortment_size).all()
    assert len({tuple(m) for m in np.asarray(masks)}) > 10


def test_expert_revenue_beats_greedy_and_random(env, params):
    from jaxretail.evaluation import evaluate_policy

    seeds = range(1, 21)
    ret = {
        name: evaluate_policy(env, pol, params, seeds, policy_batch_size=bs).sum(1)
        for name, pol, bs in [
            ("expert", expert_policy(params), 10),
            ("greedy", greedy_policy, None),
            ("random", random_policy, None),
        ]
    }
    assert ret["expert"].mean() > ret["greedy"].mean() > ret["random"].mean()
