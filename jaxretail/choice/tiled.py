"""Category -> product logit on a tiled catalogue, for ONE choice situation (vmap for customers).

A catalogue of ``J`` categories (nests) is laid out in whole rows of ``R`` slots (padding marked
invalid, :class:`TileLayout`), so per-category reductions become row reductions followed by O(rows)
work on static slices of the row statistics (categories occupy contiguous rows), and product choice
becomes "pick a row, then a slot", both with fixed shapes (``shared/specs/performance.md`` §2a).
The model (RetailSynth, Xia et al. arXiv 2312.14095 §3):

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
    return TileLayout(
        row_width=row_width,
        product=product,
        valid=product >= 0,
        row_category=row_category,
        category_first_row=first_row.astype(np.int32),
        category_num_rows=num_rows_j.astype(np.int32),
        slot_prefix=np.triu(np.ones((row_width, row_width), np.float32)),
    )


def row_statistics(mu: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Per-row maximum ``m_row [rows]`` and shifted sum ``e_row [rows] = sum_r e^{mu - m_row}`` of
    utilities ``mu [rows, R]`` (``-inf`` on padding; a row without a finite utility gets ``m_row = 0``,
    ``e_row = 0``). The only per-slot work of the choice besides :func:`sample`'s chosen rows."""
    m_row = jnp.max(mu, axis=-1)
    m_row = jnp.where(jnp.isfinite(m_row), m_row, 0.0)
    return m_row, jnp.sum(jnp.exp(mu - m_row[:, None]), axis=-1)


def _category_rows(m_row: jax.Array, e_row: jax.Array, m_cat: jax.Array, layout: TileLayout):
    """Row sums relative to each category's maximum, one ``[n_j]`` array per category (static slices:
    categories occupy contiguous rows), and their scales ``e^{m_row - m_cat}``."""
    out = []
    for j, (a, n) in enumerate(zip(layout.category_first_row, layout.category_num_rows, strict=True)):
        scale = jnp.exp(m_row[a : a + n] - m_cat[j])
        out.append((e_row[a : a + n] * scale, scale))
    return out


def inclusive_values(mu: jax.Array, layout: TileLayout) -> dict[str, jax.Array]:
    """Category inclusive values ``cv [J]`` and store value ``sv []`` of utilities ``mu [rows, R]``.

    Args:
      mu: ``[rows, R]`` utilities, ``-inf`` on padding; every row holds at least one product.
      layout: the catalogue's :class:`TileLayout` (static).

    Returns ``cv [J]``, ``sv []`` and the statistics :func:`sample` reuses: ``m_row``, ``e_row`` (see
    :func:`row_statistics`), ``m_cat [J]`` (category maximum) and ``cat_sum [J]`` (``sum e^{mu - m_cat}``).
    Max-subtracted per row and per category, so every category keeps full float32 precision however
    far its utilities lie below the customer's largest one; ``cat_sum >= 1``, so ``cv`` is finite
    whenever the utilities are (``-inf`` for a category without finite utility). Per-category work uses
    static slices of the ``[rows]`` statistics (no ``[rows, J]`` one-hot products): O(rows) per customer.
    """
    m_row, e_row = row_statistics(mu)
    bounds = zip(layout.category_first_row, layout.category_num_rows, strict=True)
    m_cat = jnp.stack([jnp.max(m_row[a : a + n]) for a, n in bounds])
    m_cat = jnp.where(jnp.isfinite(m_cat), m_cat, 0.0)
    cat_sum = jnp.stack([jnp.sum(rs) for rs, _ in _category_rows(m_row, e_row, m_cat, layout)])
    cv = jnp.where(cat_sum > 0, m_cat + jnp.log(jnp.where(cat_sum > 0, cat_sum, 1.0)), -jnp.inf)
    m_s = jnp.max(cv)
    sv = m_s + jnp.log(jnp.sum(jnp.exp(cv - m_s)))
    return {"cv": cv, "sv": sv, "m_row": m_row, "e_row": e_row, "m_cat": m_cat, "cat_sum": cat_sum}


def category_probability(cv: jax.Array, intercept: jax.Array, slope: jax.Array) -> jax.Array:
    """``sigmoid(g0 + g1 CV)`` per category ``[J]``, safe for ``CV = -inf`` (then ``0`` if ``g1 > 0``,
    else ``sigmoid(g0)``)."""
    finite = jnp.isfinite(cv)
    logit = jnp.where(
        finite, intercept + slope * jnp.where(finite, cv, 0.0), jnp.where(slope > 0, -jnp.inf, intercept)
    )
    return jax.nn.sigmoid(logit)


def sample(
    uniform: jax.Array, mu: jax.Array, iv: dict[str, jax.Array], layout: TileLayout
) -> tuple[jax.Array, jax.Array]:
    """Inverse-CDF MNL choice within every category from one uniform each: ``(row [J], slot [J])``.

    Args:
      uniform: ``[J]`` uniforms in (0, 1).
      mu: ``[rows, R]`` utilities; iv: their :func:`inclusive_values`.

    Picks the row whose within-category running sum first reaches ``u S_j`` (a sequential sum over the
    category's rows), then the slot within that row, reusing the same uniform (no Gumbel per product):
    only the ``J`` chosen rows' weights are recomputed. The product is ``layout.product[row, slot]``.
    """
    rows, residuals, scales = [], [], []
    per_category = _category_rows(iv["m_row"], iv["e_row"], iv["m_cat"], layout)
    for j, (rs, scale) in enumerate(per_category):
        target = uniform[j] * iv["cat_sum"][j]
        cum = [rs[0]]
        for r in range(1, rs.shape[0]):
            cum.append(cum[-1] + rs[r])
        k = sum(((c < target).astype(jnp.int32) for c in cum[:-1]), jnp.int32(0))
        rows.append(layout.category_first_row[j] + k)
        residuals.append(target - (jnp.stack(cum)[k] - rs[k]))
        scales.append(scale[k])
    row, residual = jnp.stack(rows), jnp.stack(residuals)
    row_w = jnp.exp(mu[row] - iv["m_row"][row][:, None]) * jnp.stack(scales)[:, None]  # [J, R]
    cum_slot = row_w @ jnp.asarray(layout.slot_prefix)  # [J, R]
    last_valid = jnp.asarray(layout.valid.sum(axis=1) - 1, jnp.int32)[row]
    slot = jnp.minimum(jnp.sum(cum_slot < residual[:, None], axis=1), last_valid)
    return row, slot
