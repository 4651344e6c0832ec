"""The pricing state's ring buffers against the shifted look-back window they replace, the fused
uniforms against jax.random.uniform, and the one-competitor MNL share against mnl.probs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxretail.choice import mnl
from jaxretail.choice import pricing as choice_pricing
from jaxretail.core import threefry
from jaxretail.envs.pricing import DynamicPricing, make_params, ordered_history, ordered_lags
from jaxretail.envs.pricing.types import HISTORY_FEATURES

ENV = DynamicPricing()


def _rollout(params, days=17, n=6, seed=0):
    """Obs, rewards, infos and states of ``days`` steps of ``n`` SKUs (random, some invalid actions)."""
    obs0, state = jax.vmap(ENV.reset, in_axes=(0, None))(jax.random.split(jax.random.key(seed), n), params)

    def day(state, key):
        k_a, k_s = jax.random.split(key)
        if params.action_type == "discrete":
            a = jax.random.randint(k_a, (n,), -1, params.num_prices + 1)
        else:
            a = jax.random.uniform(k_a, (n, 1), minval=-1.1, maxval=1.1)
        obs, new, r, _, _, info = jax.vmap(ENV.step_env, in_axes=(0, 0, 0, None))(
            jax.random.split(k_s, n), state, a, params
        )
        return new, (obs, r, info, state)

    _, out = jax.lax.scan(day, state, jax.random.split(jax.random.key(seed + 1), days))
    return obs0, state, jax.tree.map(np.asarray, out)


@pytest.mark.parametrize(
    "kw",
    [
        dict(window=7, lag=1, reward="drcr"),
        dict(window=5, lag=3, reward="dpcr", relative=True),  # window and lag coprime: rows wrap apart
        dict(window=2, lag=9, reward="drcr"),
        dict(window=1, lag=2, reward="dpcr", mode="markdown", num_prices=9, initial_stock=1e6),
    ],
)
def test_ring_buffers_replay_the_shifted_window(kw):
    """Reference: the window kept oldest -> newest and shifted by one row a day (the layout before
    the ring buffers). Every observation's history block must equal it exactly, and DRCR must compare
    with the rate of exactly ``lag`` days before."""
    params = make_params(horizon=40, **kw)
    W, F = params.window, len(HISTORY_FEATURES)
    obs0, state0, (obs, r, info, states) = _rollout(params)
    window = np.asarray(jax.vmap(ordered_history)(state0))  # reset stores it in age order
    lags = np.asarray(jax.vmap(ordered_lags)(state0))
    np.testing.assert_array_equal(window, np.asarray(state0.history))
    np.testing.assert_array_equal(np.asarray(obs0)[:, : W * F], window.reshape(len(window), -1))
    assert params.reward == kw["reward"] and params.lag == kw["lag"]
    basis = "pcr" if params.reward == "dpcr" else "rcr"
    for d in range(obs.shape[0]):
        # the reward of day d compares with the oldest of the last `lag` days
        before, ok_before = lags[:, 0, 0], lags[:, 0, 1] > 0
        now, ok_now = info[basis][d], info["uv"][d] > 0
        ok = ok_now & ok_before & ((before != 0) if params.relative else True)
        diff = (now - before) / np.where(ok, np.abs(before), 1.0) if params.relative else now - before
        scale = 1.0 if params.relative else 1.0 / np.asarray(state0.sku.list_price)
        np.testing.assert_allclose(r[d], np.where(ok, diff, 0.0) * scale, rtol=1e-6, atol=1e-7)
        # the newest row is day d's features (price_rel and competitor_rel spot-checked), shifted in
        row = obs[d][:, (W - 1) * F : W * F]
        np.testing.assert_allclose(row[:, 0], info["price"][d] / np.asarray(state0.sku.list_price), rtol=1e-6)
        np.testing.assert_array_equal(row[:, F - 1], np.asarray(states.competitor_rel[d]))
        window = np.concatenate([window[:, 1:], row[:, None]], axis=1)
        lags = np.concatenate([lags[:, 1:], np.stack([now, ok_now], 1)[:, None]], axis=1)
        np.testing.assert_array_equal(obs[d][:, : W * F], window.reshape(len(window), -1))


def test_threefry_uniform_is_jax_random_uniform_bit_for_bit():
    keys = jax.random.split(jax.random.key(3), 2000)
    for n, lo, hi in [(4, 1e-7, 1.0 - 1e-7), (1, 0.0, 1.0), (7, -2.5, 3.0)]:
        ref = jax.vmap(lambda k, n=n, lo=lo, hi=hi: jax.random.uniform(k, (n,), jnp.float32, lo, hi))(keys)
        got = jax.jit(jax.vmap(lambda k, n=n, lo=lo, hi=hi: threefry.uniform(k, n, lo, hi)))(keys)
        np.testing.assert_array_equal(np.asarray(got).view(np.uint32), np.asarray(ref).view(np.uint32))
        # eagerly too (regression: op by op the affine map rounded twice, 1 ulp off when minval != 0)
        eager = jax.vmap(lambda k, n=n, lo=lo, hi=hi: threefry.uniform(k, n, lo, hi))(keys)
        np.testing.assert_array_equal(np.asarray(eager).view(np.uint32), np.asarray(ref).view(np.uint32))
    raw = jax.random.PRNGKey(11)  # legacy uint32 [2] keys too
    np.testing.assert_array_equal(threefry.uniform(raw, 4), jax.random.uniform(raw, (4,), jnp.float32))
    rbg = jax.random.key(5, impl="rbg")  # another generator: delegated to jax.random
    assert not threefry.fusable(rbg)
    np.testing.assert_array_equal(threefry.uniform(rbg, 3), jax.random.uniform(rbg, (3,), jnp.float32))


def test_one_competitor_share_matches_mnl_probs():
    rng = np.random.default_rng(0)
    a, b, p = rng.normal(0, 3, 500), rng.uniform(0.01, 2, 500), rng.uniform(0, 10, 500)
    v = rng.normal(0, 3, (500, 1))
    got = jax.vmap(lambda a, b, p, v: choice_pricing.purchase_probability(p, a, b, v))(a, b, p, v)
    u = np.concatenate([(a - b * p)[:, None], v], 1)
    ref = jax.vmap(lambda u: mnl.probs(u, jnp.ones(2, bool))[0])(u)
    np.testing.assert_allclose(got, ref, rtol=2e-6, atol=1e-30)
    extreme = choice_pricing.purchase_probability(jnp.float32(0.0), 5e3, 1.0, jnp.asarray([-5e3]))
    assert np.isfinite(float(extreme)) and float(extreme) == pytest.approx(1.0)


def test_ordered_readers_of_a_batched_state_read_each_sku():
    """Regression: on a state of many SKUs (``t [N]``) the readers took the SKU axis for the ring."""
    env = DynamicPricing(window=3, lag=2)
    p = env.default_params
    _, s = jax.vmap(env.reset, (0, None))(jax.random.split(jax.random.key(0), 4), p)
    step = jax.vmap(env.step, (0, 0, 0, None))
    for day in range(4):  # different ring positions once markdown-free SKUs advance together
        _, s, *_ = step(jax.random.split(jax.random.key(day + 1), 4), s, jnp.arange(4), p)
    s = s.replace(t=s.t + jnp.arange(4))  # and different t per SKU
    for read in (ordered_history, ordered_lags):
        np.testing.assert_array_equal(read(s), jax.vmap(read)(s))
        twice = jax.tree.map(lambda x: jnp.stack([x, x]), s)  # two leading batch axes
        np.testing.assert_array_equal(read(twice)[1], jax.vmap(read)(s))


@pytest.mark.parametrize("window", [1, 3, 7])
def test_last_day_is_the_newest_row_in_age_order(window):
    from jaxretail.envs.pricing.env import last_day

    env = DynamicPricing(window=window)
    p = env.default_params
    _, s = env.reset(jax.random.key(0), p)
    for day in range(2 * window + 2):
        np.testing.assert_array_equal(last_day(s), ordered_history(s)[-1])
        _, s, *_ = env.step(jax.random.key(day), s, jnp.int32(day % 5), p)
