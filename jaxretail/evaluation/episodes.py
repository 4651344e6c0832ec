"""Evaluate a policy on a range of episode seeds with one jitted rollout."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxretail.core.environment import Environment
from jaxretail.core.rollout import Policy, rollout
from jaxretail.core.validation import ConfigError, check_int
from jaxretail.evaluation.stats import MeanSE, mean_se

MAX_SEED = 2**32 - 1


def parse_seed_range(text: str) -> list[int]:
    """``"1-100"`` -> ``[1, ..., 100]``; ``"1,5,7"`` -> ``[1, 5, 7]``; both forms can be combined.

    Raises:
      ValueError: for an empty part, a non-integer, a seed outside ``[0, 2**32 - 1]`` (the uint32
        range of ``jax.random.key``), a decreasing range or a seed listed twice.
    """
    seeds: list[int] = []
    for part in text.split(","):
        bounds = part.strip().split("-")
        try:
            lo, hi = (int(bounds[0]), int(bounds[-1])) if len(bounds) <= 2 else (None, None)
        except ValueError:
            lo = hi = None
        if lo is None or lo < 0 or hi < lo or hi > MAX_SEED:
            raise ValueError(
                f"seed range {text!r}: part {part.strip()!r} must be a non-negative integer or an "
                f"increasing range 'a-b' within [0, {MAX_SEED}]"
            )
        seeds.extend(range(lo, hi + 1))
    if len(set(seeds)) != len(seeds):
        repeated = sorted({s for s in seeds if seeds.count(s) > 1})[:5]
        raise ValueError(f"seed range {text!r} lists seed(s) {repeated} more than once")
    return seeds


def episode_keys(seeds: Sequence[int]) -> jax.Array:
    """One PRNG key per episode seed: ``key(seed)`` (the episode's instance and customer stream)."""
    return jax.vmap(jax.random.key)(jnp.asarray(list(seeds), dtype=jnp.uint32))


def evaluate_policy(
    env: Environment,
    policy: Policy,
    params: Any,
    seeds: Sequence[int],
    *,
    num_steps: int | None = None,
    policy_key: jax.Array | None = None,
    policy_batch_size: int | None = None,
) -> np.ndarray:
    """Per-step rewards ``[S, T]`` (NumPy) of ``policy`` on the episodes ``seeds``.

    Episode ``s`` is ``env.reset(jax.random.key(s), params)``, so two policies evaluated on the
    same seeds face the same instances and, for common-random-number environments, the same
    customers.
    """
    num_steps = check_int("num_steps", num_steps if num_steps is not None else params.horizon, 1)
    check_int("policy_batch_size", policy_batch_size, 1, allow_none=True)
    seeds = list(seeds)
    if not seeds:
        raise ConfigError("seeds must hold at least one episode seed, got seeds=[]")
    for s in seeds:
        check_int("seed", s, 0, MAX_SEED)
    policy_key = jax.random.key(0) if policy_key is None else policy_key

    @jax.jit
    def run(key, keys):
        _, _, rewards = rollout(
            env, policy, key, params, keys, num_steps, policy_batch_size=policy_batch_size
        )
        return rewards.T

    return np.asarray(run(policy_key, episode_keys(seeds)))


def summarize_returns(rewards: np.ndarray) -> MeanSE:
    """Mean +- standard error of the undiscounted episode return from ``[S, T]`` rewards."""
    return mean_se(np.asarray(rewards).sum(axis=1))
