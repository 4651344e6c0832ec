"""Action and observation spaces (gymnax-compatible: ``sample``, ``contains``, ``shape``, ``dtype``).

All methods are jittable. ``contains`` returns a boolean scalar array. ``project`` is the documented
deterministic mapping of an invalid action onto a valid one (see :mod:`jaxretail.core.actions`):
``project(x) == x`` for every ``x`` that ``contains``. ``sample`` only yields values ``contains``
accepts. For gymnax's own spaces use :func:`jaxretail.core.gymnax_compat.to_gymnax_space`.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np


class Space:
    """Base class of spaces."""

    shape: tuple[int, ...]
    dtype: jnp.dtype

    def sample(self, key: jax.Array) -> jax.Array:
        raise NotImplementedError

    def contains(self, x: jax.Array) -> jax.Array:
        raise NotImplementedError

    def project(self, x: jax.Array) -> jax.Array:
        """The valid action an invalid ``x`` is mapped to (identity on valid actions)."""
        raise NotImplementedError


@dataclass(frozen=True)
class Discrete(Space):
    """Integers ``0 .. n-1``."""

    n: int
    dtype: jnp.dtype = jnp.int32

    def __post_init__(self):
        if int(self.n) < 1:
            raise ValueError(f"Discrete.n must be >= 1, got n={self.n}")

    @property
    def shape(self) -> tuple[int, ...]:
        return ()

    def sample(self, key: jax.Array) -> jax.Array:
        return jax.random.randint(key, (), 0, self.n).astype(self.dtype)

    def contains(self, x: jax.Array) -> jax.Array:
        x = jnp.asarray(x)
        if x.shape != ():
            return jnp.asarray(False)
        return jnp.logical_and(x >= 0, x < self.n) & (x == jnp.round(x))

    def project(self, x: jax.Array) -> jax.Array:
        """Clip to ``[0, n - 1]`` (after rounding toward zero); never wraps around like indexing does."""
        return jnp.clip(jnp.asarray(x), 0, self.n - 1).astype(self.dtype)


@dataclass(frozen=True)
class Box(Space):
    """Real (or integer) arrays with elementwise bounds ``low <= x <= high``."""

    low: float | np.ndarray
    high: float | np.ndarray
    shape: tuple[int, ...]
    dtype: jnp.dtype = jnp.float32

    def sample(self, key: jax.Array) -> jax.Array:
        low = jnp.broadcast_to(jnp.asarray(self.low, jnp.float32), self.shape)
        high = jnp.broadcast_to(jnp.asarray(self.high, jnp.float32), self.shape)
        # an unbounded side samples within 2 of the other bound (or in [-1, 1] if both are unbounded)
        finite_low = jnp.where(jnp.isfinite(low), low, jnp.where(jnp.isfinite(high), high - 2.0, -1.0))
        finite_high = jnp.where(jnp.isfinite(high), high, finite_low + 2.0)
        u = jax.random.uniform(key, self.shape)
        return (finite_low + u * (finite_high - finite_low)).astype(self.dtype)

    def contains(self, x: jax.Array) -> jax.Array:
        x = jnp.asarray(x)
        if x.shape != tuple(self.shape):
            return jnp.asarray(False)
        return jnp.all(x >= self.low) & jnp.all(x <= self.high)

    def project(self, x: jax.Array) -> jax.Array:
        """NaN becomes ``max(low, min(0, high))`` (0 when the box holds it), then clip to ``[low, high]``."""
        x = jnp.asarray(x)
        low = jnp.broadcast_to(jnp.asarray(self.low, x.dtype), self.shape)
        high = jnp.broadcast_to(jnp.asarray(self.high, x.dtype), self.shape)
        fill = jnp.maximum(low, jnp.minimum(0, high))
        return jnp.clip(jnp.where(jnp.isnan(x), fill, x), low, high).astype(self.dtype)


@dataclass(frozen=True)
class FixedSizeSubset(Space):
    """Subsets of exactly ``k`` out of ``n`` items, encoded as a 0/1 mask of shape ``(n,)``."""

    n: int
    k: int
    dtype: jnp.dtype = jnp.bool_

    def __post_init__(self):
        if not 1 <= int(self.k) <= int(self.n):
            raise ValueError(f"FixedSizeSubset needs 1 <= k <= n, got n={self.n}, k={self.k}")

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.n,)

    def sample(self, key: jax.Array) -> jax.Array:
        """A uniformly random k-subset."""
        idx = jax.random.choice(key, self.n, (self.k,), replace=False)
        return jnp.zeros((self.n,), self.dtype).at[idx].set(True)

    def contains(self, x: jax.Array) -> jax.Array:
        x = jnp.asarray(x)
        if x.shape != (self.n,):
            return jnp.asarray(False)
        binary = jnp.all((x == 0) | (x == 1))
        return binary & (jnp.sum((x != 0).astype(jnp.int32)) == self.k)

    def project(self, x: jax.Array) -> jax.Array:
        """Keep the first ``k`` selected items (non-zero entries, lowest index first); if fewer than
        ``k`` are selected, add the lowest-index unselected items."""
        selected = jnp.asarray(x) != 0
        idx = jnp.arange(self.n)
        rank = jnp.where(selected, 2 * self.n - idx, self.n - idx)  # distinct scores, no ties
        _, top = jax.lax.top_k(rank, self.k)
        return jnp.zeros((self.n,), self.dtype).at[top].set(True)
