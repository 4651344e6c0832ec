"""Counter-based random numbers: a pure hash of ``(seed, counters...)``.

For draws that must not be materialised, such as per-(customer, product) latent parameters of
100,000 x 2,514 populations. Each value is recomputed where it is needed from its global indices,
so results do not depend on blocking, visitor order or sharding. The mixer is the murmur3
32-bit finaliser applied after folding in each counter (about 10x cheaper than threefry on CPU).
It is meant for simulation noise, not cryptography.

Two-index draws (customer x product, customer x category) hash the whole tuple: a per-row word
``row_hash(seed, row)`` and a per-column word ``column_hash(seed, column)`` come from *different*
derived seeds, and :func:`pair_bits` combines them asymmetrically with one more finaliser round.
So ``draw(u, i)`` and ``draw(i, u)`` are unrelated and the diagonal ``u == i`` is not special.

Every uniform is strictly inside ``(0, 1)`` in float32 (and therefore in float64): the top 23 bits
plus half a unit, i.e. values ``(k + 1/2) 2^-23`` for ``k = 0 .. 2^23 - 1``, in ``[2^-24, 1 - 2^-24]``.
Normals, Gumbel and LogNormal values derived from them are finite (``|z| <= 5.4``).
Draws are float32 whatever ``jax_enable_x64`` says, so both modes simulate the same numbers.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

_GOLDEN = 0x9E3779B9
_ROW_TAG = 0x52F3A1C7  # domain tags of the row and column words of two-index draws
_COLUMN_TAG = 0xC13B9E2D
UNIFORM_MIN = 2.0**-24  # smallest and largest value of bits_to_uniform
UNIFORM_MAX = 1.0 - 2.0**-24


def _fmix32(h: jax.Array) -> jax.Array:
    h = h ^ (h >> 16)
    h = h * jnp.uint32(0x85EBCA6B)
    h = h ^ (h >> 13)
    h = h * jnp.uint32(0xC2B2AE35)
    return h ^ (h >> 16)


def seed_from_key(key: jax.Array) -> jax.Array:
    """A uint32 seed word derived from a JAX PRNG key."""
    return jax.random.bits(key, (), jnp.uint32)


def _combine(h: jax.Array, c: jax.Array) -> jax.Array:
    """One chaining step: fold the word ``c`` into the running hash ``h`` (asymmetric in h, c)."""
    return _fmix32(h ^ (c + jnp.uint32(0x7F4A7C15) + (h << 6) + (h >> 2)))


def hash_bits(seed: jax.Array, *counters: jax.Array) -> jax.Array:
    """uint32 hash of ``seed`` and integer ``counters`` (broadcast together), chained in order."""
    h = _fmix32(jnp.asarray(seed, jnp.uint32) ^ jnp.uint32(0x5BD1E995))
    for c in counters:
        h = _combine(h, jnp.asarray(c).astype(jnp.uint32) * jnp.uint32(_GOLDEN))
    return h


def row_hash(seed: jax.Array, rows: jax.Array) -> jax.Array:
    """Row word of a two-index draw (e.g. customer, with the week in ``seed``)."""
    return hash_bits(seed, jnp.uint32(_ROW_TAG), rows)


def column_hash(seed: jax.Array, columns: jax.Array) -> jax.Array:
    """Column word of a two-index draw (e.g. product or category); independent of :func:`row_hash`."""
    return hash_bits(seed, jnp.uint32(_COLUMN_TAG), columns)


def pair_bits(row_word: jax.Array, column_word: jax.Array) -> jax.Array:
    """Bits of the ``(row, column)`` draw from :func:`row_hash` and :func:`column_hash` words.

    ``[rows x columns]`` draws cost one finaliser per value (the row and column words are computed
    once per row / column).
    """
    return _combine(jnp.asarray(row_word, jnp.uint32), jnp.asarray(column_word, jnp.uint32))


def pair_uniform(seed: jax.Array, rows: jax.Array, columns: jax.Array) -> jax.Array:
    """float32 uniforms of the ``(rows, columns)`` tuples (broadcast together) of stream ``seed``."""
    return bits_to_uniform(pair_bits(row_hash(seed, rows), column_hash(seed, columns)))


def bits_to_uniform(bits: jax.Array) -> jax.Array:
    """float32 uniform strictly inside (0, 1) from uint32 bits: ``(top 23 bits + 1/2) 2^-23``.

    23 bits keep ``k + 1/2`` exact in float32's 24-bit significand, so the largest value is
    ``1 - 2^-24 < 1`` (with 24 bits it would round to exactly 1.0).
    """
    return ((bits >> 9).astype(jnp.float32) + jnp.float32(0.5)) * jnp.float32(2.0**-23)


def hash_uniform(seed: jax.Array, *counters: jax.Array) -> jax.Array:
    """float32 uniforms in the open interval (0, 1) of :func:`hash_bits`."""
    return bits_to_uniform(hash_bits(seed, *counters))


def uniform_to_normal(u: jax.Array) -> jax.Array:
    """Standard normal by inverse CDF, ``sqrt(2) erfinv(2u - 1)`` (cheaper than ``ndtri`` on CPU).

    float32 in, float32 out; finite for every output of :func:`bits_to_uniform`."""
    u = jnp.asarray(u, jnp.float32)
    return jnp.float32(1.4142135) * jax.scipy.special.erfinv(jnp.float32(2.0) * u - jnp.float32(1.0))


def uniform_to_gumbel(u: jax.Array, scale: float = 1.0) -> jax.Array:
    """Gumbel(0, scale) by inverse CDF ``-scale log(-log u)``; finite for ``u`` in (0, 1)."""
    u = jnp.asarray(u, jnp.float32)
    return jnp.float32(-scale) * jnp.log(-jnp.log(u))


def hash_normal(seed: jax.Array, *counters: jax.Array) -> jax.Array:
    """float32 standard normals by inverse CDF of :func:`hash_uniform`."""
    return uniform_to_normal(hash_uniform(seed, *counters))
