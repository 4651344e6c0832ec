"""Policy rollouts fused into one ``lax.scan`` over time and ``vmap`` over environments."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp

from jaxretail.core.environment import Environment
from jaxretail.core.validation import check_int


class Policy(Protocol):
    """A policy for ONE environment: ``policy(key, obs, state, params) -> action``.

    ``state`` is passed so that privileged baselines (e.g. a full-information expert) fit the same
    signature; learned policies should only read ``obs``.
    """

    def __call__(self, key: jax.Array, obs: jax.Array, state: Any, params: Any) -> jax.Array: ...


class Transition(NamedTuple):
    """One step of a batch of environments (leading axis ``[B]``)."""

    obs: jax.Array  # [B, *obs_shape] observation the action was chosen on
    action: jax.Array  # [B, *action_shape]
    reward: jax.Array  # [B]
    terminated: jax.Array  # [B] bool
    truncated: jax.Array  # [B] bool
    info: dict[str, jax.Array]  # each [B, ...]


def record_reward(tr: Transition) -> jax.Array:
    """Default recorder: keep only the rewards, ``[B]`` per step."""
    return tr.reward


def apply_policy(
    policy: Policy,
    keys: jax.Array,
    obs: jax.Array,
    state: Any,
    params: Any,
    batch_size: int | None = None,
) -> jax.Array:
    """Apply a per-environment policy to a batch: ``vmap``, or ``lax.map`` in chunks.

    Args:
      keys: ``[B]`` PRNG keys, one per environment.
      batch_size: if given, evaluate the policy ``batch_size`` environments at a time
        (``lax.map``), which bounds the memory of policies with large intermediates such as the
        brute-force assortment expert.
    """
    if batch_size is None:
        return jax.vmap(policy, in_axes=(0, 0, 0, None))(keys, obs, state, params)
    return jax.lax.map(lambda a: policy(a[0], a[1], a[2], params), (keys, obs, state), batch_size=batch_size)


def episode_stream(key: jax.Array, reset_key: jax.Array) -> jax.Array:
    """Per-episode key for the policy's and the steps' randomness: ``key`` folded with the words
    of ``reset_key``. An episode's draws therefore depend on its own seed and ``key`` only, not on
    its position in the batch (so sharding or re-batching leaves results unchanged)."""
    for word in jax.random.key_data(reset_key).ravel():
        key = jax.random.fold_in(key, word)
    return key


def rollout(
    env: Environment,
    policy: Policy,
    key: jax.Array,
    params: Any,
    reset_keys: jax.Array,
    num_steps: int,
    *,
    record: Callable[[Transition], Any] = record_reward,
    auto_reset: bool = False,
    policy_batch_size: int | None = None,
) -> tuple[jax.Array, Any, Any]:
    """Run ``policy`` for ``num_steps`` steps over a batch of environments.

    Pure and jittable (``env``, ``policy``, ``num_steps``, ``record``, ``auto_reset`` and
    ``policy_batch_size`` are static).

    Args:
      env: the environment.
      policy: per-environment policy, see :class:`Policy`.
      key: PRNG key for the policy's and the steps' randomness; each episode uses
        ``fold_in(episode_stream(key, reset_key), 2 t)`` (policy) and ``2 t + 1`` (step) at step ``t``.
      params: environment parameters shared by the batch.
      reset_keys: ``[B]`` keys, one per episode; ``env.reset`` draws each episode from its key
        (for seeded benchmarks: ``jax.vmap(jax.random.key)(seeds)``).
      num_steps: ``T``, the number of decisions.
      record: maps each batched :class:`Transition` to what is stacked over time. The default
        keeps only ``reward``; recording observations of large batches costs
        ``T * B * obs_size`` floats.
      auto_reset: use ``env.step`` (reset at episode end) instead of ``env.step_env``. Without it an
        episode stops at its end: after ``terminated`` the state and observation are frozen, every
        further reward is 0 and ``terminated`` stays True, so ``num_steps`` past the horizon never
        counts rewards of a finished episode.
      policy_batch_size: see :func:`apply_policy`.

    Returns:
      ``(final_obs [B, ...], final_state, records)``, each leaf of ``records`` shaped ``[T, B, ...]``.

    Raises:
      ConfigError: ``num_steps`` is not an integer >= 1, or ``policy_batch_size`` not one >= 1.
    """
    num_steps = check_int("num_steps", num_steps, 1)
    check_int("policy_batch_size", policy_batch_size, 1, allow_none=True)
    obs, state = jax.vmap(env.reset, in_axes=(0, None))(reset_keys, params)
    streams = jax.vmap(episode_stream, in_axes=(None, 0))(key, reset_keys)
    step_fn = env.step if auto_reset else env.step_env

    def body(carry, t):
        obs, state, ended = carry
        # one hash per key (fold_in) rather than fold_in + split: RNG dominates cheap steps
        policy_keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(streams, 2 * t)
        step_keys = jax.vmap(jax.random.fold_in, in_axes=(0, None))(streams, 2 * t + 1)
        action = apply_policy(policy, policy_keys, obs, state, params, policy_batch_size)
        next_obs, next_state, reward, terminated, truncated, info = jax.vmap(
            step_fn, in_axes=(0, 0, 0, None)
        )(step_keys, state, action, params)
        if not auto_reset:  # a finished episode stays finished: frozen, reward 0
            next_obs, next_state = _keep_where(ended, (obs, state), (next_obs, next_state))
            reward = jnp.where(ended, jnp.zeros_like(reward), reward)
            terminated = terminated | ended
            ended = terminated
        rec = record(Transition(obs, action, reward, terminated, truncated, info))
        return (next_obs, next_state, ended), rec

    ended = jnp.zeros((reset_keys.shape[0],), bool)
    (obs, state, _), records = jax.lax.scan(body, (obs, state, ended), jnp.arange(num_steps, dtype=jnp.int32))
    return obs, state, records


def _keep_where(mask: jax.Array, old: Any, new: Any) -> Any:
    """Leaves of ``old`` where ``mask [B]`` is True, of ``new`` elsewhere (PRNG keys included)."""

    def pick(o, n):
        if jax.dtypes.issubdtype(o.dtype, jax.dtypes.prng_key):
            data = pick(jax.random.key_data(o), jax.random.key_data(n))
            return jax.random.wrap_key_data(data, impl=jax.random.key_impl(o))
        m = mask.reshape(mask.shape + (1,) * (o.ndim - mask.ndim))
        return jnp.where(m, o, n)

    return jax.tree.map(pick, old, new)


def scan_steps(
    env: Environment,
    policy: Policy,
    key: jax.Array,
    params: Any,
    obs: jax.Array,
    state: Any,
    num_steps: int,
    *,
    record: Callable[[Transition], Any] = record_reward,
) -> tuple[jax.Array, Any, Any]:
    """Continue ONE environment from ``(obs, state)`` for ``num_steps`` steps (no reset, no vmap).

    For population environments whose state already holds every customer (the coupon env), and for
    resuming a saved simulation. The policy sees ``fold_in(key, t)`` at step ``t``.

    Once ``terminated`` (all of it, for a population env) the state and observation are frozen and
    rewards are 0, as in :func:`rollout`.

    Returns:
      ``(obs, state, records)``, leaves of ``records`` shaped ``[T, ...]``.

    Raises:
      ConfigError: ``num_steps`` is not an integer >= 1.
    """
    num_steps = check_int("num_steps", num_steps, 1)

    def body(carry, t):
        obs, state, ended = carry
        key_t = jax.random.fold_in(key, t)
        action = policy(jax.random.fold_in(key_t, 0), obs, state, params)
        next_obs, next_state, reward, terminated, truncated, info = env.step_env(
            jax.random.fold_in(key_t, 1), state, action, params
        )
        next_obs, next_state = _keep_where(ended, (obs, state), (next_obs, next_state))
        reward = jnp.where(ended, jnp.zeros_like(reward), reward)
        terminated = terminated | ended
        rec = record(Transition(obs, action, reward, terminated, truncated, info))
        return (next_obs, next_state, jnp.all(terminated)), rec

    carry = (obs, state, jnp.asarray(False))
    (obs, state, _), records = jax.lax.scan(body, carry, jnp.arange(num_steps, dtype=jnp.int32))
    return obs, state, records
