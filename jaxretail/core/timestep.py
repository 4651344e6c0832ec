"""Jumanji / Stoa style ``TimeStep`` API over a jaxretail environment (thin adapter, no dependency).

``reset(key, params=None) -> (state, timestep)`` and ``step(state, action, params=None) ->
(state, timestep)``: the PRNG key travels in the state (Jumanji convention), ``timestep`` carries
``step_type`` (FIRST / MID / LAST), ``reward``, ``discount`` (0 after termination, 1 otherwise, so a
time-limit truncation is LAST with discount 1 and the learner bootstraps), ``observation`` and
``extras`` (the env's ``info`` plus ``truncated``). No auto-reset: call ``reset`` after LAST (or wrap
with the trainer's own auto-reset, as Stoix does).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct

from jaxretail.core.environment import Environment


class StepType:
    FIRST = jnp.int8(0)
    MID = jnp.int8(1)
    LAST = jnp.int8(2)


@struct.dataclass
class TimeStep:
    step_type: jax.Array  # [] int8
    reward: jax.Array  # [] float32
    discount: jax.Array  # [] float32
    observation: Any
    extras: dict

    def first(self) -> jax.Array:
        return self.step_type == StepType.FIRST

    def mid(self) -> jax.Array:
        return self.step_type == StepType.MID

    def last(self) -> jax.Array:
        return self.step_type == StepType.LAST


@struct.dataclass
class TimeStepState:
    env_state: Any
    key: jax.Array  # PRNG key of the next step


class TimeStepEnv:
    """``env`` with the TimeStep API (module docstring); spaces and params are forwarded."""

    def __init__(self, env: Environment):
        self.env = env

    def __deepcopy__(self, memo):  # immutable
        return self

    @property
    def default_params(self):
        return self.env.default_params

    def action_space(self, params=None):
        return self.env.action_space(self.default_params if params is None else params)

    def observation_space(self, params=None):
        return self.env.observation_space(self.default_params if params is None else params)

    def reset(self, key: jax.Array, params=None) -> tuple[TimeStepState, TimeStep]:
        params = self.default_params if params is None else params
        key, key_reset = jax.random.split(key)
        obs, env_state = self.env.reset_env(key_reset, params)
        # the same extras structure as step's (zeros), so a lax.scan carry keeps one type
        out = jax.eval_shape(self.env.step_env, key, env_state, self._any_action(params), params)
        reward, truncated, info = out[2], out[4], out[5]
        extras = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), {**info, "truncated": truncated})
        shape = reward.shape
        ts = TimeStep(
            StepType.FIRST, jnp.zeros(shape, jnp.float32), jnp.ones(shape, jnp.float32), obs, extras
        )
        return TimeStepState(env_state, key), ts

    def step(self, state: TimeStepState, action, params=None) -> tuple[TimeStepState, TimeStep]:
        params = self.default_params if params is None else params
        key, key_step = jax.random.split(state.key)
        obs, env_state, reward, terminated, truncated, info = self.env.step_env(
            key_step, state.env_state, action, params
        )
        done = jnp.logical_or(terminated, truncated)
        ts = TimeStep(
            step_type=jnp.where(done, StepType.LAST, StepType.MID).astype(jnp.int8),
            reward=jnp.asarray(reward, jnp.float32),
            discount=1.0 - jnp.asarray(terminated, jnp.float32),
            observation=obs,
            extras={**info, "truncated": truncated},
        )
        return TimeStepState(env_state, key), ts

    def _any_action(self, params):
        space = self.env.action_space(params)
        return jax.eval_shape(space.sample, jax.random.key(0))
