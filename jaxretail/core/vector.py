"""A batch of ``N`` decision streams as two pure functions, the interface the deep-RL trainers use.

Two adapters cover every jaxretail environment:

- :func:`batched`: ``N`` independent copies of a single-entity environment (assortment, test envs),
  ``vmap``-ped, with the gymnax auto-reset of :meth:`Environment.step`;
- :func:`population`: one population environment whose state holds ``N`` customers (coupon env:
  observation ``[U, 9]``, action ``[U]``, reward ``[U]``), restarted every ``horizon`` steps.

Both return a :class:`VectorEnv`; :func:`map_action` converts a learner's action (e.g. item scores)
into the environment's (a top-K mask) without forking the environment.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxretail.core import spaces
from jaxretail.core.environment import Environment


class VectorStep(NamedTuple):
    """One step of ``N`` streams (leading axis ``[N]`` on every field)."""

    obs: jax.Array  # [N, *obs_shape] next observation (the first of a new episode after a reset)
    reward: jax.Array  # [N] float
    terminated: jax.Array  # [N] bool, true end of the episode: no bootstrap
    truncated: jax.Array  # [N] bool, time limit: bootstrap from final_obs
    final_obs: jax.Array  # [N, *obs_shape] observation that ended the step (before any reset)


class VectorEnv(NamedTuple):
    """``reset(key) -> (obs [N, ...], state)``, ``step(key, state, action [N, ...]) -> (VectorStep,
    state)``. ``num_envs``, ``obs_shape`` and ``action_space`` are static."""

    reset: Callable[[jax.Array], tuple[jax.Array, Any]]
    step: Callable[[jax.Array, Any, jax.Array], tuple[VectorStep, Any]]
    num_envs: int
    obs_shape: tuple[int, ...]
    action_space: Any
    # what the streams simulate ({"env": class path, "params_sha1": ...}; see describe_env): part of a
    # trainer's run identity, so a checkpoint is never resumed on another environment
    description: Any = None


def describe_env(env: Any, params: Any) -> dict | None:
    """``{"env": module.Class, "params_sha1": digest of every params leaf and static field}``, or
    None when ``params`` holds tracers (built inside ``jit``: nothing to record)."""
    if any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(params)):
        return None
    cls = type(env)
    return {"env": f"{cls.__module__}.{cls.__qualname__}", "params_sha1": tree_sha1(params, structure=True)}


def tree_sha1(tree: Any, *, structure: bool = False) -> str:
    """SHA-1 of every leaf's bytes (PRNG keys as their key data), and with ``structure`` of the tree
    definition too (static fields of flax dataclasses included). Concrete leaves only."""
    leaves, treedef = jax.tree_util.tree_flatten(tree)
    digest = hashlib.sha1(str(treedef).encode() if structure else b"")
    for x in leaves:
        if isinstance(x, jax.Array) and jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            x = jax.random.key_data(x)
        digest.update(np.ascontiguousarray(np.asarray(x)).tobytes())
    return digest.hexdigest()


def batched(env: Environment, params: Any, num_envs: int) -> VectorEnv:
    """``num_envs`` independent episodes of ``env`` with automatic reset."""
    if int(num_envs) != num_envs or num_envs < 1:
        raise ValueError(f"num_envs must be a positive integer, got num_envs={num_envs!r}")

    def reset(key):
        return jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(key, num_envs), params)

    def step(key, state, action):
        obs, state, reward, term, trunc, info = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
            jax.random.split(key, num_envs), state, action, params
        )
        return VectorStep(obs, reward, term, trunc & ~term, info["final_observation"]), state

    obs_shape = tuple(env.observation_space(params).shape)
    return VectorEnv(
        reset, step, int(num_envs), obs_shape, env.action_space(params), describe_env(env, params)
    )


def population(env: Environment, params: Any, horizon: int) -> VectorEnv:
    """The customers of one population environment as ``N`` streams, restarted every ``horizon``
    steps (every customer is truncated at once; the environment itself never terminates)."""
    if int(horizon) != horizon or horizon < 1:
        raise ValueError(f"horizon must be a positive integer, got horizon={horizon!r}")
    obs0, _ = jax.eval_shape(env.reset, jax.random.key(0), params)
    num_envs = obs0.shape[0]

    def reset(key):
        return env.reset(key, params)

    def step(key, state, action):
        obs, state, reward, term, _, _ = env.step_env(key, state, action, params)
        done = state.t >= horizon
        obs_next, state = jax.lax.cond(done, lambda: env.reset(key, params), lambda: (obs, state))
        term = jnp.broadcast_to(term, reward.shape)
        return VectorStep(obs_next, reward, term, jnp.broadcast_to(done, reward.shape) & ~term, obs), state

    return VectorEnv(
        reset,
        step,
        int(num_envs),
        tuple(obs0.shape[1:]),
        _stream_space(env.action_space(params)),
        describe_env(env, params),
    )


def _stream_space(space):
    """One customer's action space from the population's ``Box [N]`` of integer levels."""
    if isinstance(space, spaces.Box) and len(space.shape) == 1 and jnp.issubdtype(space.dtype, jnp.integer):
        return spaces.Discrete(int(space.high) + 1)
    raise ValueError(f"population streams need one integer level per customer (Box [N] int); got {space!r}")


def map_action(venv: VectorEnv, fn: Callable[[jax.Array], jax.Array], action_space: Any) -> VectorEnv:
    """``venv`` acting on ``fn(action)`` (applied to one stream's action, vmapped)."""

    def step(key, state, action):
        return venv.step(key, state, jax.vmap(fn)(action))

    return venv._replace(step=step, action_space=action_space)
