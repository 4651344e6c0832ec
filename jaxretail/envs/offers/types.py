"""Types and tables of the product + discount offer system (Mahdavian et al., Algorithms 18(11):706, 2025).

Five actions / classes (Table 2): ``0`` no purchase (no offer), ``1`` purchase at 0 % discount,
``2`` at 10 %, ``3`` at 20 %, ``4`` at >= 30 %. ``N`` samples, ``F = 15`` state features S1-S15.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxretail.core.environment import EnvParams, EnvState
from jaxretail.core.validation import (
    ConfigError,
    check_int,
    check_number,
    checked_dataclass,
    fingerprint,
    is_traced,
)

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


@checked_dataclass
class OfferParams(EnvParams):
    """A fixed set of ``N`` (customer, product) samples the contextual-bandit episodes draw from.

    Build with :func:`jaxretail.envs.offers.env.make_params`; a direct ``OfferParams(...)`` or
    ``.replace(...)`` checks every field with the same rules (:func:`check_offer_params`; tracers
    pass) and sets ``dataset_id`` to the fingerprint of ``(features, labels)`` (a given value is kept
    only while the data are traced). JAX's own rebuilds of the node are not checked.

    Raises:
      ConfigError: (a ``ValueError``) naming the field, the value and the rule.
    """

    features: jax.Array  # [N, F] float32 standardized state features
    labels: jax.Array  # [N] int32 true class in 0..4
    reward_table: jax.Array  # [5, 5] float32 reward[actual, action] (Table 3)
    episode_length: int = struct.field(pytree_node=False, default=1)
    dataset_id: jax.Array | None = None  # [] uint32 CRC-32 of (features, labels); reset copies it

    def __post_init__(self):
        check_offer_params(self, owner="OfferParams")
        if not is_traced(self.features) and not is_traced(self.labels):
            object.__setattr__(self, "dataset_id", jnp.asarray(fingerprint(self.features, self.labels)))
        elif self.dataset_id is None:
            raise ConfigError("OfferParams.dataset_id must be given when features or labels are traced")


@struct.dataclass
class OfferState(EnvState):
    """``t``: 1-based step in the episode; ``index``: the current sample."""

    index: jax.Array  # [] int32 row of params.features shown now
    dataset: jax.Array  # [] uint32 params.dataset_id of the params the state was reset with


def check_offer_params(p, owner: str | None = None) -> None:
    """The rules of :class:`OfferParams` (concrete values; tracers pass): ``features`` a finite
    non-empty float ``[N, F]`` array, ``labels`` integer classes ``0..4`` of shape ``[N]``,
    ``reward_table`` a finite ``[5, 5]`` array, ``episode_length`` an integer >= 1."""
    name = (lambda f: f"{owner}.{f}") if owner else (lambda f: f)
    check_int("episode_length", p.episode_length, 1, owner=owner)
    features, labels = p.features, p.labels
    if getattr(features, "ndim", None) != 2 or features.shape[0] < 1:
        raise ConfigError(f"{name('features')} must be a non-empty [N, F] array, got shape "
                          f"{getattr(features, 'shape', type(features).__name__)}")  # fmt: skip
    if not is_traced(features) and np.asarray(features).dtype.kind != "f":
        raise ConfigError(f"{name('features')} must be a float array, got dtype {np.asarray(features).dtype}")
    check_number("features", features, owner=owner)
    if getattr(labels, "shape", None) != (features.shape[0],):
        raise ConfigError(f"{name('labels')} must have shape ({features.shape[0]},), got "
                          f"{getattr(labels, 'shape', type(labels).__name__)}")  # fmt: skip
    if not is_traced(labels):
        arr = np.asarray(labels)
        if arr.dtype.kind not in "iu":
            raise ConfigError(
                f"{name('labels')} must be integer classes 0..{NUM_ACTIONS - 1}, got dtype {arr.dtype}"
            )
        if arr.min() < 0 or arr.max() >= NUM_ACTIONS:
            raise ConfigError(
                f"{name('labels')} must lie in 0..{NUM_ACTIONS - 1}, got range [{arr.min()}, {arr.max()}]"
            )
    check_number("reward_table", p.reward_table, shape=(NUM_ACTIONS, NUM_ACTIONS), owner=owner)
