"""SKU generator: luxury-like and FMCG-like groups with parametric willingness to pay.

Willingness to pay is parametric: a visitor's utility for the SKU at price ``p`` is
``a - b p / p_ref + z_t + Gumbel`` (the MNL's random-utility form, so WTP is logistic around
``(a + z_t) p_ref / b``), with the price sensitivity ``b`` drawn per SKU. The two groups mirror
the paper's Fig. 2-3 contrast (Liu et al. 2019, arXiv 1912.02572):

* **luxury** (jewellery, handbags): expensive, few visitors, elastic in the look-back range
  (``b`` in [1.5, 3.5]: the RCR-optimal price is at or below ``P_min`` for most SKUs, so RCR falls
  with price, a negative price-RCR correlation), small and short-lived
  conversion shocks.
* **fmcg** (candy, daily goods): cheap, many visitors, less elastic (``b`` in [0.6, 1.6]: the
  optimum is inside or above the range, RCR rises with price), with large persistent conversion
  shocks (promotions, traffic mix) that swamp the price signal in RCR and
  are what the difference DRCR cancels.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxretail.envs.pricing.types import SKU, PricingParams, make_params

GROUP_PRESETS = {
    "luxury": dict(
        log_price_range=(5.3, 8.5),  # ~200 .. 5,000
        cost_ratio_range=(0.3, 0.5),
        history_discount_range=(0.2, 0.5),
        log_uv_range=(3.4, 5.7),  # ~30 .. 300 visitors a day
        conversion_range=(0.005, 0.02),
        slope_range=(1.5, 3.5),
        season_amplitude=0.2,
        traffic_noise=0.3,
        competitor_noise=0.05,
        shock_sd=0.1,
        shock_rho=0.5,
    ),
    "fmcg": dict(
        log_price_range=(1.0, 3.0),  # ~3 .. 20
        cost_ratio_range=(0.5, 0.7),
        history_discount_range=(0.1, 0.3),
        log_uv_range=(6.0, 8.0),  # ~400 .. 3,000 visitors a day
        conversion_range=(0.03, 0.1),
        slope_range=(0.6, 1.6),
        season_amplitude=0.3,
        traffic_noise=0.4,
        competitor_noise=0.15,
        shock_sd=0.6,
        shock_rho=0.95,
    ),
}


def group_params(group: str, **overrides) -> PricingParams:
    """Validated params with the ``"luxury"`` or ``"fmcg"`` SKU distribution (overrides win)."""
    if group not in GROUP_PRESETS:
        raise ValueError(f"group must be one of {tuple(GROUP_PRESETS)}, got group={group!r}")
    return make_params(**{**GROUP_PRESETS[group], **overrides})


def draw_sku(key: jax.Array, params: PricingParams) -> SKU:
    """Draw one SKU from the distribution in ``params`` (all fields ``[]`` float32).

    ``p_max = p_ref`` and ``p_min = p_ref (1 - d)``: the look-back window held the regular price and
    a deepest promotion ``d``. The intercepts put the conversion at the list price, with the
    competitor at parity, at the drawn level (see :func:`jaxretail.envs.pricing.types.make_sku`).
    """
    u = jax.random.uniform(key, (8,), jnp.float32)

    def lerp(r, x):
        return r[0] + (r[1] - r[0]) * x

    p_ref = jnp.exp(lerp(params.log_price_range, u[0]))
    conv = lerp(params.conversion_range, u[4])
    b = lerp(params.slope_range, u[5])
    a = b + jnp.log(conv / (1.0 - 2.0 * conv))
    f32 = lambda x: jnp.asarray(x, jnp.float32)
    return SKU(
        list_price=p_ref,
        unit_cost=p_ref * lerp(params.cost_ratio_range, u[1]),
        p_min=p_ref * (1.0 - lerp(params.history_discount_range, u[2])),
        p_max=p_ref,
        base_uv=jnp.exp(lerp(params.log_uv_range, u[3])),
        season_amplitude=f32(params.season_amplitude) * jnp.ones(()),
        season_phase=7.0 * u[6],
        traffic_noise=f32(params.traffic_noise) * jnp.ones(()),
        intercept=a,
        price_slope=b / p_ref,
        competitor_intercept=a,
        competitor_price=0.9 + 0.2 * u[7],
        competitor_noise=f32(params.competitor_noise) * jnp.ones(()),
        shock_sd=f32(params.shock_sd) * jnp.ones(()),
        shock_rho=f32(params.shock_rho) * jnp.ones(()),
    )


def draw_skus(key: jax.Array, params: PricingParams, num_skus: int) -> SKU:
    """``num_skus`` SKUs (every field ``[num_skus]``), one per ``split(key)``."""
    return jax.vmap(draw_sku, in_axes=(0, None))(jax.random.split(key, num_skus), params)
