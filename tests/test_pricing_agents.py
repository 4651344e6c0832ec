"""Pricing agents: DQfD's large-margin loss and n-step items against hand-computed cases; DQfD and
DDPG reach the closed-form optimal price of a single SKU (vmapped over seeds)."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxretail.agents import ddpg, demos, dqfd
from jaxretail.agents.training import make_train
from jaxretail.choice import pricing as choice_pricing
from jaxretail.core.vector import batched
from jaxretail.envs.pricing import (
    DynamicPricing,
    action_price,
    make_params,
    make_sku,
    policies,
    price_grid,
    protocol,
)

ENV = DynamicPricing()
SKU = make_sku(list_price=100.0, p_min=40.0, p_max=100.0, base_uv=500.0, conversion=0.05, slope=2.5)


def closed_form_price():
    # no shocks and the competitor at its mean: P* from the Lambert-W formula, clipped to the bounds
    v = SKU.competitor_intercept - SKU.price_slope * SKU.competitor_price * SKU.list_price
    p = choice_pricing.optimal_price(SKU.intercept, SKU.price_slope, v[None])
    return float(jnp.clip(p, SKU.p_min, SKU.p_max))


def test_large_margin_loss_hand_cases():
    q = jnp.array([[1.0, 2.0, 0.5], [1.0, 2.0, 0.5], [3.0, 0.0, 2.5]])
    out = demos.large_margin_loss(q, jnp.array([0, 1, 0]), 0.8)
    # max(1, 2.8, 1.3) - 1 = 1.8;  max(1.8, 2, 1.3) - 2 = 0;  max(3, 0.8, 3.3) - 3 = 0.3
    np.testing.assert_allclose(out, [1.8, 0.0, 0.3], atol=1e-6)


def test_nstep_items_and_returns_hand_case():
    T, n, gamma = 5, 3, 0.5
    r = jnp.array([1.0, 2.0, 4.0, 8.0, 16.0])[:, None]
    term = jnp.array([False, True, False, False, False])[:, None]
    trunc = jnp.zeros((T, 1), bool)
    obs = jnp.arange(T, dtype=jnp.float32)[:, None, None]
    items = demos.nstep_items(obs, jnp.zeros((T, 1), jnp.int32), r, term, trunc, obs + 10.0, n)
    # t=0: window stops at the termination at t=1 -> G = 1 + 0.5*2, m = 2, no bootstrap
    # t=2: full window 4 + 0.5*8 + 0.25*16 = 12, m = 3, bootstrap from final_obs[4] = 14
    # t=3: log ends after t=4 -> G = 8 + 0.5*16 = 16, m = 2, bootstrap from 14 (log end = truncation)
    np.testing.assert_allclose(demos.nstep_return(items, gamma), [2.0, 2.0, 12.0, 16.0, 16.0])
    np.testing.assert_array_equal(items.nstep_len, [2, 1, 3, 2, 1])
    np.testing.assert_array_equal(items.nstep_discount, [0, 0, 1, 1, 1])
    np.testing.assert_array_equal(items.nstep_obs[:, 0], [11, 11, 14, 14, 14])
    # DQfD's n-step target with a constant Q' = c: y_n = G + gamma^m d_n c
    c = 3.0
    y = demos.nstep_return(items, gamma) + gamma**items.nstep_len * items.nstep_discount * c
    np.testing.assert_allclose(y, [2.0, 2.0, 12.0 + 0.125 * 3, 16.0 + 0.25 * 3, 16.0 + 0.5 * 3])


def test_dqfd_greedy_price_is_the_closed_form_optimum():
    params = make_params(reward="rcr", num_prices=6, horizon=20, sku=SKU, reward_scale=100.0)
    # demonstrations: the oracle with half of its days priced at random
    logs = protocol.collect_logs(
        ENV,
        policies.epsilon_policy(policies.optimal_policy, 0.5),
        jax.random.key(0),
        params,
        jax.random.split(jax.random.key(1), 8),
        20,
    )
    items = demos.nstep_items(
        logs["obs"],
        logs["action"],
        logs["reward"],
        logs["terminated"],
        logs["truncated"],
        logs["final_obs"],
        3,
    )
    cfg = dqfd.DQfDConfig(
        num_updates=250,
        pretrain_updates=50,
        num_demos=160,
        n_step=3,
        batch_size=64,
        buffer_size=4000,
        learning_starts=64,
        target_update_interval=20,
        hidden=(32,),
        hyper=dqfd.DQfDHyper(gamma=0.0, learning_rate=3e-3, epsilon_start=0.5),
    )
    train = jax.jit(
        jax.vmap(make_train(dqfd.make_trainer(cfg, batched(ENV, params, 8))), in_axes=(0, None, None))
    )
    out = train(jax.random.split(jax.random.key(2), 2), None, items)
    obs, state = jax.vmap(ENV.reset, in_axes=(0, None))(jax.random.split(jax.random.key(3), 4), params)
    act = dqfd.make_policy(cfg, ENV.action_space(params))
    grid = np.asarray(price_grid(SKU, params))
    best = np.argmin(np.abs(grid - closed_form_price()))  # the area holding p* (bin centres 45, 55, ...)
    for seed in range(2):
        agent = jax.tree.map(lambda x, s=seed: x[s], out["state"].agent)
        # tolerance: the greedy price is the centre of the area holding p*, or a neighbour (within 1.5 bins)
        greedy = np.asarray(act(agent, None, obs))
        assert np.all(np.abs(grid[greedy] - grid[best]) <= 1.5 * (grid[1] - grid[0]))


def test_ddpg_greedy_price_is_near_the_closed_form_optimum():
    params = make_params(action_type="continuous", reward="rcr", horizon=20, sku=SKU, reward_scale=10.0)
    cfg = ddpg.DDPGConfig(
        num_updates=400,
        batch_size=64,
        buffer_size=5000,
        learning_starts=320,
        hidden=(32, 32),
        n_step=1,
        hyper=ddpg.DDPGHyper(gamma=0.0, actor_lr=3e-4, critic_lr=3e-3, noise_sd=0.3, tau=0.05),
    )
    train = jax.jit(jax.vmap(make_train(ddpg.make_trainer(cfg, batched(ENV, params, 16)))))
    out = train(jax.random.split(jax.random.key(0), 2))
    obs, _ = jax.vmap(ENV.reset, in_axes=(0, None))(jax.random.split(jax.random.key(3), 4), params)
    act = ddpg.make_policy(cfg, ENV.action_space(params))
    for seed in range(2):
        a = act(jax.tree.map(lambda x, s=seed: x[s], out["state"].agent), None, obs)
        prices = np.asarray(jax.vmap(lambda x: action_price(x, SKU, params)[0])(a))
        # tolerance: 15 % of the price range [40, 100] around p* (~47.8)
        assert np.all(np.abs(prices - closed_form_price()) <= 0.15 * 60.0), prices


def test_dqfd_ddpg_and_rules_under_x64():
    """Regression: under JAX_ENABLE_X64=1 the demonstration trainers' buffers were built with float64
    rewards, exploration noise and priorities (flashbax refused the float32 items, ``lax.cond`` the
    mixed priorities), and ``random_policy`` returned int64 areas (fresh interpreter: x64 is fixed at
    start)."""
    import os
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(
        """
        import jax, jax.numpy as jnp
        from jaxretail.agents import ddpg, demos, dqfd
        from jaxretail.agents.training import make_train
        from jaxretail.core.vector import batched
        from jaxretail.envs.pricing import DynamicPricing, group_params, policies, protocol
        env = DynamicPricing()
        p = group_params("fmcg", num_prices=5, horizon=6)
        logs = protocol.collect_logs(env, policies.random_policy, jax.random.key(0), p,
                                     jax.random.split(jax.random.key(1), 4), 6)
        assert logs["action"].dtype == jnp.int32, logs["action"].dtype
        items = demos.nstep_items(logs["obs"], logs["action"], logs["reward"], logs["terminated"],
                                  logs["truncated"], logs["final_obs"], 2)
        small = dict(num_updates=3, batch_size=8, learning_starts=8, buffer_size=64, n_step=2, hidden=(8,))
        cfg = dqfd.DQfDConfig(num_demos=24, pretrain_updates=1, **small)
        m = jax.jit(make_train(dqfd.make_trainer(cfg, batched(env, p, 4))))(jax.random.key(2), None, items)
        pc = group_params("fmcg", horizon=6, action_type="continuous")
        trainer = ddpg.make_trainer(ddpg.DDPGConfig(noise="ou", **small), batched(env, pc, 4))
        out = jax.jit(make_train(trainer))(jax.random.key(3))
        for leaf in jax.tree.leaves((m["metrics"], out["metrics"])):
            assert jnp.all(jnp.isfinite(leaf)), leaf
        print("ok", jnp.zeros(1).dtype)
        """
    )
    env = {**os.environ, "JAX_ENABLE_X64": "1", "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["ok", "float64"]
