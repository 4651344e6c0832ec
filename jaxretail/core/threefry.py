"""``jax.random.uniform`` of a short vector, bit for bit, as plain uint32 arithmetic that XLA fuses.

On CPU, JAX lowers its threefry primitive to a five-trip ``while`` loop; vmapped over 100,000 keys
every trip copies the loop's carries (``[N, n]`` counters and ``[N]`` key words) in memory, about
1 KB per key for four uniforms. :func:`uniform` computes the same Threefry-2x32 hash (Salmon et
al. 2011, 20 rounds, the rotation constants of the Random123 reference) unrolled, so XLA fuses it
into the code that consumes the numbers, and returns exactly the values of
``jax.random.uniform(key, (n,), float32, minval, maxval)``: the partitionable counter scheme
(counter ``i`` hashed as the pair ``(0, i)``, the two output words xor-ed) and the 23-bit mantissa
fill. Where that equivalence does not hold (another PRNG implementation, ``jax_threefry_partitionable``
off, another dtype) it calls ``jax.random.uniform`` itself, so the result is always that function's.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = 0x1BD11BDA


def _rotate_left(x: jax.Array, r: int) -> jax.Array:
    return (x << jnp.uint32(r)) | (x >> jnp.uint32(32 - r))


def threefry2x32(k1: jax.Array, k2: jax.Array, x1: jax.Array, x2: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Threefry-2x32 (20 rounds) of the counter words ``(x1, x2)`` under the key ``(k1, k2)``;
    uint32 arrays broadcast together."""
    ks = (k1, k2, k1 ^ k2 ^ jnp.uint32(_PARITY))
    x1, x2 = x1 + ks[0], x2 + ks[1]
    for i in range(5):
        for r in _ROTATIONS[i % 2]:
            x1 = x1 + x2
            x2 = _rotate_left(x2, r) ^ x1
        x1 = x1 + ks[(i + 1) % 3]
        x2 = x2 + ks[(i + 2) % 3] + jnp.uint32(i + 1)
    return x1, x2


def fusable(key: jax.Array) -> bool:
    """Whether :func:`uniform` can reproduce ``jax.random.uniform`` for this key (trace time)."""
    if not jax.config.jax_threefry_partitionable:
        return False
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return str(jax.random.key_impl(key)) == "threefry2x32"
    return (
        key.dtype == jnp.uint32 and key.shape == (2,) and jax.config.jax_default_prng_impl == "threefry2x32"
    )


def uniform(key: jax.Array, n: int, minval: float = 0.0, maxval: float = 1.0) -> jax.Array:
    """``jax.random.uniform(key, (n,), jnp.float32, minval, maxval)``, bit for bit (float32 ``[n]``).

    Args:
      key: one PRNG key (typed, or a raw ``uint32 [2]`` threefry key).
      n: static number of values.
      minval, maxval: Python floats, the bounds of ``jax.random.uniform``.
    """
    if not fusable(key):
        return jax.random.uniform(key, (n,), jnp.float32, minval, maxval)
    k = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
    return _uniform_from_key_data(k, n, float(minval), float(maxval))


# jitted like jax.random.uniform itself, so that an eager call compiles the affine map the same way
# (XLA contracts ``x * span + lo`` into one fused multiply-add; op-by-op it rounds twice)
@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _uniform_from_key_data(k: jax.Array, n: int, minval: float, maxval: float) -> jax.Array:
    counters = jnp.arange(n, dtype=jnp.uint32)
    hi, lo = threefry2x32(k[0], k[1], jnp.zeros_like(counters), counters)
    # the 23 high bits as the mantissa of a float in [1, 2), minus 1
    one_to_two = jax.lax.bitcast_convert_type(
        ((hi ^ lo) >> jnp.uint32(9)) | jnp.uint32(0x3F800000), jnp.float32
    )
    lo_f, hi_f = jnp.float32(minval), jnp.float32(maxval)
    return jnp.maximum(lo_f, (one_to_two - 1.0) * (hi_f - lo_f) + lo_f)
