"""Thin adapters from the gymnax 1.0 contract to older or non-JAX step APIs.

* :class:`LegacyStepAPI` -- the 5-tuple ``(obs, state, reward, done, info)`` that PureJaxRL-style
  trainers (and gymnax < 1.0 wrappers) expect, with ``done = terminated | truncated``.
* :class:`GymnasiumVectorEnv` -- a ``gymnasium.vector.VectorEnv`` running ``num_envs`` copies in
  one jitted, vmapped call, with same-step auto-reset, for users outside JAX.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxretail.core import spaces
from jaxretail.core.actions import validate_action
from jaxretail.core.environment import Environment


class LegacyStepAPI:
    """Wrap an environment so ``step`` returns ``(obs, state, reward, done, info)``.

    ``info`` keeps ``terminated`` and ``truncated`` so nothing is lost. All other attributes are
    forwarded to the wrapped environment.
    """

    def __init__(self, env: Environment):
        self._env = env

    def __deepcopy__(self, memo):  # immutable: see Environment.__deepcopy__
        return self

    def __getattr__(self, name: str) -> Any:
        # only called for missing attributes; guard ``_env`` so copy / deepcopy / pickle (which build
        # the object without __init__) get an AttributeError instead of infinite recursion
        if name.startswith("__") or "_env" not in self.__dict__:
            raise AttributeError(name)
        return getattr(self.__dict__["_env"], name)

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
        return _fixed_size_subset_space(space.n, space.k)
    if isinstance(space, spaces.Box):
        low = np.broadcast_to(np.asarray(space.low, np.float32), space.shape)
        high = np.broadcast_to(np.asarray(space.high, np.float32), space.shape)
        return gymnasium.spaces.Box(low, high, space.shape, np.dtype(space.dtype))
    raise TypeError(f"no gymnasium equivalent for space {space!r}")


@functools.cache
def _subset_space_class():
    import gymnasium

    class FixedSizeSubsetSpace(gymnasium.spaces.Space):
        """gymnasium space of 0/1 masks ``[*batch, n]`` (int8) with exactly ``k`` ones per row.

        Unlike ``MultiBinary(n)``, ``sample`` only yields valid assortments and ``contains`` rejects
        masks with another number of ones, matching what the environment accepts.
        """

        def __init__(self, n: int, k: int, batch: tuple[int, ...] = (), seed=None):
            self.n, self.k, self.batch = int(n), int(k), tuple(batch)
            super().__init__(self.batch + (self.n,), np.int8, seed)

        @property
        def is_np_flattenable(self) -> bool:
            return True

        def sample(self, mask=None, probability=None):
            scores = self.np_random.random(self.batch + (self.n,))
            top = np.argsort(-scores, axis=-1)[..., : self.k]
            out = np.zeros(self.batch + (self.n,), np.int8)
            np.put_along_axis(out, top, 1, axis=-1)
            return out

        def contains(self, x) -> bool:
            x = np.asarray(x)
            if x.shape != self.shape or not np.all((x == 0) | (x == 1)):
                return False
            return bool(np.all(np.sum(x != 0, axis=-1) == self.k))

        def __eq__(self, other) -> bool:
            return isinstance(other, type(self)) and (self.n, self.k, self.batch) == (
                other.n, other.k, other.batch,
            )  # fmt: skip

        def __repr__(self) -> str:
            return f"FixedSizeSubsetSpace(n={self.n}, k={self.k}, batch={self.batch})"

    @gymnasium.vector.utils.batch_space.register(FixedSizeSubsetSpace)
    def _batch(space, n: int = 1):
        return FixedSizeSubsetSpace(space.n, space.k, (int(n),) + space.batch)

    # flattened, a mask is its own 0/1 vector (as gymnasium flattens MultiBinary)
    utils = gymnasium.spaces.utils

    @utils.flatdim.register(FixedSizeSubsetSpace)
    def _flatdim(space) -> int:
        return int(np.prod(space.shape))

    @utils.flatten.register(FixedSizeSubsetSpace)
    def _flatten(space, x):
        return np.asarray(x, space.dtype).flatten()

    @utils.unflatten.register(FixedSizeSubsetSpace)
    def _unflatten(space, x):
        return np.asarray(x, space.dtype).reshape(space.shape)

    @utils.flatten_space.register(FixedSizeSubsetSpace)
    def _flatten_space(space):
        return gymnasium.spaces.Box(0, 1, (int(np.prod(space.shape)),), space.dtype)

    return FixedSizeSubsetSpace


def _fixed_size_subset_space(n: int, k: int):
    return _subset_space_class()(n, k)


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
    Actions are checked before stepping (:func:`jaxretail.core.actions.validate_action`): an action
    outside the space is a ``ValueError`` naming the row. A ``FixedSizeSubset`` action is exported as
    ``FixedSizeSubsetSpace`` (its ``sample`` only yields valid masks), not ``MultiBinary``.
    Observations and rewards come back in the declared dtype (float32).
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
        self._space = env.action_space(self.params)
        self._obs_dtype = np.dtype(env.observation_space(self.params).dtype)
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
        return np.asarray(obs, self._obs_dtype), {}

    def step(self, actions):
        if self._state is None:
            raise RuntimeError("call reset() before step()")
        actions = jnp.asarray(actions)
        validate_action(self._space, actions, name="actions", batched=True)
        obs, self._state, reward, term, trunc, info = self._step(
            self._split(), self._state, actions, self.params
        )
        info = {k: np.asarray(v) for k, v in info.items()}
        info["final_obs"] = info.pop("final_observation")
        info["final_obs"] = np.asarray(info["final_obs"], self._obs_dtype)
        obs, reward = np.asarray(obs, self._obs_dtype), np.asarray(reward, np.float32)
        return obs, reward, np.asarray(term), np.asarray(trunc), info
