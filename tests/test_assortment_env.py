"""Dynamic assortment environment: dynamics, choice model, observations, API properties."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from assortment_reference import mnl_probs, transition, utility
from scipy import stats

from jaxretail.core import Transition, rollout
from jaxretail.envs.assortment import (
    DynamicAssortment,
    expert_policy,
    make_params,
    random_policy,
    utilities,
)
from jaxretail.evaluation import episode_keys


def _record_all(tr: Transition):
    return {
        "obs": tr.obs,
        "action": tr.action,
        "reward": tr.reward,
        "choice": tr.info["choice"],
        "terminated": tr.terminated,
    }


def _trajectory(env, params, seeds, policy=random_policy):
    keys = episode_keys(seeds)
    run = jax.jit(lambda k: rollout(env, policy, k, params, keys, params.horizon, record=_record_all))
    _, final_state, rec = run(jax.random.key(7))
    _, init_state = jax.vmap(env.reset, in_axes=(0, None))(keys, params)
    return init_state, final_state, jax.tree.map(np.asarray, rec)


@pytest.mark.parametrize("exogenous", [False, True])
def test_dynamics_match_numpy_reference(exogenous):
    """Hype, saturation, deltas, history, rewards and utilities replayed in NumPy from the choices."""
    env = DynamicAssortment(exogenous=exogenous, horizon=30)
    params = env.default_params
    init, final, rec = _trajectory(env, params, range(5))
    n, d = params.num_items, params.num_features
    for e in range(5):
        price = np.asarray(init.price[e], np.float64)
        feats = np.asarray(init.static_features[e], np.float64)
        hype = np.asarray(init.hype[e], np.float64)
        sat = np.asarray(init.saturation[e], np.float64)
        h0, s0, hist = hype.copy(), sat.copy(), []
        dh, ds = np.zeros(n), np.zeros(n)
        for t in range(params.horizon):
            obs = rec["obs"][t, e]
            # paper rows: f1..fd, h, sigma, p, time, dh, dsigma, h - h0, sigma - sigma0
            np.testing.assert_allclose(obs[:d], feats, rtol=1e-6)
            np.testing.assert_allclose(obs[d], hype, rtol=1e-5)
            np.testing.assert_allclose(obs[d + 1], sat, rtol=1e-5)
            np.testing.assert_allclose(obs[d + 2], price, rtol=1e-6)
            np.testing.assert_allclose(obs[d + 3], 1 + 9 * t / params.horizon, rtol=1e-6)
            np.testing.assert_allclose(obs[d + 4], dh, atol=2e-5)
            np.testing.assert_allclose(obs[d + 5], ds, atol=2e-5)
            np.testing.assert_allclose(obs[d + 6], hype - h0, atol=2e-5)
            np.testing.assert_allclose(obs[d + 7], sat - s0, atol=2e-5)
            mask = rec["action"][t, e].astype(bool)
            assert mask.sum() == params.assortment_size
            c = int(rec["choice"][t, e])
            assert c == n or mask[c], "a customer bought an item that was not offered"
            assert rec["reward"][t, e] == pytest.approx(price[c] if c < n else 0.0, rel=1e-6)
            new_h, new_s, hist = transition(hype, sat, hist, c, n, exogenous)
            dh, ds, hype, sat = new_h - hype, new_s - sat, new_h, new_s
        np.testing.assert_allclose(np.asarray(final.hype[e]), hype, rtol=1e-5)
        np.testing.assert_allclose(np.asarray(final.saturation[e]), sat, rtol=1e-5)
        expected_hist = (hist[::-1] + [n] * 5)[:5]
        np.testing.assert_array_equal(np.asarray(final.history[e]), expected_hist)
        np.testing.assert_allclose(
            np.asarray(utilities(jax.tree.map(lambda x, e=e: x[e], final), params)),
            utility(price, feats, hype, sat),
            rtol=1e-4,
            atol=1e-4,
        )
        if exogenous:  # features never move: every observed hype/saturation row equals the first
            rows = rec["obs"][:, e, d : d + 2]
            np.testing.assert_array_equal(rows, np.broadcast_to(rows[0], rows.shape))
            np.testing.assert_array_equal(np.asarray(final.hype[e]), rows[0, 0])
            np.testing.assert_array_equal(rec["obs"][:, e, d + 4 :], 0.0)
    assert rec["terminated"][-1].all() and not rec["terminated"][:-1].any()


def test_hype_example_from_spec(env, params):
    """An item bought at lags 1 and 3 gets 1 + 0.02 - 0.005; no-purchase takes a slot."""
    from jaxretail.envs.assortment import hype_multiplier

    n = params.num_items
    m = hype_multiplier(jnp.array([3, n, 3, 5, n], jnp.int32), params)
    assert float(m[3]) == pytest.approx(1.015)
    assert float(m[5]) == pytest.approx(0.995)
    assert float(m[0]) == 1.0


def test_choice_frequencies_match_mnl(env, params):
    """Customers drawn at 40,000 steps of one state: chi-square against the MNL probabilities."""
    _, state = env.reset(jax.random.key(3), params)
    action = jnp.zeros(params.num_items, bool).at[jnp.array([0, 4, 9, 13])].set(True)
    theta = np.asarray(utilities(state, params), np.float64)
    # spread the utilities so that every option has a sizeable probability
    state = state.replace(hype=state.hype + (2.0 - theta) / 0.6)
    theta = np.asarray(utilities(state, params), np.float64)
    draws = 40_000
    states = jax.vmap(lambda t: state.replace(t=t))(jnp.arange(1, draws + 1, dtype=jnp.int32))
    choices = jax.jit(jax.vmap(lambda s: env.step_env(jax.random.key(0), s, action, params)[5]["choice"]))(
        states
    )
    counts = np.bincount(np.asarray(choices), minlength=params.num_items + 1)
    p = mnl_probs(theta, np.asarray(action))
    assert counts[~np.append(np.asarray(action), True)].sum() == 0
    support = p > 0
    chi2 = ((counts[support] - draws * p[support]) ** 2 / (draws * p[support])).sum()
    assert stats.chi2.sf(chi2, support.sum() - 1) > 1e-3, (counts, draws * p)


def test_package_observations_in_unit_box():
    env = DynamicAssortment(obs_mode="package")
    params = env.default_params
    paper = DynamicAssortment(obs_mode="paper")
    for policy in (random_policy, expert_policy(params)):
        _, _, rec = _trajectory(env, params, range(20), policy)
        _, _, raw = _trajectory(paper, paper.default_params, range(20), policy)
        obs = rec["obs"]
        # package rows [p, h, sigma, f1, f2, dh, dsigma, h-h0, sigma-sigma0] are paper rows / 10
        order = [4, 2, 3, 0, 1, 6, 7, 8, 9]
        np.testing.assert_allclose(obs[:, :, :9], np.clip(raw["obs"][:, :, order] / 10, -1, 1), atol=1e-6)
        assert obs.shape[2:] == (params.num_features + 8, params.num_items)
        assert np.all(np.abs(obs) <= 1.0)
        space = env.observation_space(params)
        assert bool(space.contains(obs[5, 0])) and not bool(space.contains(obs[5, 0] + 2.0))
        expected_time = np.broadcast_to(np.arange(1, params.horizon + 1)[:, None] / 80, obs.shape[:2])
        np.testing.assert_allclose(obs[:, :, -1, 0], expected_time, rtol=1e-6)


def test_reset_and_step_compile_once(env, params):
    reset = jax.jit(chex.assert_max_traces(env.reset, n=1))
    step = jax.jit(chex.assert_max_traces(env.step, n=1))
    action = jnp.zeros(params.num_items, bool).at[:4].set(True)
    for seed in range(3):
        obs, state = reset(jax.random.key(seed), params)
        for t in range(3):
            obs, state, *_ = step(jax.random.key(t), state, action, params)
    chex.assert_tree_all_finite(obs)


def test_determinism_and_common_random_numbers(env, params):
    """Same key -> same episode; an episode's outcome does not depend on its batch neighbours."""
    _, _, a = _trajectory(env, params, [1, 2, 3])
    _, _, b = _trajectory(env, params, [1, 2, 3])
    chex.assert_trees_all_equal(a, b)
    _, _, c = _trajectory(env, params, [9, 2, 4, 1])
    np.testing.assert_array_equal(c["reward"][:, 3], a["reward"][:, 0])
    np.testing.assert_array_equal(c["reward"][:, 1], a["reward"][:, 1])


def test_common_random_numbers_across_policies(env, params):
    """At step 1 two policies face the same uniform: offering a superset of the bought item
    with the same weights keeps the purchase (inverse-CDF coupling)."""
    _, state = env.reset(jax.random.key(11), params)
    mask = jnp.zeros(params.num_items, bool).at[jnp.array([1, 2, 3, 4])].set(True)
    out1 = env.step_env(jax.random.key(0), state, mask, params)
    out2 = env.step_env(jax.random.key(99), state, mask, params)
    assert int(out1[5]["choice"]) == int(out2[5]["choice"])


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"num_items": 3, "assortment_size": 4}, "assortment_size"),
        ({"assortment_size": 0}, "assortment_size"),
        ({"horizon": 0}, "horizon"),
        ({"horizon": -5}, "horizon"),
        ({"obs_mode": "raw"}, "obs_mode"),
        ({"feature_weights": [0.1, 0.2, 0.3]}, "feature_weights"),
        ({"draw_low": 5.0, "draw_high": 1.0}, "draw_low"),
        ({"unknown_field": 1.0}, "unknown_field"),
    ],
)
def test_bad_config_raises_clear_error(kwargs, field):
    with pytest.raises(ValueError, match=field):
        make_params(**kwargs)
    with pytest.raises(ValueError, match=field):
        DynamicAssortment(**kwargs)


def test_extreme_utilities_stay_finite():
    """Hype of 1e4 (exp overflow in naive float32) still gives finite rewards and observations."""
    env = DynamicAssortment(horizon=5)
    params = env.default_params
    _, state = env.reset(jax.random.key(0), params)
    state = state.replace(hype=state.hype.at[0].set(1e4))
    action = jnp.zeros(params.num_items, bool).at[:4].set(True)
    obs, state, reward, *_rest, info = env.step_env(jax.random.key(0), state, action, params)
    chex.assert_tree_all_finite((obs, reward, info["expected_revenue"]))
    assert int(info["choice"]) == 0


def test_params_pass_through_jax_tree_operations():
    """Trees JAX builds from params that are not parameters (an ``in_axes`` spec of zeros, a mask, a
    gradient, a complex-valued map) are accepted: the node's unflatten does not validate, while a user's
    construction or ``.replace`` with a concrete bad value is refused and traced values pass."""
    env = DynamicAssortment(num_items=6, assortment_size=2, horizon=10)
    p = env.default_params
    spec = jax.tree.map(lambda _: 0, p)
    assert spec.saturation_growth == 0 and spec.num_items == 6
    mask = jax.tree.map(jnp.isnan, p)
    assert not bool(mask.price_weight)
    grad = jax.grad(lambda q: env.reset(jax.random.key(0), q)[0].sum())(p)
    assert np.isfinite(float(grad.draw_high))
    assert jax.tree.map(lambda x: x * 1j, p).price_weight == -0.8j
    with pytest.raises(ValueError, match="saturation_growth"):
        DynamicAssortment(num_items=6, assortment_size=2, horizon=10, saturation_growth=0.0)
    with pytest.raises(ValueError, match="price_weight"):  # built directly: the same rules
        type(p)(num_items=6, assortment_size=2, horizon=10, price_weight=float("nan"))
    with pytest.raises(ValueError, match="draw_low"):
        p.replace(draw_low=-1.0)
    swept = jax.vmap(lambda w: p.replace(saturation_growth=w).saturation_growth)(jnp.asarray([0.0, 2.0]))
    np.testing.assert_allclose(np.asarray(swept), [0.0, 2.0])  # traced values are not checked
