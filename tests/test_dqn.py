"""DQN: optimal behaviour on problems with a known optimum, offline learning, the target-network
schedule, the replay buffer, vmap over seeds and configuration errors."""

from pathlib import Path

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from toy_envs import Chain, ContextualBandit, logged_bandit

from jaxretail.agents import dqn, replay
from jaxretail.agents.training import make_train
from jaxretail.core.vector import batched

REWARDS = np.array([[1.0, 0.0, 0.2, 0.5], [0.0, 0.3, 1.0, 0.0], [0.2, 0.9, 0.0, 1.2]])


def bandit_trainer(num_updates=300):
    env = ContextualBandit(REWARDS)
    cfg = dqn.DQNConfig(
        num_updates=num_updates, batch_size=64, buffer_size=2000, learning_starts=64, hidden=(32,),
        hyper=dqn.DQNHyper(gamma=0.0, learning_rate=3e-3),
    )  # fmt: skip
    return dqn.make_trainer(cfg, batched(env, env.default_params, 16)), cfg, env


def test_dqn_reaches_the_contextual_bandit_optimum():
    trainer, cfg, env = bandit_trainer()
    out = jax.jit(make_train(trainer))(jax.random.key(0))
    act = dqn.make_policy(cfg, env.action_space(env.default_params))
    np.testing.assert_array_equal(act(out["state"].params, None, jnp.eye(3)), REWARDS.argmax(1))
    # the greedy Q-values estimate the optimal rewards
    q = dqn.network(cfg, env.action_space(env.default_params)).apply(out["state"].params, jnp.eye(3))
    np.testing.assert_allclose(np.asarray(q.max(1)), REWARDS.max(1), atol=0.1)


def test_recurrent_double_dqn_reaches_the_chain_optimum():
    env = Chain()
    cfg = dqn.DQNConfig(
        num_updates=400, gradient_steps=2, batch_size=64, buffer_size=5000, learning_starts=200,
        target_update_interval=20, hidden=(32, 32), recurrent_units=4,
        hyper=dqn.DQNHyper(gamma=0.95, learning_rate=1e-3),
    )  # fmt: skip
    out = jax.jit(make_train(dqn.make_trainer(cfg, batched(env, env.default_params, 16))))(jax.random.key(0))
    # optimum 1 (always right); epsilon has decayed to 0.05 over the second half
    assert float(np.mean(out["metrics"]["episode_return"][-50:])) > 0.9


def offline_data():
    logs = logged_bandit(REWARDS, 200, 5)
    flat = lambda x: jnp.asarray(x.reshape((-1,) + x.shape[2:]))
    return dqn.Transitions(
        flat(logs["obs"]), flat(logs["action"]), flat(logs["reward"]), flat(logs["next_obs"]),
        jnp.zeros(1000),
    )  # fmt: skip


def test_offline_dqn_learns_the_best_arm():
    env = ContextualBandit(REWARDS)
    space = env.action_space(env.default_params)
    cfg = dqn.DQNConfig(
        num_updates=300, batch_size=128, hidden=(32,), hyper=dqn.DQNHyper(gamma=0.0, learning_rate=3e-3)
    )
    out = jax.jit(make_train(dqn.make_offline_trainer(cfg, (3,), space)))(
        jax.random.key(1), None, offline_data()
    )
    np.testing.assert_array_equal(
        dqn.make_policy(cfg, space)(out["state"].params, None, jnp.eye(3)), REWARDS.argmax(1)
    )


def test_target_network_updates_on_schedule():
    env = ContextualBandit(REWARDS)
    space = env.action_space(env.default_params)
    cfg = dqn.DQNConfig(
        num_updates=1, target_update_interval=3, batch_size=16, hidden=(8,), hyper=dqn.DQNHyper(tau=1.0)
    )
    trainer = dqn.make_offline_trainer(cfg, (3,), space)
    data = offline_data()
    state = trainer.init(jax.random.key(0), None)
    update = jax.jit(trainer.update)
    for step in range(1, 8):
        before = state.target_params
        state, info = update(state, data)
        refreshed = step % 3 == 0
        assert int(state.target_updates) == step // 3
        same_as_online = jax.tree.all(
            jax.tree.map(lambda a, b: bool(jnp.all(a == b)), state.target_params, state.params)
        )
        unchanged = jax.tree.all(
            jax.tree.map(lambda a, b: bool(jnp.all(a == b)), state.target_params, before)
        )
        assert same_as_online == refreshed
        assert unchanged == (not refreshed)


def test_replay_buffer_keeps_the_latest_items_and_samples_only_valid_ones():
    buf = replay.init({"x": jnp.zeros(2)}, capacity=5)
    buf = replay.add(buf, {"x": jnp.arange(6.0).reshape(3, 2)})  # items 0..2
    drawn = replay.sample(buf, jax.random.key(0), 200)["x"][:, 0]
    assert set(np.unique(np.asarray(drawn))) <= {0.0, 2.0, 4.0} and int(buf.size) == 3
    buf = replay.add(buf, {"x": 10 + jnp.arange(8.0).reshape(4, 2)})  # wraps: 7 items, keep the last 5
    assert int(buf.size) == 5 and int(buf.position) == 2
    assert sorted(np.asarray(buf.data["x"][:, 0]).tolist()) == [4.0, 10.0, 12.0, 14.0, 16.0]
    with pytest.raises(ValueError, match="capacity"):
        replay.add(buf, {"x": jnp.zeros((6, 2))})


def test_vmap_over_seeds_equals_one_by_one():
    trainer, _, _ = bandit_trainer(num_updates=80)
    train = make_train(trainer)
    keys = jax.random.split(jax.random.key(5), 4)
    together = jax.jit(jax.vmap(train))(keys)
    single = jax.jit(train)
    for i in range(4):
        chex.assert_trees_all_close(
            jax.tree.map(lambda x, i=i: np.asarray(x)[i], together["state"].params),
            single(keys[i])["state"].params,
            rtol=2e-5,
            atol=1e-6,
        )


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"loss": "l1"}, "loss"),
        ({"recurrent_units": -1}, "recurrent_units"),
        ({"hyper": dqn.DQNHyper(epsilon_end=1.5)}, "epsilon_end"),
        ({"hyper": dqn.DQNHyper(tau=0.0)}, "tau"),
    ],
)
def test_bad_config_is_a_clear_error(kwargs, field):
    with pytest.raises(ValueError, match=field):
        dqn.DQNConfig(**kwargs)


def test_trains_under_x64_with_float32_learning_metrics():
    """Regression: under JAX_ENABLE_X64=1 the no-learning branch returned float64 zeros and the replay
    stored float64 rewards, so ``lax.cond`` refused the trainer; an env's float64 rewards and logged
    float64 data made the loss float64 (fresh interpreter: x64 is fixed at start)."""
    import os
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(
        """
        import jax
        from jaxretail.agents import dqn
        from jaxretail.agents.training import make_train
        from jaxretail.core.vector import batched
        from jaxretail.envs.pricing import DynamicPricing, group_params
        venv = batched(DynamicPricing(), group_params("fmcg", num_prices=10), 4)
        dqn_space = __import__("jaxretail.core.spaces", fromlist=["x"]).Discrete(4)
        cfg = dqn.DQNConfig(num_updates=3, batch_size=16, learning_starts=16, buffer_size=200)
        m = jax.jit(make_train(dqn.make_trainer(cfg, venv)))(jax.random.key(0))["metrics"]
        assert m["loss"].dtype == m["q_mean"].dtype == jax.numpy.float32, m
        # an env whose rewards are float64, and logged float64 data offline
        from test_dqn import REWARDS, bandit_trainer, offline_data
        for train, data in ((make_train(bandit_trainer(3)[0]), None),
                            (make_train(dqn.make_offline_trainer(cfg, (3,), dqn_space)), offline_data())):
            m = jax.jit(train)(jax.random.key(1), None, data)["metrics"]
            assert m["loss"].dtype == m["q_mean"].dtype == jax.numpy.float32, m
        print("ok", jax.numpy.zeros(1).dtype)
        """
    )
    env = {**os.environ, "JAX_ENABLE_X64": "1", "JAX_PLATFORMS": "cpu"}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent), env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["ok", "float64"]
