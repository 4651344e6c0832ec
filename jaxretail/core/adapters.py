"""Thin adapters from the gymnax 1.0 contract to older or non-JAX step APIs.

* :class:`LegacyStepAPI` -- the 5-tuple ``(obs, state, reward, done, info)`` that PureJaxRL-style
  trainers (and gymnax < 1.0 wrappers) expect, with ``done = terminated | truncated``.
* :class:`GymnasiumVectorEnv` -- a ``gymnasium.vector.VectorEnv`` running ``num_envs`` copies in
  one jitted, vmapped call, with same-step auto-reset, for users outside JAX.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxretail.core import spaces
from jaxretail.core.environment import Environment


class LegacyStepAPI:
    """Wrap an environment so ``step`` returns ``(obs, state, reward, done, info)``.

    ``info`` keeps ``terminated`` and ``truncated`` so nothing is lost. All other attributes are
    forwarded to the wrapped environment.
    """

    def __init__(self, env: Environment):
        self._env = env

    def __getattr__(self, name: str) -> Any:
        return getattr(self._env, name)

    def reset(self, key, params=None):
        return self._env.reset(key, params)

    def step(self, key, state, action, params=None):
        obs, state, reward, terminated, truncated, info = self._env.step(key, state, action, params)
        info = dict(info)
        info["terminated"] = terminated
        info["truncated"] = truncated
        return obs, state, reward, jnp.logical_or(terminated, truncated), info


def _single_gymnasium_space(space: spaces.Space):
    import gymnasium

    if isinstance(space, spaces.Discrete):
        return gymnasium.spaces.Discrete(space.n)
    if isinstance(space, spaces.FixedSizeSubset):
        return gymnasium.spaces.MultiBinary(space.n)
    if isinstance(space, spaces.Box):
        low = np.broadcast_to(np.asarray(space.low, np.float32), space.shape)
        high = np.broadcast_to(np.asarray(space.high, np.float32), space.shape)
        return gymnasium.spaces.Box(low, high, space.shape, np.dtype(space.dtype))
    raise TypeError(f"no gymnasium equivalent for space {space!r}")


def make_gymnasium_vector_env(env: Environment, num_envs: int, params: Any = None, seed: int = 0):
    """Build a :class:`GymnasiumVectorEnv` (requires the ``gymnasium`` extra)."""
    return GymnasiumVectorEnv(env, num_envs, params, seed)


try:  # gymnasium is optional
    import gymnasium as _gym

    _VectorEnvBase = _gym.vector.VectorEnv
except ImportError:  # pragma: no cover - exercised only without the extra
    _gym = None
    _VectorEnvBase = object


class GymnasiumVectorEnv(_VectorEnvBase):
    """``gymnasium.vector.VectorEnv`` over ``num_envs`` copies of a jaxretail environment.

    Auto-reset mode is ``SAME_STEP``: when a sub-environment ends, the returned observation is
    already the first of the next episode, and ``info["final_obs"]`` holds the last one.
    Arrays cross to NumPy once per call; everything inside is one jitted, vmapped JAX function.
    """

    metadata = {"autoreset_mode": None}

    def __init__(self, env: Environment, num_envs: int, params: Any = None, seed: int = 0):
        if _gym is None:
            raise ImportError("GymnasiumVectorEnv needs gymnasium: pip install 'jaxretail[gymnasium]'")
        if int(num_envs) < 1:
            raise ValueError(f"num_envs must be >= 1, got num_envs={num_envs}")
        self.metadata = {"autoreset_mode": _gym.vector.AutoresetMode.SAME_STEP}
        self.env = env
        self.num_envs = int(num_envs)
        self.params = env.default_params if params is None else params
        self.single_observation_space = _single_gymnasium_space(env.observation_space(self.params))
        self.single_action_space = _single_gymnasium_space(env.action_space(self.params))
        self.observation_space = _gym.vector.utils.batch_space(self.single_observation_space, self.num_envs)
        self.action_space = _gym.vector.utils.batch_space(self.single_action_space, self.num_envs)
        self._key = jax.random.key(seed)
        self._state = None
        self._reset = jax.jit(jax.vmap(env.reset, in_axes=(0, None)))
        self._step = jax.jit(jax.vmap(env.step, in_axes=(0, 0, 0, None)))

    def _split(self):
        self._key, sub = jax.random.split(self._key)
        return jax.random.split(sub, self.num_envs)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        if seed is not None:
            self._key = jax.random.key(seed)
        obs, self._state = self._reset(self._split(), self.params)
        return np.asarray(obs), {}

    def step(self, actions):
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        actions = jnp.asarray(actions)
        obs, self._state, reward, term, trunc, info = self._step(
            self._split(), self._state, actions, self.params
        )
        info = {k: np.asarray(v) for k, v in info.items()}
        info["final_obs"] = info.pop("final_observation")
        return np.asarray(obs), np.asarray(reward), np.asarray(term), np.asarray(trunc), info
