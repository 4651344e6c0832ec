"""Tiled product layout of the coupon catalogue: each category occupies whole rows of ``R`` slots.

The layout and the choice maths on it live in :mod:`jaxretail.choice.tiled` (the one discrete-choice
module); this module keeps the coupon package's import path.
"""

from jaxretail.choice.tiled import TileLayout, make_layout

__all__ = ["TileLayout", "make_layout"]
