"""Types and tables of the product + discount offer system (Mahdavian et al., Algorithms 18(11):706, 2025).

Five actions / classes (Table 2): ``0`` no purchase (no offer), ``1`` purchase at 0 % discount,
``2`` at 10 %, ``3`` at 20 %, ``4`` at >= 30 %. ``N`` samples, ``F = 15`` state features S1-S15.
"""

from __future__ import annotations

import math

import jax
import numpy as np
from flax import struct

from jaxretail.core.environment import EnvParams, EnvState

NUM_ACTIONS = 5
ACTION_NAMES = ("no purchase", "0%", "10%", "20%", ">=30%")
FEATURES = tuple(f"S{k}" for k in range(1, 16))
FEATURE_NAMES = (
    "original product price",
    "product sales (lines)",
    "average original product price",
    "unique customers of the product",
    "average days between product sales",
    "customer baskets",
    "customer lifetime (days)",
    "unique products of the customer",
    "average amount paid per basket",
    "average original amount per basket",
    "average discount amount per line",
    "average days between baskets",
    "average days between discounted baskets",
    "RFM score (summed quintiles, 3-15)",
    "discount on offer (or realized discount, option)",
)
# Default discount edges (realized discount fraction -> class) and the discount offered per class.
DEFAULT_EDGES = (0.05, 0.15, 0.25)  # d < 5 % -> 0 %, [5, 15) -> 10 %, [15, 25) -> 20 %, >= 25 % -> >= 30 %
DEFAULT_LEVELS = (0.0, 0.10, 0.20, 0.30)  # discount fraction offered by actions 1..4

# Table 3: reward[actual, action].
REWARD_TABLE = np.array(
    [
        [4.0, -10.0, -10.0, -10.0, -10.0],
        [-10.0, 10.0, 4.0, 4.0, 4.0],
        [-10.0, 4.0, 10.0, 4.0, 4.0],
        [-10.0, 4.0, 4.0, 10.0, 4.0],
        [-10.0, 4.0, 4.0, 4.0, 10.0],
    ],
    np.float32,
)
# Table 5: weight W[actual, predicted] of the weighted multi-class accuracy.
WEIGHT_TABLE = np.array(
    [
        [10.0, -4.0, -3.0, -2.0, -1.0],
        [-4.0, 10.0, -1.0, -2.0, -3.0],
        [-4.0, -3.0, 10.0, -1.0, -2.0],
        [-4.0, -3.0, -2.0, 10.0, -1.0],
        [-4.0, -3.0, -2.0, -1.0, 10.0],
    ],
    np.float32,
)


def check_edges_levels(edges, levels) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Validate the 3 discount edges and 4 offer levels; errors name the field and the value.

    Edges must be strictly increasing in (0, 1); levels strictly increasing in [0, 1) with level ``k``
    inside class ``k``'s bin (``edges[k-1] <= levels[k] < edges[k]``).
    """
    edges = tuple(float(e) for e in edges)
    levels = tuple(float(v) for v in levels)
    if len(edges) != NUM_ACTIONS - 2:
        raise ValueError(f"edges must hold {NUM_ACTIONS - 2} discount fractions, got edges={edges!r}")
    if any(not (0.0 < e < 1.0) or math.isnan(e) for e in edges):
        raise ValueError(f"edges must lie in (0, 1), got edges={edges!r}")
    if any(b <= a for a, b in zip(edges, edges[1:], strict=False)):
        raise ValueError(f"edges must be strictly increasing, got edges={edges!r}")
    if len(levels) != NUM_ACTIONS - 1:
        raise ValueError(f"levels must hold {NUM_ACTIONS - 1} discount fractions, got levels={levels!r}")
    bounds = (0.0,) + edges + (1.0,)
    for k, v in enumerate(levels):
        if not (bounds[k] <= v < bounds[k + 1]):
            raise ValueError(
                f"levels[{k}]={v!r} must lie in its class bin [{bounds[k]}, {bounds[k + 1]}) "
                f"of edges={edges!r}"
            )
    return edges, levels


@struct.dataclass
class OfferParams(EnvParams):
    """A fixed set of ``N`` (customer, product) samples the contextual-bandit episodes draw from."""

    features: jax.Array  # [N, F] float32 standardized state features
    labels: jax.Array  # [N] int32 true class in 0..4
    reward_table: jax.Array  # [5, 5] float32 reward[actual, action] (Table 3)
    episode_length: int = struct.field(pytree_node=False, default=1)


@struct.dataclass
class OfferState(EnvState):
    """``t``: 1-based step in the episode; ``index``: the current sample."""

    index: jax.Array  # [] int32 row of params.features shown now
