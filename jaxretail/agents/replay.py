"""Uniform circular replay buffer as pure functions (the flat-buffer pattern of flashbax, without
its dependency): ``init(example, capacity)``, ``add(buffer, batch)``, ``sample(buffer, key, n)``.

Jit the caller with the buffer donated (``donate_argnums``) so that ``add`` writes in place.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class ReplayBuffer:
    data: Any  # pytree, each leaf [capacity, ...]
    position: jax.Array  # [] int32 next write index
    size: jax.Array  # [] int32 number of valid items
    capacity: int = struct.field(pytree_node=False)


def init(example: Any, capacity: int) -> ReplayBuffer:
    """An empty buffer for items shaped like ``example`` (one item, no batch axis)."""
    if int(capacity) != capacity or capacity < 1:
        raise ValueError(f"capacity must be a positive integer, got capacity={capacity!r}")
    data = jax.tree.map(lambda x: jnp.zeros((capacity,) + jnp.shape(x), jnp.asarray(x).dtype), example)
    return ReplayBuffer(data, jnp.asarray(0, jnp.int32), jnp.asarray(0, jnp.int32), int(capacity))


def add(buffer: ReplayBuffer, batch: Any) -> ReplayBuffer:
    """Append a batch (leading axis ``[n]``, ``n <= capacity``), overwriting the oldest items."""
    n = jax.tree.leaves(batch)[0].shape[0]
    if n > buffer.capacity:
        raise ValueError(f"a batch of {n} items does not fit a buffer of capacity {buffer.capacity}")
    idx = (buffer.position + jnp.arange(n)) % buffer.capacity
    data = jax.tree.map(lambda d, b: d.at[idx].set(b.astype(d.dtype)), buffer.data, batch)
    return buffer.replace(
        data=data,
        position=(buffer.position + n) % buffer.capacity,
        size=jnp.minimum(buffer.size + n, buffer.capacity),
    )


def sample(buffer: ReplayBuffer, key: jax.Array, batch_size: int) -> Any:
    """``batch_size`` items drawn uniformly with replacement from the valid ones."""
    idx = jax.random.randint(key, (batch_size,), 0, jnp.maximum(buffer.size, 1))
    return jax.tree.map(lambda d: d[idx], buffer.data)
