"""Tiled product layout: each category occupies whole rows of ``R`` slots (padding marked invalid).

With contiguous category blocks this turns per-category reductions into row sums followed by a tiny
``[rows, J]`` matrix product, and product choice into "pick a row, then a slot", both with fixed
shapes (``shared/specs/performance.md`` §2a).
"""

from __future__ import annotations

from dataclasses import dataclass

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

    def to_tiles(self, values: np.ndarray, fill: float = 0.0) -> np.ndarray:
        """Scatter a per-product ``[..., I]`` array into tiles ``[..., rows, R]``."""
        values = np.asarray(values)
        out = np.full(values.shape[:-1] + self.product.shape, fill, dtype=values.dtype)
        out[..., self.valid] = values[..., self.product[self.valid]]
        return out


def make_layout(category_sizes: tuple[int, ...], row_width: int = 32) -> TileLayout:
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
