"""State and parameters of the dynamic assortment environment.

Shapes use ``N`` = number of items and ``d`` = number of static features.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from jaxretail.core.environment import EnvParams, EnvState

OBS_MODES = ("paper", "package")
HISTORY_LENGTH = 5


@struct.dataclass
class AssortmentState(EnvState):
    """One episode of the dynamic assortment problem (one instance + its customer stream)."""

    price: jax.Array  # [N] float, item prices p (fixed over the episode)
    static_features: jax.Array  # [d, N] float, f_1..f_d (fixed over the episode)
    hype: jax.Array  # [N] float, current hype h
    saturation: jax.Array  # [N] float, current saturation sigma
    hype_initial: jax.Array  # [N] float, h_0
    saturation_initial: jax.Array  # [N] float, sigma_0
    hype_delta: jax.Array  # [N] float, one-step change of h made by the last transition
    saturation_delta: jax.Array  # [N] float, one-step change of sigma made by the last transition
    history: jax.Array  # [5] int32, last purchases, history[0] most recent; N = no purchase / empty
    customer_key: jax.Array  # [] PRNG key; the customer at step t uses fold_in(customer_key, t)
    # t: [] int32 from EnvState, 1-based index of the next decision (T + 1 once the episode ended)


@struct.dataclass
class AssortmentParams(EnvParams):
    """Sizes (static) and coefficients (vmappable) of the problem.

    Defaults follow Hoppe et al. (arXiv 2505.19053) and DecisionFocusedLearningBenchmarks.jl:
    utility ``theta_i = -0.8 p_i + 0.6 h_i - 0.4 sigma_i + sum_k (0.3 + 0.2 (k-1)) f_{k,i}``,
    hype multipliers ``(+0.02, -0.005 x 4)`` over the last five purchases, saturation x1.01.
    Build with :func:`make_params`, which validates every field.
    """

    num_items: int = struct.field(pytree_node=False, default=20)  # N
    num_features: int = struct.field(pytree_node=False, default=2)  # d
    assortment_size: int = struct.field(pytree_node=False, default=4)  # K
    horizon: int = struct.field(pytree_node=False, default=80)  # T decisions per episode
    obs_mode: str = struct.field(pytree_node=False, default="paper")  # "paper" | "package"
    exogenous: bool = struct.field(pytree_node=False, default=False)  # freeze hype and saturation
    price_weight: jax.Array | float = -0.8
    hype_weight: jax.Array | float = 0.6
    saturation_weight: jax.Array | float = -0.4
    feature_weights: jax.Array | None = None  # [d]; None -> 0.3, 0.5, 0.7, ...
    hype_lag_effects: jax.Array | None = None  # [5]; None -> (0.02, -0.005, -0.005, -0.005, -0.005)
    saturation_growth: jax.Array | float = 1.01
    draw_low: jax.Array | float = 1.0  # every instance value ~ Uniform[draw_low, draw_high]
    draw_high: jax.Array | float = 10.0

    @property
    def num_subsets(self) -> int:
        """C(N, K), the number of feasible assortments."""
        import math

        return math.comb(self.num_items, self.assortment_size)


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or int(value) != value or int(value) < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {name}={value!r}")
    return int(value)


def make_params(
    num_items: int = 20,
    num_features: int = 2,
    assortment_size: int = 4,
    horizon: int = 80,
    obs_mode: str = "paper",
    exogenous: bool = False,
    **coefficients,
) -> AssortmentParams:
    """Validated :class:`AssortmentParams`; every error names the field, the value and the rule.

    Raises:
      ValueError: for ``K > N``, ``K < 1``, non-positive ``T``, an unknown ``obs_mode``, a
        feature-weight vector of the wrong length, or ``draw_low >= draw_high``.
    """
    n = _check_int("num_items", num_items, 1)
    d = _check_int("num_features", num_features, 0)
    t = _check_int("horizon", horizon, 1)
    if isinstance(assortment_size, bool) or int(assortment_size) != assortment_size:
        raise ValueError(f"assortment_size must be an integer, got assortment_size={assortment_size!r}")
    k = int(assortment_size)
    if not 1 <= k <= n:
        raise ValueError(
            f"assortment_size must satisfy 1 <= assortment_size <= num_items={n}, got assortment_size={k}"
        )
    if obs_mode not in OBS_MODES:
        raise ValueError(f"obs_mode must be one of {OBS_MODES}, got obs_mode={obs_mode!r}")
    unknown = set(coefficients) - {
        "price_weight",
        "hype_weight",
        "saturation_weight",
        "feature_weights",
        "hype_lag_effects",
        "saturation_growth",
        "draw_low",
        "draw_high",
    }
    if unknown:
        raise ValueError(f"unknown AssortmentParams field(s): {sorted(unknown)}")
    fw = coefficients.pop("feature_weights", None)
    fw = 0.3 + 0.2 * jnp.arange(d, dtype=jnp.float32) if fw is None else jnp.asarray(fw, jnp.float32)
    if fw.shape != (d,):
        raise ValueError(f"feature_weights must have shape ({d},) for num_features={d}, got {fw.shape}")
    lag = coefficients.pop("hype_lag_effects", None)
    lag = jnp.array([0.02, -0.005, -0.005, -0.005, -0.005], jnp.float32) if lag is None else lag
    lag = jnp.asarray(lag, jnp.float32)
    if lag.shape != (HISTORY_LENGTH,):
        raise ValueError(f"hype_lag_effects must have shape ({HISTORY_LENGTH},), got {lag.shape}")
    low = float(coefficients.get("draw_low", 1.0))
    high = float(coefficients.get("draw_high", 10.0))
    if not low < high:
        raise ValueError(f"draw_low must be < draw_high, got draw_low={low}, draw_high={high}")
    if float(coefficients.get("saturation_growth", 1.01)) <= 0:
        raise ValueError(
            f"saturation_growth must be > 0, got saturation_growth={coefficients['saturation_growth']}"
        )
    return AssortmentParams(
        num_items=n,
        num_features=d,
        assortment_size=k,
        horizon=t,
        obs_mode=obs_mode,
        exogenous=bool(exogenous),
        feature_weights=fw,
        hype_lag_effects=lag,
        **coefficients,
    )
