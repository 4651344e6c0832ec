"""Running mean / variance (Chan et al. parallel merge) for observation and reward normalisation,
as an ``(init, update, normalize)`` triple of pure functions."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class RunningStats:
    mean: jax.Array  # [*shape]
    var: jax.Array  # [*shape] population variance
    count: jax.Array  # [] number of samples seen (float)


def init(shape: tuple[int, ...] = ()) -> RunningStats:
    return RunningStats(jnp.zeros(shape), jnp.ones(shape), jnp.asarray(1e-4, jnp.float32))


def update(stats: RunningStats, batch: jax.Array) -> RunningStats:
    """Merge a batch ``[n, *shape]`` into the statistics."""
    batch = batch.reshape((-1,) + stats.mean.shape)
    n = jnp.asarray(batch.shape[0], stats.count.dtype)
    mean_b, var_b = jnp.mean(batch, axis=0), jnp.var(batch, axis=0)
    total = stats.count + n
    delta = mean_b - stats.mean
    mean = stats.mean + delta * n / total
    m2 = stats.var * stats.count + var_b * n + delta**2 * stats.count * n / total
    return RunningStats(mean, m2 / total, total)


def normalize(stats: RunningStats, x: jax.Array, clip: float = 10.0) -> jax.Array:
    """``(x - mean) / std``, clipped to ``[-clip, clip]``."""
    return jnp.clip((x - stats.mean) / jnp.sqrt(stats.var + 1e-8), -clip, clip)


def scale(stats: RunningStats, x: jax.Array, clip: float = 10.0) -> jax.Array:
    """``x / std`` (rewards keep their sign and zero), clipped to ``[-clip, clip]``."""
    return jnp.clip(x / jnp.sqrt(stats.var + 1e-8), -clip, clip)
