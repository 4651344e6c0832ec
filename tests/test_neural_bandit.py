"""Neural Boltzmann bandit: learns a planted reward model; the policy is softmax(r_hat / T)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jaxretail.agents.bandits import neural


def _planted(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    w = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [-1.0, -1.0, 0]], np.float32)
    a = rng.integers(0, 4, n)
    r = (np.einsum("nd,nd->n", x, w[a]) + 0.05 * rng.normal(size=n)).astype(np.float32)
    return x, a, r, w


def test_learns_planted_rewards_and_best_arm():
    x, a, r, w = _planted(20_000, 0)
    state = neural.init(jax.random.key(0), 3, 4, hidden=(32,), learning_rate=0.01)
    update = jax.jit(neural.update, static_argnames=("epochs", "batch_size"))
    state, losses = update(
        state, jax.random.key(1), jnp.asarray(x), jnp.asarray(a), jnp.asarray(r), epochs=5, batch_size=256
    )
    assert float(losses[-20:].mean()) < 0.1 * float(losses[:5].mean())
    xt, *_ = _planted(2000, 1)
    greedy = np.argmax(np.asarray(neural.predict(state, jnp.asarray(xt))), axis=1)
    assert np.mean(greedy == np.argmax(xt @ w.T, axis=1)) >= 0.9


def test_boltzmann_sampling_matches_softmax():
    state = neural.init(jax.random.key(2), 3, 4)
    ctx = jnp.ones((20_000, 3))
    probs = np.asarray(neural.action_probabilities(state, ctx[:1], temperature=0.1))[0]
    np.testing.assert_allclose(
        probs, np.asarray(jax.nn.softmax(neural.predict(state, ctx[:1])[0] / 0.1)), rtol=1e-5
    )
    arms = np.asarray(neural.act(jax.random.key(3), state, ctx, temperature=0.1))
    counts = np.bincount(arms, minlength=4)
    keep = probs * len(arms) >= 5
    chi2 = ((counts[keep] - len(arms) * probs[keep]) ** 2 / (len(arms) * probs[keep])).sum()
    assert stats.chi2.sf(chi2, max(keep.sum() - 1, 1)) > 1e-3


def test_bad_arguments():
    with pytest.raises(ValueError, match="learning_rate"):
        neural.init(jax.random.key(0), 3, 4, learning_rate=0.0)
    state = neural.init(jax.random.key(0), 3, 4)
    with pytest.raises(ValueError, match="batch_size"):
        neural.update(
            state, jax.random.key(0), jnp.ones((10, 3)), jnp.zeros(10, jnp.int32), jnp.ones(10), batch_size=64
        )
