"""LinUCB / LinTS statistics against NumPy least squares, planted-model arm choice, batching."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxretail.agents.bandits import linear


def _data(n=3000, d=5, k=4, seed=0):
    rng = np.random.default_rng(seed)
    x = np.c_[np.ones(n), rng.normal(size=(n, d - 1))].astype(np.float32)
    a = rng.integers(0, k, n)
    theta = rng.normal(size=(k, d)).astype(np.float32)
    r = (np.einsum("nd,nd->n", x, theta[a]) + 0.1 * rng.normal(size=n)).astype(np.float32)
    return x, a, r, theta


def test_statistics_equal_numpy_ridge_fit():
    x, a, r, _ = _data()
    state = linear.update(linear.init(4, 5), jnp.asarray(x), jnp.asarray(a), jnp.asarray(r))
    theta, _ = linear.posterior(state, regularization=1.0)
    for k in range(4):
        xs, rs = x[a == k].astype(np.float64), r[a == k].astype(np.float64)
        np.testing.assert_allclose(state.precision[k], xs.T @ xs, rtol=1e-4, atol=1e-2)
        ridge = np.linalg.solve(xs.T @ xs + np.eye(5), xs.T @ rs)
        np.testing.assert_allclose(theta[k], ridge, rtol=1e-4, atol=1e-4)
    # width^2 = x^T (A + I)^{-1} x
    _, width = linear.mean_and_width(state, jnp.asarray(x[:7]))
    inv = np.linalg.inv(np.asarray(state.precision[2], np.float64) + np.eye(5))
    np.testing.assert_allclose(width[:, 2] ** 2, np.einsum("nd,de,ne->n", x[:7], inv, x[:7]), rtol=1e-3)


def test_batched_equals_one_at_a_time_and_forgetting():
    x, a, r, _ = _data(n=200)
    batched = linear.update(linear.init(4, 5), jnp.asarray(x), jnp.asarray(a), jnp.asarray(r))
    step = jax.jit(lambda s, xi, ai, ri: linear.update(s, xi[None], ai[None], ri[None]))
    seq = linear.init(4, 5)
    for i in range(200):
        seq = step(seq, jnp.asarray(x[i]), jnp.asarray(a[i]), jnp.asarray(r[i]))
    np.testing.assert_allclose(seq.precision, batched.precision, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(seq.reward_sum, batched.reward_sum, rtol=1e-4, atol=1e-3)
    # forgetting: two batches with gamma = gamma * stats(first) + stats(second)
    half = linear.update(linear.init(4, 5), jnp.asarray(x[:100]), jnp.asarray(a[:100]), jnp.asarray(r[:100]))
    both = linear.update(
        half, jnp.asarray(x[100:]), jnp.asarray(a[100:]), jnp.asarray(r[100:]), forgetting=0.5
    )
    second = linear.update(
        linear.init(4, 5), jnp.asarray(x[100:]), jnp.asarray(a[100:]), jnp.asarray(r[100:])
    )
    np.testing.assert_allclose(both.precision, 0.5 * half.precision + second.precision, rtol=1e-5)


@pytest.mark.parametrize("agent", ["ucb", "thompson"])
def test_planted_linear_model_best_arm(agent):
    """After learning from uniformly logged data, >= 95 % of fresh contexts get their best arm."""
    x, a, r, theta = _data(n=20_000, seed=1)
    state = linear.update(linear.init(4, 5), jnp.asarray(x), jnp.asarray(a), jnp.asarray(r))
    xt, *_ = _data(n=2000, seed=2)
    best = np.argmax(xt @ theta.T, axis=1)
    if agent == "ucb":
        chosen = linear.act_ucb(state, jnp.asarray(xt), alpha=0.5)
    else:
        chosen = linear.act_thompson(jax.random.key(0), state, jnp.asarray(xt), alpha=0.5)
    assert np.mean(np.asarray(chosen) == best) >= 0.95


def test_thompson_draws_have_posterior_spread():
    x, a, r, _ = _data(n=400)
    state = linear.update(linear.init(4, 5), jnp.asarray(x), jnp.asarray(a), jnp.asarray(r))
    ctx = jnp.asarray(x[:1].repeat(20_000, 0))
    draws = np.asarray(linear.thompson_scores(jax.random.key(3), state, ctx, alpha=2.0))
    mean, width = linear.mean_and_width(state, ctx[:1])
    np.testing.assert_allclose(draws.mean(0), np.asarray(mean[0]), atol=4 * 2.0 * float(width.max()) / 100)
    np.testing.assert_allclose(draws.std(0), 2.0 * np.asarray(width[0]), rtol=0.03)


def test_init_rejects_bad_sizes():
    with pytest.raises(ValueError, match="num_arms"):
        linear.init(0, 3)


def test_frozen_posterior_scores_and_acts_as_the_state_without_lapack():
    """freeze() factorises once: the same means, widths, UCB arms and Thompson draws (same key) as the
    statistics, to float rounding, and the acting program holds no LAPACK custom call (so a DeviceMap
    evaluation keeps every host device); a regularization cannot be re-applied to a frozen posterior."""
    x, a, r, _ = _data(n=3000)
    state = linear.update(linear.init(4, 5), jnp.asarray(x), jnp.asarray(a), jnp.asarray(r), 0.9)
    frozen = linear.freeze(state, regularization=2.0)
    ctx = jnp.asarray(x[:500])
    got, want = linear.mean_and_width(frozen, ctx), linear.mean_and_width(state, ctx, 2.0)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=2e-5, atol=1e-6)
    key = jax.random.key(4)
    np.testing.assert_allclose(
        linear.thompson_scores(key, frozen, ctx, 0.7), linear.thompson_scores(key, state, ctx, 0.7, 2.0),
        rtol=2e-5, atol=1e-5,
    )  # fmt: skip
    assert np.array_equal(linear.act_ucb(frozen, ctx, 0.5), linear.act_ucb(state, ctx, 0.5, 2.0))
    text = jax.jit(lambda f, c, k: linear.act_thompson(k, f, c, 0.7)).lower(frozen, ctx, key).as_text()
    assert "custom_call" not in text
    with pytest.raises(ValueError, match="regularization=2.0"):
        linear.ucb_scores(frozen, ctx, 0.5, 2.0)
    with pytest.raises(ValueError, match="regularization"):
        linear.freeze(state, 0.0)
    for bad in (0.0, -1.0, float("nan")):  # the statistics' ridge weight is checked on every path
        with pytest.raises(ValueError, match="regularization"):
            linear.mean_and_width(state, ctx, bad)
        with pytest.raises(ValueError, match="LinearPosterior"):
            linear.ucb_scores(frozen, ctx, 0.5, bad)
