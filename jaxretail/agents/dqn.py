"""Deep Q-learning (Mnih et al. 2015; double DQN, van Hasselt et al. 2016) as pure trainers.

- :func:`make_trainer` (online): each update takes ``num_steps`` epsilon-greedy steps of a
  :class:`~jaxretail.core.vector.VectorEnv`, stores the transitions in a circular replay buffer
  (:mod:`jaxretail.agents.replay`) and, once ``learning_starts`` transitions are stored, takes
  ``gradient_steps`` Adam steps on minibatches drawn from it.
- :func:`make_offline_trainer`: the gradient steps sample the logged transitions instead (the coupon
  benchmark trains TF-Agents' ``DqnAgent`` on its offline dataset, Xia et al. arXiv 2405.10469).

TD target ``r + gamma (1 - terminated) Q_target(s', argmax_a Q(s', a))`` (double DQN) or
``... max_a Q_target(s', a)``; Huber or squared loss; the target network moves to
``tau * online + (1 - tau) * target`` every ``target_update_interval`` gradient steps (``tau = 1``:
a hard copy). The Q-network may carry an LSTM layer (the benchmark's ``Dense(16) -> LSTM(4)``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import optax
from flax import struct

from jaxretail.agents import replay
from jaxretail.agents.networks import QNetwork
from jaxretail.agents.training import Trainer
from jaxretail.core import spaces
from jaxretail.core.validation import (
    ConfigError,
    check_bool,
    check_choice,
    check_int,
    check_positive_ints,
    check_ranges,
    check_sizes,
)
from jaxretail.core.vector import VectorEnv

LOSSES = ("huber", "mse")


@struct.dataclass
class DQNHyper:
    """Vmappable hyperparameters."""

    learning_rate: float = 1e-3
    gamma: float = 0.99
    epsilon_start: float = 1.0
    epsilon_end: float = 0.05
    exploration_fraction: float = 0.5  # share of the updates over which epsilon decays linearly
    tau: float = 1.0
    max_grad_norm: float = 10.0


_HYPER_RULES = {
    "learning_rate": (0.0, None, False),
    "gamma": (0.0, 1.0, True),
    "epsilon_start": (0.0, 1.0, True),
    "epsilon_end": (0.0, 1.0, True),
    "exploration_fraction": (0.0, 1.0, False),
    "tau": (0.0, 1.0, False),
    "max_grad_norm": (0.0, None, False),
}


@dataclasses.dataclass(frozen=True)
class DQNConfig:
    """Static DQN settings and the default :class:`DQNHyper`."""

    num_updates: int = 1000
    num_steps: int = 1  # online: environment steps per update (each adds num_envs transitions)
    gradient_steps: int = 1  # per update
    batch_size: int = 256
    buffer_size: int = 100_000
    learning_starts: int = 1_000  # stored transitions before the first gradient step
    target_update_interval: int = 10  # gradient steps
    hidden: tuple[int, ...] = (64, 64)
    recurrent_units: int = 0  # > 0: an LSTM layer after the dense layers
    loss: str = "huber"
    double_dqn: bool = True
    hyper: DQNHyper = dataclasses.field(default_factory=DQNHyper)

    def __post_init__(self):
        check_positive_ints(
            self,
            (
                "num_updates",
                "num_steps",
                "gradient_steps",
                "batch_size",
                "buffer_size",
                "target_update_interval",
            ),
            "DQNConfig",
        )
        check_int("learning_starts", self.learning_starts, 0, owner="DQNConfig")
        check_int("recurrent_units", self.recurrent_units, 0, owner="DQNConfig")
        check_sizes("hidden", self.hidden, owner="DQNConfig")
        check_choice("loss", self.loss, LOSSES, owner="DQNConfig")
        check_bool("double_dqn", self.double_dqn, owner="DQNConfig")
        if not isinstance(self.hyper, DQNHyper):
            raise ConfigError(f"DQNConfig.hyper must be a DQNHyper, got hyper={self.hyper!r}")
        check_ranges(self.hyper, _HYPER_RULES, "DQNHyper")


@struct.dataclass
class Transitions:
    """A batch of transitions, leading axis ``[M]``."""

    obs: jax.Array  # [M, *obs_shape]
    action: jax.Array  # [M] int
    reward: jax.Array  # [M]
    next_obs: jax.Array  # [M, *obs_shape] observation that ended the step
    terminated: jax.Array  # [M] float 0/1: no bootstrap


@struct.dataclass
class DQNState:
    params: Any
    target_params: Any
    opt_state: Any
    key: jax.Array
    hyper: DQNHyper
    updates: jax.Array  # [] int32 updates done
    gradient_steps: jax.Array  # [] int32 gradient steps done
    target_updates: jax.Array  # [] int32 target refreshes done
    buffer: Any = None  # online only
    env_state: Any = None
    obs: Any = None
    episode_return: Any = None


def network(config: DQNConfig, action_space) -> QNetwork:
    if not isinstance(action_space, spaces.Discrete):
        raise ValueError(f"DQN needs a Discrete action space, got {action_space!r}")
    return QNetwork(tuple(config.hidden), action_space.n, config.recurrent_units)


def optimizer(h: DQNHyper) -> optax.GradientTransformation:
    return optax.chain(optax.clip_by_global_norm(h.max_grad_norm), optax.adam(h.learning_rate))


def epsilon(h: DQNHyper, update: jax.Array, num_updates: int) -> jax.Array:
    """Linear decay from ``epsilon_start`` to ``epsilon_end`` over ``exploration_fraction`` of training."""
    frac = jnp.clip(update / (h.exploration_fraction * num_updates), 0.0, 1.0)
    return h.epsilon_start + frac * (h.epsilon_end - h.epsilon_start)


def td_loss(config: DQNConfig, net, params, target_params, batch: Transitions, gamma) -> tuple:
    q = net.apply(params, batch.obs)
    q_taken = jnp.take_along_axis(q, batch.action[:, None].astype(jnp.int32), axis=1)[:, 0]
    q_next_target = net.apply(target_params, batch.next_obs)
    if config.double_dqn:
        best = jnp.argmax(net.apply(params, batch.next_obs), axis=1)
        q_next = jnp.take_along_axis(q_next_target, best[:, None], axis=1)[:, 0]
    else:
        q_next = jnp.max(q_next_target, axis=1)
    target = jax.lax.stop_gradient(batch.reward + gamma * (1.0 - batch.terminated) * q_next)
    err = q_taken - target
    loss = optax.huber_loss(err).mean() if config.loss == "huber" else 0.5 * jnp.mean(err**2)
    return loss, jnp.mean(q_taken)


def gradient_step(config: DQNConfig, net, state: DQNState, batch: Transitions) -> tuple[DQNState, dict]:
    """One Adam step on ``batch``; the target network follows on schedule."""
    h = state.hyper
    (loss, q_mean), grads = jax.value_and_grad(
        lambda p: td_loss(config, net, p, state.target_params, batch, h.gamma), has_aux=True
    )(state.params)
    updates, opt_state = optimizer(h).update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    steps = state.gradient_steps + 1
    refresh = steps % config.target_update_interval == 0
    target = jax.tree.map(
        lambda o, t: jnp.where(refresh, h.tau * o + (1.0 - h.tau) * t, t), params, state.target_params
    )
    new = state.replace(
        params=params,
        target_params=target,
        opt_state=opt_state,
        gradient_steps=steps,
        target_updates=state.target_updates + refresh,
    )
    # float32 metrics whatever the batch's dtype (logged float64 data under JAX_ENABLE_X64)
    return new, {"loss": loss.astype(jnp.float32), "q_mean": q_mean.astype(jnp.float32)}


def _init(net, obs_shape, key, hyper, **online) -> DQNState:
    k_net, key = jax.random.split(key)
    hyper = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), hyper)
    params = net.init(k_net, jnp.zeros((1,) + tuple(obs_shape)))
    zero = jnp.asarray(0, jnp.int32)
    return DQNState(params, params, optimizer(hyper).init(params), key, hyper, zero, zero, zero, **online)


def _learn(config, net, state, sample_fn, can_learn):
    def body(state, _):
        key, k = jax.random.split(state.key)
        state = state.replace(key=key)

        def learn(state):
            return gradient_step(config, net, state, sample_fn(k))

        def skip(state):
            zero = jnp.zeros((), jnp.float32)  # float32 also under JAX_ENABLE_X64=1 (the learn branch's)
            return state, {"loss": zero, "q_mean": zero}

        return jax.lax.cond(can_learn, learn, skip, state)

    state, info = jax.lax.scan(body, state, None, config.gradient_steps)
    return state, jax.tree.map(jnp.mean, info)


def make_trainer(config: DQNConfig, venv: VectorEnv) -> Trainer:
    """Online DQN on ``venv`` with a replay buffer of ``buffer_size`` transitions."""
    net = network(config, venv.action_space)
    if venv.num_envs > config.buffer_size:
        raise ValueError(
            f"DQNConfig.buffer_size={config.buffer_size} must hold one step of the {venv.num_envs} streams"
        )

    def init(key, hyper=None):
        hyper = config.hyper if hyper is None else hyper
        k_env, key = jax.random.split(key)
        obs, env_state = venv.reset(k_env)
        f32 = jnp.zeros((), jnp.float32)  # rewards and flags stored in float32, also under x64
        example = Transitions(obs[0], jnp.asarray(0, jnp.int32), f32, obs[0], f32)
        return _init(
            net, venv.obs_shape, key, hyper,
            buffer=replay.init(example, config.buffer_size), env_state=env_state, obs=obs,
            episode_return=jnp.zeros((venv.num_envs,), jnp.float32),
        )  # fmt: skip

    def update(state: DQNState, data=None):
        del data
        eps = epsilon(state.hyper, state.updates, config.num_updates)

        def env_step(carry, _):
            buf, env_state, obs, ep_ret, ep_stats, key = carry
            key, k_explore, k_random, k_env = jax.random.split(key, 4)
            greedy = jnp.argmax(net.apply(state.params, obs), axis=1)
            random = jax.random.randint(k_random, greedy.shape, 0, venv.action_space.n)
            action = jnp.where(jax.random.uniform(k_explore, greedy.shape) < eps, random, greedy)
            out, env_state = venv.step(k_env, env_state, action)
            reward = out.reward.astype(jnp.float32)  # an env's float64 reward (x64) kept in float32
            buf = replay.add(
                buf, Transitions(obs, action, reward, out.final_obs, out.terminated.astype(jnp.float32))
            )
            ep_ret = ep_ret + reward
            done = out.terminated | out.truncated
            ep_stats = ep_stats + jnp.stack([jnp.sum(jnp.where(done, ep_ret, 0.0)), jnp.sum(done)])
            return (buf, env_state, out.obs, jnp.where(done, 0.0, ep_ret), ep_stats, key), jnp.mean(reward)

        key, k_roll = jax.random.split(state.key)
        carry = (
            state.buffer,
            state.env_state,
            state.obs,
            state.episode_return,
            jnp.zeros(2, jnp.float32),
            k_roll,
        )
        (buf, env_state, obs, ep_ret, ep_stats, _), rewards = jax.lax.scan(
            env_step, carry, None, config.num_steps
        )
        state = state.replace(buffer=buf, env_state=env_state, obs=obs, episode_return=ep_ret, key=key)
        can_learn = buf.size >= max(config.learning_starts, 1)
        state, info = _learn(
            config, net, state, lambda k: replay.sample(buf, k, config.batch_size), can_learn
        )
        info.update(
            epsilon=eps,
            mean_reward=jnp.mean(rewards),
            episode_return=ep_stats[0] / jnp.maximum(ep_stats[1], 1.0),
            episodes=ep_stats[1],
            target_updates=state.target_updates,
        )
        return state.replace(updates=state.updates + 1), info

    return Trainer(init, update, config.num_updates, config, venv.description)


def make_offline_trainer(config: DQNConfig, obs_shape, action_space) -> Trainer:
    """Offline DQN: ``train(key, hyper, data)`` with ``data`` a :class:`Transitions` of logged steps;
    each update takes ``gradient_steps`` steps on minibatches of ``batch_size`` drawn uniformly."""
    net = network(config, action_space)

    def init(key, hyper=None):
        return _init(net, obs_shape, key, config.hyper if hyper is None else hyper)

    def update(state: DQNState, data: Transitions):
        num = data.reward.shape[0]

        def sample(k):
            idx = jax.random.randint(k, (config.batch_size,), 0, num)
            return jax.tree.map(lambda x: x[idx], data)

        state, info = _learn(config, net, state, sample, jnp.asarray(True))
        info["target_updates"] = state.target_updates
        return state.replace(updates=state.updates + 1), info

    return Trainer(init, update, config.num_updates, config)


def make_policy(config: DQNConfig, action_space, epsilon: float = 0.0):
    """``act(params, key, obs [B, ...]) -> action [B]``: greedy, or epsilon-greedy."""
    net = network(config, action_space)

    def act(params, key, obs):
        greedy = jnp.argmax(net.apply(params, obs), axis=1)
        if not epsilon:
            return greedy
        k1, k2 = jax.random.split(key)
        random = jax.random.randint(k2, greedy.shape, 0, action_space.n)
        return jnp.where(jax.random.uniform(k1, greedy.shape) < epsilon, random, greedy)

    return act
