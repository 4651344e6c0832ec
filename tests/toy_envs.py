"""Small environments with a computable optimum, for testing the deep-RL trainers."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from jaxretail.core import spaces
from jaxretail.core.environment import Environment, EnvParams, EnvState


@struct.dataclass
class BanditState(EnvState):
    context: jax.Array  # [] int32


@struct.dataclass
class BanditParams(EnvParams):
    rewards: jax.Array  # [C, A] mean reward of arm a in context c
    noise: float = 0.1


class ContextualBandit(Environment[BanditState, BanditParams]):
    """One-step episodes: a uniformly drawn context (one-hot), ``reward = R[c, a] + noise * N(0,1)``.
    The optimal expected return is ``mean_c max_a R[c, a]``."""

    def __init__(self, rewards):
        self._params = BanditParams(jnp.asarray(rewards, jnp.float32))

    @property
    def default_params(self):
        return self._params

    def observation_space(self, params):
        return spaces.Box(0.0, 1.0, (params.rewards.shape[0],))

    def action_space(self, params):
        return spaces.Discrete(params.rewards.shape[1])

    def reset_env(self, key, params):
        c = jax.random.randint(key, (), 0, params.rewards.shape[0])
        return jax.nn.one_hot(c, params.rewards.shape[0]), BanditState(t=jnp.asarray(1), context=c)

    def step_env(self, key, state, action, params):
        r = params.rewards[state.context, action] + params.noise * jax.random.normal(key)
        obs = jax.nn.one_hot(state.context, params.rewards.shape[0])
        return obs, state.replace(t=state.t + 1), r, jnp.asarray(True), jnp.asarray(False), {}


@struct.dataclass
class ChainState(EnvState):
    position: jax.Array  # [] int32


@struct.dataclass
class ChainParams(EnvParams):
    length: int = struct.field(pytree_node=False, default=5)
    horizon: int = struct.field(pytree_node=False, default=10)
    stay_reward: float = 0.01


class Chain(Environment[ChainState, ChainParams]):
    """States ``0..L-1``; action 1 moves right, action 0 returns to 0 and pays ``stay_reward``;
    reaching ``L-1`` pays 1 and terminates; episodes are truncated after ``horizon`` steps.
    The optimal return is 1 (always right); always-left earns ``horizon * stay_reward``."""

    @property
    def default_params(self):
        return ChainParams()

    def observation_space(self, params):
        return spaces.Box(0.0, 1.0, (params.length + 1,))

    def action_space(self, params):
        return spaces.Discrete(2)

    def _obs(self, state, params):
        return jnp.concatenate(
            [jax.nn.one_hot(state.position, params.length), (state.t / params.horizon)[None]]
        )

    def reset_env(self, key, params):
        state = ChainState(t=jnp.asarray(0), position=jnp.asarray(0))
        return self._obs(state, params), state

    def step_env(self, key, state, action, params):
        position = jnp.where(action == 1, state.position + 1, 0)
        reward = jnp.where(
            position == params.length - 1, 1.0, jnp.where(action == 0, params.stay_reward, 0.0)
        )
        state = ChainState(t=state.t + 1, position=position)
        terminated = position == params.length - 1
        truncated = state.t >= params.horizon
        return self._obs(state, params), state, reward, terminated, truncated, {}


class ContinuousBandit(ContextualBandit):
    """One-step episodes with a real action ``a [D]``: ``reward = -||a - R[c]||^2``; optimum 0."""

    def __init__(self, targets):
        self._params = BanditParams(jnp.asarray(targets, jnp.float32), noise=0.0)

    def action_space(self, params):
        return spaces.Box(-jnp.inf, jnp.inf, (params.rewards.shape[1],))

    def step_env(self, key, state, action, params):
        r = -jnp.sum((action - params.rewards[state.context]) ** 2)
        obs = jax.nn.one_hot(state.context, params.rewards.shape[0])
        return obs, state.replace(t=state.t + 1), r, jnp.asarray(True), jnp.asarray(False), {}


def logged_bandit(rewards, num_streams: int, steps: int, seed: int = 0):
    """Uniform-behaviour logs of :class:`ContextualBandit` as NumPy arrays ``[C, T, ...]``."""
    import numpy as np

    rng = np.random.default_rng(seed)
    rewards = np.asarray(rewards, np.float32)
    n_ctx, n_arm = rewards.shape
    ctx = rng.integers(0, n_ctx, (num_streams, steps + 1))
    action = rng.integers(0, n_arm, (num_streams, steps))
    obs = np.eye(n_ctx, dtype=np.float32)[ctx]
    reward = rewards[ctx[:, :-1], action] + 0.1 * rng.standard_normal((num_streams, steps)).astype(np.float32)
    return {
        "obs": obs[:, :-1],
        "next_obs": obs[:, 1:],
        "action": action.astype(np.int32),
        "action_prob": np.full((num_streams, steps), 1.0 / n_arm, np.float32),
        "reward": reward.astype(np.float32),
    }
