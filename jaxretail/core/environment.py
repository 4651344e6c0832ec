"""Environment base class with the gymnax 1.0 contract.

``reset(key, params) -> (obs, state)`` and
``step(key, state, action, params) -> (obs, state, reward, terminated, truncated, info)``.

Subclasses implement the per-environment maths in ``reset_env`` / ``step_env`` for a single
(unbatched) environment; batching is done with ``jax.vmap`` by the caller or by
:func:`jaxretail.core.rollout.rollout`. ``step`` adds gymnax-style auto-reset: when an episode
ends, the returned ``obs``/``state`` are those of a fresh episode and the last observation of the
finished episode is kept in ``info["final_observation"]``. ``step_env`` never resets, which is what
fixed-horizon evaluation wants.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import jax
import jax.numpy as jnp
from flax import struct

from jaxretail.core import spaces

Array = jax.Array
PRNGKey = jax.Array


@struct.dataclass
class EnvState:
    """Base state: every environment state carries its 1-based decision step ``t`` (int32, [])."""

    t: Array


@struct.dataclass
class EnvParams:
    """Base parameters (empty). Shape-fixing sizes are static fields of the subclasses."""


def as_float32(tree: Any) -> Any:
    """Cast every floating leaf of ``tree`` to float32 (other leaves, PRNG keys included, unchanged):
    the declared dtype of observations, rewards and states, with or without ``JAX_ENABLE_X64``."""

    def cast(x):
        if hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.floating) and x.dtype != jnp.float32:
            return x.astype(jnp.float32)
        return x

    return jax.tree.map(cast, tree)


TEnvState = TypeVar("TEnvState", bound=EnvState)
TEnvParams = TypeVar("TEnvParams", bound=EnvParams)

StepOutput = tuple[Array, Any, Array, Array, Array, dict[str, Array]]


class Environment(Generic[TEnvState, TEnvParams]):
    """Jittable environment with the gymnax 1.0 API.

    All methods are pure functions of their arguments: ``self`` holds no mutable state, so one
    instance can be shared, jitted and vmapped freely.
    """

    def __deepcopy__(self, memo) -> Environment:
        # immutable (pure functions of explicit inputs): a deep copy is the object itself. Trainers
        # that deep-copy their config (rejax) would otherwise copy PRNG keys held in params, which
        # fails inside a jit trace.
        return self

    @property
    def default_params(self) -> TEnvParams:
        raise NotImplementedError

    @property
    def name(self) -> str:
        return type(self).__name__

    # -- to implement -------------------------------------------------------------------------
    def reset_env(self, key: PRNGKey, params: TEnvParams) -> tuple[Array, TEnvState]:
        """Draw the initial state of one environment and return ``(obs, state)``."""
        raise NotImplementedError

    def step_env(self, key: PRNGKey, state: TEnvState, action: Any, params: TEnvParams) -> StepOutput:
        """One transition of one environment, without auto-reset."""
        raise NotImplementedError

    def observation_space(self, params: TEnvParams) -> spaces.Space:
        raise NotImplementedError

    def action_space(self, params: TEnvParams) -> spaces.Space:
        raise NotImplementedError

    # -- gymnax 1.0 API -------------------------------------------------------------------------
    def reset(self, key: PRNGKey, params: TEnvParams | None = None) -> tuple[Array, TEnvState]:
        """Reset one environment. ``params`` defaults to ``default_params``."""
        params = self.default_params if params is None else params
        return self.reset_env(key, params)

    def step(
        self,
        key: PRNGKey,
        state: TEnvState,
        action: Any,
        params: TEnvParams | None = None,
    ) -> StepOutput:
        """One transition with auto-reset at episode end (gymnax semantics).

        ``info["final_observation"]`` always holds the observation produced by the transition
        itself (before any reset), so value bootstrapping can use it on truncation.
        """
        params = self.default_params if params is None else params
        key_step, key_reset = jax.random.split(key)
        obs_st, state_st, reward, terminated, truncated, info = self.step_env(key_step, state, action, params)
        obs_re, state_re = self.reset_env(key_reset, params)
        done = jnp.logical_or(terminated, truncated)
        state = jax.tree.map(lambda r, s: jnp.where(done, r, s), state_re, state_st)
        obs = jnp.where(done, obs_re, obs_st)
        info = dict(info)
        info["final_observation"] = obs_st
        return obs, state, reward, terminated, truncated, info

    def discount(self, terminated: Array) -> Array:
        """Environment discount: 0 after termination, 1 otherwise."""
        return 1.0 - terminated.astype(jnp.float32)
