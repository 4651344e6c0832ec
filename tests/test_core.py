"""Environment core: spaces, MNL maths, rollout, auto-reset and adapters."""

import subprocess
import sys
import textwrap

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxretail.choice import mnl
from jaxretail.core import LegacyStepAPI, Transition, rollout, spaces
from jaxretail.envs.assortment import DynamicAssortment, greedy_policy, random_policy
from jaxretail.evaluation import episode_keys


def test_spaces_sample_and_contains():
    key = jax.random.key(0)
    d = spaces.Discrete(5)
    assert bool(d.contains(d.sample(key))) and not bool(d.contains(5))
    b = spaces.Box(-1.0, 1.0, (3, 2))
    x = b.sample(key)
    assert x.shape == (3, 2) and bool(b.contains(x)) and not bool(b.contains(x + 3))
    s = spaces.FixedSizeSubset(7, 3)
    m = s.sample(key)
    assert m.shape == (7,) and int(m.sum()) == 3 and bool(s.contains(m))
    assert not bool(s.contains(jnp.ones(7, bool)))
    with pytest.raises(ValueError, match="k=9"):
        spaces.FixedSizeSubset(4, 9)
    with pytest.raises(ValueError, match="n=0"):
        spaces.Discrete(0)


def test_mnl_closed_form_and_stability():
    u = jnp.array([0.5, -1.0, 2.0, 0.0])
    a = jnp.array([1, 0, 1, 1])
    w = np.exp(np.array([0.5, -1.0, 2.0, 0.0])) * np.array([1, 0, 1, 1])
    expected = np.append(w, 1.0) / (1 + w.sum())
    np.testing.assert_allclose(mnl.probs(u, a), expected, rtol=1e-6)
    np.testing.assert_allclose(np.exp(mnl.log_probs(u, a)), expected, rtol=1e-6)
    p = jnp.array([3.0, 4.0, 5.0, 6.0])
    assert float(mnl.expected_revenue(u, a, p)) == pytest.approx(
        float((w * p).sum() / (1 + w.sum())), rel=1e-6
    )
    huge = jnp.array([1e4, -1e4, 3e3, 0.0])
    chex.assert_tree_all_finite(
        (
            mnl.probs(huge, a),
            mnl.log_probs(huge, a)[jnp.array([0, 2, 3, 4])],
            mnl.expected_revenue(huge, a, p),
        )
    )
    assert float(mnl.probs(huge, a)[0]) == pytest.approx(1.0)
    # shifted weights: proportional to the closed form, largest equal to 1, finite for huge utilities
    wt, w0 = mnl.weights(u, a)
    np.testing.assert_allclose(np.append(wt, w0) / (wt.sum() + w0), expected, rtol=1e-6)
    assert float(jnp.max(jnp.append(wt, w0))) == 1.0
    chex.assert_tree_all_finite(mnl.weights(huge, a))
    # inverse-CDF sampler: the uniform partitions [0, 1) into the option probabilities, in order
    cuts = np.cumsum(expected)
    for q in np.linspace(0.001, 0.999, 37):
        expected_choice = int(np.searchsorted(cuts, 1 - q))
        assert int(mnl.sample(jnp.asarray(q), u, a)) == expected_choice


def test_rollout_shapes_and_auto_reset():
    env = DynamicAssortment(horizon=3)
    params = env.default_params
    keys = episode_keys(range(4))

    def rec(tr: Transition):
        return {"t": tr.obs[:, 5, 0], "term": tr.terminated, "final": tr.info["final_observation"][:, 5, 0]}

    run = jax.jit(lambda k: rollout(env, greedy_policy, k, params, keys, 7, record=rec, auto_reset=True))
    _, state, out = run(jax.random.key(0))
    # paper time row 1 + 9 (t - 1) / T cycles through the episodes: 3 decisions then a reset
    np.testing.assert_allclose(out["t"][:, 0], [1, 4, 7, 1, 4, 7, 1])
    np.testing.assert_array_equal(out["term"][:, 0], [0, 0, 1, 0, 0, 1, 0])
    np.testing.assert_allclose(out["final"][2, 0], 10.0)
    assert state.t.shape == (4,)


def test_legacy_step_api_five_tuple(env, params, key):
    legacy = LegacyStepAPI(env)
    obs, state = legacy.reset(key, params)
    out = legacy.step(key, state, greedy_policy(None, obs, state, params), params)
    assert len(out) == 5
    assert set(out[4]) >= {"terminated", "truncated", "final_observation", "choice"}
    assert legacy.default_params is env.default_params


def test_gymnasium_vector_env():
    gymnasium = pytest.importorskip("gymnasium")
    from jaxretail.core import make_gymnasium_vector_env

    env = DynamicAssortment(horizon=2)
    venv = make_gymnasium_vector_env(env, num_envs=3, seed=1)
    assert isinstance(venv, gymnasium.vector.VectorEnv)
    obs, _ = venv.reset(seed=2)
    assert obs.shape == (3, 10, 20) and venv.observation_space.contains(obs)
    action = np.zeros((3, 20), np.int8)
    action[:, :4] = 1
    assert venv.action_space.contains(action)
    for _ in range(2):
        obs, reward, term, trunc, info = venv.step(action)
        assert reward.shape == (3,) and not trunc.any()
    assert term.all() and "final_obs" in info
    np.testing.assert_allclose(obs[:, 5], 1.0)  # already the first observation of new episodes


def test_float64_mode_agrees_with_float32():
    """The same rollout under JAX_ENABLE_X64=1 (subprocess) gives the same episode returns."""
    code = textwrap.dedent(
        """
        import jax, numpy as np
        from jaxretail.envs.assortment import DynamicAssortment, expert_policy, random_policy
        from jaxretail.evaluation import evaluate_policy
        env = DynamicAssortment(horizon=20); p = env.default_params
        r = [evaluate_policy(env, pol, p, range(1, 9)).sum(1) for pol in (expert_policy(p), random_policy)]
        print(jax.numpy.zeros(1).dtype, *np.concatenate(r).round(3).tolist())
        """
    )
    outs = []
    for x64 in ("0", "1"):
        res = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**__import__("os").environ, "JAX_ENABLE_X64": x64, "JAX_PLATFORMS": "cpu"},
        )
        outs.append(res.stdout.split())
    assert outs[0][0] == "float32" and outs[1][0] == "float64"
    a, b = np.array(outs[0][1:], float), np.array(outs[1][1:], float)
    # identical customer uniforms; a purchase may flip only when a uniform sits within rounding of a cut
    assert np.mean(np.isclose(a, b, rtol=1e-4)) >= 0.85


def test_random_policy_rollout_smoke(env, params):
    """Random rollout over 8 episodes: finite, every action feasible, rewards are prices or zero."""
    keys = episode_keys(range(8))

    def rec(tr):
        return tr.action, tr.reward, tr.obs

    _, _, (actions, rewards, obs) = jax.jit(
        lambda k: rollout(env, random_policy, k, params, keys, params.horizon, record=rec)
    )(jax.random.key(3))
    chex.assert_tree_all_finite((rewards, obs))
    space = env.action_space(params)
    assert bool(jax.vmap(jax.vmap(space.contains))(actions).all())
    prices = np.asarray(obs[:, :, 4, :])
    r = np.asarray(rewards)
    assert np.all((r == 0) | np.isclose(prices, r[..., None]).any(-1))
