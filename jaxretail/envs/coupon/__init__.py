"""Coupon targeting on a RetailSynth-style customer model (Xia et al., arXiv 2312.14095, 2405.10469).

Modules: ``configs`` (named scenario configurations), ``types`` (scenario, state and params),
``generator`` (numpyro draws of a simulation's latent parameters, paper base prices), ``pricing``
(high-low shelf chain, coupons), ``layout`` (tiled catalogue, from :mod:`jaxretail.choice.tiled`),
``customer`` (one customer's week, four stages), ``params`` (``make_params``, block sizes per backend),
``streams`` (random-number streams, per-week product inputs), ``context`` (next week's features, the
agent context), ``week`` (the visitor block loop), ``env`` (the population environment; every public
name of the parts is importable from it), ``sharded`` (the week under ``shard_map``), ``policies``
(static and random coupons), ``metrics`` (the benchmark's metrics from recorded weeks), ``protocol``
(the agent-agnostic train-then-resume protocol, Algorithm 2).
"""

from jaxretail.envs.coupon.configs import CONFIGS, Dist, ScenarioConfig, get_config
from jaxretail.envs.coupon.env import CONTEXT_FEATURES, CouponEnv, CouponParams, CouponState, make_params
from jaxretail.envs.coupon.generator import (
    customer_product_latents,
    paper_base_prices,
    sample_scenario,
)
from jaxretail.envs.coupon.pricing import (
    coupon_value,
    final_price,
    initial_shelf_state,
    shelf_step,
    stationary_discount_frequency,
)
from jaxretail.envs.coupon.types import Scenario, ShelfState

__all__ = [
    "CONFIGS",
    "CONTEXT_FEATURES",
    "CouponEnv",
    "CouponParams",
    "CouponState",
    "make_params",
    "Dist",
    "Scenario",
    "ScenarioConfig",
    "ShelfState",
    "coupon_value",
    "customer_product_latents",
    "final_price",
    "get_config",
    "initial_shelf_state",
    "paper_base_prices",
    "sample_scenario",
    "shelf_step",
    "stationary_discount_frequency",
]
