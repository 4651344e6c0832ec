"""Offer environment (Table-3 rewards, episodes), revenue of offers, and the DQN preset learning."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxretail.core.vector import batched
from jaxretail.envs.offers import REWARD_TABLE, OfferEnv, make_params, outcomes, summary
from jaxretail.jobs import offers as op


def _data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 5, n)
    features = np.eye(5, dtype=np.float32)[labels] + 0.1 * rng.normal(size=(n, 5)).astype(np.float32)
    return features, labels


def test_env_rewards_follow_table_and_episodes_end():
    features, labels = _data()
    env, params = OfferEnv(), make_params(features, labels, episode_length=3)
    venv = batched(env, params, 16)
    step = jax.jit(venv.step)
    obs, state = jax.jit(venv.reset)(jax.random.key(0))
    np.testing.assert_array_equal(obs, features[np.asarray(state.index)])
    actions = jnp.arange(16) % 5
    terms = []
    for t in range(3):
        idx = np.asarray(state.index)
        out, state = step(jax.random.key(t + 1), state, actions)
        np.testing.assert_array_equal(out.reward, REWARD_TABLE[labels[idx], np.asarray(actions)])
        terms.append(np.asarray(out.terminated))
    assert not np.any(terms[0]) and not np.any(terms[1]) and np.all(terms[2])
    # the invalid-action rule: an error outside jit; inside jit clipped into [0, 5), flagged, finite
    _, s0 = env.reset(jax.random.key(0), params)
    for bad in (7, -1):
        with pytest.raises(ValueError, match="action must be an integer in"):
            env.step_env(jax.random.key(1), s0, jnp.asarray(bad), params)
        _, s1, r, *_, info = jax.jit(env.step_env)(jax.random.key(1), s0, jnp.asarray(bad), params)
        label = int(np.asarray(params.labels)[int(s0.index)])
        assert bool(info["invalid_action"]) and float(r) == REWARD_TABLE[label, min(max(bad, 0), 4)]
    for wrong in (jnp.float32(2.5), jnp.array([2])):  # a float or a vector is never taken as a level
        with pytest.raises(ValueError, match="action"):
            env.step_env(jax.random.key(1), s0, wrong, params)
    with pytest.raises(ValueError, match="labels must lie in 0..4"):
        make_params(features, labels + 5)


def test_state_of_other_params_is_refused_or_flagged():
    """A state whose sample index lies past these params' samples (JAX would clamp the index and read
    another sample's label): a ValueError outside jit; inside jit, reward 0, label -1 and a flag."""
    features, labels = _data(n=64)
    env, big, small = OfferEnv(), make_params(features, labels), make_params(features[:5], labels[:5])
    _, state = env.reset(jax.random.key(0), big)
    state = state.replace(index=jnp.asarray(40, jnp.int32))
    with pytest.raises(ValueError, match=r"state.index=40 is outside these params' samples 0..4"):
        env.step_env(jax.random.key(1), state, jnp.asarray(1), small)
    _, _, r, *_, info = jax.jit(env.step_env)(jax.random.key(1), state, jnp.asarray(1), small)
    assert bool(info["invalid_state"]) and float(r) == 0.0 and int(info["label"]) == -1
    _, _, r, *_, info = jax.jit(env.step_env)(jax.random.key(1), state, jnp.asarray(1), big)
    assert not bool(info["invalid_state"]) and float(r) == REWARD_TABLE[labels[40], 1]


def test_revenue_against_brute_force_and_oracle_bounds():
    rng = np.random.default_rng(0)
    n = 400
    d_min = np.where(rng.random(n) < 0.4, 0.0, rng.random(n) * 0.6).astype(np.float32)
    price, qty, cost = (
        rng.uniform(1, 5, n).astype(np.float32),
        rng.integers(1, 3, n),
        np.full(n, 0.8, np.float32),
    )
    levels = np.array([0.0, 0.1, 0.2, 0.3], np.float32)
    act = rng.integers(0, 5, n)
    out = jax.tree.map(np.asarray, outcomes(jnp.asarray(act), d_min, price, jnp.asarray(qty), cost, levels))
    d = np.where(act > 0, levels[np.maximum(act - 1, 0)], 0.0)
    buy = d >= d_min
    np.testing.assert_allclose(out["revenue"], buy * price * (1 - d) * qty, rtol=1e-6)
    np.testing.assert_allclose(out["margin"], buy * (price * (1 - d) - cost) * qty, rtol=1e-5, atol=1e-6)
    # oracle: the smallest sufficient level -> the largest conversion with the least discount spend
    lab = np.where(d_min <= 0.3, 1 + np.argmax(levels[None, :] >= d_min[:, None], axis=1), 0)
    cols = (d_min, price, jnp.asarray(qty), cost, levels)
    ora = outcomes(jnp.asarray(lab), *cols)
    for a in range(5):
        other = outcomes(jnp.full(n, a), *cols)
        conv_o, conv_a = np.asarray(ora["conversion"]), np.asarray(other["conversion"])
        assert np.all(conv_a <= conv_o)
        both = conv_a > 0
        assert np.all(
            np.asarray(ora["discount_spend"])[both] <= np.asarray(other["discount_spend"])[both] + 1e-6
        )
    s = summary(ora, outcomes(jnp.zeros(n, jnp.int32), *cols))
    assert float(s["conversion_diff"]) > 0 and np.isfinite(float(s["revenue_diff_se"]))


def test_paper_preset_learns_a_separable_task():
    features, labels = _data(256, seed=1)
    cfg = op.dqn_preset(600, hidden=(32, 32, 32, 32), learning_starts=64, target_update_interval=100)
    assert cfg.buffer_size == 50_000 and cfg.batch_size == 64 and cfg.loss == "mse"
    out = op.train_dqn(features, labels, jax.random.key(0), cfg, gammas=(0.95, 0.0), progress=False)
    for g in range(2):
        q = op.q_values(cfg, jax.tree.map(lambda x, g=g: x[g], out["params"]), features)
        assert float(jnp.mean(jnp.argmax(q, 1) == labels)) > 0.9
