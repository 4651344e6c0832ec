"""PPO: GAE against NumPy, optimal behaviour on problems with a known optimum, offline learning,
vmap over seeds, one compilation for a hyperparameter sweep, and configuration errors."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from toy_envs import Chain, ContextualBandit, ContinuousBandit, logged_bandit

from jaxretail.agents import ppo
from jaxretail.agents.training import make_train
from jaxretail.core.vector import batched

REWARDS = np.array([[1.0, 0.0, 0.2, 0.5], [0.0, 0.3, 1.0, 0.0], [0.2, 0.9, 0.0, 1.2]])
OPTIMUM = REWARDS.max(1).mean()


def numpy_gae(r, v, v_next, term, done, gamma, lam):
    adv = np.zeros_like(r)
    running = 0.0
    for t in reversed(range(len(r))):
        delta = r[t] + gamma * (1 - term[t]) * v_next[t] - v[t]
        running = delta + gamma * lam * (1 - done[t]) * running
        adv[t] = running
    return adv


def test_gae_matches_numpy_reference():
    rng = np.random.default_rng(0)
    r, v, vn = (rng.standard_normal(12).astype(np.float32) for _ in range(3))
    term = (rng.random(12) < 0.2).astype(np.float32)
    done = np.maximum(term, (rng.random(12) < 0.2)).astype(np.float32)
    got = ppo.gae(
        jnp.asarray(r), jnp.asarray(v), jnp.asarray(vn), jnp.asarray(term), jnp.asarray(done), 0.9, 0.8
    )
    np.testing.assert_allclose(
        np.asarray(got), numpy_gae(r, v, vn, term, done, 0.9, 0.8), rtol=1e-5, atol=1e-6
    )


def bandit_train(num_updates=60, hyper=None):
    env = ContextualBandit(REWARDS)
    cfg = ppo.PPOConfig(
        num_updates=num_updates, num_steps=4, update_epochs=4, num_minibatches=4,
        hyper=hyper or ppo.PPOHyper(learning_rate=1e-2, gamma=0.0),
    )  # fmt: skip
    return make_train(ppo.make_trainer(cfg, batched(env, env.default_params, 64))), cfg, env


def test_ppo_reaches_the_contextual_bandit_optimum():
    train, cfg, env = bandit_train()
    out = jax.jit(train)(jax.random.key(0))
    assert abs(float(np.mean(out["metrics"]["mean_reward"][-10:])) - OPTIMUM) < 0.05
    act = ppo.make_policy(cfg, env.action_space(env.default_params))
    np.testing.assert_array_equal(act(ppo.agent_of(out["state"]), None, jnp.eye(3)), REWARDS.argmax(1))


def test_ppo_reaches_the_chain_optimum():
    env = Chain()
    cfg = ppo.PPOConfig(
        num_updates=60, num_steps=16, update_epochs=4, num_minibatches=4,
        hyper=ppo.PPOHyper(learning_rate=3e-3, gamma=0.95, ent_coef=0.01),
    )  # fmt: skip
    out = jax.jit(make_train(ppo.make_trainer(cfg, batched(env, env.default_params, 32))))(jax.random.key(1))
    # optimum 1 (always right); always-left earns 0.1
    assert float(np.mean(out["metrics"]["episode_return"][-5:])) > 0.97


def test_ppo_gaussian_actions_approach_the_continuous_optimum():
    env = ContinuousBandit([[0.5, -0.5], [-1.0, 0.3]])
    cfg = ppo.PPOConfig(
        num_updates=80, num_steps=4, update_epochs=4, num_minibatches=4, normalize_rewards=False,
        hyper=ppo.PPOHyper(learning_rate=1e-2, gamma=0.0),
    )  # fmt: skip
    venv = batched(env, env.default_params, 64)
    out = jax.jit(make_train(ppo.make_trainer(cfg, venv)))(jax.random.key(2))
    act = ppo.make_policy(cfg, venv.action_space)
    mean_action = act(ppo.agent_of(out["state"]), None, jnp.eye(2))
    np.testing.assert_allclose(np.asarray(mean_action), np.asarray(env.default_params.rewards), atol=0.15)


def _logged_bandit(streams: int):
    """Uniform logs of the contextual bandit (4 steps per stream) and its action space."""
    logs = logged_bandit(REWARDS, streams, 4)
    data = ppo.LoggedTrajectories(
        jnp.asarray(logs["obs"]), jnp.asarray(logs["action"]), jnp.asarray(logs["action_prob"]),
        jnp.asarray(logs["reward"]), jnp.asarray(logs["next_obs"][:, -1]),
    )  # fmt: skip
    env = ContextualBandit(REWARDS)
    return data, env.action_space(env.default_params)


def test_offline_ppo_learns_the_best_arm_from_uniform_logs():
    # the clip caps pi / mu at 1 + eps against the fixed uniform logger, so a wide clip is needed for
    # the greedy arm to be identified (arms 1 and 3 of context 2 both have positive advantage)
    data, space = _logged_bandit(256)
    cfg = ppo.PPOConfig(
        num_updates=40, update_epochs=4, num_minibatches=4, batch_streams=128,
        hyper=ppo.PPOHyper(learning_rate=1e-2, gamma=0.0, clip_eps=10.0),
    )  # fmt: skip
    out = jax.jit(make_train(ppo.make_offline_trainer(cfg, (3,), space)))(jax.random.key(0), None, data)
    act = ppo.make_policy(cfg, space)
    np.testing.assert_array_equal(act(ppo.agent_of(out["state"]), None, jnp.eye(3)), REWARDS.argmax(1))


@pytest.mark.parametrize("adaptive_kl", [False, True])
def test_chunked_gradient_equals_the_whole_minibatch_gradient(adaptive_kl):
    """Summed over chunks of rows (the last one padded), the PPO gradient and every logged term equal
    the whole-minibatch ones, including the KL cutoff term when the sample KL is above its cutoff
    (its gradient is a multiple of grad <KL>, computed from a first forward pass)."""
    from jaxretail.agents import ppo_loss
    from jaxretail.core import spaces

    cfg = ppo.PPOConfig(adaptive_kl=adaptive_kl, actor_hidden=(8,), critic_hidden=(8,))
    actor, critic = ppo.networks(cfg, spaces.Discrete(5))
    k = jax.random.split(jax.random.key(0), 6)
    n = 1001
    obs = jax.random.normal(k[0], (n, 3))
    params = {"actor": actor.init(k[1], obs[:1]), "critic": critic.init(k[2], obs[:1])}
    # a behaviour policy far from pi: the sample KL is well above kl_cutoff_factor * kl_target
    logp_mu = jnp.log(jax.random.dirichlet(k[3], jnp.ones(5) * 0.3, (n,)))
    action = jax.random.randint(k[4], (n,), 0, 5)
    rows = (obs, action, logp_mu[jnp.arange(n), action], jax.random.normal(k[5], (n,)), obs[:, 0])
    h = ppo.PPOHyper(clip_eps=0.3, ent_coef=0.05, kl_target=0.01)
    beta = jnp.asarray(1.5)
    g_whole, i_whole = ppo_loss.whole_grad(cfg, actor, critic, params, h, beta, rows)
    if adaptive_kl:
        assert float(i_whole["approx_kl"]) > cfg.kl_cutoff_factor * h.kl_target
    for chunk in (128, 1001):
        g, info = jax.jit(ppo_loss.chunked_grad, static_argnums=(0, 1, 2, 7))(
            cfg, actor, critic, params, h, beta, rows, chunk
        )
        chex.assert_trees_all_close(g, g_whole, rtol=2e-4, atol=1e-6)
        chex.assert_trees_all_close(info, i_whole, rtol=2e-5, atol=1e-6)


def test_chunk_padding_stays_finite_for_narrow_gaussian_actions():
    """Padding rows are copies of a real row: a made-up row (zero action and log-probability) of a
    100-dimensional Gaussian with std 0.08 overflowed its probability ratio to inf, and 0 * inf made the
    chunked gradient NaN (break test)."""
    from jaxretail.agents import ppo_loss
    from jaxretail.core import spaces

    cfg = ppo.PPOConfig(actor_hidden=(8,), critic_hidden=(8,))
    actor, critic = ppo.networks(cfg, spaces.Box(-1.0, 1.0, (100,)))
    k = jax.random.split(jax.random.key(0), 5)
    obs = jax.random.normal(k[0], (10, 3))
    params = {"actor": actor.init(k[1], obs[:1]), "critic": critic.init(k[2], obs[:1])}
    params["actor"]["params"]["log_std"] = jnp.full((100,), -2.5)
    dist = actor.apply(params["actor"], obs)
    action = dist.sample(seed=k[3])
    rows = (obs, action, dist.log_prob(action), jax.random.normal(k[4], (10,)), obs[:, 0])
    h, beta = ppo.PPOHyper(), jnp.asarray(1.0)
    want = ppo_loss.whole_grad(cfg, actor, critic, params, h, beta, rows)
    got = ppo_loss.chunked_grad(cfg, actor, critic, params, h, beta, rows, 3)  # 12 rows: 2 padded
    chex.assert_tree_all_finite(got)
    chex.assert_trees_all_close(got, want, rtol=2e-4, atol=1e-6)
    with pytest.raises(ValueError, match="chunk"):
        ppo_loss.chunked_grad(cfg, actor, critic, params, h, beta, rows, 0)


def test_offline_ppo_with_gradient_chunks_trains_the_same_policy():
    data, space = _logged_bandit(64)
    base = dict(num_updates=5, update_epochs=3, num_minibatches=2, batch_streams=64, adaptive_kl=True)
    out = [
        jax.jit(make_train(ppo.make_offline_trainer(ppo.PPOConfig(**base, grad_chunk=c), (3,), space)))(
            jax.random.key(1), None, data
        )["state"]
        for c in (None, 50)  # 128 rows per minibatch: chunks of 50, 50 and 28 (+ 22 padding rows)
    ]
    chex.assert_trees_all_close(out[1].params, out[0].params, rtol=1e-4, atol=1e-5)


def test_vmap_over_seeds_equals_one_by_one():
    train, _, _ = bandit_train(num_updates=5)
    keys = jax.random.split(jax.random.key(3), 4)
    together = jax.jit(jax.vmap(train))(keys)
    for i in range(4):
        alone = jax.jit(train)(keys[i])
        chex.assert_trees_all_close(
            jax.tree.map(lambda x, i=i: np.asarray(x)[i], together["metrics"]),
            alone["metrics"],
            rtol=2e-5,
            atol=1e-6,
        )
        chex.assert_trees_all_close(
            jax.tree.map(lambda x, i=i: np.asarray(x)[i], together["state"].params),
            alone["state"].params,
            rtol=2e-5,
            atol=1e-6,
        )


def test_learning_rate_sweep_compiles_once():
    train, _, _ = bandit_train(num_updates=3)
    traced = chex.assert_max_traces(lambda k, h: train(k, h), n=1)
    sweep = jax.jit(jax.vmap(traced))
    keys = jax.random.split(jax.random.key(0), 3)
    for lrs in ([1e-3, 3e-3, 1e-2], [2e-3, 4e-3, 8e-3]):
        hyper = ppo.PPOHyper(learning_rate=jnp.asarray(lrs), gamma=jnp.zeros(3))
        hyper = jax.tree.map(lambda x: jnp.broadcast_to(jnp.asarray(x, jnp.float32), (3,)), hyper)
        out = sweep(keys, hyper)
    assert out["metrics"]["loss"].shape == (3, 3)
    # different learning rates give different parameters
    kernel = out["state"].params["actor"]["params"]["MLP_0"]["Dense_0"]["kernel"]
    assert not np.allclose(kernel[0], kernel[2])


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"num_minibatches": 0}, "num_minibatches"),
        ({"actor": "tree"}, "actor"),
        ({"grad_chunk": 0}, "grad_chunk"),
        ({"actor_hidden": (32, 0)}, "actor_hidden"),
        ({"hyper": ppo.PPOHyper(gamma=1.5)}, "gamma"),
        ({"hyper": ppo.PPOHyper(learning_rate=-1.0)}, "learning_rate"),
    ],
)
def test_bad_config_is_a_clear_error(kwargs, field):
    with pytest.raises(ValueError, match=field):
        ppo.PPOConfig(**kwargs)


def test_minibatches_must_divide_the_streams():
    env = ContextualBandit(REWARDS)
    with pytest.raises(ValueError, match="num_minibatches=3"):
        ppo.make_trainer(ppo.PPOConfig(num_minibatches=3), batched(env, env.default_params, 64))
