"""Weekly utility clip of the original benchmark: the ``q``-th percentile of the week's customer x product
utilities (``shared/specs/coupon.md`` §1.3), computed exactly without materialising ``[U, I]``.

Exact radix selection over streamed blocks. A float32 value maps to a uint32 key with the same order
(:func:`order_key`). Pass 1 counts the keys' top 16 bits (65,536 bins) over every block; the bins holding
the two order statistics that ``numpy.percentile``'s linear interpolation needs (ranks ``floor(pos)`` and
``floor(pos) + 1``, ``pos = q / 100 (N - 1)``) follow from the cumulative counts. Pass 2 counts the low 16
bits of the values inside those two bins, which pins both order statistics exactly. Memory is
``O(block + 2^16)``; the utilities are recomputed once per pass. Under ``jax.shard_map`` the counts are
summed over the mesh axis, so every shard gets the population's percentile.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

_BINS = 1 << 16


def order_key(x: jax.Array) -> jax.Array:
    """uint32 key with ``order_key(a) < order_key(b)`` iff ``a < b`` for float32 ``a, b`` (no NaN)."""
    bits = jax.lax.bitcast_convert_type(jnp.asarray(x, jnp.float32), jnp.uint32)
    return jnp.where(bits >> 31 == 1, ~bits, bits | jnp.uint32(0x80000000))


def from_order_key(key: jax.Array) -> jax.Array:
    """Inverse of :func:`order_key`."""
    bits = jnp.where(key >> 31 == 1, key & jnp.uint32(0x7FFFFFFF), ~key)
    return jax.lax.bitcast_convert_type(bits, jnp.float32)


def _locate(counts: jax.Array, rank: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Bin holding the element of 0-based ``rank`` and the rank inside that bin."""
    cum = jnp.cumsum(counts)
    b = jnp.searchsorted(cum, rank, side="right")
    return b, rank - (cum[b] - counts[b])


def streamed_percentile(
    block_values: Callable[[jax.Array], tuple[jax.Array, jax.Array]],
    num_blocks: int,
    q: float,
    axis_name: str | None = None,
    count: int | None = None,
) -> jax.Array:
    """Exact ``numpy.percentile(values, q)`` (linear interpolation) of the values of every block.

    Args:
      block_values: ``b -> (values [n] float32, mask [n] bool)`` for block ``b`` (masked-out entries
        are ignored); called twice per block.
      num_blocks: static number of blocks.
      q: percentile in ``(0, 100]``.
      axis_name: mesh axis to sum counts over (inside ``jax.shard_map``), or ``None``.
      count: the number of unmasked values if known statically: the interpolation position is then
        computed in float64 on the host, exactly as NumPy does (else in float32 on the device, with an
        interpolation weight off by at most ``count * 2^-24``).

    Returns the float32 percentile (``+inf`` if there is no value).
    """
    total = lambda x: x if axis_name is None else jax.lax.psum(x, axis_name)  # noqa: E731

    def pass1(b, counts):
        v, m = block_values(b)
        top = (order_key(v) >> 16).astype(jnp.int32)
        return counts.at[jnp.where(m, top, _BINS)].add(1, mode="drop")

    counts = total(jax.lax.fori_loop(0, num_blocks, pass1, jnp.zeros((_BINS,), jnp.int32)))
    n = jnp.sum(counts)
    if count is not None:
        pos = q / 100.0 * (count - 1)
        lo_i = min(int(math.floor(pos)), max(count - 1, 0))
        lo, hi, frac = jnp.int32(lo_i), jnp.int32(min(lo_i + 1, max(count - 1, 0))), jnp.float32(pos - lo_i)
    else:
        pos = jnp.float32(q / 100.0) * (n - 1).astype(jnp.float32)
        lo = jnp.clip(jnp.floor(pos).astype(jnp.int32), 0, jnp.maximum(n - 1, 0))
        hi = jnp.minimum(lo + 1, jnp.maximum(n - 1, 0))
        frac = jnp.clip(pos - lo.astype(jnp.float32), 0.0, 1.0)
    bins, inner = zip(_locate(counts, lo), _locate(counts, hi), strict=True)

    def pass2(b, low_counts):
        v, m = block_values(b)
        key = order_key(v)
        top, low = (key >> 16).astype(jnp.int32), (key & jnp.uint32(0xFFFF)).astype(jnp.int32)
        for r in range(2):
            low_counts = low_counts.at[r, jnp.where(m & (top == bins[r]), low, _BINS)].add(1, mode="drop")
        return low_counts

    low_counts = total(jax.lax.fori_loop(0, num_blocks, pass2, jnp.zeros((2, _BINS), jnp.int32)))
    values = [
        from_order_key(
            (bins[r].astype(jnp.uint32) << 16) | _locate(low_counts[r], inner[r])[0].astype(jnp.uint32)
        )
        for r in range(2)
    ]
    out = values[0] + frac * (values[1] - values[0])
    return jnp.where(n > 0, out, jnp.inf)
