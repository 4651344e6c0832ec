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
Normals, Gumbel and LogNormal values derived from them are finite (``|z| <= 5.4`` by inverse CDF,
``|z| <= 5.8`` by Box-Muller). Draws are float32 whatever ``jax_enable_x64`` says, so both modes simulate
the same numbers.

Per-slot generators of the coupon simulator avoid transcendental library calls that compile to scalar
code on CPU: :func:`normal_pair` (Box-Muller, the angle's sine and cosine by polynomials on the integer
bits of the word, :func:`sincos_turn`) and :func:`poisson_inverse_cdf` (sequential search of the Poisson
CDF). Both are exact samplers of their law up to float32 rounding and the uniforms' ``2^-23`` grid.
"""

from __future__ import annotations

import math

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
    return _fmix32(h ^ (c + row_offset(h)))


def row_offset(h: jax.Array) -> jax.Array:
    """The part of a chaining step that depends on the running hash only: ``_combine(h, c) =
    fmix(h ^ (c + row_offset(h)))`` (uint32 arithmetic). Precompute it per row word for
    :func:`pair_bits` over many columns."""
    h = jnp.asarray(h, jnp.uint32)
    return jnp.uint32(0x7F4A7C15) + (h << 6) + (h >> 2)


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


def pair_bits_offset(row_word: jax.Array, offset: jax.Array, column_word: jax.Array) -> jax.Array:
    """:func:`pair_bits` with the row's ``offset = row_offset(row_word)`` precomputed (equal bits)."""
    return _fmix32(jnp.asarray(row_word, jnp.uint32) ^ (jnp.asarray(column_word, jnp.uint32) + offset))


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


# Taylor coefficients of sin(x) / x and cos(x) in x^2; on |x| <= pi/4 the truncation errors are below
# 2e-9 (sin, through x^9) and 3e-8 (cos, through x^8), i.e. under half a float32 ulp.
_SIN = (1.0, -1.0 / 6, 1.0 / 120, -1.0 / 5040, 1.0 / 362880)
_COS = (1.0, -1.0 / 2, 1.0 / 24, -1.0 / 720, 1.0 / 40320)
_QUARTER = 1 << 21  # a quarter turn in units of the 23-bit angle grid


def _horner(coefs, x2):
    p = jnp.float32(coefs[-1])
    for c in coefs[-2::-1]:
        p = jnp.float32(c) + p * x2
    return p


def sincos_turn(bits: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(sin t, cos t)`` of the angle ``t = 2 pi (k + 1/2) 2^-23``, ``k`` the top 23 bits of ``bits``.

    The angle is uniform on the circle's ``2^23``-point grid (the same grid as :func:`bits_to_uniform`),
    never a multiple of ``pi / 4``. Reduction to ``|x| <= pi/4`` is exact integer arithmetic on ``k``
    (nearest quarter turn ``q``, remainder ``x``), then ``sin x`` and ``cos x`` are polynomials and the
    quadrant swaps and negates them. float32 in and out; absolute error below ``2e-7``.
    """
    k = jnp.asarray(bits, jnp.uint32) >> 9
    q = (k + jnp.uint32(_QUARTER // 2)) >> 21  # nearest quarter turn, 0..4
    rem = (k.astype(jnp.int32) - (q << 21).astype(jnp.int32)).astype(jnp.float32) + jnp.float32(0.5)
    x = rem * jnp.float32(math.pi / 2 / _QUARTER)  # |x| <= pi / 4
    x2 = x * x
    s, c = x * _horner(_SIN, x2), _horner(_COS, x2)
    q = q & jnp.uint32(3)
    odd = (q & jnp.uint32(1)) == 1
    sin_t = jnp.where(odd, c, s)  # t = q pi/2 + x: (s, c), (c, -s), (-s, -c), (-c, s) for q = 0..3
    cos_t = jnp.where(odd, s, c)
    sin_t = jnp.where(q >= 2, -sin_t, sin_t)
    cos_t = jnp.where((q == 1) | (q == 2), -cos_t, cos_t)
    return sin_t, cos_t


def normal_pair(radius_bits: jax.Array, angle_bits: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Two independent standard normals ``(R cos t, R sin t)`` by Box-Muller from two words.

    ``R = sqrt(-2 log u)`` with ``u = bits_to_uniform(radius_bits)`` in (0, 1), so ``R <= 5.77`` and both
    values are finite; ``t`` from :func:`sincos_turn`. One log, one square root and two short
    polynomials for two normals (inverse-CDF normals cost one ``erfinv`` each).
    """
    r = jnp.sqrt(jnp.float32(-2.0) * jnp.log(bits_to_uniform(jnp.asarray(radius_bits, jnp.uint32))))
    s, c = sincos_turn(angle_bits)
    return r * c, r * s


# Taylor coefficients of sin(x) / x in x^2 through x^13: error below 1e-9 on [0, pi/2]
_SIN_HALF = (1.0, -1.0 / 6, 1.0 / 120, -1.0 / 5040, 1.0 / 362880, -1.0 / 39916800, 1.0 / 6227020800)


def half_turn_sine(angle_bits: jax.Array) -> jax.Array:
    """``sin t`` for ``t`` uniform on ``(-pi/2, pi/2)`` from a word: the top bit gives the sign and the
    next 22 bits ``r`` the magnitude, ``sin t = +-sin(pi/2 (r + 1/2) 2^-22)``, one odd polynomial
    (absolute error below ``2e-7``; clipped to ``[-1, 1]``, which float32 rounding of the polynomial
    could exceed near ``pi/2``, so that ``1 - sin^2 t >= 0``). The angle of :func:`normal_and_square`."""
    k = jnp.asarray(angle_bits, jnp.uint32) >> 9
    r = (k & jnp.uint32(0x3FFFFF)).astype(jnp.float32) + jnp.float32(0.5)
    x = r * jnp.float32(math.pi / 2 * 2.0**-22)
    s = jnp.minimum(x * _horner(_SIN_HALF, x * x), jnp.float32(1.0))
    return jnp.where((k >> 22) == 1, -s, s)


def normal_and_square(
    radius_bits: jax.Array, angle_bits: jax.Array | None = None, *, sine: jax.Array | None = None
) -> tuple[jax.Array, jax.Array]:
    """``(z, w^2)`` of a Box-Muller pair ``(z, w) = (R sin t, R cos t)``: two independent standard
    normals, of which only the second's square is wanted (cheaper than :func:`normal_pair`).

    ``t`` is uniform on ``(-pi/2, pi/2)`` (the sign of ``cos t`` is not needed), ``sin t`` from
    :func:`half_turn_sine` of ``angle_bits`` (or given as ``sine``, e.g. computed once for several
    consumers); ``w^2 = R^2 (1 - sin^2 t)`` (absolute error about ``1e-7 R^2``).
    """
    e = jnp.float32(-2.0) * jnp.log(bits_to_uniform(jnp.asarray(radius_bits, jnp.uint32)))  # R^2
    s = half_turn_sine(angle_bits) if sine is None else jnp.asarray(sine, jnp.float32)
    return jnp.sqrt(e) * s, e * (jnp.float32(1.0) - s * s)


POISSON_INVERSE_CDF_MAX_RATE = 32.0  # above: a rejection sampler (see poisson_inverse_cdf)
_POISSON_UNROLLED = 8
_POISSON_MAX_COUNT = 128  # P(N >= 128 | rate 32) < 1e-40


def poisson_inverse_cdf(u: jax.Array, rate: jax.Array) -> jax.Array:
    """Poisson(``rate``) draw by inverse CDF: the smallest ``n`` with ``F(n; rate) >= u``.

    ``u`` is a uniform in (0, 1) (any shape), ``rate`` broadcasts with it; returns int32. The search
    adds one term of the probability mass function at a time (``p_n = p_{n-1} rate / n``): eight steps
    unrolled, then a loop that runs only while some element still has ``u > F`` (rare for small rates).
    Exact up to float32 rounding of ``F`` for ``0 <= rate <= POISSON_INVERSE_CDF_MAX_RATE`` (32:
    ``exp(-rate)`` and the sum stay accurate in float32); larger rates must use another sampler
    (the coupon week uses ``jax.random.poisson`` for them; the choice depends on the rate only, so the
    law stays Poisson). A rate of 0 gives 0.
    """
    u = jnp.asarray(u, jnp.float32)
    rate = jnp.asarray(rate, jnp.float32)
    p = jnp.exp(-rate)
    cdf = p
    n = jnp.zeros(jnp.broadcast_shapes(u.shape, rate.shape), jnp.int32)
    for k in range(1, _POISSON_UNROLLED + 1):
        n = n + (u > cdf).astype(jnp.int32)
        p = p * rate / jnp.float32(k)
        cdf = cdf + p

    def searching(k, p, cdf):
        # past the mode, a mass below 2^-30 ends the search: float32 F may stop short of 1 - 2^-24
        # (a draw from the last 2^-23 of the uniforms then lands where the tail mass is below 1e-8)
        return (u > cdf) & ((p > jnp.float32(2.0**-30)) | (k.astype(jnp.float32) <= rate + 1.0))

    def more(carry):
        k, n, p, cdf = carry
        return (k <= _POISSON_MAX_COUNT) & jnp.any(searching(k, p, cdf))

    def step(carry):
        k, n, p, cdf = carry
        n = n + searching(k, p, cdf).astype(jnp.int32)
        p = p * rate / k.astype(jnp.float32)
        return k + 1, n, p, cdf + p

    _, n, _, _ = jax.lax.while_loop(more, step, (jnp.int32(_POISSON_UNROLLED + 1), n, p, cdf))
    return n
