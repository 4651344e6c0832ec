"""Category -> product logit on a tiled catalogue, for ONE choice situation (vmap for customers).

A catalogue of ``J`` categories (nests) is laid out in whole rows of ``R`` slots (padding marked
invalid, :class:`TileLayout`), so per-category reductions become row reductions followed by a tiny
``[rows, J]`` matrix product, and product choice becomes "pick a row, then a slot", both with fixed
shapes (``shared/specs/performance.md`` §2a). The model (RetailSynth, Xia et al. arXiv 2312.14095 §3):

* inclusive value of category ``j``: ``CV_j = log sum_{i in j} e^{mu_i}``; store value
  ``SV = log sum_j e^{CV_j}``;
* category purchase: ``P(C_j = 1) = sigmoid(g0_j + g1_j CV_j)`` (:func:`category_probability`);
* product within the category: multinomial logit ``e^{mu_i} / e^{CV_j}``, drawn by inverse CDF from
  one uniform per category (:func:`sample`).

Every function takes one situation (utilities ``[rows, R]`` of one customer); callers vmap.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np


@dataclass(frozen=True, eq=False)
class TileLayout:
    """Static index arrays of the layout (NumPy; become constants under jit)."""

    row_width: int  # R
    product: np.ndarray  # [rows, R] int32 product index, -1 for padding
    valid: np.ndarray  # [rows, R] bool
    row_category: np.ndarray  # [rows] int32
    row_to_category: np.ndarray  # [rows, J] float32 one-hot
    same_category_prefix: np.ndarray  # [rows, rows] float32: 1 if same category and r' <= r
    category_first_row: np.ndarray  # [J] int32
    category_num_rows: np.ndarray  # [J] int32
    slot_prefix: np.ndarray  # [R, R] float32 upper-triangular ones (running sum within a row)

    @property
    def num_rows(self) -> int:
        return self.product.shape[0]

    @property
    def num_slots(self) -> int:
        """``S = rows R``: length of the flat slot layout (``[rows, R]`` in row-major order)."""
        return self.product.size

    @property
    def slot_category(self) -> np.ndarray:
        """``[S]`` int32 category of each flat slot (padding: its row's category)."""
        return np.repeat(self.row_category, self.row_width)

    def to_tiles(self, values: np.ndarray, fill: float = 0.0) -> np.ndarray:
        """Scatter a per-product ``[..., I]`` array into tiles ``[..., rows, R]``."""
        values = np.asarray(values)
        out = np.full(values.shape[:-1] + self.product.shape, fill, dtype=values.dtype)
        out[..., self.valid] = values[..., self.product[self.valid]]
        return out


def make_layout(category_sizes: tuple[int, ...], row_width: int = 32) -> TileLayout:
    """Layout of contiguous categories of ``category_sizes`` products in rows of ``row_width`` slots."""
    sizes = np.asarray(category_sizes, np.int64)
    num_rows_j = -(-sizes // row_width)
    first_row = np.concatenate([[0], np.cumsum(num_rows_j)[:-1]])
    rows = int(num_rows_j.sum())
    product = np.full((rows, row_width), -1, np.int32)
    start = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    for j, (n, r0, p0) in enumerate(zip(sizes, first_row, start, strict=True)):
        flat = np.full(num_rows_j[j] * row_width, -1, np.int32)
        flat[:n] = np.arange(p0, p0 + n)
        product[r0 : r0 + num_rows_j[j]] = flat.reshape(-1, row_width)
    row_category = np.repeat(np.arange(len(sizes), dtype=np.int32), num_rows_j)
    onehot = (row_category[:, None] == np.arange(len(sizes))[None, :]).astype(np.float32)
    idx = np.arange(rows)
    prefix = ((row_category[:, None] == row_category[None, :]) & (idx[:, None] <= idx[None, :])).astype(
        np.float32
    )
    return TileLayout(
        row_width=row_width,
        product=product,
        valid=product >= 0,
        row_category=row_category,
        row_to_category=onehot,
        same_category_prefix=prefix,
        category_first_row=first_row.astype(np.int32),
        category_num_rows=num_rows_j.astype(np.int32),
        slot_prefix=np.triu(np.ones((row_width, row_width), np.float32)),
    )


def inclusive_values(mu: jax.Array, row_to_category: jax.Array) -> dict[str, jax.Array]:
    """Category inclusive values ``cv [J]``, store value ``sv []`` and the shifted weights.

    Args:
      mu: ``[rows, R]`` utilities, ``-inf`` on padding; every row holds at least one product.
      row_to_category: ``[rows, J]`` one-hot category of each row.

    Returns ``w [rows, R]`` (``e^{mu - m_row}``), ``row_scale [rows]`` (``e^{m_row - m_cat}``),
    ``row_sum [rows]`` and ``cat_sum [J]`` (relative to the category maximum ``m_cat``), ``cv [J]``
    and ``sv []``. Max-subtracted per row and per category, so every category keeps full float32
    precision however far its utilities lie below the customer's largest one; ``cat_sum >= 1``, so
    ``cv`` is finite whenever the utilities are (``-inf`` for a category without finite utility).
    """
    m_row = jnp.max(mu, axis=-1)
    m_row = jnp.where(jnp.isfinite(m_row), m_row, 0.0)
    in_cat = row_to_category > 0
    m_cat = jnp.max(jnp.where(in_cat, m_row[:, None], -jnp.inf), axis=0)  # [J]
    m_cat = jnp.where(jnp.isfinite(m_cat), m_cat, 0.0)
    w = jnp.exp(mu - m_row[:, None])  # 0 on padding
    row_scale = jnp.exp(m_row - row_to_category @ m_cat)
    row_sum = jnp.sum(w, axis=-1) * row_scale
    cat_sum = row_sum @ row_to_category
    cv = jnp.where(cat_sum > 0, m_cat + jnp.log(jnp.where(cat_sum > 0, cat_sum, 1.0)), -jnp.inf)
    m_s = jnp.max(cv)
    sv = m_s + jnp.log(jnp.sum(jnp.exp(cv - m_s)))
    return {"w": w, "row_scale": row_scale, "row_sum": row_sum, "cat_sum": cat_sum, "cv": cv, "sv": sv}


def category_probability(cv: jax.Array, intercept: jax.Array, slope: jax.Array) -> jax.Array:
    """``sigmoid(g0 + g1 CV)`` per category ``[J]``, safe for ``CV = -inf`` (then ``0`` if ``g1 > 0``,
    else ``sigmoid(g0)``)."""
    finite = jnp.isfinite(cv)
    logit = jnp.where(
        finite, intercept + slope * jnp.where(finite, cv, 0.0), jnp.where(slope > 0, -jnp.inf, intercept)
    )
    return jax.nn.sigmoid(logit)


def sample(
    uniform: jax.Array,
    w: jax.Array,
    row_sum: jax.Array,
    cat_sum: jax.Array,
    layout: TileLayout,
    row_scale: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Inverse-CDF MNL choice within every category from one uniform each: ``(row [J], slot [J])``.

    Args:
      uniform: ``[J]`` uniforms in (0, 1).
      w: ``[rows, R]`` weights within each row; ``row_scale [rows]`` brings them to the scale of
        ``row_sum [rows]`` and ``cat_sum [J]`` (default 1: ``w`` already on that scale), as returned
        by :func:`inclusive_values`.

    Picks the row whose within-category running sum first reaches ``u S_j``, then the slot within
    that row, reusing the same uniform (no Gumbel per product). The product is
    ``layout.product[row, slot]``.
    """
    num_cat = cat_sum.shape[0]
    cum_row = row_sum @ jnp.asarray(layout.same_category_prefix)  # [rows] running sum within category
    target = uniform * cat_sum  # [J]
    in_cat = jnp.asarray(layout.row_category)[None, :] == jnp.arange(num_cat)[:, None]  # [J, rows]
    count = jnp.sum(in_cat & (cum_row[None, :] < target[:, None]), axis=1)
    row = jnp.asarray(layout.category_first_row) + jnp.minimum(
        count, jnp.asarray(layout.category_num_rows) - 1
    )
    residual = target - (cum_row[row] - row_sum[row])
    row_w = w[row] if row_scale is None else w[row] * row_scale[row][:, None]  # [J, R]
    cum_slot = row_w @ jnp.asarray(layout.slot_prefix)  # [J, R]
    last_valid = jnp.sum(jnp.asarray(layout.valid)[row], axis=1) - 1
    slot = jnp.minimum(jnp.sum(cum_slot < residual[:, None], axis=1), last_valid)
    return row, slot
