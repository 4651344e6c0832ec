"""Dynamic pricing per SKU (Liu et al. 2019, arXiv 1912.02572): RCR/DRCR rewards, markdown and daily modes.

Modules: ``types`` (params/state with shapes), ``generator`` (SKU groups), ``env`` (the market, purchase
probabilities from :mod:`jaxretail.choice.pricing`), ``policies`` (specialist rules, analytic optimum),
``metrics`` (RCR / PCR / DRCR), ``protocol`` (logs, replay estimator, difference in differences;
agent-agnostic). The main job is :mod:`jaxretail.jobs.pricing`.
"""

from jaxretail.envs.pricing import metrics, policies
from jaxretail.envs.pricing.env import (
    DynamicPricing,
    action_price,
    observation,
    ordered_history,
    ordered_lags,
    poisson_from_uniform,
    price_grid,
    price_to_action,
    purchase_probability,
)
from jaxretail.envs.pricing.generator import GROUP_PRESETS, draw_sku, draw_skus, group_params
from jaxretail.envs.pricing.types import SKU, PricingParams, PricingState, make_params, make_sku

__all__ = [
    "GROUP_PRESETS",
    "SKU",
    "DynamicPricing",
    "PricingParams",
    "PricingState",
    "action_price",
    "draw_sku",
    "draw_skus",
    "group_params",
    "make_params",
    "make_sku",
    "metrics",
    "observation",
    "ordered_history",
    "ordered_lags",
    "policies",
    "poisson_from_uniform",
    "price_grid",
    "price_to_action",
    "purchase_probability",
]
